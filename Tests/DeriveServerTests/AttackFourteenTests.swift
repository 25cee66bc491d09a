import Crypto
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import ProcessLanguage
import Testing
import TestSupport
@testable import Confinement
@testable import DeriveServer

/// Attack 14 on `derive serve` (issue #12): a write whose metadata cannot be recorded (another
/// program holds the database's write lock) is refused and changes nothing (F1).
@Suite(.ownThreads) struct AttackFourteenTests {
    /// A fixture whose metadata writes wait 0.2 s for a lock, with `drop/o` holding `old`,
    /// `text/old` and `x-oss-meta-v: old`.
    static func fixture() throws -> ServiceFixture {
        let f = try ServiceFixture(metadataBusyTimeout: 0.2)
        let put = f.send("PUT", "drop", "o", headers: ["content-type": "text/old", "x-oss-meta-v": "old"], body: Data("old".utf8))
        #expect(put.status == 200, "\(put.text)")
        return f
    }

    /// Holds the write lock of `f`'s metadata database from another connection (as a `sqlite3`
    /// shell with `BEGIN IMMEDIATE` would) while `body` runs.
    static func whileLocked<T>(_ f: ServiceFixture, _ body: () throws -> T) throws -> T {
        let path = try #require(f.service.metadata.path)
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true   // a transaction left open between accesses, as the other program's
        let other = try DatabaseQueue(path: path, configuration: configuration)
        try other.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE") }
        defer { try? other.writeWithoutTransaction { try $0.execute(sql: "ROLLBACK") } }
        return try body()
    }

    /// The old object, bytes and headers, is still at `drop/o`.
    static func expectOldObject(_ f: ServiceFixture, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(f.file("drop/o") == Data("old".utf8), sourceLocation: sourceLocation)
        let head = f.send("HEAD", "drop", "o")
        #expect(head.header("Content-Type") == "text/old" && head.header("x-oss-meta-v") == "old", "\(head.headers)", sourceLocation: sourceLocation)
    }

