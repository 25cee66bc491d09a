import Foundation
import Testing
import TestSupport

/// Attack 48b's F4 (wording): a site whose `lock:` or `state:` names a neighbour's moved lock or
/// state (`sub/n.yaml` with `lock: locks/n.lock`, `state: var/st`) is refused by the build, but
/// the refusal named the lock's owner from the lock's folder (`../n.yaml`, no such file from the
/// user's folder) and advised deleting the neighbour "(its lock / state then passes to this
/// manifest)", after which the build refused again (the files lie in the neighbour's folder).
/// And validate said valid for such a `lock:` (present neighbour or gone), which every build refuses.
@Suite(.ownThreads) struct NeighbourControlFilesAdviceRound49Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    func projects(lock: String = "locks/n.lock") throws -> URL {
        let root = try CLI.temporaryFolder()
        for path in ["src/a.jpg", "sub/src/a.jpg"] {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: url)
        }
        try Data("version: 1\nlock: \(lock)\nstate: var/st\nbuckets:\n  src: {path: src}\n  out: {path: ../pub/n}\nderivatives:\n  - {name: n, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("sub/n.yaml"))
        let built = try CLI.run(["build", "-q", "n.yaml"], in: root.appendingPathComponent("sub"))
        #expect(built.status == 0, "\(said(built))")
        return root
    }

    func site(_ root: URL, _ control: String) throws {
        try Data("version: 1\n\(control)\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/t/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("site.yaml"))
    }

    /// `declared`: the site's `lock:` names the neighbour's moved lock; else the neighbour's
    /// `lock: ../site.lock` is the site's default lock.
    @Test(arguments: [true, false])
    func aNeighboursLockIsNamedFromTheManifestsFolderWithNoFalseAdvice(declared: Bool) throws {
        let root = try declared ? projects() : projects(lock: "../site.lock")
        defer { try? FileManager.default.removeItem(at: root) }
        try site(root, declared ? "lock: sub/locks/n.lock\nstate: .derive/own" : "state: .derive/own")
        let build = try CLI.run(["build", "site.yaml"], in: root)
        let text = said(build)
        #expect(build.status != 0, "\(text)")
        #expect(text.contains("is the lock of sub/n.yaml"), "\(text)")
        #expect(!text.contains("no longer used"), "\(text)")
    }

    @Test func aNeighboursMovedStateIsRefusedWithNoFalseAdvice() throws {
        let root = try projects()
        defer { try? FileManager.default.removeItem(at: root) }
        try site(root, "state: sub/var/st")
        let build = try CLI.run(["build", "site.yaml"], in: root)
        let text = said(build)
        #expect(build.status != 0 && text.contains("holds the build state of ") && text.contains("/sub/n.yaml"), "\(text)")
        #expect(!text.contains("its state then passes to this manifest"), "\(text)")
    }

    @Test(arguments: [false, true])
    func validateRefusesALockThatIsANeighboursMovedLock(gone: Bool) throws {
        let root = try projects()
        defer { try? FileManager.default.removeItem(at: root) }
        if gone { try FileManager.default.removeItem(at: root.appendingPathComponent("sub/n.yaml")) }
        try site(root, "lock: sub/locks/n.lock")
        let validate = try CLI.run(["validate", "site.yaml"], in: root)
        let text = said(validate)
        #expect(validate.status == 1 && text.contains("site.yaml:2:") && text.contains("the lock file sub/locks/n.lock is the lock of sub/n.yaml\(gone ? ", which is no longer there" : "") (its first line names it)"), "\(text)")
        // A lock of its own validates.
        try site(root, "lock: own.lock")
        #expect(try CLI.run(["validate", "site.yaml"], in: root).status == 0)
    }
}
