import Foundation
import Testing
import TestSupport

/// Issue #9, attack 56c's H3: B built a file in a shared folder (`../shared`, A's output removed
/// by hand first), lost its build state, and its manifest was cut to `version: 1`. B's next
/// build kept the file as one it left in place, but rewrote its line in the registry of built
/// projects with no bucket at all: the folder its lock's line counts through was gone, so A
/// adopted the file as a restored copy and `clean` deleted it. A registry line keeps the folder
/// of every bucket its project's lock still records, declared or not.
@Suite(.ownThreads) struct BucketlessTakerRound57Tests {
    static func manifest(_ rule: String) -> String {
        "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: ../shared}\nderivatives:\n  - {name: \(rule), from: \"src/*.jpg\", process: \"image/resize,w_64\", to: \"pub/{name}.jpg\"}\n"
    }

    @Test(arguments: ["version only", "bucket removed"])
    func aTakerThatNoLongerDeclaresTheBucketKeepsItAcrossItsOwnBuilds(change: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        let (a, b) = (root.appendingPathComponent("A"), root.appendingPathComponent("B"))
        try FileManager.default.createDirectory(at: root.appendingPathComponent("shared"), withIntermediateDirectories: true)
        try makeSampleProject(a, manifest: Self.manifest("tA"))
        try makeSampleProject(b, manifest: Self.manifest("tB"))
        let file = root.appendingPathComponent("shared/a.jpg")
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        try FileManager.default.removeItem(at: file)
        let taken = try CLI.run(["build", "-q"], in: b, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        let installed = fileInode(file)
        #expect(installed != nil)
        try FileManager.default.removeItem(at: b.appendingPathComponent(".derive"))
        let cut = change == "version only" ? "version: 1\n" : "version: 1\nbuckets:\n  src: {path: src}\n"
        try Data(cut.utf8).write(to: b.appendingPathComponent("derive.yaml"))
        // Twice: the second build has nothing to write and only checks its registry line.
        for round in 1...2 {
            let rebuilt = try CLI.run(["build"], in: b, environment: environment)
            #expect(rebuilt.status == 0 && fileInode(file) == installed, "B's build \(round): \(said(rebuilt))")
        }
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("may be an output of") && said(plan).contains(b.path), "A's plan: \(said(plan))")
        let build = try CLI.run(["build"], in: a, environment: environment)
        #expect(build.status != 0 && !said(build).contains("adopted 1"), "A's build: \(said(build))")
        let clean = try CLI.run(["clean"], in: a, environment: environment)
        #expect(fileInode(file) == installed, "A's clean removed B's file: \(said(clean))")
    }

    /// Once B's lock no longer records the bucket (its left line released: the file gone), the
    /// registry line lets the folder go (nothing there is B's any more).
    @Test func theFolderGoesOnceTheLockNoLongerRecordsIt() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        let b = root.appendingPathComponent("B")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("shared"), withIntermediateDirectories: true)
        try makeSampleProject(b, manifest: Self.manifest("tB"))
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        try FileManager.default.removeItem(at: b.appendingPathComponent(".derive"))
        try Data("version: 1\n".utf8).write(to: b.appendingPathComponent("derive.yaml"))
        let registry = root.appendingPathComponent("xdg/derive/states/projects")
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        let kept = (try? String(contentsOf: registry, encoding: .utf8)) ?? ""
        #expect(kept.contains(root.appendingPathComponent("shared").path), "\(kept)")
        try FileManager.default.removeItem(at: root.appendingPathComponent("shared/a.jpg"))
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        let lock = (try? String(contentsOf: b.appendingPathComponent("derive.lock"), encoding: .utf8)) ?? ""
        let after = (try? String(contentsOf: registry, encoding: .utf8)) ?? ""
        #expect(lock.contains("pub/") || !after.contains(root.appendingPathComponent("shared").path), "lock: \(lock)\nregistry: \(after)")
    }
}
