import Foundation
import Testing
import TestSupport

/// Attack 52b's L3 and L4 (issue #13), what validate left unsaid.
/// - L3: a copy of a live neighbour's lock in a public bucket (its first line naming that
///   neighbour's manifest) drew no word, while a gone project's is refused: it lists that
///   project's outputs, private ones too, to whoever the folder is published to.
/// - L4: with the registry of built projects unreadable, validate dropped its warning about a
///   registered neighbour mid-edit and said nothing of the registry.
@Suite(.ownThreads, .serialized) struct NeighbourLockWarningsRound53Tests {
    func said(_ result: CLI.Result) -> String { result.stderr + String(decoding: result.stdout, as: UTF8.self) }
    func environment(_ root: URL) -> [String: String] { ["XDG_STATE_HOME": root.appendingPathComponent("home").path] }

    /// q/q.yaml (lock in `L/`, private outputs in q/out) built; a/a.yaml publishes `pubx`.
    func built(_ q: String) throws -> URL {
        let root = try CLI.temporaryFolder()
        let fm = FileManager.default
        for folder in ["q/img", "a", "pubx", "L"] { try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true) }
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("q/img/s.jpg"))
        try Data(q.utf8).write(to: root.appendingPathComponent("q/q.yaml"))
        try Data("version: 1\nbuckets:\n  www: {path: ../pubx, acl: public-read}\n".utf8).write(to: root.appendingPathComponent("a/a.yaml"))
        let build = try CLI.run(["build", "-q", "q/q.yaml"], in: root, environment: environment(root))
        #expect(build.status == 0, "\(said(build))")
        return root
    }

    @Test func aCopyOfALiveNeighboursLockInAPublicBucketIsSaid() throws {
        let root = try built("version: 1\nbuckets:\n  img: {path: img}\n  out: {path: out}\nderivatives:\n  - {from: img/*.jpg, process: \"image/resize,w_8\", to: \"out/{name}.{ext}\"}\nlock: ../L/q.lock\n")
        defer { try? FileManager.default.removeItem(at: root) }
        let before = try CLI.run(["validate", "a/a.yaml"], in: root, environment: environment(root))
        #expect(before.status == 0 && !before.stderr.contains("q.lock"), "\(said(before))")
        try FileManager.default.copyItem(at: root.appendingPathComponent("L/q.lock"), to: root.appendingPathComponent("pubx/q.lock"))
        let after = try CLI.run(["validate", "a/a.yaml"], in: root, environment: environment(root))
        #expect(after.status == 0, "a copy blocks nothing: \(said(after))")
        #expect(after.stderr.contains("pubx/q.lock") && after.stderr.contains("q/q.yaml, another project") && after.stderr.contains("private ones too"),
                "no word of the copy: \(said(after))")
    }

    @Test func anUnreadableRegistryIsSaidNotDropped() throws {
        // q writes its private output into a's public bucket; q.yaml is then emptied (mid-edit).
        let root = try built("version: 1\nbuckets:\n  img: {path: img}\n  out: {path: ../pubx}\nderivatives:\n  - {from: img/*.jpg, process: \"image/resize,w_8\", to: \"out/{name}.{ext}\"}\n")
        defer { try? FileManager.default.removeItem(at: root) }
        try Data().write(to: root.appendingPathComponent("q/q.yaml"))
        let registered = try CLI.run(["validate", "a/a.yaml"], in: root, environment: environment(root))
        #expect(registered.status == 0 && registered.stderr.contains("registry of built projects"), "\(said(registered))")
        let registry = root.appendingPathComponent("home/derive/states/projects")
        #expect(FileManager.default.fileExists(atPath: registry.path))
        try Data("garbage\n".utf8).write(to: registry)
        let unreadable = try CLI.run(["validate", "a/a.yaml"], in: root, environment: environment(root))
        #expect(unreadable.stderr.contains("registry of built projects") && unreadable.stderr.contains("home/derive/states/projects"),
                "the registry's warning dropped without a word: \(said(unreadable))")
    }
}
