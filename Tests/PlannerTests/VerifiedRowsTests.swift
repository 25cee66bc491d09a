import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import Testing
import TestSupport
@testable import Builder
import Manifest
@testable import Planner

/// Issue 15: the witness's "rows verified" line (`VerifiedRows`). On the edited-source path the
/// outputs rows are read without checking their seals while the witness vouches for the
/// database and the file is the one it names; any write to the database by another program
/// (the `sqlite3` shell), before the check or between the check and the reading, makes the run
/// check every row, and a forged row is refused as without the line.
@Suite(.ownThreads, .serialized) struct VerifiedRowsTests {
    typealias Tree = IncrementalPlanEquivalenceTests.Tree
    typealias Equivalence = IncrementalPlanEquivalenceTests

    static func state(_ tree: Tree) throws -> String {
        try tree.project.session().manifest.stateFolder + "/" + StateStore.fileName
    }

    static func outputRows(_ tree: Tree) throws -> Int {
        let raw = try DatabaseQueue(path: try state(tree), configuration: .patientTest)
        defer { try? raw.close() }
        return try raw.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM outputs") ?? 0 }
    }

    /// How many outputs rows' seals `session`'s store checked.
    static func checked(_ session: BuildSession) throws -> Int {
        try #require(try session.store().seals).rowsVerified(in: "outputs")
    }

