import Crypto
import Confinement
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 13 on `derive serve` (issue #12): an earlier serve's database, whose records are
/// still in its write-ahead log, is carried on (N1), serve checkpoints at its stop so the main
/// file holds the records (N4), and the state folder's lock survives a removed serve.lock (N2).
@Suite(.ownThreads) struct AttackThirteenTests {
    static func scratch() throws -> URL {
        let folder = (try ScratchFolder.make("derive-attack13"))
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("state"), withIntermediateDirectories: true)
        return folder
    }

    /// Rows of `object_records` in the main file alone (its log ignored), nil without the table.
    static func recordsInMainFile(_ path: String) -> Int? {
        guard let queue = try? DatabaseQueue(path: "file:\(path)?immutable=1", configuration: .patientTest) else { return nil }
        return try? queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM object_records") }
    }

    // MARK: N1. An earlier serve's database with a pending log is carried on.

    @Test func anEarlierServesDatabaseWithAPendingLogIsCarriedOn() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        let other = folder.appendingPathComponent("earlier.db").path
        // What an earlier serve left at its stop: no stamp, serve's tables only in the log.
        let writer = try DatabaseQueue(path: other, configuration: .patientTest)
        try writer.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            try db.execute(sql: """
                CREATE TABLE object_records (bucket TEXT NOT NULL, key BLOB NOT NULL, device INTEGER NOT NULL, inode INTEGER NOT NULL,
                    size INTEGER NOT NULL, modified INTEGER NOT NULL, etag TEXT NOT NULL, last_modified INTEGER NOT NULL, headers TEXT NOT NULL,
                    PRIMARY KEY (bucket, key, device, inode, size, modified));
                INSERT INTO object_records VALUES ('prw', x'61', 1, 2, 3, 4, '"e"', 5, '{}');
                """)
        }
        try FileManager.default.copyItem(atPath: other, toPath: path)
        try FileManager.default.copyItem(atPath: other + "-wal", toPath: path + "-wal")
        #expect(Self.recordsInMainFile(path) == nil)
        let store = try ObjectMetadataStore(path: path)
        let count = try store.queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM object_records") }
        #expect(count == 1)
        // Stamped, and the records are in the main file now.
        let checked = try MetadataDatabaseOwnership.open(path)
        DatabasePins.release(checked.file)
        #expect(checked.application == MetadataDatabaseOwnership.applicationID)
        #expect(Self.recordsInMainFile(path) == 1)
        withExtendedLifetime((store, writer)) {}
    }

    /// A foreign table or stamp only in the log is still refused, and nothing is changed.
    @Test func aForeignStampInALogIsRefusedUnchanged() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        let other = folder.appendingPathComponent("other.db").path
        let writer = try DatabaseQueue(path: other, configuration: .patientTest)
        try writer.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            try db.execute(sql: "PRAGMA application_id = 1234")
        }
        try FileManager.default.copyItem(atPath: other, toPath: path)
        try FileManager.default.copyItem(atPath: other + "-wal", toPath: path + "-wal")
        let main = FileManager.default.contents(atPath: path), log = FileManager.default.contents(atPath: path + "-wal")
        #expect((log?.count ?? 0) > 0)
        do {
            _ = try ObjectMetadataStore(path: path)
            Issue.record("a foreign stamp in a log was opened")
        } catch {
            #expect("\(error)".contains("application_id 1234") && "\(error)".contains("write-ahead log"), "\(error)")
        }
        #expect(FileManager.default.contents(atPath: path) == main && FileManager.default.contents(atPath: path + "-wal") == log)
        withExtendedLifetime(writer) {}
    }

    // MARK: N4. At its stop serve checkpoints: the main file holds the records.

    @Test func aClosedStoreLeavesItsRecordsInTheMainFile() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        let store = try ObjectMetadataStore(path: path)
        try store.write(bucket: "prw", key: try ObjectKey("a"), identity: ObjectFileIdentity(device: 1, inode: 2, size: 3, modified: 4),
                        metadata: ObjectMetadata(headers: ["x-oss-meta-a": "1"], etag: "\"e\"", lastModified: 5))
        store.checkpoint()
        #expect(Self.recordsInMainFile(path) == 1)
        var info = stat()
        #expect(lstat(path + "-wal", &info) != 0 || info.st_size == 0)
        withExtendedLifetime(store) {}
    }

    // MARK: N2. A removed serve.lock does not let a second serve or clean in.

    @Test func aRemovedServeLockStillKeepsOthersOut() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let state = folder.appendingPathComponent("state").path
        let serving = try ServeLock(stateFolder: state)
        try FileManager.default.createDirectory(atPath: state + "/" + StateFiles.serveUploads + "/u1", withIntermediateDirectories: true)
        _ = unlink(state + "/" + StateFiles.serveLock)
        do {
            _ = try ServeLock(stateFolder: state)
            Issue.record("a second serve started after serve.lock was removed")
        } catch {
            #expect("\(error)".contains("another process holds this state folder's lock socket"), "\(error)")
        }
        let left = ServeStateCleanup.remove(in: state, md5: { Array(Insecure.MD5.hash(data: $0)) })
        #expect(left.contains { $0.contains("a derive serve is running") }, "\(left)")
        #expect(FileManager.default.fileExists(atPath: state + "/" + StateFiles.serveUploads + "/u1"))
        withExtendedLifetime(serving) {}
    }
}
