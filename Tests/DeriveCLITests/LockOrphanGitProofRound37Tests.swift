import Foundation
import Testing
import TestSupport

/// Attack 36a's M7: in a git clone (CI, a second machine) a `{hash}` output superseded by a style
/// change is known only from `derive.lock`, and was always left in place, so the published site
/// kept every old hashed file. The lock alone still proves nothing; but a file git holds exactly
/// as it is at HEAD (`GitProof`) is lost by nobody (`git checkout` gives it back), the proof
/// Derive already takes for replacing a file: such an orphan is deleted, and `plan` says so.
@Suite(.ownThreads, .serialized) struct LockOrphanGitProofRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    static func manifest(width: Int) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: pic
            from: src/*.jpg
            process: image/resize,w_\(width)/format,webp
            to: out/{name}.{hash}.webp

        """
    }

    /// A project of one photo built at 100 px, committed (but `.derive/`) and replaced by a clone
    /// of that commit (`untracked`: left out of the commit, copied in beside), then restyled to
    /// 120 px. Returns the old hashed file's name and bytes.
    func restyledClone(untracked: Bool) throws -> (project: Project, old: String, bytes: Data) {
        let project = try Project(index: false)
        for name in project.outputs { try? FileManager.default.removeItem(at: project.url("src/\(name)")) }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: project.url("src/landscape.jpg"))
        try project.write("derive.yaml", Self.manifest(width: 100))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let old = try #require(try FileManager.default.contentsOfDirectory(atPath: project.url("out").path).first { $0.hasPrefix("landscape.") })
        let bytes = try Data(contentsOf: project.url("out/" + old))
        try project.write(".gitignore", ".derive/\n")
        // Not committed: the file is moved aside while the tree is committed, then put back.
        let aside = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: aside) }
        if untracked { try FileManager.default.moveItem(at: project.url("out/" + old), to: aside.appendingPathComponent(old)) }
        try GitProofCLITests().commitAndClone(project)
        if untracked {
            try FileManager.default.createDirectory(at: project.url("out"), withIntermediateDirectories: true)
            try FileManager.default.moveItem(at: aside.appendingPathComponent(old), to: project.url("out/" + old))
        }
        try project.write("derive.yaml", Self.manifest(width: 120))
        return (project, old, bytes)
    }

    func planJSON(_ project: Project) throws -> [String: Any] {
        let plan = try project.run(["plan", "--json"])
        return try #require(try JSONSerialization.jsonObject(with: plan.stdout) as? [String: Any], "\(plan.stderr)")
    }

    @Test func aSupersededHashedFileCommittedAtHeadIsDeleted() throws {
        let (project, old, _) = try restyledClone(untracked: false)
        defer { project.remove() }
        let plan = try planJSON(project)
        let items = try #require(plan["items"] as? [[String: Any]])
        let item = items.first { $0["output"] as? String == "out/" + old }
        #expect(item?["kind"] as? String == "delete", "\(plan)")
        #expect((item?["reasons"] as? [String])?.contains { $0.contains("committed to git") } == true, "\(plan)")
        let left = (plan["left"] as? [[String: Any]]) ?? []
        #expect(!left.contains { $0["output"] as? String == "out/" + old }, "\(left)")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("deleted 1"), "\(text(build.stdout))")
        #expect(!text(build.stdout).contains("left 1 in place"), "\(text(build.stdout))")
        #expect(!project.exists("out/" + old), "the superseded file stays")
        let now = try FileManager.default.contentsOfDirectory(atPath: project.url("out").path).filter { $0.hasPrefix("landscape.") }
        #expect(now.count == 1 && now.first != old, "\(now)")
        // The old line is gone from the lock; nothing is left to name.
        let lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
        #expect(!lock.contains(old), "\(lock)")
        let again = try project.run(["build"])
        #expect(again.status == 0 && text(again.stdout).contains("Nothing to do"), "\(text(again.stdout))")
    }

    /// The same file with the same bytes, not committed (a user's copy beside the clone): git
    /// proves nothing, so it stays, byte for byte, named as left in place by plan and build.
    @Test func anUntrackedFileOnlyTheLockNamesIsLeft() throws {
        let (project, old, bytes) = try restyledClone(untracked: true)
        defer { project.remove() }
        let plan = try planJSON(project)
        let items = try #require(plan["items"] as? [[String: Any]])
        #expect(!items.contains { $0["output"] as? String == "out/" + old }, "\(items)")
        let left = (plan["left"] as? [[String: Any]]) ?? []
        #expect(left.contains { $0["output"] as? String == "out/" + old }, "\(plan)")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("left 1 in place"), "\(text(build.stdout))")
        #expect(try Data(contentsOf: project.url("out/" + old)) == bytes)
    }
}
