import Foundation
import Testing
import TestSupport

/// Issue #9, attack 56b: holes in this session's takeover notes and state checks. Projects A and
/// B side by side write `pub/{name}.jpg` into `../shared` with the same recipe (the same bytes).
@Suite(.ownThreads) struct TakeoverNotesRound56Tests {
    static func manifest(_ rule: String, bucket: String = "../shared", process: String = "image/resize,w_64") -> String {
        "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: \(bucket)}\nderivatives:\n  - {name: t\(rule), from: src/*.jpg, process: \"\(process)\", to: \"pub/{name}.jpg\"}\n"
    }

    func inode(_ file: URL) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: file.path))?[.systemFileNumber] as? UInt64
    }

    /// `root/A` and `root/B`, each with `src/a.jpg`; the state home `root/st`.
    func projects(_ root: URL) throws -> (a: URL, b: URL, environment: [String: String]) {
        let fm = FileManager.default
        let a = root.appendingPathComponent("A"), b = root.appendingPathComponent("B")
        for (project, name) in [(a, "A"), (b, "B")] {
            try fm.createDirectory(at: project.appendingPathComponent("src"), withIntermediateDirectories: true)
            try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: project.appendingPathComponent("src/a.jpg"))
            try Data(Self.manifest(name).utf8).write(to: project.appendingPathComponent("derive.yaml"))
        }
        return (a, b, ["XDG_STATE_HOME": root.appendingPathComponent("st").path])
    }

    /// H1: B built the file, A took it over (`--overwrite`), both lost `.derive`; B moved its
    /// bucket to a folder of its own. B's plan left the old file as A's, B's build deleted it as
    /// "old copy where the bucket folder used to be": the build's own new state was taken for one
    /// that was there, so its claim check did not doubt.
    @Test func aBuildLeavesTheOldCopyItsPlanLeaves() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: a, environment: environment).status == 0)
        for project in [a, b] { try FileManager.default.removeItem(at: project.appendingPathComponent(".derive")) }
        try Data(Self.manifest("B", bucket: "bout").utf8).write(to: b.appendingPathComponent("derive.yaml"))
        try FileManager.default.createDirectory(at: b.appendingPathComponent("bout"), withIntermediateDirectories: true)
        let file = root.appendingPathComponent("shared/a.jpg")
        let before = inode(file)
        let plan = try CLI.run(["plan"], in: b, environment: environment)
        #expect(said(plan).contains("left: old copy where the bucket folder used to be"), "\(said(plan))")
        let build = try CLI.run(["build"], in: b, environment: environment)
        #expect(!said(build).contains("deleted 1 old copy") && inode(file) == before, "\(said(build))")
    }
}
