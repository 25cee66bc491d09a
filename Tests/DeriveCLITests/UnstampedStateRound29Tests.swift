import Foundation
import GRDB
import Testing
import TestSupport

/// Attack round 29's finding 4: an unstamped SQLite database (`application_id` 0) at
/// `state.sqlite` whose tables merely share Derive's generic names (`files`, `outputs`) was
/// taken for an older Derive state: stamped "DrSt", given `grdb_migrations`, migrated, and every
/// command then failed with a raw SQLite error. Such a database is Derive's only when its schema
/// is exactly what Derive's own migrations (those it records) made; anything else is refused,
/// unchanged, naming the file and the fix, while an older Derive's unstamped state still opens.
@Suite(.ownThreads, .serialized) struct UnstampedStateRound29Tests {
    typealias Site = SiteRound11Tests.Site

    func bytes(_ site: Site, _ path: String) -> Data? { FileManager.default.contents(atPath: site.url(path).path) }

    /// Another application's unstamped databases, as the report made them.
    static let applications: [String: [String]] = [
        "a GRDB application with a files table": [
            "CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)", "INSERT INTO grdb_migrations VALUES ('v1')",
            "CREATE TABLE files (path TEXT PRIMARY KEY NOT NULL, note TEXT)", "INSERT INTO files VALUES ('doc1', 'precious')",
        ],
        "a lone outputs table": ["CREATE TABLE outputs (path, note)", "INSERT INTO outputs VALUES ('doc1', 'precious')"],
        "Derive's two first tables without a migration record": [
            "CREATE TABLE files (path TEXT PRIMARY KEY NOT NULL, note TEXT)", "CREATE TABLE outputs (path, note)",
        ],
    ]

    @Test(arguments: applications.keys.sorted())
    func anUnstampedDatabaseWithDerivesTableNamesIsRefusedUnchanged(application: String) throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: StateRound28Tests.manifest(state: "appdata"))
        defer { site.remove() }
        try FileManager.default.createDirectory(at: site.url("appdata"), withIntermediateDirectories: true)
        let path = "appdata/state.sqlite"
        let queue = try DatabaseQueue(path: site.url(path).path, configuration: .patientTest)
        try queue.writeWithoutTransaction { db in
            for statement in Self.applications[application]! { try db.execute(sql: statement) }
        }
        try queue.close()
        let theirs = try #require(bytes(site, path))
        for command in ["build", "plan", "check", "clean", "build"] {
            let result = try site.run([command])
            #expect(result.status != 0, "\(application): \(command): \(said(result))")
            #expect(result.stderr.contains(site.url(path).path) && result.stderr.contains("not Derive's build state"), "\(application): \(command): \(result.stderr)")
            #expect(result.stderr.contains("set 'state:'"), "\(application): \(command): \(result.stderr)")
            #expect(!result.stderr.contains("SQLite error"), "\(application): \(command): \(result.stderr)")
            #expect(bytes(site, path) == theirs, "\(application): \(command) changed their database")
        }
        #expect(!site.exists("out/t/a.jpg"))
        let names = try FileManager.default.contentsOfDirectory(atPath: site.url("appdata").path)
        #expect(names == ["state.sqlite"], "\(names)")
    }

    /// A state an older Derive made (before the stamp, perhaps before its latest migration)
    /// still opens: it is stamped and migrated, and the build answers from it.
    @Test(arguments: [false, true])
    func anOlderDerivesUnstampedStateStillOpens(beforeTheLastMigration: Bool) throws {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: StateRound28Tests.manifest(state: "mydata"))
        defer { site.remove() }
        #expect(try site.run(["build"]).status == 0)
        let path = site.url("mydata/state.sqlite").path
        let queue = try DatabaseQueue(path: path, configuration: .patientTest)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA application_id = 0")
            if beforeTheLastMigration {
                // The last migrations undone (v11 to v14 came after this test was written).
                for column in ["device", "inode", "birth", "output", "folder"] {
                    try db.execute(sql: "ALTER TABLE pendingWrites DROP COLUMN \(column)")
                }
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v14-pending-files'")
                try db.execute(sql: "DROP TABLE lockFiles")
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v13-lock-files'")
                try db.execute(sql: "DROP TABLE sourceDominants")
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v12-dominant-colours'")
                try db.execute(sql: "ALTER TABLE owner DROP COLUMN place")
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v11-owner-place'")
                try db.execute(sql: "DROP TABLE leftFiles")
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v10-left'")
            }
        }
        try queue.close()
        let build = try site.run(["build"])
        #expect(build.status == 0 && String(decoding: build.stdout, as: UTF8.self).contains("up to date"), "\(said(build))")
        let stamp = try DatabaseQueue(path: path, configuration: .patientTest).read { db in try Int32.fetchOne(db, sql: "PRAGMA application_id") }
        #expect(stamp == 0x4472_5374)
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }
}
