import Foundation
import GRDB
import Planner
import Testing
import TestSupport

/// The seals on the build state's records (attack 18's S1): every column joins a record's seal,
/// and what verifying them costs a plan's reads.
@Suite(.ownThreads, .serialized) struct StateSealTests {
    static let engine = String(repeating: "libvips 8.14.1 jpeg q85 webp 6 png 6; ", count: 8)

    static func record(_ index: Int, folder: String) -> OutputRecord {
        OutputRecord(path: "out/s\(index).png", rule: "small", source: "src/s\(index).png", style: nil, matrix: "", engine: engine,
                     pipeline: "image/resize,w_8", sourceDigest: String(repeating: "a", count: 64), dependencies: "", encoder: "q85",
                     actionKey: String(repeating: "b", count: 64), acl: "default", outputDigest: String(repeating: "c", count: 64),
                     size: 100, width: 8, height: 8, format: "png", builtAt: 1, folder: folder)
    }

    /// A project folder with a state of this user's holding `count` output records (sealed as a
    /// build writes them), and the path of its manifest (the state's owner).
    static func state(_ count: Int) throws -> (root: String, folder: String, owner: String) {
        _ = Project.userStateHome
        let root = (try ScratchFolder.make("derive-seal")).path
        try FileManager.default.createDirectory(atPath: root + "/out", withIntermediateDirectories: true)
        let owner = root + "/derive.yaml"
        let store = try StateStore(folder: root + "/.derive/derive", owner: owner)
        try store.write { db in
            for index in 0..<count { try record(index, folder: root + "/out").insert(db) }
        }
        return (root, root + "/.derive/derive", owner)
    }

    /// A column added to a sealed table later joins the seal with no list to update: a record
    /// whose new column is changed by hand no longer verifies; nor does one whose `adopted` mark
    /// (a column added after the seal was designed) is cleared by hand.
    @Test func aColumnAddedLaterJoinsTheSeal() throws {
        let (root, folder, owner) = try Self.state(0)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let raw = try DatabaseQueue(path: folder + "/state.sqlite", configuration: .patientTest)
        try raw.write { db in try db.execute(sql: "ALTER TABLE outputs ADD COLUMN laterMark INTEGER NOT NULL DEFAULT 0") }
        try raw.close()
        let store = try StateStore(folder: folder, owner: owner)
        try store.write { db in
            for index in 0..<3 {
                var record = Self.record(index, folder: root + "/out")
                record.adopted = index == 2
                try record.insert(db)
            }
        }
        #expect(try store.allOutputs().count == 3)
        let edit = try DatabaseQueue(path: folder + "/state.sqlite", configuration: .patientTest)
        try edit.write { db in
            try db.execute(sql: "UPDATE outputs SET laterMark = 1 WHERE path = 'out/s1.png'")
            try db.execute(sql: "UPDATE outputs SET adopted = 0 WHERE path = 'out/s2.png'")
        }
        try edit.close()
        let again = try StateStore(folder: folder, owner: owner)
        #expect(try again.allOutputs().keys.sorted() == ["out/s0.png"])
        #expect(try again.ignoredOutputs()["out/s1.png"] == StateStore.unsealed)
        #expect(try again.ignoredOutputs()["out/s2.png"] == StateStore.unsealed)
    }

    /// Attack 19's V3: a row planted through a write-ahead log (or by hand) in the index's
    /// colour or placeholder cache reached `index.json` and was called up to date. Both caches
    /// are sealed: a planted or edited row is not read.
    @Test func theIndexCachesAreSealed() throws {
        let (root, folder, owner) = try Self.state(0)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try StateStore(folder: folder, owner: owner)
        try store.saveSourceColour(digest: "d1", colour: "#112233")
        try store.saveSourceColour(digest: "d2", colour: "#445566")
        try store.savePlaceholder(digest: "d1", image: "data:image/webp;base64,AAAA", thumbhash: "AAAA")
        #expect(try store.sourceColours() == ["d1": "#112233", "d2": "#445566"])
        let raw = try DatabaseQueue(path: folder + "/state.sqlite", configuration: .patientTest)
        try raw.write { db in
            try db.execute(sql: "UPDATE sourceColours SET colour = '#ff0000' WHERE digest = 'd1'")
            try db.execute(sql: "INSERT INTO sourceColours (digest, colour) VALUES ('d3', '#ff0000')")
            try db.execute(sql: "UPDATE placeholders SET image = 'data:image/webp;base64,BBBB' WHERE digest = 'd1'")
            try db.execute(sql: "INSERT INTO placeholders (digest, image, thumbhash) VALUES ('d4', 'data:x', 'x')")
        }
        try raw.close()
        let again = try StateStore(folder: folder, owner: owner)
        #expect(try again.sourceColours() == ["d2": "#445566"])
        #expect(try again.placeholders().isEmpty)
    }

