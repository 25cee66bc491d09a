import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The third attack on build safety (issue 9), items 1, 2, 8, 9 and 10 b/c/e, end to end.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound3DTests {
    typealias Project = BuildSafetyAttackTests.Project

    static func manifest(from pattern: String, index: Bool = true) -> String {
        Project.manifest(outPath: "out", index: index).replacingOccurrences(of: "from: src/*.jpg", with: "from: \(pattern)")
    }

    // MARK: 1: outputs adopted from the lock that the manifest no longer produces

    /// Attack 16's H2: without a state the lock alone deletes nothing, so the outputs a fresh
    /// clone's manifest no longer produces are left, named once, and dropped from the lock.
    @Test func outputsTheManifestDropsInAFreshCloneAreLeftAndNamed() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("derive.yaml", Self.manifest(from: "src/landscape.jpg"))
        let plan = try project.run(["plan"])
        let dropped = project.outputs.filter { $0 != "landscape.jpg" }
        #expect(plan.status == 0 && text(plan.stdout).contains("0 to delete") && text(plan.stdout).contains("\(dropped.count) left in place"), "\(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(project.exists("out/landscape.jpg"))
        for name in dropped {
            #expect(project.exists("out/\(name)"), "\(name) deleted on the lock's word")
            #expect(text(build.stdout).contains("= out/\(name)  left: known only from derive.lock"), "\(text(build.stdout))")
        }
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout))")
        // Removed by hand, as the message says; back to the glob: everything is built again.
        for name in dropped { try FileManager.default.removeItem(at: project.url("out/\(name)")) }
        try project.write("derive.yaml", Self.manifest(from: "src/*.jpg"))
        let again = try project.run(["build", "-q"])
        #expect(again.status == 0, "\(again.stderr)")
    }

    @Test func aDroppedOutputChangedByTheUserIsLeftAndSaidSo() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try Data("mine".utf8).write(to: project.url("out/cmyk.jpg"))
        try project.write("derive.yaml", Self.manifest(from: "src/landscape.jpg"))
        let build = try project.run(["build"])
        #expect(project.exists("out/cmyk.jpg"), "a changed file is never deleted")
        #expect((text(build.stdout) + build.stderr).contains("cmyk.jpg"), "\(text(build.stdout)) \(build.stderr)")
        // Without a state, an unchanged old output is left too (attack 16's H2), and named.
        #expect(project.exists("out/orientation-1.jpg"))
        #expect(text(build.stdout).contains("= out/orientation-1.jpg  left: known only from derive.lock"), "\(text(build.stdout))")
    }

    // MARK: 2: a copied project sharing a bucket folder outside its tree

    @Test func cleanInACopyLeavesTheOriginalsIndex() throws {
        let (outer, original, copy) = try copiedProject()
        defer { try? FileManager.default.removeItem(at: outer) }
        _ = try CLI.run(["clean"], in: copy)
        #expect(FileManager.default.fileExists(atPath: outer.appendingPathComponent("shared-out/index.json").path), "the original's index was deleted")
        let check = try CLI.run(["check"], in: original)
        #expect(check.status == 0, "\(text(check.stdout))")
    }

    @Test func checkInACopyDoesNotCallSharedOutputsUnproduced() throws {
        let (outer, _, copy) = try copiedProject()
        defer { try? FileManager.default.removeItem(at: outer) }
        _ = try CLI.run(["build", "-q"], in: copy)   // moves the original's state aside; refused
        let check = try CLI.run(["check"], in: copy)
        #expect(check.status == 1)
        #expect(!(text(check.stdout) + check.stderr).contains("not produced by the manifest"), "\(text(check.stdout))")
    }

    // MARK: 8: a lock truncated to a few bytes

    @Test(arguments: [0, 1, 10]) func aTruncatedLockIsRewrittenByBuildAndReportedAlikeByCheck(bytes: Int) throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let lock = try Data(contentsOf: project.url("derive.lock"))
        try lock.prefix(bytes).write(to: project.url("derive.lock"))
        let check = try project.run(["check"])
        #expect(check.status == 1)
        #expect((text(check.stdout) + check.stderr).contains("not a valid lock"), "\(text(check.stdout))")
        #expect(!(text(check.stdout) + check.stderr).contains("not a Derive lock"), "\(text(check.stdout))")
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("derive.lock")) == lock)
        #expect(try project.run(["check"]).status == 0)
    }

    @Test func aLockHoldingOtherBytesIsStillRefused() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try Data("{\"other\":1}\n".utf8).write(to: project.url("derive.lock"))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 1)
        #expect(build.stderr.contains("not a Derive lock"), "\(build.stderr)")
    }

    // MARK: 9: a source whose file name is not valid UTF-8

    @Test func aSourceNamedInBytesThatAreNotUTF8IsReported() throws {
        let project = try Project()
        defer { project.remove() }
        let from = project.url("src/cmyk.jpg").path
        var to = Array((project.root.path + "/src/bad").utf8) + [0xFF] + Array(".jpg".utf8)
        to.append(0)
        #expect(to.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { Glibc.link(from, $0.baseAddress!) } } == 0)
        let build = try project.run(["build"])
        #expect(build.status == 1, "a source the build cannot name is not skipped silently")
        let said = text(build.stdout) + build.stderr
        #expect(said.contains("src/bad\\xFF.jpg") && said.contains("not valid UTF-8"), "\(said)")
        #expect(project.exists("out/landscape.jpg"), "the other sources are still built")
        let check = try project.run(["check"])
        #expect(check.status == 1)
        #expect((text(check.stdout) + check.stderr).contains("not valid UTF-8"), "\(text(check.stdout))")
    }

    // MARK: 10b, 10c: what a plan with deletions says

    @Test func aPlanCountsOnlyDeletionsOfFilesStillThereAndNamesTheRewrites() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("out/cmyk.jpg"))
        try Data("mine".utf8).write(to: project.url("out/orientation-1.jpg"))
        try project.write("derive.yaml", Self.manifest(from: "src/landscape.jpg"))
        let plan = text(try project.run(["plan"]).stdout)
        // The edited one is left in place with a `left` line, as the build does (attack 36's F6).
        // (Counted with every file the build leaves, whatever the reason: named above, round 37.)
        #expect(plan.contains("2 to delete, 1 record to drop (file already gone), 1 left in place (not the file Derive wrote, or not reachable: why above)"), "\(plan)")
        #expect(plan.contains("out/orientation-1.jpg was changed since Derive wrote it; left in place"), "\(plan)")
        #expect(plan.contains("= out/orientation-1.jpg  left: "), "\(plan)")
        #expect(plan.contains("out/cmyk.jpg  delete: no longer produced by the manifest (file already gone"), "\(plan)")
        #expect(plan.contains("rewrite derive.lock, out/index.json"), "\(plan)")
    }

    // MARK: 10e: clean without a usable state

    @Test func cleanOnACorruptStateNamesTheEditedIndexAndDoesNotClaimAState() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let state = project.url(".derive/derive/state.sqlite")
        #expect(FileManager.default.fileExists(atPath: state.path))
        try Data(repeating: 0x41, count: 4096).write(to: state)
        try Data("{\"edited\":true}\n".utf8).write(to: project.url("out/index.json"))
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        #expect(said.contains("out/index.json does not hold what Derive writes"), "\(said)")
        #expect(project.exists("out/index.json"), "an edited index is left")
        #expect(!said.contains("and the build state"), "\(said)")
        #expect(said.contains("no usable build state"), "\(said)")
    }
}
