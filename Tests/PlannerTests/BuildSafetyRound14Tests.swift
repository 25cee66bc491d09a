import Foundation
import GRDB
import Testing
import TestSupport
import Builder
import Manifest
import Planner

/// Attack 14's DF: an output renamed into place whose record then failed (a full disk) is never
/// called a user's file by the next build. Since attack 20's D2 the build that could not record
/// it removes it at once (it is the very file it wrote, with those bytes), so no later build
/// meets an unrecorded file there; a build killed before that removal leaves its pending note,
/// which still makes the file Derive's.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound14Tests {
    /// Makes every write of an output record fail, as SQLite does on a full disk.
    static func fillDisk(_ store: StateStore) throws {
        try store.queue.write { db in
            try db.execute(sql: "CREATE TRIGGER IF NOT EXISTS fullInsert BEFORE INSERT ON outputs BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END")
            try db.execute(sql: "CREATE TRIGGER IF NOT EXISTS fullUpdate BEFORE UPDATE ON outputs BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END")
        }
    }

    static func freeDisk(_ store: StateStore) throws {
        try store.queue.write { db in
            try db.execute(sql: "DROP TRIGGER IF EXISTS fullInsert")
            try db.execute(sql: "DROP TRIGGER IF EXISTS fullUpdate")
        }
    }

    @Test(arguments: [false, true])
    func anOutputRenamedButNotRecordedIsStillDerives(rebuild: Bool) throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        if rebuild {
            try fixture.build()
            try fixture.setManifest(photosAndSite.replacingOccurrences(of: "w_200", with: "w_300"))
        }
        let target = fixture.path("site/a.thumb.jpg")
        // The move into place succeeds; the record after it fails.
        fixture.disk.beforeWrite = { path in if path == target { try? Self.fillDisk(fixture.store) } }
        let first = try? fixture.build()
        fixture.disk.beforeWrite = nil
        try Self.freeDisk(fixture.store)
        #expect(first?.1.failed.contains { $0.output == "site/a.thumb.jpg" } ?? true, "\(String(describing: first?.1.failed))")
        #expect(first?.1.failed.contains { $0.message.contains("could not be recorded in the build state") && $0.message.contains("the file just written was removed") } ?? true,
                "\(String(describing: first?.1.failed))")
        #expect(!fixture.disk.exists(target), "the output written but not recorded was left in place")
        let plan = try fixture.plan()
        #expect(!plan.errors.contains { $0.message.contains("site/a.thumb.jpg") }, "Derive's own output was called foreign: \(plan.errors)")
        let (_, report) = try fixture.build()
        #expect(report.failed.isEmpty, "\(report.failed)")
        #expect(try fixture.plan().work.isEmpty)
    }
}
