import Confinement
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// An SQLite database at `state.sqlite` that no application claims (`application_id` 0) is
/// Derive's only when it is a state an older Derive made before the stamp: its tables, and each
/// table's columns, exactly those Derive's own migrations make, up to the last one it records in
/// `grdb_migrations` (attack 29's finding 4: another application's database whose tables were
/// merely named `files` or `outputs` was stamped, migrated, and then failed every command with a
/// raw SQLite error). A database with no tables at all (SQLite's defaults, a first commit cut
/// short) holds nothing to lose and is still taken.
enum UnstampedState {
    /// Throws, before SQLite opens the database for writing, when `database` is unstamped and its
    /// schema is not an older Derive's state. Nothing when it is absent, not SQLite, stamped
    /// (another application's stamp is refused by `checkDatabaseFiles`), or cannot be read.
    static func check(_ database: String) throws {
        let fd = open(database, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return }
        let header = SQLiteFiles.header(ofDatabase: fd)
        close(fd)
        guard header?.applicationID == 0 else { return }
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: database, configuration: configuration), let found = try? schema(queue) else { return }
        let recorded = found["grdb_migrations"] == ["identifier"]
            ? try? queue.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
            : nil
        try? queue.close()
        guard !found.isEmpty, let why = difference(found, recorded: recorded) else { return }
        let folder = (database as NSString).deletingLastPathComponent
        throw PlanError(message: "\(database) is an SQLite database no application claims (application_id 0) and not a state an older Derive made "
            + "(\(why)), so it is not Derive's build state (Derive stamps its own \"DrSt\"): Derive opens, writes, moves and deletes nothing there; "
            + "move it (with any state.sqlite-journal beside it) out of \(folder) if it is yours, or set 'state:' in the manifest to a folder of its own")
    }

    /// Why the tables `found` (and the migrations `recorded` in `grdb_migrations`, nil when it
    /// cannot be read) are not what Derive's migrations make; nil when they are exactly that.
    static func difference(_ found: [String: [String]], recorded: [String]?) -> String? {
        guard found["grdb_migrations"] != nil else {
            return "it holds \(names(found.keys)) and no grdb_migrations table, where Derive records its migrations"
        }
        let all = StateStore.migrator.migrations
        guard let recorded else { return "its grdb_migrations is not Derive's record of migrations" }
        guard recorded.count <= all.count, Set(recorded) == Set(all.prefix(recorded.count)) else {
            return "its grdb_migrations records \(names(recorded)), not Derive's migrations (\(all.joined(separator: ", ")))"
        }
        let expected: [String: [String]]
        do {
            let made = try DatabaseQueue()
            if let last = all.prefix(recorded.count).last {
                try StateStore.migrator.migrate(made, upTo: last)
            } else {
                try made.writeWithoutTransaction { db in try db.execute(sql: "CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)") }
            }
            expected = try schema(made)
        } catch {
            return "Derive's own schema could not be made to compare it with: \(error)"
        }
        for table in Set(found.keys).union(expected.keys).sorted() where found[table] != expected[table] {
            guard let theirs = found[table] else { return "it lacks Derive's table \(table)" }
            guard let ours = expected[table] else { return "it holds a table \(table) that Derive's migrations do not make" }
            return "its table \(table) has the columns \(theirs.joined(separator: ", ")), not Derive's \(ours.joined(separator: ", "))"
        }
        return nil
    }

    /// The tables and views of the database (SQLite's own left out), each with its columns in order.
    static func schema(_ queue: DatabaseQueue) throws -> [String: [String]] {
        try queue.read { db in
            var result: [String: [String]] = [:]
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")
            for table in tables {
                result[table] = try Row.fetchAll(db, sql: "PRAGMA table_info(\(table.quotedDatabaseIdentifier))").map { $0["name"] as String }
            }
            return result
        }
    }

    static func names(_ list: some Sequence<String>) -> String {
        let sorted = list.sorted()
        return sorted.isEmpty ? "nothing" : sorted.joined(separator: ", ")
    }
}
