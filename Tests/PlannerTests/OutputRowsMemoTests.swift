import Foundation
import GRDB
@testable import Planner
import Testing
import TestSupport

/// Issue 15: the outputs table is read and verified once per process; after this connection's own
/// writes only the rows they touched are read and verified again (the memo is patched), and the
/// patched memo always equals a reading of the whole table.
@Suite(.ownThreads, .serialized) struct OutputRowsMemoTests {
    /// A build records a few outputs and then reads the table for its reconcile and witness: only
    /// the rows it wrote are verified again, not every row (the whole table was, before).
    @Test func aWriteThroughTheStoreVerifiesOnlyTheRowsItChanged() throws {
        let (root, folder, owner) = try StateSealTests.state(200)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try StateStore(folder: folder, owner: owner)
        let seals = try #require(store.seals)
        #expect(try store.allOutputs().count == 200)
        let read = seals.rowsVerified(in: "outputs")
        #expect(read == 200)
        try store.recordOutput(StateSealTests.record(200, folder: root + "/out"), file: nil)
        var edited = StateSealTests.record(5, folder: root + "/out")
        edited.acl = "private"
        try store.updateOutput(edited)
        try store.removeOutputs(["out/s7.png"])
        let outputs = try store.allOutputs()
        #expect(seals.rowsVerified(in: "outputs") - read <= 3, "\(seals.rowsVerified(in: "outputs") - read) rows verified again after 3 were written")
        #expect(outputs.count == 200)
        #expect(outputs["out/s5.png"]?.acl == "private")
        #expect(outputs["out/s7.png"] == nil)
        #expect(outputs["out/s200.png"] != nil)
        // What another process reads from the file.
        #expect(try StateStore(folder: folder, owner: owner).allOutputs() == outputs)
    }

    enum Step: CaseIterable {
        case record, rerecord, update, replaceSealed, replaceRaw, updateRaw, insertRaw, remove, deleteRaw, deleteMany, rollback, otherConnection,
             trigger
    }

