import Builder
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The sixth attack on build safety (issue 9), end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound6Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    func copy(_ from: URL, to: URL) throws {
        let cp = Process()
        cp.executableURL = URL(fileURLWithPath: "/bin/cp")
        cp.arguments = ["-a", from.path, to.path]
        try cp.run(); cp.waitUntilExit()
        #expect(cp.terminationStatus == 0)
    }

    // MARK: 1: a copy of a copy

    /// W1 holds `proj/` (its bucket `../shared`) and `shared/`; `cp -a W1 W2`, then
    /// `cp -a W2/proj W2/copy`: both W2 states still name W1/proj. The copy restyled must refuse
    /// W2/proj's files (naming W2/proj), whether or not W1 (or W2/proj's build) is still there.
    func copyOfACopy(index: Bool, originalGone: Bool) throws {
        let outer = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outer) }
        let w1 = outer.appendingPathComponent("W1"), w2 = outer.appendingPathComponent("W2")
        try FileManager.default.createDirectory(at: w1, withIntermediateDirectories: true)
        let project = try Project(index: index, outPath: "../shared")
        try FileManager.default.moveItem(at: project.root, to: w1.appendingPathComponent("proj"))
        #expect(try CLI.run(["build", "-q"], in: w1.appendingPathComponent("proj")).status == 0)
        try copy(w1, to: w2)
        let proj = w2.appendingPathComponent("proj"), theCopy = w2.appendingPathComponent("copy")
        try copy(proj, to: theCopy)
        if originalGone { try FileManager.default.removeItem(at: w1) }
        let shared = w2.appendingPathComponent("shared")
        let before = try contents(shared)
        let w1Shared = originalGone ? [:] : try contents(w1.appendingPathComponent("shared"))
        try Data(Project.manifest(outPath: "../shared", index: index, width: 40).utf8).write(to: theCopy.appendingPathComponent("derive.yaml"))
        let claimed = "shared/landscape.jpg is an output of \(proj.path)/derive.yaml"
        let plan = try CLI.run(["plan", "--detailed-exitcode"], in: theCopy)
        #expect(plan.status == 1, "\(text(plan.stdout)) \(plan.stderr)")
        #expect(plan.stderr.contains(claimed), "\(plan.stderr)")
        #expect(plan.stderr.contains("pass --overwrite"), "\(plan.stderr)")
        if index { #expect(plan.stderr.contains("shared/index.json is the index of \(proj.path)/derive.yaml"), "\(plan.stderr)") }
        let check = try CLI.run(["check"], in: theCopy)
        #expect(check.status == 1)
        #expect(text(check.stdout).contains(claimed), "\(text(check.stdout))")
        let build = try CLI.run(["build", "-q"], in: theCopy)
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains(claimed), "\(build.stderr)")
        #expect(try contents(shared) == before, "the copy of a copy wrote over W2/proj's files")
        // W2/proj itself (a copy of the whole workspace) keeps its files: it builds, renders nothing.
        let own = try CLI.run(["build"], in: proj)
        #expect(own.status == 0, "\(text(own.stdout)) \(own.stderr)")
        #expect(text(own.stdout).contains("built 0,"), "\(text(own.stdout))")
        #expect(try contents(shared) == before)
        #expect(try CLI.run(["check"], in: proj).status == 0)
        // After W2/proj's build (its state now names W2/proj), the copy still refuses, twice.
        for _ in 0..<2 {
            let again = try CLI.run(["build", "-q"], in: theCopy)
            #expect(again.status == 1)
            #expect(again.stderr.contains(claimed), "\(again.stderr)")
        }
        // The copy drops its rule: nothing of W2/proj's is deleted, by build or clean.
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out:\n    path: ../shared\nderivatives: []\n".utf8)
            .write(to: theCopy.appendingPathComponent("derive.yaml"))
        _ = try CLI.run(["build", "-q"], in: theCopy)
        _ = try CLI.run(["clean"], in: theCopy)
        #expect(try contents(shared) == before, "the copy of a copy deleted W2/proj's files")
        #expect(try CLI.run(["check"], in: proj).status == 0)
        if !originalGone { #expect(try contents(w1.appendingPathComponent("shared")) == w1Shared) }
    }

    @Test func aRestyledCopyOfACopyNeverWritesTheOtherCopysOutputs() throws { try copyOfACopy(index: true, originalGone: false) }
    @Test func aRestyledCopyOfACopyWithoutAnIndexNeverWritesTheOtherCopysOutputs() throws { try copyOfACopy(index: false, originalGone: false) }
    @Test func aCopyOfACopyRefusesEvenWhenTheFirstWorkspaceIsGone() throws { try copyOfACopy(index: true, originalGone: true) }

    /// A copy of a whole workspace (project and the shared folder together) is the project's own:
    /// it adopts what its lock vouches for, renders nothing, and restyled it rebuilds its own files.
    @Test func aCopiedWorkspaceAdoptsItsOwnSharedOutputs() throws {
        let outer = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outer) }
        let w1 = outer.appendingPathComponent("W1"), w2 = outer.appendingPathComponent("W2")
        try FileManager.default.createDirectory(at: w1, withIntermediateDirectories: true)
        let project = try Project(index: true, outPath: "../shared")
        try FileManager.default.moveItem(at: project.root, to: w1.appendingPathComponent("proj"))
        #expect(try CLI.run(["build", "-q"], in: w1.appendingPathComponent("proj")).status == 0)
        try copy(w1, to: w2)
        // The workspace committed (project and shared folder): the restyle renders over its outputs on git's proof.
        try GitProofCLITests.commitAll(w2)
        let proj = w2.appendingPathComponent("proj")
        let w1Shared = try contents(w1.appendingPathComponent("shared"))
        try Data(Project.manifest(outPath: "../shared", index: true, width: 40).utf8).write(to: proj.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build"], in: proj)
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(try CLI.run(["check"], in: proj).status == 0)
        #expect(try contents(w1.appendingPathComponent("shared")) == w1Shared, "W2/proj wrote in W1")
    }
}

