import Foundation
import Testing
import TestSupport

/// Attack 39a's F0, F2 and F7 (issue #9, build safety).
@Suite(.ownThreads, .serialized) struct BuildSafetyRound39Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func said(_ result: CLI.Result) -> String { result.stderr + text(result.stdout) }

    /// The finding's manifest: the `out` bucket at `outPath`, outputs under `sub/`, and an index.
    static func manifest(outPath: String, sub: String, index: Bool = true) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(outPath)}
        \(index ? "index: out/index.json\n" : "")derivatives:
          - name: thumbs
            from: src/*.jpg
            process: image/resize,w_32
            to: out/\(sub)/{name}.{ext}

        """
    }

    func copyFolder(_ project: Project, _ from: String, _ to: String) throws {
        try FileManager.default.copyItem(at: project.url(from), to: project.url(to))
    }

    /// F0: the bucket re-pointed at the user's copy of the old bucket (`cp -a outA userB`) and
    /// the rule restyled: the copy of the index there is the user's, like the output copies
    /// beside it, and is refused (never rewritten); it was rewritten as "Derive's index for the
    /// lock's outputs".
    @Test func anIndexCopyInARepointedBucketIsRefusedNotRewritten() throws {
        let project = try Project(index: true, outPath: "outA")
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(outPath: "outA", sub: "t"))
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try copyFolder(project, "outA", "userB")
        let before = try Data(contentsOf: project.url("userB/index.json"))
        try project.write("derive.yaml", Self.manifest(outPath: "userB", sub: "t2"))
        let plan = try project.run(["plan"])
        #expect(said(plan).contains("userB/index.json exists and was not written by Derive as the index"), "\(said(plan))")
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(said(build))")
        #expect(build.stderr.contains("userB/index.json exists and was not written by Derive as the index"), "\(said(build))")
        #expect(try Data(contentsOf: project.url("userB/index.json")) == before, "the user's copy of the index was rewritten: \(said(build))")
        // --overwrite takes it over, as for an output.
        let overwrite = try project.run(["build", "-q", "--overwrite"])
        #expect(overwrite.status == 0, "\(said(overwrite))")
        #expect(try Data(contentsOf: project.url("userB/index.json")) != before)
    }

    /// Control: the bucket's folder renamed (`mv outA outC`) is the same folder: its index is
    /// still Derive's, rewritten by the restyled build without --overwrite.
    @Test func theIndexInARenamedBucketFolderIsStillDerives() throws {
        let project = try Project(index: true, outPath: "outA")
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(outPath: "outA", sub: "t"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.moveItem(at: project.url("outA"), to: project.url("outC"))
        try project.write("derive.yaml", Self.manifest(outPath: "outC", sub: "t2"))
        // (The state's records follow the renamed folder: attack 39c's N4, round 40.)
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(text(build.stdout).contains("rewrote derive.lock, outC/index.json"), "\(said(build))")
        #expect(!build.stderr.contains("was not written by Derive as the index"), "\(said(build))")
    }

    /// F2: no state, the bucket re-pointed at a copy: `clean` left Derive's outputs in outA
    /// unnamed and removed derive.lock, their only record (a later build refused them). The
    /// lock is kept and each file left in the folder it was written for is named.
    @Test func cleanWithoutStateKeepsTheLockOfOutputsLeftInTheOldFolder() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try copyFolder(project, "outA", "userB")
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("derive.yaml", Project.manifest(outPath: "userB", index: false))
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(project.exists("derive.lock"), "the lock, the only record of outA's outputs, was removed: \(said(clean))")
        for name in project.outputs {
            #expect(project.exists("outA/\(name)") && project.exists("userB/\(name)"))
            #expect(said(clean).contains("outA/\(name)"), "\(name) left in outA is not named: \(said(clean))")
        }
        // Pointed back: Derive's own outputs are still its own.
        try project.write("derive.yaml", Project.manifest(outPath: "outA", index: false))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let again = try project.run(["clean"])
        #expect(again.status == 0, "\(said(again))")
        for name in project.outputs { #expect(!project.exists("outA/\(name)"), "\(said(again))") }
        for name in project.outputs { #expect(project.exists("userB/\(name)")) }
    }

    /// Derive's temporary files anywhere in the project.
    func temporaries(_ project: Project) -> [String] {
        let walker = FileManager.default.enumerator(atPath: project.root.path)
        var found: [String] = []
        while let name = walker?.nextObject() as? String { if name.hasSuffix(".derive-tmp") { found.append(name) } }
        return found.sorted()
    }

    /// F7: `clean` killed at an unlink (after moving the output or the index to a temporary
    /// name to check it) left `.NAME.PID.N.derive-tmp`; the next clean dropped the state that
    /// proved it Derive's and left the file for ever. The next clean removes it first.
    @Test(.enabled(if: SystemCallTrace.isPossible)) func aCleanAfterAKilledCleanLeavesNoTemporary() throws {
        var killedWithTemporary = 0
        for point in 1...7 {
            let project = try Project(index: true)
            defer { project.remove() }
            let build = try project.run(["build", "-q"])
            #expect(build.status == 0, "\(said(build))")
            let killed = try CLI.run(["-f", "-o", "/dev/null", "-e", "trace=unlinkat", "-e", "inject=unlinkat:signal=KILL:when=\(point)",
                                      CLI.executable.path, "clean"], in: project.root, executable: SystemCallTrace.strace)
            let left = temporaries(project)
            if killed.status != 0 && !left.isEmpty { killedWithTemporary += 1 }
            let clean = try project.run(["clean"])
            #expect(clean.status == 0, "unlinkat #\(point): \(said(clean))")
            #expect(temporaries(project).isEmpty, "unlinkat #\(point): left \(temporaries(project)) (was \(left)): \(said(clean))")
            for name in project.outputs { #expect(!project.exists("out/\(name)"), "unlinkat #\(point): \(said(clean))") }
            #expect(!project.exists("out/index.json"), "unlinkat #\(point): \(said(clean))")
        }
        #expect(killedWithTemporary >= 2, "the kills left no temporary file (the test no longer kills where it means to)")
    }
}