    /// Random sequences of writes, replaces (whose deletions SQLite's update hook never reports),
    /// deletes, rows written outside `write` (unsealed), rollbacks and writes by another
    /// connection: after each step the memo (patched, or read whole) equals a fresh reading of
    /// the whole table, and it is read whole exactly when it must be (another connection, a
    /// rollback, a schema change).
    @Test(arguments: [1, 2, 3, 4]) func thePatchedMemoEqualsAFreshReading(seed: UInt64) throws {
        let (root, folder, owner) = try StateSealTests.state(40)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try StateStore(folder: folder, owner: owner)
        var random = SplitMix(seed: seed)
        var next = 40
        func some() -> String { "out/s\(random.below(next)).png" }
        func record(_ path: String, _ digest: Character) -> OutputRecord {
            var record = StateSealTests.record(0, folder: root + "/out")
            record.path = path; record.source = "src/" + path.dropFirst(4); record.outputDigest = String(repeating: digest, count: 64)
            return record
        }
        _ = try store.outputRowsForTesting()
        var patched = 0
        for round in 0..<120 {
            let step = Step.allCases[random.below(Step.allCases.count)]
            var whole = false
            switch step {
            case .record:
                try store.recordOutput(record("out/s\(next).png", "e"), file: nil); next += 1
            case .rerecord:
                try store.recordOutput(record(some(), "f"), file: nil)
            case .update:
                guard var kept = try store.allOutputs()[some()] else { continue }
                kept.acl = kept.acl == "private" ? "public-read" : "private"
                try store.updateOutput(kept)
            case .replaceSealed:
                // A new rowid for an existing path: the old row's deletion is not reported.
                let path = some()
                try store.write { db in try record(path, "1").insert(db, onConflict: .replace) }
            case .replaceRaw:
                let path = some()
                try store.queue.write { db in try record(path, "2").insert(db, onConflict: .replace) }
            case .updateRaw:
                let path = some()
                try store.queue.write { db in try db.execute(sql: "UPDATE outputs SET acl = 'public-read' WHERE path = ?", arguments: [path]) }
            case .insertRaw:
                try store.queue.write { db in try record("out/s\(next).png", "3").insert(db) }; next += 1
            case .remove:
                try store.removeOutputs([some(), some()])
            case .deleteRaw:
                let path = some()
                try store.queue.write { db in try db.execute(sql: "DELETE FROM outputs WHERE path = ?", arguments: [path]) }
            case .deleteMany:
                try store.write { db in try db.execute(sql: "DELETE FROM outputs WHERE rowid % 7 = ?", arguments: [random.below(7)]) }
            case .rollback:
                struct Undo: Error {}
                let path = some()
                _ = try? store.write { (db: Database) throws -> Void in
                    try record(path, "4").insert(db, onConflict: .replace)
                    try record("out/s\(next).png", "4").insert(db)
                    throw Undo()
                }
                whole = true
            case .otherConnection:
                let path = some()
                let other = try DatabaseQueue(path: folder + "/state.sqlite", configuration: .patientTest)
                let added = record("out/s\(next).png", "5")
                next += 1
                try other.write { db in
                    try db.execute(sql: "UPDATE outputs SET outputDigest = ? WHERE path = ?", arguments: [String(repeating: "9", count: 64), path])
                    try added.insert(db)
                }
                try other.close()
                whole = true
            case .trigger:
                // Rows a trigger writes on this connection, a REPLACE among them.
                let path = some()
                try store.queue.write { db in
                    try db.execute(sql: "CREATE TEMP TRIGGER IF NOT EXISTS again AFTER INSERT ON pendingWrites BEGIN INSERT OR REPLACE INTO outputs SELECT * FROM outputs WHERE path = NEW.digest; END")
                }
                try store.addPendingWrite("/tmp/x\(round)", digest: path)
            }
            let (rows, afresh, readWhole) = try store.outputRowsForTesting()
            #expect(rows == afresh, "round \(round), \(step): the memo differs from the table")
            if whole { #expect(readWhole, "round \(round), \(step): must be read whole") }
            if !readWhole { patched += 1 }
            // Reads with nothing changed since hand out the memo as it is.
            #expect(try !store.outputRowsForTesting().readWhole)
        }
        #expect(patched > 60, "only \(patched) of 120 steps patched the memo")
    }

    /// A table Derive did not make, whose path is not unique: a REPLACE deletes nothing and two
    /// rows hold one path. The memo is read whole every time, and equals a fresh reading.
    @Test func aTableWithoutAUniquePathIsReadWhole() throws {
        let (root, folder, owner) = try StateSealTests.state(5)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let raw = try DatabaseQueue(path: folder + "/state.sqlite", configuration: .patientTest)
        try raw.write { db in
            try db.execute(sql: "CREATE TABLE copy AS SELECT * FROM outputs")
            try db.execute(sql: "DROP TABLE outputs")
            try db.execute(sql: "ALTER TABLE copy RENAME TO outputs")
        }
        try raw.close()
        let store = try StateStore(folder: folder, owner: owner)
        _ = try store.outputRowsForTesting()
        for round in 0..<6 {
            var record = StateSealTests.record(round % 3, folder: root + "/out")
            record.outputDigest = String(repeating: "\(round)", count: 64)
            try store.write { db in try record.insert(db, onConflict: .replace) }
            let (rows, afresh, _) = try store.outputRowsForTesting()
            #expect(rows == afresh, "round \(round)")
        }
    }

    /// Columns repeated from the previous row share its string (`RepeatedColumns`), taken only
    /// for the same bytes: a row whose rule, pipeline, matrix, style or folder is canonically
    /// equal to the previous row's but spelled with other bytes (NFC after NFD), or that differs
    /// in one column only, reads back byte for byte as a plain decoding of the table gives it.
    @Test func sharedColumnsKeepEachRowsBytes() throws {
        let (root, folder, owner) = try StateSealTests.state(0)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try StateStore(folder: folder, owner: owner)
        let spellings = ["caf\u{E9}", "cafe\u{301}", "caf\u{E9}-and-a-name-longer-than-fifteen-bytes", "cafe\u{301}-and-a-name-longer-than-fifteen-bytes"]
        var random = SplitMix(seed: 7)
        try store.write { db in
            for index in 0..<60 {
                var record = StateSealTests.record(index, folder: root + "/out")
                func some() -> String { spellings[random.below(spellings.count)] }
                if random.below(2) == 0 { record.rule = some() }
                if random.below(2) == 0 { record.pipeline = "image/" + some() }
                if random.below(2) == 0 { record.matrix = some() }
                switch random.below(3) { case 0: record.style = nil; case 1: record.style = some(); default: break }
                if random.below(3) == 0 { record.folder = root + "/out/" + some() }
                if random.below(3) == 0 { record.engine = some() }
                if random.below(4) == 0 { record.sourceDigest = String(repeating: "d", count: 64) }
                try record.insert(db)
            }
        }
        func bytes(_ record: OutputRecord) -> [[UInt8]] {
            [record.path, record.rule, record.source, record.style ?? "<nil>", record.matrix, record.engine, record.pipeline, record.sourceDigest,
             record.dependencies, record.encoder, record.actionKey, record.acl, record.outputDigest, record.format, record.folder].map { Array($0.utf8) }
        }
        let plain = try store.queue.read { db in try OutputRecord.fetchAll(db) }
        #expect(plain.count == 60)
        let read = try store.outputRowsForTesting().afresh.sealed
        #expect(read.count == 60)
        for record in plain {
            let shared = try #require(read[record.path])
            #expect(bytes(shared) == bytes(record), "\(record.path)")
            #expect(shared.size == record.size && shared.builtAt == record.builtAt && shared.adopted == record.adopted)
        }
        // Both spellings were written next to each other somewhere (the case the bytes decide).
        #expect(Set(plain.map { Array($0.rule.utf8) }).count > 2)
    }
}

extension SplitMix {
    mutating func below(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &self) }
}