extension BuildSafetyRound6Tests {
    // MARK: 2: an output that became a source is shown as kept, by plan and build alike

    @Test func anOutputThatBecameASourceIsShownAsKeptNotAsADelete() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "out/{name}.{ext}", with: "out/t/{name}.{ext}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "from: src/*.jpg", with: "from: out/t/*.jpg").replacingOccurrences(of: "out/{name}.{ext}", with: "out/u/{name}.{ext}"))
        let plan = text(try project.run(["plan"]).stdout)
        let lines = plan.split(separator: "\n")
        #expect(!lines.contains { $0.hasPrefix("- ") || $0.contains("delete:") }, "a kept source shown as a delete: \(plan)")
        #expect(lines.contains { $0.hasPrefix("= out/t/landscape.jpg  kept: out/t/landscape.jpg is now a source of this manifest") }, "\(plan)")
        #expect(plan.contains("0 to delete, 5 kept in place (only the output record is dropped)"), "\(plan)")
        let json = try JSONSerialization.jsonObject(with: try project.run(["plan", "--json"]).stdout) as? [String: Any]
        let items = json?["items"] as? [[String: Any]] ?? []
        #expect(items.filter { ($0["output"] as? String)?.hasPrefix("out/t/") == true }.allSatisfy { $0["kind"] as? String == "keep" }, "\(items)")
        #expect((json?["summary"] as? [String: Any])?["delete"] as? Int == 0)
        let build = text(try project.run(["build"]).stdout)
        #expect(build.contains("kept 5 in place (only the output record is dropped)"), "\(build)")
        #expect(!build.contains("deleted") && !build.contains("forgot"), "\(build)")
        #expect(project.exists("out/t/landscape.jpg"))
    }

    // MARK: 3: negative --jobs and --memory are range errors, in every spelling

    @Test(arguments: [["--jobs", "-1"], ["--jobs=-1"], ["-j", "-1"], ["--jobs", "0"], ["--memory", "-5"], ["--memory=-5"], ["--memory", "0"]])
    func negativeJobsAndMemoryAreRangeErrors(_ flag: [String]) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let build = try project.run(["build", "-q"] + flag)
        #expect(build.status == 64, "\(build.stderr)")
        let name = flag[0].hasPrefix("--memory") ? "--memory must be from 1 to 1048576 (MiB), not " : "--jobs must be from 1 to 1024, not "
        #expect(build.stderr.contains(name + (flag.count == 2 ? flag[1] : String(flag[0].split(separator: "=")[1]))), "\(build.stderr)")
        #expect(!build.stderr.contains("Missing value"), "\(build.stderr)")
        #expect(!project.exists("out/landscape.jpg"))
    }
}

extension BuildSafetyRound6Tests {
    // MARK: 4: a lock line through a symbolic link is kept and said so

    @Test func aLockLineThroughASymbolicLinkIsReportedAsALinkAndKept() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let elsewhere = project.url("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: project.url("out/landscape.jpg"), to: elsewhere.appendingPathComponent("a.jpg"))
        try FileManager.default.createSymbolicLink(atPath: project.url("out/link").path, withDestinationPath: elsewhere.path)
        try FileManager.default.removeItem(at: project.url(".derive"))   // the lock decides deletions only without a state
        try BuildSafetyRound5Tests().injectLock(project, entries: [("out/link/a.jpg", elsewhere.appendingPathComponent("a.jpg"))])
        // Without a state the lock line authorises nothing (attack 16's H2; round 8, F2: no rule's
        // `to:` gives out/link/a.jpg either): named by plan and build, the file behind the link kept.
        let planned = try project.run(["plan"])
        let plan = text(planned.stdout)
        let why = "= out/link/a.jpg  left: known only from derive.lock"
        #expect(plan.contains(why), "\(plan)")
        #expect(!plan.contains("- out/link/a.jpg"), "\(plan)")
        #expect(!plan.contains("already gone or changed"), "\(plan)")
        let built = try project.run(["build"])
        let build = text(built.stdout)
        #expect(build.contains(why), "\(build)")
        #expect(!build.contains("deleted"), "\(build)")
        #expect(!build.contains("forgot"), "\(build)")
        #expect(FileManager.default.fileExists(atPath: elsewhere.appendingPathComponent("a.jpg").path))
        // Not an output line any more (a `left` line may keep its key's ACL: round 19's V1).
        #expect(!(try String(contentsOf: project.url("derive.lock"), encoding: .utf8)).contains(#"{"path":"out/link/a.jpg""#))
    }
}

extension BuildSafetyRound6Tests {
    // MARK: 5: the plan lists exactly the control files the build writes; the build says what it deleted

    /// What a file is now: absent, or its bytes and modification time (ns).
    func fingerprint(_ url: URL) -> String {
        var info = stat()
        guard lstat(url.path, &info) == 0, let data = FileManager.default.contents(atPath: url.path) else { return "absent" }
        return "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) \(data.hashValue) \(data.count)"
    }

    /// Plans (JSON), builds, and checks that the control files the plan lists to write or remove
    /// are exactly those whose bytes, time or existence the build changed. Returns the build's output.
    @discardableResult
    func planMatchesBuild(in folder: URL, candidates: [String: URL], expected: Set<String>) throws -> String {
        let json = try JSONSerialization.jsonObject(with: try CLI.run(["plan", "--json"], in: folder).stdout) as? [String: Any]
        let listed = Set((json?["controlFiles"] as? [[String: Any]] ?? []).filter { ["write", "remove"].contains($0["action"] as? String) }
            .compactMap { $0["file"] as? String })
        let before = candidates.mapValues(fingerprint)
        let build = try CLI.run(["build"], in: folder)
        let changed = Set(candidates.filter { before[$0.key] != fingerprint($0.value) }.map(\.key))
        #expect(listed == expected, "plan listed \(listed)")
        #expect(changed == listed, "plan listed \(listed), the build changed \(changed): \(text(build.stdout)) \(build.stderr)")
        return text(build.stdout)
    }

    @Test func aCopySharingABucketPlansNoControlFileItsRefusedBuildDoesNotWrite() throws {
        let outer = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outer) }
        let project = try Project(index: true, outPath: "../shared")
        let original = outer.appendingPathComponent("proj"), theCopy = outer.appendingPathComponent("copy")
        try FileManager.default.moveItem(at: project.root, to: original)
        #expect(try CLI.run(["build", "-q"], in: original).status == 0)
        try copy(original, to: theCopy)
        let candidates = ["derive.lock": theCopy.appendingPathComponent("derive.lock"),
                          "shared/index.json": outer.appendingPathComponent("shared/index.json")]
        try planMatchesBuild(in: theCopy, candidates: candidates, expected: [])
        try planMatchesBuild(in: theCopy, candidates: candidates, expected: [])   // after the state was moved aside
    }

    @Test func recoveryPlansListTheLockAndIndexTheBuildRewrites() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let candidates = ["derive.lock": project.url("derive.lock"), "out/index.json": project.url("out/index.json")]
        let state = project.url(".derive/derive/state.sqlite")
        // A corrupt state and a deleted index.
        try Data(repeating: 7, count: 100).write(to: state)
        try FileManager.default.removeItem(at: project.url("out/index.json"))
        // The sources' colours are rendered again, by the plan as by the build (the index's own are
        // never taken without a state): the index is written, and the lock, which records the
        // digest of those same bytes, is not.
        try planMatchesBuild(in: project.root, candidates: candidates, expected: ["out/index.json"])
        // A corrupt state and a lock whose lines were reordered.
        try Data(repeating: 7, count: 100).write(to: state)
        let lines = try String(contentsOf: project.url("derive.lock"), encoding: .utf8).split(separator: "\n")
        try Data(([lines[0]] + lines.dropFirst().reversed()).joined(separator: "\n").appending("\n").utf8).write(to: project.url("derive.lock"))
        try planMatchesBuild(in: project.root, candidates: candidates, expected: ["derive.lock"])
        // No state and no lock: the build would refuse every output (not written by Derive), and writes nothing.
        try FileManager.default.removeItem(at: project.url(".derive"))
        try FileManager.default.removeItem(at: project.url("derive.lock"))
        try planMatchesBuild(in: project.root, candidates: candidates, expected: [])
    }

    @Test func aRepointedBucketLinksBuildSaysWhatItDeleted() throws {
        let project = try Project(index: true, outPath: "outlink")
        defer { project.remove() }
        for name in ["out", "out2"] { try FileManager.default.createDirectory(at: project.url(name), withIntermediateDirectories: true) }
        try FileManager.default.createSymbolicLink(atPath: project.url("outlink").path, withDestinationPath: "out")
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("outlink"))
        try FileManager.default.createSymbolicLink(atPath: project.url("outlink").path, withDestinationPath: "out2")
        let candidates = ["derive.lock": project.url("derive.lock"), "out/index.json": project.url("out/index.json"),
                          "outlink/index.json": project.url("out2/index.json")]
        let build = try planMatchesBuild(in: project.root, candidates: candidates, expected: ["out/index.json", "outlink/index.json"])
        #expect(build.contains("built 5, deleted 5 old copies where the bucket folder used to be"), "\(build)")
        #expect(build.contains("removed out/index.json"), "\(build)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: project.url("out").path).isEmpty)
    }
}