    /// Runs `sql` on the state with the `sqlite3` shell, as a user or another program would.
    static func sqlite3(_ tree: Tree, _ sql: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [try state(tree), sql]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "sqlite3 \(sql)")
    }

    /// The plan of `session` and the full plan of the same tree (incremental paths off, every
    /// seal checked), compared item by item.
    static func expectFullPlan(_ tree: Tree, _ fast: Plan, _ context: String) throws {
        let off = try tree.project.session()
        off.incrementalPlans = false
        let full = try off.plan()
        let (offChecked, rows) = (try checked(off), try outputRows(tree))
        #expect(offChecked == rows, "\(context): the full plan checked \(offChecked) of \(rows) seals")
        let (x, y) = (Equivalence.describe(fast), Equivalence.describe(full))
        #expect(x == y, "\(context): \(zip(x, y).filter { $0 != $1 }.prefix(3)) \(x.count) vs \(y.count) lines")
    }

    /// A clean build's witness vouches for its rows: one edited source's plan checks no outputs
    /// seal, for `build` (the file) and `plan` (its copy in memory) alike, and is the full plan.
    /// The build that follows keeps the line (it read the rows under it and sealed its own), so
    /// the next edit checks none either.
    @Test func anEditedSourcePlanChecksNoSealWhileTheWitnessVouches() throws {
        let tree = try Equivalence.builtTree { try $0.project.write("photos/a.jpg", "edited") }
        #expect(try Self.outputRows(tree) == 6)
        let session = try tree.project.session()
        let fast = try session.plan()
        #expect(session.lastPlanPath == .editedSources(1))
        let edited = try Self.checked(session)
        #expect(edited == 0, "the edited plan checked \(edited) outputs seals")
        try Self.expectFullPlan(tree, fast, "build's plan")
        let readOnly = try tree.project.session()
        let planned = try readOnly.readOnlyPlan()
        #expect(readOnly.lastPlanPath == .editedSources(1))
        let planned0 = try Self.checked(readOnly)
        #expect(planned0 == 0, "derive plan checked \(planned0) outputs seals")
        try Self.expectFullPlan(tree, planned, "derive plan")
        _ = try session.build(options: BuildOptions(jobs: 2, quiet: true)) { tree.project.renderer }
        tree.project.settle()
        try tree.project.write("photos/b.jpg", "edited b")
        tree.project.settle()
        let next = try tree.project.session()
        let again = try next.plan()
        #expect(next.lastPlanPath == .editedSources(1))
        let nextChecked = try Self.checked(next)
        #expect(nextChecked == 0, "after an edited build, the next edit checked \(nextChecked) seals")
        try Self.expectFullPlan(tree, again, "the next edit")
    }

    /// The same after a touched source's refresh (it writes stat rows, sealed, and no outputs row).
    @Test func aTouchRefreshKeepsTheLine() throws {
        let tree = try Equivalence.builtTree { _ in }
        _ = utimes(tree.project.path("photos/b.jpg"), nil)
        tree.project.settle()
        let touch = try tree.project.session()
        #expect(touch.unchanged() == 6)
        touch.refreshWitness()
        try tree.project.write("photos/a.jpg", "edited")
        tree.project.settle()
        let session = try tree.project.session()
        let fast = try session.plan()
        #expect(session.lastPlanPath == .editedSources(1))
        let afterTouch = try Self.checked(session)
        #expect(afterTouch == 0, "after a touch refresh, the edit checked \(afterTouch) seals")
        try Self.expectFullPlan(tree, fast, "after a touch")
    }

    static let forgeries = [
        "UPDATE outputs SET outputDigest = '\(String(repeating: "0", count: 64))' WHERE source = 'photos/b.jpg' AND style = 'thumb'",
        // A seal copied from another row: a seal, but not this row's.
        "UPDATE outputs SET outputDigest = '\(String(repeating: "0", count: 64))', seal = (SELECT seal FROM outputs WHERE source = 'photos/a.jpg' AND style = 'thumb') WHERE source = 'photos/b.jpg' AND style = 'thumb'",
    ]

    /// A row forged with the `sqlite3` shell after the build (its seal left, or another row's
    /// seal put on it): the next run checks every row, trusts no forged record, and plans as
    /// the full plan does, whenever the write comes: before the witness check, after it, or
    /// after the state was opened (before its rows are read).
    @Test(arguments: forgeries, ["before the check", "after the check", "after opening the state"])
    func aRowForgedWithTheShellIsCheckedAndRefused(sql: String, when: String) throws {
        let tree = try Equivalence.builtTree { try $0.project.write("photos/a.jpg", "edited") }
        let rows = try Self.outputRows(tree)
        if when == "before the check" { try Self.sqlite3(tree, sql) }
        let session = try tree.project.session()
        _ = session.witnessCheck()
        if when == "after the check" { try Self.sqlite3(tree, sql) }
        if when == "after opening the state" {
            _ = try session.store()
            try Self.sqlite3(tree, sql)
        }
        let fast = try session.plan()
        let all = try Self.checked(session)
        #expect(all >= rows, "\(when): \(all) of \(rows) seals checked")
        #expect(!fast.recorded.values.contains { $0.source == "photos/b.jpg" && $0.style == "thumb" }, "\(when): the forged record was trusted")
        #expect(fast.failures.contains { $0.message.contains(StateStore.unsealed) }, "\(when): the forged record is not named: \(fast.failures)")
        try Self.expectFullPlan(tree, fast, when)
    }

    /// A witness line naming the database as it was before a shell write is not taken: the
    /// token moves with any commit that writes the file, even one that keeps the row count.
    /// (A statement that changes no value writes no page: SQLite leaves the file as it was.)
    @Test func theTokenMovesWithAnyCommit() throws {
        let tree = try Equivalence.builtTree { _ in }
        let path = try Self.state(tree)
        let before = try #require(VerifiedRows.token(path))
        #expect(VerifiedRows.token(path) == before)
        try Self.sqlite3(tree, "UPDATE outputs SET builtAt = builtAt + 1")   // the same rows, another value
        #expect(VerifiedRows.token(path) != before)
        // And a journal beside it (a write in progress) gives none.
        #expect(FileManager.default.createFile(atPath: path + "-journal", contents: Data()))
        #expect(VerifiedRows.token(path) == nil)
        try FileManager.default.removeItem(atPath: path + "-journal")
    }
}
