import Foundation
import GRDB
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 39a on build safety (issue 9), findings F1, F3 and F4: `check` must agree with the plan,
/// and the plan with what the build does.
/// - F1: without a usable state (deleted, or a hot journal check could not read without writing),
///   `check` said "Up to date" (exit 0) while `plan --detailed-exitcode` listed `derive.lock
///   rewrite` (exit 2); and with a hot journal the plan said "left in place (known only from the
///   lock)" of old outputs the build, which rolls the journal back and reads the state, deleted.
/// - F3: a folder at `state.sqlite`: plan and check green, build blamed permissions, clean said a
///   bare "SQLite error 14".
/// - F4: a killed build's temporary index in the bucket: plan "No changes", check exit 0, and the
///   next build removed it without a word.
@Suite(.ownThreads, .serialized) struct CheckLockAloneRound39Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func said(_ result: CLI.Result) -> String { text(result.stdout) + result.stderr }

    /// Two rules over two sources: `t` (out/t/…) and, with `u`, `u` (out/u/…).
    static func manifest(u: Bool) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_32
            to: out/t/{name}.{ext}
        \(u ? "  - name: u\n    from: src/*.jpg\n    process: image/resize,w_16\n    to: out/u/{name}.{ext}\n" : "")
        """
    }

    static let sources = ["landscape.jpg", "orientation-1.jpg"]

    func twoRules() throws -> Project {
        let project = try Project(index: false)
        for name in Project.outputs where !Self.sources.contains(name) { try FileManager.default.removeItem(at: project.url("src/" + name)) }
        try project.write("derive.yaml", Self.manifest(u: true))
        return project
    }

    func lockText(_ project: Project) throws -> String { try String(decoding: Data(contentsOf: project.url("derive.lock")), as: UTF8.self) }

    // MARK: F1: without a state, check fails where the plan rewrites the lock

    /// Rule `u` removed; the lock still lists its outputs (a build killed at the end of the edit,
    /// or a committed lock with stale lines); no state. `filesGone`: u's files were deleted (its
    /// lines are `dropped`), else they are there (`left: known only from derive.lock`).
    @Test(arguments: [true, false]) func withoutAStateCheckFailsWhereThePlanRewritesTheLock(_ filesGone: Bool) throws {
        let project = try twoRules()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let withU = try lockText(project)
        try project.write("derive.yaml", Self.manifest(u: false))
        if filesGone {
            #expect(try project.run(["build", "-q"]).status == 0)
            #expect(!project.exists("out/u/landscape.jpg"))
            var lines = try lockText(project).split(separator: "\n").map(String.init)
            let header = lines.removeFirst()
            lines += withU.split(separator: "\n").map(String.init).filter { $0.contains("\"path\":\"out/u/") }
            lines.sort { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            try project.write("derive.lock", ([header] + lines).joined(separator: "\n") + "\n")
        }
        try FileManager.default.removeItem(at: project.url(".derive"))
        let plan = try project.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 2, "\(said(plan))")
        #expect(text(plan.stdout).contains("~ derive.lock  rewrite"), "\(said(plan))")
        let check = try project.run(["check"])
        #expect(check.status == 1, "check and plan disagree: \(said(check))")
        let problem = text(check.stdout).split(separator: "\n").first { $0.hasPrefix("derive.lock: lists 2 outputs the manifest does not produce") }
        #expect(problem?.contains("out/u/landscape.jpg") == true && problem?.contains("run derive build") == true, "\(said(check))")
        #expect(!text(check.stdout).contains("Up to date"), "\(said(check))")
        // The build does what the plan said; then all three agree that nothing is left to do.
        let build = try project.run(["build"])
        #expect(build.status == 0 && text(build.stdout).contains("rewrote derive.lock"), "\(said(build))")
        #expect(project.exists("out/u/landscape.jpg") == !filesGone, "the build deleted a file only the lock named")
        #expect(try project.run(["plan", "--detailed-exitcode"]).status == 0)
        let after = try project.run(["check"])
        #expect(after.status == 0, "\(said(after))")
    }

    // MARK: F1: a hot journal is read as the build will recover it

    /// The state's own pages journalled by a write left unfinished (a build killed while it
    /// committed): the database beside it is unchanged, so rolling back gives the same state.
    func plantHotJournal(_ project: Project) throws {
        let state = project.url(".derive/derive/state.sqlite").path
        let work = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: work) }
        let copy = work.appendingPathComponent("state.sqlite").path
        try FileManager.default.copyItem(atPath: state, toPath: copy)
        let queue = try DatabaseQueue(path: copy, configuration: .patientTest)
        defer { try? queue.close() }
        var journal = Data()
        try queue.inDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = OFF")   // the journal's header is written at once
            try db.execute(sql: "BEGIN IMMEDIATE")
            try db.execute(sql: "DELETE FROM outputs")
            let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
            try db.execute(sql: "PRAGMA user_version = \(version)")   // page 1 journalled, as a commit does
            journal = try Data(contentsOf: URL(fileURLWithPath: copy + "-journal"))
            try db.execute(sql: "ROLLBACK")
        }
        try journal.write(to: URL(fileURLWithPath: state + "-journal"))
    }

    /// Rule `u` removed while a hot journal is beside the state: the plan read the lock alone and
    /// said u's outputs were left in place, check said up to date, and the build (which rolls the
    /// journal back and reads the records) deleted them. Now plan and check read a rolled-back
    /// private copy: the plan lists the deletions the build makes, check fails, nothing in the
    /// state folder is written by either.
    @Test func aHotJournalIsReadAsTheBuildWillRecoverIt() throws {
        let project = try twoRules()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Self.manifest(u: false))
        try plantHotJournal(project)
        let folder = project.url(".derive/derive")
        let before = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        let database = try Data(contentsOf: folder.appendingPathComponent("state.sqlite"))
        let journal = try Data(contentsOf: folder.appendingPathComponent("state.sqlite-journal"))

        let plan = try project.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 2, "\(said(plan))")
        let planText = text(plan.stdout)
        #expect(!said(plan).contains("checked against the lock alone") && !planText.contains("known only from"), "\(said(plan))")
        let deletions = planText.split(separator: "\n").filter { $0.hasPrefix("- out/u/") && $0.contains("delete") }
        #expect(deletions.count == 2, "\(said(plan))")
        let check = try project.run(["check"])
        #expect(check.status == 1, "\(said(check))")
        #expect(text(check.stdout).contains("out/u/landscape.jpg: delete"), "\(said(check))")
        // Read only: the journal and the database are as they were.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == before)
        #expect(try Data(contentsOf: folder.appendingPathComponent("state.sqlite")) == database)
        #expect(try Data(contentsOf: folder.appendingPathComponent("state.sqlite-journal")) == journal)

        let build = try project.run(["build"])
        #expect(build.status == 0 && text(build.stdout).contains("deleted 2"), "plan said 2 deletions: \(said(build))")
        #expect(!project.exists("out/u/landscape.jpg") && !project.exists("out/u/orientation-1.jpg"))
        #expect(try project.run(["check"]).status == 0)
    }

    // MARK: F3: a folder at state.sqlite

    /// Every command names the folder and the fix, exits 1, and leaves the folder and what it
    /// holds alone (plan and check are not green while the build fails).
    @Test func aFolderAtTheStateDatabaseIsNamedByEveryCommand() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let database = project.url(".derive/derive/state.sqlite")
        try FileManager.default.removeItem(at: database)
        try FileManager.default.createDirectory(at: database, withIntermediateDirectories: false)
        try Data("my notes\n".utf8).write(to: database.appendingPathComponent("notes.txt"))
        for command in [["plan", "--detailed-exitcode"], ["check"], ["build"], ["clean"]] {
            let result = try project.run(command)
            #expect(result.status == 1, "\(command): \(said(result))")
            #expect(result.stderr.contains("state.sqlite is a folder, not a file") && result.stderr.contains("move that folder out of"),
                    "\(command): \(said(result))")
            #expect(!result.stderr.contains("SQLite error") && !result.stderr.contains("chattr"), "\(command): \(said(result))")
            #expect(!text(result.stdout).contains("No changes") && !text(result.stdout).contains("Up to date"), "\(command): \(said(result))")
            #expect(try Data(contentsOf: database.appendingPathComponent("notes.txt")) == Data("my notes\n".utf8), "\(command)")
        }
        #expect(Project.outputs.allSatisfy { project.exists("out/" + $0) }, "an output was removed")
        // Moved out, as the message says: the build rebuilds the state from the lock, renders nothing.
        try FileManager.default.moveItem(at: database, to: project.url("kept-notes"))
        let build = try project.run(["build"])
        #expect(build.status == 0 && text(build.stdout).contains("built 0"), "\(said(build))")
        #expect(try project.run(["check"]).status == 0)
    }

    // MARK: F4: a killed build's temporary file is listed

    /// A process id no process has: a child that ran and was reaped.
    func deadPID() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    /// A temporary index a killed build left (its bytes the index's: Derive's) is listed by the
    /// plan as a removal (exit 2), is a problem for check (exit 1), and the build says it removed
    /// it; a user's file of the same shape whose bytes are not Derive's is listed by none.
    @Test func aKilledBuildsTemporaryIndexIsListedByPlanCheckAndBuild() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let pid = try deadPID()
        let name = ".index.json.\(pid).12345.derive-tmp"
        let users = ".index.json.\(pid).777.derive-tmp"
        try Data(contentsOf: project.url("out/index.json")).write(to: project.url("out/" + name))
        try Data("my own file\n".utf8).write(to: project.url("out/" + users))

        let plan = try project.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 2, "\(said(plan))")
        #expect(text(plan.stdout).contains("- out/\(name)  remove: a temporary file a killed Derive command left"), "\(said(plan))")
        #expect(!text(plan.stdout).contains(users), "\(said(plan))")
        let check = try project.run(["check"])
        #expect(check.status == 1, "\(said(check))")
        #expect(text(check.stdout).contains("out/\(name): a temporary file a killed Derive command left"), "\(said(check))")
        #expect(!text(check.stdout).contains(users), "\(said(check))")

        let build = try project.run(["build"])
        #expect(build.status == 0 && text(build.stdout).contains("removed 1 temporary file a killed command left (out/\(name))"), "\(said(build))")
        #expect(!project.exists("out/" + name) && project.exists("out/" + users))
        #expect(try project.run(["plan", "--detailed-exitcode"]).status == 0)
        #expect(try project.run(["check"]).status == 0)
    }
}
