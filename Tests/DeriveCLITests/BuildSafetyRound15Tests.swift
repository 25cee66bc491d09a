import Builder
import Foundation
import GRDB
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The fifteenth round on build safety (issue 9, attack 15's F4, F1 and F2), end to end through
/// the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound15Tests {
    typealias Project = BuildSafetyAttackTests.Project

    /// The project's state database, opened for a hand edit.
    func state(_ project: Project) throws -> DatabaseQueue {
        let state = try #require(FileManager.default.enumerator(atPath: project.url(".derive").path)?.allObjects
            .compactMap { $0 as? String }.first { $0.hasSuffix("state.sqlite") })
        return try DatabaseQueue(path: project.url(".derive/" + state).path, configuration: .patientTest)
    }

    /// A folder beside the project (outside every bucket and the manifest's folder) holding a
    /// user's copy of `out/landscape.jpg` (a backup), a copy of the index and a note.
    struct Victim {
        let folder: URL
        let copy: Data, index: Data?, notes = Data("the user's notes\n".utf8)
        init(_ project: Project) throws {
            folder = project.root.deletingLastPathComponent().appendingPathComponent("victim-" + project.root.lastPathComponent)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            copy = try Data(contentsOf: project.url("out/landscape.jpg"))
            try copy.write(to: folder.appendingPathComponent("landscape.jpg"))
            index = try? Data(contentsOf: project.url("out/index.json"))
            if let index { try index.write(to: folder.appendingPathComponent("index.json")) }
            try notes.write(to: folder.appendingPathComponent("notes.txt"))
        }
        var real: String { RealFolder.of(folder.path) }
        func remove() { try? FileManager.default.removeItem(at: folder) }
        /// Every file is still there with its bytes.
        func intact() -> Bool {
            (try? Data(contentsOf: folder.appendingPathComponent("landscape.jpg"))) == copy
                && (index == nil || (try? Data(contentsOf: folder.appendingPathComponent("index.json"))) == index)
                && (try? Data(contentsOf: folder.appendingPathComponent("notes.txt"))) == notes
        }
    }

    // MARK: F4: state records with a folder outside the manifest's places are never followed

    /// Attack 15's case A: one output's recorded folder set to the victim folder, the rule's `to:`
    /// moved so the record is an orphan. Before the fix, build deleted the victim's copy there.
    @Test func anOrphanRecordedInAFolderOutsideTheProjectIsNotDeletedThere() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let victim = try Victim(project)
        defer { victim.remove() }
        try state(project).write { db in
            try db.execute(sql: "UPDATE outputs SET folder = ? WHERE path = 'out/landscape.jpg'", arguments: [victim.real])
        }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/u/{name}.{ext}"))
        let plan = try project.run(["plan"])
        let planned = text(plan.stdout) + plan.stderr
        #expect(planned.contains("out/landscape.jpg") && planned.contains("ignored"), "\(planned)")
        #expect(!planned.contains(victim.real + "/landscape.jpg  delete"), "\(planned)")
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect(built.contains("out/landscape.jpg") && built.contains("ignored"), "\(built)")
        #expect(victim.intact(), "a file outside every bucket and the manifest's folder was deleted: \(built)")
        // The record is dropped: the next build is clean and still touches nothing there.
        let again = try project.run(["build", "-q"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(victim.intact())
    }

    /// Case E: every record's folder set to the victim folder, then `clean`.
    @Test func cleanDoesNotFollowRecordsIntoAFolderOutsideTheProject() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let victim = try Victim(project)
        defer { victim.remove() }
        try state(project).write { db in try db.execute(sql: "UPDATE outputs SET folder = ?", arguments: [victim.real]) }
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        #expect(victim.intact(), "clean deleted a file outside the project: \(said)")
        #expect(said.contains("out/landscape.jpg") && said.contains("ignored"), "\(said)")
        // The outputs in the bucket stay Derive's: the lock is kept as their record, so the next
        // clean (no state now) removes them there, and still nothing outside.
        #expect(project.exists("derive.lock"), "the lock went with outputs no record could place: \(said)")
        let again = try project.run(["clean"])
        #expect(!project.exists("out/landscape.jpg"), "\(text(again.stdout)) \(again.stderr)")
        #expect(victim.intact())
    }

    /// Cases B and B2: the index's record pointed at a file in the victim folder with that file's
    /// digest (a copy of the index; any file), with `index:` unchanged and moved.
    @Test(arguments: [("index.json", false), ("notes.txt", true), ("index.json", true)])
    func anIndexRecordOutsideEveryBucketIsNotRemoved(name: String, moveIndex: Bool) throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let victim = try Victim(project)
        defer { victim.remove() }
        let target = victim.real + "/" + name
        let digest = ContentDigests.digest(try Data(contentsOf: URL(fileURLWithPath: target)))
        try state(project).write { db in
            try db.execute(sql: "UPDATE controlFiles SET path = ?, digest = ?", arguments: [target, digest])
        }
        if moveIndex {
            try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
                .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json"))
        }
        let plan = try project.run(["plan"])
        let planned = text(plan.stdout) + plan.stderr
        #expect(!planned.contains("remove:"), "\(planned)")
        #expect(planned.contains(target) && planned.contains("ignored"), "\(planned)")
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect(victim.intact(), "a file outside every bucket was removed as Derive's old index: \(built)")
        #expect(built.contains(target) && built.contains("ignored"), "\(built)")
        let clean = try project.run(["clean"])
        #expect(victim.intact(), "clean removed a file outside every bucket: \(text(clean.stdout)) \(clean.stderr)")
    }

    /// The legitimate move stays: a bucket moved inside the manifest's folder (`out` → `out2`)
    /// still has its old copies deleted where they were written.
    @Test func aBucketMovedInsideTheProjectStillDeletesItsOldCopies() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out2", index: false))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("deleted 5 old copies"), "\(text(build.stdout))")
        for name in project.outputs {
            #expect(!project.exists("out/\(name)"))
            #expect(project.exists("out2/\(name)"))
        }
    }

    // MARK: F1: a file moved onto Derive's temporary name is never left there, nor swept

    /// A pid no process has.
    func deadPID() -> Int32 {
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        return dead
    }

    /// Attack 15's F1, made deterministic: the test hook exchanges the user's file with the
    /// temporary name right after the displaced old output was approved (what the attacker's
    /// swapper did under strace). Before the fix the build said "built" and exited 0 with the
    /// user's file left under Derive's temporary name, and the next build deleted it unread.
    @Test func aFileMovedOntoTheTemporaryNameAfterTheExchangeIsKeptAndNamed() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let user = Data("USER PRECIOUS\n".utf8)
        try user.write(to: project.url("user.jpg"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 31))
        let build = try CLI.run(["build"], in: project.root,
                                environment: ["DERIVE_TEST_ONTO_TEMPORARY": "landscape.jpg=" + project.url("user.jpg").path])
        let said = text(build.stdout) + build.stderr
        #expect(build.status == 1, "\(said)")
        let kept = try FileManager.default.contentsOfDirectory(atPath: project.url("out").path).filter { $0.hasPrefix("landscape.jpg.kept-") }
        #expect(kept.count == 1, "\(kept)")
        #expect(kept.allSatisfy { said.contains($0) }, "the error names the kept file: \(said)")
        #expect(files(holding: user, below: project.url("out")) == kept, "\(files(holding: user, below: project.root))")
        // The next builds never remove it.
        for _ in 0..<2 { _ = try project.run(["build", "-q"]) }
        #expect(!files(holding: user, below: project.root).isEmpty, "the user's file was deleted")
    }

    /// The same instant for a create. Before round 15 the new file was hard-linked at its name, then
    /// its temporary name removed by name, so a user's file moved onto that name in between was
    /// deleted. Since round 16 a create links the file at its name from its descriptor and an
    /// unnamed (`O_TMPFILE`) file never has a temporary name: the user's file cannot be moved onto
    /// one and stays where it was. Where a temporary name exists (no `O_TMPFILE`), the user's file
    /// is kept as `<name>.kept-<pid>-<n>` and named. Either way it is never lost nor installed.
    @Test func aFileMovedOntoTheTemporaryNameOfACreateIsKeptAndNamed() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let user = Data("USER PRECIOUS\n".utf8)
        try user.write(to: project.url("user.jpg"))
        let build = try CLI.run(["build"], in: project.root,
                                environment: ["DERIVE_TEST_ONTO_TEMPORARY": "landscape.jpg=" + project.url("user.jpg").path])
        let said = text(build.stdout) + build.stderr
        #expect(!files(holding: user, below: project.root).isEmpty, "the user's file was deleted: \(said)")
        #expect((try? Data(contentsOf: project.url("out/landscape.jpg"))) != user, "\(said)")
        if build.status == 0 {
            #expect(files(holding: user, below: project.root) == ["user.jpg"], "\(said)")
        } else {
            #expect(build.status == 1, "\(said)")
            let kept = (try? FileManager.default.contentsOfDirectory(atPath: project.url("out").path))?.filter { $0.hasPrefix("landscape.jpg.kept-") } ?? []
            #expect(kept.count == 1 && kept.allSatisfy { said.contains($0) }, "\(kept) \(said)")
        }
        for _ in 0..<2 { _ = try project.run(["build", "-q"]) }
        #expect(!files(holding: user, below: project.root).isEmpty, "the user's file was deleted by a later build")
    }

    /// The sweep case: a user's file at an output's temporary name of a dead writer survives
    /// builds (before the fix, any dead writer's temporary of an output's name was removed unread).
    @Test func aUsersFileAtADeadWritersTemporaryNameSurvivesBuilds() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let dead = deadPID()
        let user = Data("USER PRECIOUS\n".utf8)
        let names = ["out/.landscape.jpg.\(dead).5.derive-tmp", "out/.index.json.\(dead).6.derive-tmp", ".derive.lock.\(dead).7.derive-tmp"]
        for name in names { try user.write(to: project.url(name)) }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true, width: 31))
        #expect(try project.run(["build", "-q"]).status == 0)
        for name in names { #expect((try? Data(contentsOf: project.url(name))) == user, "\(name) was removed") }
    }

    // MARK: F2: lock lines Derive itself rejects do not raise the index read cap

    /// SHA-256 of a (large, sparse) file, by `sha256sum`: hashing 600 MB in a debug build is slow.
    func sha256sum(_ url: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [url.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: data, as: UTF8.self).prefix(64))
    }

    /// Attack 15's F2: a fresh clone whose `out/index.json` is a 600 MB (sparse) file, the lock's
    /// first line stating its SHA-256 as `indexDigest`, and 12 000 padding lines each of which
    /// `plan` itself rejects (a `.jpg` name with format `webp`). The padding raised the read cap to
    /// 1 MiB + 64 KiB a line, and plan, check and build read the file whole (977 MB peak). Now only
    /// lines Derive may have written whose file is there with that digest count (here: the 5
    /// real outputs). Peak memory is polled from /proc/<pid>/status (VmHWM).
    @Test func rejectedLockLinesDoNotLetAHugeIndexBeRead() throws {
        let round13 = BuildSafetyRound13Tests()
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", BuildSafetyRound8Tests.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try FileManager.default.removeItem(at: project.url("out/index.json"))
        try round13.sparseFile(project, "out/index.json", bytes: BuildSafetyRound14Tests.hugeFile)
        try pointLockHeader(project, at: "out/index.json", digest: try sha256sum(project.url("out/index.json")))
        let lines = try String(contentsOf: project.url("derive.lock"), encoding: .utf8).split(separator: "\n").map(String.init)
        var entries = Array(lines.dropFirst())
        for i in 0..<12_000 {
            entries.append(#"{"path":"out/pad\#(String(format: "%05ld", i)).jpg","actionKey":"\#(String(repeating: "0", count: 64))","digest":"\#(String(format: "%064lx", i))","width":10,"height":10,"bytes":100,"format":"webp"}"#)
        }
        try ([lines[0]] + entries.sorted()).joined(separator: "\n").appending("\n").write(to: project.url("derive.lock"), atomically: true, encoding: .utf8)
        for command in [["plan"], ["check"], ["build"]] {
            let (result, peak) = try round13.runMeasured(project, command)
            #expect(peak > 0)
            #expect(peak < BuildSafetyRound13Tests.peakLimitKiB, "\(command): \(peak) KiB: the file at the index path was read whole (\(text(result.stdout)) \(result.stderr.prefix(400)))")
            #expect(try FileManager.default.attributesOfItem(atPath: project.url("out/index.json").path)[.size] as? UInt64 == BuildSafetyRound14Tests.hugeFile)
        }
    }
}