    /// Round 21's N2: the files builds left in place are recorded in the state too, sealed, by
    /// place (N5), with their digest and since when they are gone (N4). A row written or edited
    /// outside Derive is not read; saving the same records writes nothing.
    @Test func leftFilesAreSealed() throws {
        let (root, folder, owner) = try Self.state(0)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try StateStore(folder: folder, owner: owner)
        let lines = [LockFile.Left(path: "www/internal/a.webp", acl: "private", why: LockFile.Left.notDerives, file: "site/internal/a.webp", digest: "d1"),
                     LockFile.Left(path: "site/st/b.webp", acl: "private", why: LockFile.Left.lockOnly, gone: true, goneSince: 1_700_000_000)]
        try store.saveLeftFiles(lines)
        let read = try store.leftFiles()
        #expect(read.keys.sorted() == ["site/internal/a.webp", "site/st/b.webp"])
        #expect(read["site/internal/a.webp"]?.path == "www/internal/a.webp" && read["site/internal/a.webp"]?.digest == "d1")
        #expect(read["site/st/b.webp"]?.isGone == true && read["site/st/b.webp"]?.goneSince == 1_700_000_000)
        let changes = try store.queue.read { $0.totalChangesCount }
        try store.saveLeftFiles(lines)
        #expect(try store.queue.read { $0.totalChangesCount } == changes, "the same records: nothing written")
        let raw = try DatabaseQueue(path: folder + "/state.sqlite", configuration: .patientTest)
        try raw.write { db in
            try db.execute(sql: "UPDATE leftFiles SET acl = 'public-read' WHERE place = 'site/st/b.webp'")
            try db.execute(sql: "INSERT INTO leftFiles (place, path, acl, why) VALUES ('site/x.webp', 'site/x.webp', 'private', 'planted')")
        }
        try raw.close()
        let again = try StateStore(folder: folder, owner: owner)
        #expect(try again.leftFiles().keys.sorted() == ["site/internal/a.webp"])
    }

    /// A store without the user's secret (no owner) takes every record as it is; with it, a record
    /// written outside Derive (no seal) is ignored, one written by `write` verifies.
    @Test func onlyRecordsWrittenThroughTheStoreVerify() throws {
        let (root, folder, owner) = try Self.state(3)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let raw = try DatabaseQueue(path: folder + "/state.sqlite", configuration: .patientTest)
        try raw.write { db in try Self.record(9, folder: root + "/out").insert(db) }
        try raw.close()
        let store = try StateStore(folder: folder, owner: owner)
        #expect(try store.allOutputs().keys.sorted() == ["out/s0.png", "out/s1.png", "out/s2.png"])
        #expect(try store.ignoredOutputs().keys.sorted() == ["out/s9.png"])
        #expect(try StateStore(folder: folder).allOutputs().count == 4)
    }

    /// A trigger planted in a state (with the user's mark copied) would add rows whenever Derive
    /// writes, which Derive would then seal as its own: Derive makes no trigger, and drops any.
    @Test func aPlantedTriggerCannotGetRowsSealed() throws {
        let (root, folder, owner) = try Self.state(1)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let raw = try DatabaseQueue(path: folder + "/state.sqlite", configuration: .patientTest)
        try raw.write { db in
            try db.execute(sql: """
                CREATE TRIGGER planted AFTER INSERT ON files BEGIN
                  INSERT OR REPLACE INTO outputs (path, rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder,
                                                  actionKey, acl, outputDigest, size, width, height, format, builtAt, folder)
                    SELECT 'out/notes.txt', rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder,
                           actionKey, acl, outputDigest, size, width, height, format, builtAt, folder FROM outputs LIMIT 1;
                END
                """)
        }
        try raw.close()
        let store = try StateStore(folder: folder, owner: owner)
        try store.saveFiles([FileRecord(path: root + "/src/a.png", size: 1, mtime: 1, inode: 1, digest: "d", format: "png", recorded: 1)])
        let again = try StateStore(folder: folder, owner: owner)
        #expect(try again.allOutputs()["out/notes.txt"] == nil)
    }

