import Foundation
import GRDB
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The twentieth round on build safety (issue 9, attack 20's B3), end to end through the binary:
/// an output changed after Derive wrote it but before the build ended was vouched for by the
/// build's own records (the end-of-build stat by path next to the digest Derive rendered), so
/// check, plan, build and the full plan called it up to date for good. The hook
/// (`DERIVE_TEST_AFTER_OUTPUT_WRITE`) makes the change at that instant, then waits out the racy
/// margin, as attack 20's optimiser did a second into a three-second build.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound20Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// After the build: `check` (the witness's answer), `plan` with the fast paths off, and the
    /// full plan without the witness all say the output changed; a later build leaves it in place.
    func expectCaught(_ project: Project, _ file: String, holding bytes: Data, _ build: CLI.Result) throws {
        let built = text(build.stdout) + build.stderr
        let check = try project.run(["check"])
        let said = text(check.stdout) + check.stderr
        #expect(check.status == 1, "check calls \(file) up to date after the build: \(said) (build: \(built))")
        #expect(said.contains(file), "\(said)")
        let plan = try CLI.run(["plan"], in: project.root, environment: ["DERIVE_INCREMENTAL": "0"])
        #expect(plan.status != 0 || !text(plan.stdout).contains("No changes"), "the full plan: \(text(plan.stdout)) \(plan.stderr)")
        // The stat rows alone (no witness): the full plan must read the file again.
        let state = RealFolder.of(project.url(".derive/derive").path)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
        #expect(names.contains("state.sqlite"), "\(state): \(names)")
        for name in names where name.hasPrefix("noop-witness") { try FileManager.default.removeItem(atPath: state + "/" + name) }
        let full = try project.run(["check"])
        #expect(full.status == 1 && (text(full.stdout) + full.stderr).contains(file),
                "the full plan trusts the stat recorded after the change: \(text(full.stdout)) \(full.stderr)")
        let again = try project.run(["build"])
        #expect(again.status == 1, "\(text(again.stdout)) \(again.stderr)")
        #expect((try? Data(contentsOf: project.url(file))) == bytes, "the changed file was not left in place")
    }

    /// Attack 20's `outmid1.sh`: the output's bytes changed in place just after Derive wrote it.
    @Test func anOutputEditedInPlaceRightAfterItWasWrittenIsNotUpToDate() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let edited = Data("OPTIMISED: not the bytes Derive rendered\n".utf8)
        try edited.write(to: project.url("edited.bin"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 31))
        let build = try CLI.run(["build"], in: project.root,
                                environment: ["DERIVE_TEST_AFTER_OUTPUT_WRITE": "landscape.jpg=" + project.url("edited.bin").path])
        try expectCaught(project, "out/landscape.jpg", holding: edited, build)
    }

    /// Attack 20's `outmid2.sh`: a user's file moved over the output just after Derive wrote it.
    @Test func aUsersFileMovedOverAnOutputDuringTheBuildIsNotUpToDate() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let user = Data("USER FILE: my own notes, not an image\n".utf8)
        try user.write(to: project.url("notes.txt"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 31))
        let build = try CLI.run(["build"], in: project.root,
                                environment: ["DERIVE_TEST_AFTER_OUTPUT_WRITE": "landscape.jpg@move=" + project.url("notes.txt").path])
        try expectCaught(project, "out/landscape.jpg", holding: user, build)
    }

    /// The witness's half of B3: an output the build did not write (up to date) edited while the
    /// build renders another. Its stat row is right (the plan's), but the end-of-build witness
    /// took its new stat, too old to be racy, and vouched for it.
    @Test func anUpToDateOutputEditedDuringTheBuildIsNotUpToDate() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let edited = Data("SYNCED: another machine's copy\n".utf8)
        try edited.write(to: project.url("edited.bin"))
        // Only landscape's output is rendered again.
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        try FileManager.default.copyItem(at: project.url("src/orientation-2.jpg"), to: project.url("src/landscape.jpg"))
        let build = try CLI.run(["build"], in: project.root,
                                environment: ["DERIVE_TEST_AFTER_OUTPUT_WRITE": "landscape.jpg=" + project.url("edited.bin").path,
                                              "DERIVE_TEST_AFTER_OUTPUT_WRITE_TARGET": project.url("out/cmyk.jpg").path])
        #expect(text(build.stdout).contains("built 1") || build.stderr.contains("built 1") || build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        try expectCaught(project, "out/cmyk.jpg", holding: edited, build)
    }

    /// Attack 20's B2 (`fsswap.sh`): a source with other bytes under the very stat the cache knows
    /// (a file system image swapped under the bucket: same device, inode, size and times).
    /// Stood for here by the source replaced and its stat row moved to the new file's stat with
    /// the old digest kept (what the cache holds after such a swap), sealed as Derive would.
    /// Before: `check --verify-all` advised a build that did nothing, and `build --verify`
    /// rendered nothing (its plan trusted the row). Now `build --verify` reads every source again.
    @Test func aSourceWithOtherBytesUnderTheCachedStatIsReadAgainByBuildVerify() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        try FileManager.default.copyItem(at: project.url("src/orientation-2.jpg"), to: project.url("src/landscape.jpg"))
        var info = stat()
        #expect(stat(project.url("src/landscape.jpg").path, &info) == 0)
        let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        let ctime = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        let state = RealFolder.of(project.url(".derive/derive").path)
        let changed = try DatabaseQueue(path: state + "/state.sqlite", configuration: .patientTest).write { db -> Int in
            try db.execute(sql: "UPDATE files SET size = ?, mtime = ?, ctime = ?, inode = ?, recorded = ? WHERE path LIKE '%/src/landscape.jpg'",
                           arguments: [Int64(info.st_size), mtime, ctime, Int64(bitPattern: UInt64(info.st_ino)), max(mtime, ctime) + 5_000_000_000])
            return db.changesCount
        }
        #expect(changed == 1)
        try BuildSafetyRound18Tests.sealAsTheUser(project)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? [] where name.hasPrefix("noop-witness") {
            try FileManager.default.removeItem(atPath: state + "/" + name)
        }
        // What any stat-based check says (the limit of the stat cache, as attack 20 found it).
        let plain = try project.run(["check"])
        #expect(plain.status == 0, "the simulation is not the swap: \(text(plain.stdout)) \(plain.stderr)")
        let all = try project.run(["check", "--verify-all"])
        let said = text(all.stdout) + all.stderr
        #expect(all.status == 1 && said.contains("src/landscape.jpg") && said.contains("derive build --verify"), "\(said)")
        let build = try project.run(["build", "--verify"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        // landscape.jpg holds orientation-2's bytes now: the same render.
        #expect(try Data(contentsOf: project.url("out/landscape.jpg")) == Data(contentsOf: project.url("out/orientation-2.jpg")),
                "build --verify kept the output of the old bytes: \(text(build.stdout)) \(build.stderr)")
        let after = try project.run(["check", "--verify-all"])
        #expect(after.status == 0, "\(text(after.stdout)) \(after.stderr)")
    }
}