    /// The refusal: 503, what (the database is locked), which file, how to fix.
    static func expectBusy(_ response: ServiceResponse, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == 503 && response.code == "ServiceUnavailable", "\(response.status) \(response.text)", sourceLocation: sourceLocation)
        #expect(response.text.contains(StateFiles.objectMetadata) && response.text.contains("locked by another program")
                && response.text.contains("Close the other program"), "\(response.text)", sourceLocation: sourceLocation)
    }

    /// No temporary file is left beside the object.
    static func expectNoLeftovers(_ f: ServiceFixture, sourceLocation: SourceLocation = #_sourceLocation) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: f.folder.appendingPathComponent("drop").path)) ?? []
        #expect(names.allSatisfy { !$0.contains("derive-tmp") }, "\(names)", sourceLocation: sourceLocation)
    }

    // MARK: F1. Every writer refuses when its metadata cannot be recorded.

    @Test func aPutUnderAnOutsideLockIsRefusedAndKeepsTheObject() throws {
        let f = try Self.fixture()
        let put = try Self.whileLocked(f) {
            f.send("PUT", "drop", "o", headers: ["content-type": "text/new", "x-oss-meta-v": "new"], body: Data("new".utf8))
        }
        Self.expectBusy(put)
        Self.expectOldObject(f)
        Self.expectNoLeftovers(f)
        // Once the other program is gone, the same PUT works.
        #expect(f.send("PUT", "drop", "o", headers: ["content-type": "text/new"], body: Data("new".utf8)).status == 200)
        #expect(f.send("HEAD", "drop", "o").header("Content-Type") == "text/new")
    }

    @Test func aCopyUnderAnOutsideLockIsRefusedAndKeepsTheTarget() throws {
        let f = try Self.fixture()
        #expect(f.send("PUT", "drop", "src", headers: ["content-type": "text/src", "x-oss-meta-s": "s"], body: Data("src".utf8)).status == 200)
        for directive in ["COPY", "REPLACE"] {
            let copy = try Self.whileLocked(f) {
                f.send("PUT", "drop", "o", headers: ["x-oss-copy-source": "/drop/src", "x-oss-metadata-directive": directive, "content-type": "text/r"])
            }
            Self.expectBusy(copy)
            Self.expectOldObject(f)
        }
        Self.expectNoLeftovers(f)
    }

    @Test func aMultipartCompleteUnderAnOutsideLockIsRefusedAndKeepsTheUpload() throws {
        let f = try Self.fixture()
        let id = try #require(f.send("POST", "drop", "o", query: [("uploads", nil)], headers: ["content-type": "text/mp"]).values("UploadId").first)
        let part = f.send("PUT", "drop", "o", query: [("partNumber", "1"), ("uploadId", id)], body: Data("part".utf8))
        let tag = try #require(part.header("ETag"))
        let body = Data("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\(tag)</ETag></Part></CompleteMultipartUpload>".utf8)
        let complete = try Self.whileLocked(f) { f.send("POST", "drop", "o", query: [("uploadId", id)], body: body) }
        Self.expectBusy(complete)
        Self.expectOldObject(f)
        Self.expectNoLeftovers(f)
        // The upload is still there: the same Complete works once the lock is gone.
        #expect(f.send("POST", "drop", "o", query: [("uploadId", id)], body: body).status == 200)
        #expect(f.file("drop/o") == Data("part".utf8) && f.send("HEAD", "drop", "o").header("Content-Type") == "text/mp")
    }

    @Test func anAppendUnderAnOutsideLockIsRefusedWithTheSameMessage() throws {
        let f = try Self.fixture()
        #expect(f.send("POST", "drop", "a", query: [("append", nil), ("position", "0")], body: Data("ab".utf8)).status == 200)
        let append = try Self.whileLocked(f) {
            f.send("POST", "drop", "a", query: [("append", nil), ("position", "2")], body: Data("cd".utf8))
        }
        Self.expectBusy(append)
        #expect(f.file("drop/a") == Data("ab".utf8))
        #expect(f.send("POST", "drop", "a", query: [("append", nil), ("position", "2")], body: Data("cd".utf8)).status == 200)
    }

    @Test func deletesUnderAnOutsideLockAreRefusedAndKeepTheObject() throws {
        let f = try Self.fixture()
        Self.expectBusy(try Self.whileLocked(f) { f.send("DELETE", "drop", "o") })
        Self.expectOldObject(f)
        let body = Data("<Delete><Quiet>false</Quiet><Object><Key>o</Key></Object></Delete>".utf8)
        let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
        let batch = try Self.whileLocked(f) { f.send("POST", "drop", query: [("delete", nil)], headers: ["content-md5": md5], body: body) }
        #expect(batch.status == 200 && batch.values("Deleted").isEmpty && batch.values("Code") == ["ServiceUnavailable"], "\(batch.text)")
        Self.expectOldObject(f)
        #expect(f.send("DELETE", "drop", "o").status == 204 && f.file("drop/o") == nil)
    }

    @Test func aSaveAsUnderAnOutsideLockIsRefusedAndKeepsTheTarget() throws {
        let f = try Self.fixture()
        let body = "x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode("o")),b_\(Base64URL.encode("drop"))"
        let saved = try Self.whileLocked(f) {
            f.send("POST", "photos", "cats/kitten.jpg", query: [("x-oss-process", nil)], body: Data(body.utf8))
        }
        Self.expectBusy(saved)
        Self.expectOldObject(f)
        Self.expectNoLeftovers(f)
    }

    // MARK: F2. Records follow their files into a copy of the project.

    @Test func aCopiedProjectKeepsHeadersAppendPositionsAndMultipartETags() throws {
        let f = try ServiceFixture()
        #expect(f.send("PUT", "drop", "o1", headers: ["content-type": "text/one", "x-oss-meta-a": "hello"], body: Data("one".utf8)).status == 200)
        #expect(f.send("POST", "drop", "ap", query: [("append", nil), ("position", "0")], headers: ["content-type": "text/ap"],
                       body: Data("ab".utf8)).status == 200)
        let id = try #require(f.send("POST", "drop", "mp", query: [("uploads", nil)], headers: ["content-type": "text/mp"]).values("UploadId").first)
        let tag = try #require(f.send("PUT", "drop", "mp", query: [("partNumber", "1"), ("uploadId", id)], body: Data("part".utf8)).header("ETag"))
        let body = Data("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\(tag)</ETag></Part></CompleteMultipartUpload>".utf8)
        let mpETag = try #require(f.send("POST", "drop", "mp", query: [("uploadId", id)], body: body).values("ETag").first)
        // Copied with the multipart object's ETag: kept too.
        #expect(f.send("PUT", "drop", "mpcopy", headers: ["x-oss-copy-source": "/drop/mp"]).status == 200)
        // Replaced in the copy with other bytes of the same size: its record must not apply.
        #expect(f.send("PUT", "drop", "o2", headers: ["content-type": "text/two", "x-oss-meta-b": "b"], body: Data("two".utf8)).status == 200)

        try Data("TWO".utf8).write(to: f.folder.appendingPathComponent("drop/o2"))
        let h = try ServiceFixture(copying: f.folder)
        let inode = { (g: ServiceFixture) in try FileManager.default.attributesOfItem(atPath: g.folder.appendingPathComponent("drop/o1").path)[.systemFileNumber] as? Int }
        #expect(try inode(h) != inode(f))
        let one = h.send("HEAD", "drop", "o1")
        #expect(one.header("Content-Type") == "text/one" && one.header("x-oss-meta-a") == "hello", "\(one.headers)")
        let ap = h.send("HEAD", "drop", "ap")
        #expect(ap.header("x-oss-object-type") == "Appendable" && ap.header("Content-Type") == "text/ap", "\(ap.headers)")
        let appended = h.send("POST", "drop", "ap", query: [("append", nil), ("position", "2")], body: Data("cd".utf8))
        #expect(appended.status == 200 && appended.header("x-oss-next-append-position") == "4", "\(appended.text)")
        let mp = h.send("HEAD", "drop", "mp")
        #expect(mp.header("ETag") == mpETag && mp.header("Content-Type") == "text/mp", "\(mp.headers)")
        #expect(h.send("HEAD", "drop", "mpcopy").header("ETag") == mpETag)
        // The file replaced with other bytes: default headers, not the old record's.
        let two = h.send("HEAD", "drop", "o2")
        #expect(two.header("Content-Type") != "text/two" && two.header("x-oss-meta-b") == nil, "\(two.headers)")
    }

    @Test func startUpRebindsOnlyMatchingBytesAndCountsTheOthers() throws {
        let f = try ServiceFixture()
        for name in ["same", "edited", "resized"] {
            #expect(f.send("PUT", "drop", name, headers: ["x-oss-meta-n": name], body: Data("abc".utf8)).status == 200)
        }
        let store = f.service.metadata
        // What a copy does to the files: new inodes (same bytes), or new bytes.
        for (name, bytes) in [("same", "abc"), ("edited", "xyz"), ("resized", "abcd")] {
            let url = f.folder.appendingPathComponent("drop/" + name)
            try FileManager.default.removeItem(at: url)
            try Data(bytes.utf8).write(to: url)
        }
        let outcome = MovedRecords.rebind(store, buckets: f.service.manifest.buckets, logger: f.service.logger)
        #expect(outcome == MovedRecords.Outcome(rebound: 1, unmatched: 2, bytesRead: 6), "\(outcome)")
        #expect(f.send("HEAD", "drop", "same").header("x-oss-meta-n") == "same")
        #expect(f.send("HEAD", "drop", "edited").header("x-oss-meta-n") == nil && f.send("HEAD", "drop", "resized").header("x-oss-meta-n") == nil)
        // Bound now: the next start reads only the edited file (same size, other bytes) again.
        #expect(MovedRecords.rebind(store, buckets: f.service.manifest.buckets, logger: f.service.logger) == MovedRecords.Outcome(rebound: 0, unmatched: 2, bytesRead: 3))
    }

    // MARK: F3. The stop's checkpoint waits a bounded time for another program's reader.

    @Test func aStopCheckpointUnderAReaderIsBoundedAndWarns() throws {
        let folder = (try ScratchFolder.make("derive-attack14"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        let store = try ObjectMetadataStore(path: path)
        try store.write(bucket: "b", key: try ObjectKey("k"), identity: ObjectFileIdentity(device: 1, inode: 2, size: 3, modified: 4),
                        metadata: ObjectMetadata(etag: "\"E\"", lastModified: 5))
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        let reader = try DatabaseQueue(path: path, configuration: configuration)
        try reader.inDatabase { db in
            try db.execute(sql: "BEGIN")
            _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM object_records")
        }
        let started = Date()
        let warning = store.checkpoint()
        let seconds = Date().timeIntervalSince(started)
        #expect(seconds < 1.5, "\(seconds)")
        #expect(warning?.contains("could not be folded") == true && warning?.contains("-wal") == true, "\(warning ?? "nil")")
        try reader.inDatabase { try $0.execute(sql: "COMMIT") }
        #expect(store.checkpoint() == nil)
        #expect(AttackThirteenTests.recordsInMainFile(path) == 1)
    }

    // MARK: F4. A stamped database's log is checked before SQLite applies it.

    @Test func aStampedDatabaseWithAForeignStampInItsLogIsRefusedUnchanged() throws {
        let folder = (try ScratchFolder.make("derive-attack14"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        let other = folder.appendingPathComponent("base/" + StateFiles.objectMetadata).path
        do { _ = try ObjectMetadataStore(path: other) }   // serve's, stamped, closed
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        for (name, sql) in [("stamp", "PRAGMA application_id = 1234"), ("table", "CREATE TABLE accounts(x); INSERT INTO accounts VALUES ('secret')")] {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: path + "-wal")
            try? FileManager.default.removeItem(atPath: path + "-shm")
            let copy = folder.appendingPathComponent("w-\(name).sqlite").path
            try FileManager.default.copyItem(atPath: other, toPath: copy)
            let writer = try DatabaseQueue(path: copy, configuration: .patientTest)
            try writer.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
                try db.execute(sql: sql)
            }
            try FileManager.default.copyItem(atPath: copy, toPath: path)
            try FileManager.default.copyItem(atPath: copy + "-wal", toPath: path + "-wal")
            let main = FileManager.default.contents(atPath: path)
            do {
                _ = try ObjectMetadataStore(path: path)
                Issue.record("a stamped database with a foreign \(name) in its log was opened")
            } catch {
                #expect("\(error)".contains("write-ahead log") && "\(error)".contains("-wal, -shm and -journal files away together"), "\(error)")
                #expect("\(error)".contains(name == "stamp" ? "application_id 1234" : "accounts"), "\(error)")
            }
            #expect(FileManager.default.contents(atPath: path) == main)
            #expect((FileManager.default.contents(atPath: path + "-wal")?.count ?? 0) > 0)
            withExtendedLifetime(writer) {}
        }
        // A stamped database with serve's own log opens (a serve killed before its checkpoint).
        let own = try ObjectMetadataStore(path: other)
        withExtendedLifetime(own) {}
    }

    // MARK: F6. A private copy left by a killed start is swept at the next start.

    @Test func leftPrivateCopiesOfGoneProcessesAreSwept() throws {
        let temporary = FileManager.default.temporaryDirectory
        let gone = temporary.appendingPathComponent(MetadataDatabaseOwnership.checkPrefix + "2147483000-\(UUID().uuidString)")
        let mine = temporary.appendingPathComponent(MetadataDatabaseOwnership.checkPrefix + "\(getpid())-\(UUID().uuidString)")
        for url in [gone, mine] {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
            try Data("x".utf8).write(to: url.appendingPathComponent("copy.sqlite"))
        }
        defer { try? FileManager.default.removeItem(at: mine) }
        let folder = temporary.appendingPathComponent("derive-attack14-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try ObjectMetadataStore(path: folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path)
        #expect(!FileManager.default.fileExists(atPath: gone.path))
        #expect(FileManager.default.fileExists(atPath: mine.path))
    }

    // MARK: F5, F7. Messages say what is known.

    @Test func aSquattedLockSocketIsNamedHonestly() throws {
        let folder = (try ScratchFolder.make("derive-attack14"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var info = stat()
        #expect(stat(folder.path, &info) == 0)
        // Another program binds the name (any local user can): no derive runs, serve.lock is free.
        let squatter = ServeLockFile.bindFolderSocket(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        #expect(squatter >= 0)
        defer { close(squatter) }
        do {
            _ = try ServeLock(stateFolder: folder.path)
            Issue.record("serve started beside a bound lock socket")
        } catch {
            let text = "\(error)"
            #expect(text.contains("another process holds this state folder's lock socket") && text.contains("ss -xlp")
                    && text.contains("derive-serve-state-\(info.st_dev)-\(info.st_ino)") && !text.contains("is locked)"), "\(text)")
        }
    }

    @Test func appendRefusalsSayWhy() throws {
        var settings = ServerSettings()
        settings.appendableMaxAnonymous = 0
        let f = try ServiceFixture(settings: settings)
        let anonymous = f.send("POST", "drop", "an", query: [("append", nil), ("position", "0")], body: Data("x".utf8), signed: false)
        #expect(anonymous.status == 400 && anonymous.text.contains("appendable_max_anonymous is 0") && !anonymous.text.contains("that many exist"), "\(anonymous.text)")
        #expect(f.send("PUT", "drop", "n", body: Data("x".utf8)).status == 200)
        let normal = f.send("POST", "drop", "n", query: [("append", nil), ("position", "1")], body: Data("y".utf8))
        #expect(normal.code == "ObjectNotAppendable" && normal.text.contains("no longer keeps it appendable"), "\(normal.text)")
    }
}
