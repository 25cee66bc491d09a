import Foundation
import GRDB
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 9 (build safety, attack on fix-build-26): with `state: .` the state folder is the
/// user's folder, and a real SQLite side file of another database of the user's named
/// `state.sqlite-wal` or `state.sqlite-journal` passed the header check: SQLite deleted it, or
/// replayed it into Derive's state. A side file is now judged against Derive's own database
/// beside it: a write-ahead log or WAL index is never Derive's (its state is in rollback-journal
/// mode), and a journal is Derive's only when it journals page 1 of Derive's stamped database.
@Suite(.ownThreads, .serialized) struct StateSideFilesIssue9Tests {
    typealias Site = SiteRound11Tests.Site

    static let manifest = StateFolderOwnershipRound25Tests.manifest

    func site() throws -> Site { try Site(["src/a.jpg": "landscape.jpg"], manifest: Self.manifest) }

    func bytes(_ site: Site, _ path: String) -> Data? { FileManager.default.contents(atPath: site.url(path).path) }

    /// Another database of the user's (its own table, its own rows) in `work`, made by `body`.
    static func foreignDatabase(_ body: (String, DatabaseQueue) throws -> Data) throws -> Data {
        let work = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: work) }
        let path = work.appendingPathComponent("notes.sqlite").path
        let queue = try DatabaseQueue(path: path, configuration: .patientTest)
        defer { try? queue.close() }
        return try body(path, queue)
    }

    /// A real write-ahead log of another database: in WAL mode, its rows still only in the log.
    static func foreignWAL() throws -> Data {
        try foreignDatabase { path, queue in
            try queue.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
                try db.execute(sql: "CREATE TABLE notes (body TEXT)")
                try db.execute(sql: "INSERT INTO notes VALUES ('my notes')")
                return try Data(contentsOf: URL(fileURLWithPath: path + "-wal"))
            }
        }
    }

    /// A real hot journal of another database (a write it had not finished), page 1 journalled;
    /// `zeroed`: its first bytes zero, as SQLite leaves a journal not yet synced.
    static func foreignJournal(zeroed: Bool = false) throws -> Data {
        try foreignDatabase { path, queue in
            try queue.write { db in
                try db.execute(sql: "CREATE TABLE notes (body TEXT)")
                for index in 0..<50 { try db.execute(sql: "INSERT INTO notes VALUES (?)", arguments: [String(repeating: "note \(index) ", count: 40)]) }
            }
            var journal = try capturedJournal(queue, path) { db in
                try db.execute(sql: "DELETE FROM notes")
                try db.execute(sql: "PRAGMA user_version = 3")
            }
            if zeroed { journal.replaceSubrange(0..<8, with: [UInt8](repeating: 0, count: 8)) }
            return journal
        }
    }

    /// The rollback journal of a write transaction (`change`) on the database at `path`, copied
    /// before the transaction ends; `commit`: the transaction then commits (else rolls back).
    static func capturedJournal(_ queue: DatabaseQueue, _ path: String, commit: Bool = false, _ change: (Database) throws -> Void) throws -> Data {
        try queue.inDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = OFF")   // the journal's header is written at once
            try db.execute(sql: "BEGIN IMMEDIATE")
            try change(db)
            let journal = try Data(contentsOf: URL(fileURLWithPath: path + "-journal"))
            try db.execute(sql: commit ? "COMMIT" : "ROLLBACK")
            return journal
        }
    }

    /// Deletes every output record, with page 1 journalled as SQLite's commit does (the change
    /// counter): the user version written as it is.
    static func deleteEveryOutput(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM outputs")
        let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        try db.execute(sql: "PRAGMA user_version = \(version)")
    }

    func outputRows(_ site: Site) throws -> Int {
        let queue = try DatabaseQueue(path: site.url("state.sqlite").path, configuration: .patientTest)
        defer { try? queue.close() }
        return try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM outputs") ?? 0 }
    }

    /// `name` holding `side` is refused by every command, naming it and the fix, and left as it
    /// was; the state beside it (if any) is not opened either.
    func expectRefused(_ site: Site, _ name: String, _ side: Data, _ context: String) throws {
        let database = bytes(site, "state.sqlite")
        for command in ["build", "plan", "check", "clean"] {
            let result = try site.run([command])
            #expect(result.status != 0, "\(context), \(command): \(said(result))")
            #expect(result.stderr.contains(name) && result.stderr.contains("move it out of"), "\(context), \(command): \(result.stderr)")
            #expect(bytes(site, name) == side, "\(context), \(command): \(name) was changed or removed")
            #expect(bytes(site, "state.sqlite") == database, "\(context), \(command): the state beside it was changed")
        }
    }

    // MARK: A write-ahead log or WAL index is never Derive's

    @Test func aRealWriteAheadLogOfAnotherDatabaseBesideTheStateIsRefusedNotReplayed() throws {
        let site = try site()
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let wal = try Self.foreignWAL()
        try wal.write(to: site.url("state.sqlite-wal"))
        try expectRefused(site, "state.sqlite-wal", wal, "a WAL beside the state")
        // Moved away, the state is as it was: builds go on (it was not replayed into it).
        try FileManager.default.removeItem(at: site.url("state.sqlite-wal"))
        let again = try site.run(["build"])
        #expect(again.status == 0, "\(said(again))")
        #expect(try site.run(["plan"]).status == 0)
    }

    @Test func aRealWriteAheadLogWithNoStateBesideItIsNotDeleted() throws {
        let site = try site()
        defer { site.remove() }
        let wal = try Self.foreignWAL()
        try wal.write(to: site.url("state.sqlite-wal"))
        try expectRefused(site, "state.sqlite-wal", wal, "a WAL in a folder without a state")
    }

    /// A database of the user's in WAL mode at `state.sqlite` (no log beside it): opening it,
    /// even read-only, would make SQLite create a `-wal` and `-shm` there.
    @Test func aUsersDatabaseInWALModeNamedLikeTheStateIsLeftAsItIs() throws {
        let site = try site()
        defer { site.remove() }
        let queue = try DatabaseQueue(path: site.url("state.sqlite").path, configuration: .patientTest)
        try queue.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE TABLE notes (body TEXT)")
        }
        try queue.close()
        let database = try #require(bytes(site, "state.sqlite"))
        #expect(database[18] == 2 && !site.exists("state.sqlite-wal"))
        for command in ["build", "plan", "check", "clean"] {
            let result = try site.run([command])
            #expect(result.status != 0 && result.stderr.contains("state.sqlite"), "\(command): \(said(result))")
            #expect(bytes(site, "state.sqlite") == database, "\(command)")
            #expect(!site.exists("state.sqlite-wal") && !site.exists("state.sqlite-shm"), "\(command) made SQLite's log beside a user's database")
        }
    }

    // MARK: A journal is Derive's only when it journals Derive's own database

    @Test func aRealHotJournalOfAnotherDatabaseBesideTheStateIsRefusedNotReplayed() throws {
        let site = try site()
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let journal = try Self.foreignJournal()
        try journal.write(to: site.url("state.sqlite-journal"))
        try expectRefused(site, "state.sqlite-journal", journal, "another database's hot journal")
        try FileManager.default.removeItem(at: site.url("state.sqlite-journal"))
        let again = try site.run(["build"])
        #expect(again.status == 0, "\(said(again))")
        #expect(try site.run(["plan"]).status == 0)
    }

    @Test func aRealHotJournalWithNoStateBesideItIsNotDeleted() throws {
        let site = try site()
        defer { site.remove() }
        let journal = try Self.foreignJournal()
        try journal.write(to: site.url("state.sqlite-journal"))
        try expectRefused(site, "state.sqlite-journal", journal, "a hot journal in a folder without a state")
    }

    /// A zeroed journal is not replayed, but Derive's next write would overwrite and delete it:
    /// another database's is refused like a hot one.
    @Test func aZeroedJournalOfAnotherDatabaseIsRefusedNotOverwritten() throws {
        let site = try site()
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let journal = try Self.foreignJournal(zeroed: true)
        try journal.write(to: site.url("state.sqlite-journal"))
        try expectRefused(site, "state.sqlite-journal", journal, "another database's zeroed journal")
    }

    /// Another application's stamped database's journal is not Derive's either.
    @Test func aJournalOfADatabaseStampedByAnotherApplicationIsRefused() throws {
        let site = try site()
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let journal = try Self.foreignDatabase { path, queue in
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA application_id = 1145197396")
                try db.execute(sql: "CREATE TABLE notes (body TEXT)")
            }
            return try Self.capturedJournal(queue, path) { db in try db.execute(sql: "PRAGMA user_version = 3") }
        }
        try journal.write(to: site.url("state.sqlite-journal"))
        try expectRefused(site, "state.sqlite-journal", journal, "a stamped database's journal")
    }

    /// A crash journal of Derive's own state still rolls the state back: a write that deleted
    /// every output record was on disk, its journal not yet removed (the moment before commit).
    @Test func aHotJournalOfDerivesOwnStateIsStillRolledBack() throws {
        let site = try site()
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let rows = try outputRows(site)
        #expect(rows > 0)
        let state = site.url("state.sqlite").path
        let queue = try DatabaseQueue(path: state, configuration: .patientTest)
        let journal = try Self.capturedJournal(queue, state, commit: true, Self.deleteEveryOutput)
        try queue.close()
        #expect(try outputRows(site) == 0)
        try journal.write(to: site.url("state.sqlite-journal"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(!site.exists("state.sqlite-journal"))
        #expect(try outputRows(site) == rows, "the journal was not rolled back")
    }

    /// Derive's own journal left zeroed (the process stopped before SQLite synced it: the
    /// database was not written yet) is Derive's: the build goes on.
    @Test func aZeroedJournalOfDerivesOwnStateIsTakenAsDerives() throws {
        let site = try site()
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let rows = try outputRows(site)
        let state = site.url("state.sqlite").path
        let queue = try DatabaseQueue(path: state, configuration: .patientTest)
        var journal = try Self.capturedJournal(queue, state, Self.deleteEveryOutput)
        try queue.close()
        journal.replaceSubrange(0..<8, with: [UInt8](repeating: 0, count: 8))
        try journal.write(to: site.url("state.sqlite-journal"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(try outputRows(site) == rows)
    }

    /// The state is stamped Derive's (`PRAGMA application_id`) when made, and a state from
    /// before the stamp gets it at its next build.
    @Test func theStateIsStampedDerivesAndAnOlderStateGetsTheStamp() throws {
        let site = try site()
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        func stamp() -> Data? { bytes(site, "state.sqlite").map { $0.subdata(in: 68..<72) } }
        #expect(stamp() == Data("DrSt".utf8))
        let queue = try DatabaseQueue(path: site.url("state.sqlite").path, configuration: .patientTest)
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA application_id = 0") }
        try queue.close()
        #expect(stamp() == Data(count: 4))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(stamp() == Data("DrSt".utf8))
    }
}

/// Issue 9, 2: with `state: .` a FIFO (or a symbolic link, or any file that is not a regular
/// one) at `noop-witness`, `noop-witness.inputs` or `build.lock` was deleted or replaced by
/// build and clean, although Derive writes only regular files there.
@Suite(.ownThreads, .serialized) struct StateFileKindsIssue9Tests {
    typealias Site = SiteRound11Tests.Site

    enum Kind: String, CaseIterable, Sendable { case fifo = "a FIFO", link = "a symbolic link" }

    @Test(arguments: ["noop-witness", "noop-witness.inputs", "build.lock"], Kind.allCases)
    func aFileThatIsNotRegularAtAStateFileNameIsLeftAndNamed(_ name: String, _ kind: Kind) throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: StateFolderOwnershipRound25Tests.manifest)
        defer { site.remove() }
        let runner = StateFolderOwnershipRound25Tests()
        #expect(try site.run(["build", "-q"]).status == 0)
        let path = site.url(name).path
        try? FileManager.default.removeItem(atPath: path)
        try Data("my notes\n".utf8).write(to: site.url("notes.txt"))
        switch kind {
        case .fifo: #expect(mkfifo(path, 0o600) == 0)
        case .link: #expect(symlink("notes.txt", path) == 0)
        }
        // Something to build, so the build would write its witness.
        try FileManager.default.removeItem(at: site.url("src/a.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: site.url("src/a.jpg"))
        for command in ["build", "clean"] {
            let result = try #require(try runner.run(site, [command], seconds: 30), "derive \(command) hung on \(kind.rawValue) at \(name)")
            #expect(result.status != 0, "\(command): \(said(result))")
            #expect(result.stderr.contains(name + " is " + kind.rawValue), "\(command): \(result.stderr)")
            var info = stat()
            #expect(lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == (kind == .fifo ? S_IFIFO : S_IFLNK), "\(command) removed or replaced it")
            #expect(FileManager.default.contents(atPath: site.url("notes.txt").path) == Data("my notes\n".utf8))
        }
        // Moved away, builds go on.
        try FileManager.default.removeItem(atPath: path)
        let again = try site.run(["build"])
        #expect(again.status == 0, "\(said(again))")
    }
}

/// Issue 9, 3: `clean` calls an empty `clock-stamp` with a second name the user's (a hard
/// link to a file of theirs) and keeps it, but `build` set its times as its own clock stamp.
@Suite(.ownThreads, .serialized) struct ClockStampLinksIssue9Tests {
    typealias Site = SiteRound11Tests.Site

    @Test func aHardLinkedEmptyClockStampIsNotTouchedByAnyCommand() throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: StateFolderOwnershipRound25Tests.manifest)
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let stamp = site.url("clock-stamp").path
        try FileManager.default.removeItem(atPath: stamp)
        let mine = site.url("my-empty-marker").path
        #expect(FileManager.default.createFile(atPath: mine, contents: Data()))
        var old = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, mine, &old, 0) == 0)
        #expect(link(mine, stamp) == 0)
        func times() -> (Int, Int) {
            var info = stat()
            _ = lstat(mine, &info)
            return (info.st_mtim.tv_sec, info.st_atim.tv_sec)
        }
        // Something to build.
        try FileManager.default.removeItem(at: site.url("src/a.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: site.url("src/a.jpg"))
        for command in ["plan", "build", "check", "build", "clean"] {
            let result = try site.run([command])
            #expect(result.status == 0, "\(command): \(result.stderr)")
            #expect(times() == (1_000_000_000, 1_000_000_000), "\(command) set the times of a hard-linked clock-stamp")
        }
        var info = stat()
        #expect(lstat(stamp, &info) == 0 && info.st_nlink == 2, "clean removed it")
    }
}

/// Issue 9, 4: a `state.sqlite` that is a symbolic link was followed (to another project's
/// state, or a user's database), and so was a link at a journal's name. Refused, naming it,
/// before SQLite opens anything, by every command, the link and what it leads to untouched.
@Suite(.ownThreads, .serialized) struct StateLinksIssue9Tests {
    typealias Site = SiteRound11Tests.Site

    @Test(arguments: ["state.sqlite", "state.sqlite-journal", "state.sqlite-wal"])
    func aSymbolicLinkAtTheDatabaseOrASideFileIsRefused(_ name: String) throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: StateFolderOwnershipRound25Tests.manifest)
        defer { site.remove() }
        // Another project's state (built), which the link leads to.
        let other = try Site(["src/a.jpg": "portrait.jpg"], manifest: StateFolderOwnershipRound25Tests.manifest)
        defer { other.remove() }
        #expect(try other.run(["build", "-q"]).status == 0)
        let target = other.url("state.sqlite")
        if name == "state.sqlite" {
            #expect(symlink(target.path, site.url(name).path) == 0)
        } else {
            #expect(try site.run(["build", "-q"]).status == 0)
            #expect(symlink(other.url("notes.txt").path, site.url(name).path) == 0)
            try Data("my notes\n".utf8).write(to: other.url("notes.txt"))
        }
        let before = try Data(contentsOf: target)
        for command in ["build", "plan", "check", "clean"] {
            let result = try site.run([command])
            #expect(result.status != 0, "\(command): \(result.stderr)")
            #expect(result.stderr.contains(name + " is a symbolic link"), "\(command): \(result.stderr)")
            var info = stat()
            #expect(lstat(site.url(name).path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK, "\(command) removed the link")
            #expect(try Data(contentsOf: target) == before, "\(command) changed the state the link leads to")
            #expect(!other.exists("state.sqlite-journal"))
            if name != "state.sqlite" { #expect(FileManager.default.contents(atPath: other.url("notes.txt").path) == Data("my notes\n".utf8)) }
        }
    }
}