    /// Issue 15: a build reads the outputs table up to four times (the folders it may write to,
    /// the plan, the kept records, the witness); each row's seal is verified once while the table
    /// is unchanged. Any change is read and verified again: a row written through the store (it
    /// joins), a row edited by another program (another connection: SQLite's data_version), and
    /// a row edited on the store's own connection outside `write` (unsealed): neither of the last
    /// two is ever trusted on its earlier reading.
    @Test func eachOutputRowIsVerifiedOnceWhileTheTableIsUnchanged() throws {
        let (root, folder, owner) = try Self.state(50)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try StateStore(folder: folder, owner: owner)
        let seals = try #require(store.seals)
        #expect(try store.allOutputs().count == 50)
        _ = try store.recordedFolders()
        #expect(try store.ignoredOutputs().isEmpty)
        #expect(try store.allOutputs().count == 50)
        #expect(seals.rowsVerified == 50, "\(seals.rowsVerified) seals verified for 50 rows read four times")
        // Through the store: the new row is read and verified (only it: the memo is patched).
        try store.recordOutput(Self.record(50, folder: root + "/out"), file: nil)
        #expect(try store.allOutputs().count == 51)
        #expect(seals.rowsVerified == 51)
        // By another program: the edited row is read again, and its seal fails.
        let other = try DatabaseQueue(path: folder + "/state.sqlite", configuration: .patientTest)
        try other.write { db in try db.execute(sql: "UPDATE outputs SET outputDigest = ? WHERE path = 'out/s1.png'", arguments: [String(repeating: "d", count: 64)]) }
        try other.close()
        #expect(try store.allOutputs()["out/s1.png"] == nil)
        #expect(try store.ignoredOutputs()["out/s1.png"] == StateStore.unsealed)
        // On the store's own connection, outside `write`: unsealed, and not trusted.
        try store.queue.write { db in try db.execute(sql: "UPDATE outputs SET acl = 'public-read' WHERE path = 'out/s2.png'") }
        #expect(try store.allOutputs()["out/s2.png"] == nil)
        try store.queue.write { db in try db.execute(sql: "DELETE FROM outputs WHERE path = 'out/s3.png'") }
        #expect(try store.allOutputs()["out/s3.png"] == nil)
        #expect(try store.recordedFolders() == [root + "/out"])
        #expect(try store.allOutputs().count == 48)
    }

    /// What verifying the seals costs the reads a plan makes (`allOutputs` and `ignoredOutputs`),
    /// at 2 000 and 40 000 records: the same database read with the user's secret (every seal
    /// verified) and without (no owner: no seals). Printed; the bound is only a runaway's (a
    /// seal recomputed per column, a query per row), never a guess at this machine's speed.
    @Test(arguments: [2_000, 40_000]) func theCostOfVerifyingSeals(records: Int) throws {
        let (root, folder, owner) = try Self.state(records)
        defer { try? FileManager.default.removeItem(atPath: root) }
        func best(_ store: StateStore) throws -> Double {
            var times: [Double] = []
            for _ in 0..<3 {
                let start = DispatchTime.now().uptimeNanoseconds
                let outputs = try store.allOutputs()
                _ = try store.ignoredOutputs()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                #expect(outputs.count == records)
            }
            return times.min()!
        }
        let sealed = try best(try StateStore(folder: folder, owner: owner))
        let plain = try best(try StateStore(folder: folder))
        print("seal cost: \(records) records: allOutputs+ignoredOutputs \(String(format: "%.1f", sealed)) ms with seals verified, \(String(format: "%.1f", plain)) ms without (\(String(format: "%.2f", sealed / plain))x)")
        #expect(sealed < plain * 20 + 1000)
    }
}
