import Crypto
import Access
import Confinement
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import Manifest
import NIOConcurrencyHelpers
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 11 on `derive serve` (issue #12): keys that Swift calls equal (canonical equivalence)
/// but the file system and the database tell apart (1), the cost of a refused append (2).
@Suite(.ownThreads) struct AttackElevenTests {
    static let drop = AttackTenTests.drop
    /// `café` precomposed (U+00E9) and decomposed (e + U+0301): two keys, two files.
    static let nfc = "caf%C3%A9", nfd = "cafe%CC%81"

    static func append(_ service: ObjectService, _ key: String, _ position: Int, _ body: String, signed: Bool = false,
                       fixture f: ServiceFixture) -> ServiceResponse {
        AttackTenTests.append(service, key, position, body, signed: signed, fixture: f)
    }

    // MARK: 1. The in-memory tables are keyed by bytes.

    /// (a) An anonymous append to the NFD spelling made the NFC object Normal at once.
    @Test func anEquivalentSpellingDoesNotTakeAnotherObjectsRecord() throws {
        let f = try ServiceFixture()
        #expect(Self.append(f.service, Self.nfc, 0, "AB", fixture: f).status == 200)
        #expect(Self.append(f.service, Self.nfc, 2, "CD", fixture: f).status == 200)
        #expect(Self.append(f.service, Self.nfd, 0, "XY", fixture: f).status == 200)
        #expect(f.get("/drop/\(Self.nfc)", method: "HEAD").header("x-oss-object-type") == "Appendable")
        #expect(f.get("/drop/\(Self.nfd)", method: "HEAD").header("x-oss-object-type") == "Appendable")
        #expect(Self.append(f.service, Self.nfc, 4, "EF", fixture: f).status == 200)
        #expect(f.get("/drop/\(Self.nfd)", method: "DELETE").status == 204)
        #expect(f.file("drop/cafe\u{301}") == nil)
        #expect(Self.append(f.service, Self.nfc, 6, "GH", fixture: f).status == 200)
        #expect(f.file("drop/caf\u{E9}") == Data("ABCDEFGH".utf8))
        #expect(f.service.appendables.counts.records == 1)
    }

    /// (b) Pairs of equivalent keys were counted once: the caps held nothing back.
    @Test func equivalentSpellingsCountAgainstTheCapsEach() throws {
        var settings = ServerSettings()
        settings.appendableMaxObjects = 4
        settings.appendableMaxAnonymous = 2
        let f = try ServiceFixture(settings: settings)
        #expect(Self.append(f.service, "w1" + Self.nfc, 0, "x", fixture: f).status == 200)
        #expect(Self.append(f.service, "w1" + Self.nfd, 0, "x", fixture: f).status == 200)
        let refused = Self.append(f.service, "w2" + Self.nfc, 0, "x", fixture: f)
        #expect(refused.status == 400 && refused.text.contains("appendable_max_anonymous"), "\(refused.text)")
        let pair = Self.append(f.service, "w2" + Self.nfd, 0, "x", fixture: f)
        #expect(pair.status == 400, "\(pair.text)")
        #expect(f.service.appendables.counts.records == 2 && f.service.appendables.anonymousCount == 2)
        #expect(try AttackTenTests.rows(f).count == 2)
        // Both stay appendable: neither pushed the other out.
        #expect(Self.append(f.service, "w1" + Self.nfc, 1, "y", fixture: f).status == 200)
        #expect(Self.append(f.service, "w1" + Self.nfd, 1, "y", fixture: f).status == 200)
    }

    /// (c) After a restart past the bound, anonymous rows are cut before a signed caller's,
    /// whatever their byte order.
    @Test func theStartUpCutDropsAnonymousRowsBeforeSignedOnes() throws {
        let f = try ServiceFixture()
        #expect(Self.append(f.service, "zz-log", 0, "line1;", signed: true, fixture: f).status == 200)
        for n in 1...4 {
            #expect(Self.append(f.service, "h\(n)" + Self.nfc, 0, "A", fixture: f).status == 200)
            #expect(Self.append(f.service, "h\(n)" + Self.nfd, 0, "A", fixture: f).status == 200)
        }
        #expect(try AttackTenTests.rows(f).count == 9)
        var lowered = ServerSettings()
        lowered.appendableMaxObjects = 3
        lowered.appendableMaxAnonymous = 1
        let log = CapturedLog()
        let again = try AttackTenTests.restart(f, settings: lowered, logger: log.logger)
        // The signed row, and one anonymous row (the share; attack 12, finding 4).
        #expect(again.appendables.counts.records == 2)
        #expect(!again.appendables.startup.cut.contains("drop/zz-log"))
        #expect(Self.append(again, "zz-log", 6, "line2;", signed: true, fixture: f).status == 200)
        #expect(f.file("drop/zz-log") == Data("line1;line2;".utf8))
        let lines = log.lines.withLockedValue { $0 }
        #expect(lines.contains { $0.contains("7 appendable objects past the bounds") && $0.contains("anonymous callers only up to their share") }, "\(lines)")
    }

    /// Uploads name their key; the other spelling is another key.
    @Test func aMultipartUploadIsNotFinishedUnderAnEquivalentKey() throws {
        let f = try ServiceFixture()
        let initiated = f.get("/drop/\(Self.nfc)?uploads", method: "POST")
        #expect(initiated.status == 200)
        let text = initiated.text
        let id = try #require(text.range(of: "<UploadId>").flatMap { start in
            text.range(of: "</UploadId>").map { String(text[start.upperBound..<$0.lowerBound]) } })
        let other = f.get("/drop/\(Self.nfd)?partNumber=1&uploadId=\(id)", method: "PUT", body: Data("x".utf8))
        #expect(other.status == 404 && other.code == "NoSuchUpload", "\(other.status) \(other.text)")
        #expect(f.get("/drop/\(Self.nfc)?partNumber=1&uploadId=\(id)", method: "PUT", body: Data("x".utf8)).status == 200)
    }

    /// ListMultipartUploads orders and resumes by bytes: a key-marker naming one spelling does
    /// not skip the other's uploads (the NFD key sorts first in bytes).
    @Test func aKeyMarkerDoesNotSkipTheOtherSpellingsUploads() throws {
        let f = try ServiceFixture()
        #expect(f.get("/drop/\(Self.nfc)?uploads", method: "POST").status == 200)
        #expect(f.get("/drop/\(Self.nfd)?uploads", method: "POST").status == 200)
        let all = f.get("/drop/?uploads")
        #expect(all.status == 200, "\(all.text)")
        #expect(all.text.components(separatedBy: "<Upload>").count == 3, "\(all.text)")
        let after = f.get("/drop/?uploads&key-marker=\(Self.nfd)")
        #expect(after.status == 200 && after.text.components(separatedBy: "<Upload>").count == 2, "\(after.text)")
        #expect(after.text.contains("<Key>caf\u{E9}</Key>"), "\(after.text)")
    }

    /// The digest cache names files by bytes too: two spellings never share an entry.
    @Test func theDigestCacheNamesFilesByBytes() {
        let a = DigestCache.identity("/b", try! ObjectKey("caf\u{E9}")), b = DigestCache.identity("/b", try! ObjectKey("cafe\u{301}"))
        #expect(a != b)
    }

    // MARK: 2. A refused append is O(1).

    /// A full table: a refusal looks at `sweepBatch` rows at most (the old code stat'ed every
    /// row), and over refusals a stale row is still found and its slot freed.
    @Test func aRefusalExaminesABoundedBatchOfRows() throws {
        let table = try AppendableObjects(store: ObjectMetadataStore(path: nil), legacyFile: nil,
                                          limits: AppendableObjects.Limits(total: 1_000, anonymous: 500))
        let manifest = try ServiceFixture().service.manifest
        let bucket = try #require(manifest.bucket(named: "drop"))
        for n in 0..<1_000 {
            let status = FileStatus(size: 1, mtime: 1, ctime: 0, inode: UInt64(n + 1))
            let key = try ObjectKey("k\(n)")
            try table.prepare(bucket, key, next: status, creating: true, anonymous: n < 500)
            try table.commit(bucket, key, linked: status, replaced: nil, anonymous: n < 500)
        }
        #expect(table.anonymousCount == 500)
        let stale = AppendableObjects.Name("drop", try ObjectKey("k777"))
        let calls = NIOLockedValueBox(0)
        func ask() -> AppendableObjects.Room {
            table.room(for: bucket, try! ObjectKey("new"), anonymous: false) { name, _ in
                calls.withLockedValue { $0 += 1 }
                return name != stale
            }
        }
        #expect(ask() == .full)
        #expect(calls.withLockedValue { $0 } <= AppendableObjects.sweepBatch)
        var refusals = 1
        while ask() == .full, refusals < 1_000 { refusals += 1 }
        #expect(refusals <= 1_000 / AppendableObjects.sweepBatch + 1, "\(refusals)")
        #expect(table.counts.records == 999)
        // The anonymous count follows every change without a scan.
        #expect(table.anonymousCount == 500)
        try table.forget(bucket, try ObjectKey("k3"))
        #expect(table.anonymousCount == 499)
    }
}

/// Attack 11, finding 6: an empty `x-oss-tagging:` or encryption header is the header present.
@Suite(.ownThreads) struct AttackElevenHeaderTests {
    @Test func anEmptyTaggingOrEncryptionHeaderIsRefusedLikeAnyValue() throws {
        let f = try ServiceFixture()
        for name in ["x-oss-tagging"] + WriteHeaders.encryptionHeaders {
            for value in ["", "  "] {
                let put = f.get("/drop/t.txt", method: "PUT", headers: ["host": "127.0.0.1:9000", name: value], body: Data("x".utf8))
                #expect(put.status == 501 && put.code == "NotImplemented", "\(name): '\(value)' → \(put.status) \(put.text)")
                let append = f.get("/drop/t.txt?append&position=0", method: "POST", headers: ["host": "127.0.0.1:9000", name: value], body: Data("x".utf8))
                #expect(append.status == 501, "\(name): '\(value)' → \(append.status)")
            }
        }
        #expect(f.file("drop/t.txt") == nil)
    }
}

/// Attack 11, findings 3–5: serve's state files are its own; one server per state folder.
@Suite(.ownThreads) struct AttackElevenStateTests {
    static func metadataPath(_ f: ServiceFixture) -> String { f.service.manifest.stateFolder + "/" + StateFiles.objectMetadata }

    /// A foreign database (journal mode delete, one table of its own) beside the fixture.
    static func foreignDatabase(_ f: ServiceFixture) throws -> String {
        let path = f.folder.appendingPathComponent("other.db").path
        try DatabaseQueue(path: path, configuration: .patientTest).write { try $0.execute(sql: "CREATE TABLE accounts(id, bal); INSERT INTO accounts VALUES (1, 100)") }
        return path
    }

    static func tables(_ path: String) throws -> [String] {
        try DatabaseQueue(path: path, configuration: .patientTest).read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") }
    }

    static func startFails(_ f: ServiceFixture) -> String? {
        do { _ = try AttackTenTests.restart(f); return nil } catch { return "\(error)" }
    }

    static func replaceMetadata(_ f: ServiceFixture, _ make: (String) throws -> Void) throws {
        let path = metadataPath(f)
        for name in [path] + StateFiles.journalSuffixes.map({ path + $0 }) { try? FileManager.default.removeItem(atPath: name) }
        try make(path)
    }

    @Test func aLinkToAnotherDatabaseIsRefusedAndLeftAsItIs() throws {
        let f = try ServiceFixture()
        let other = try Self.foreignDatabase(f)
        try Self.replaceMetadata(f) { try FileManager.default.createSymbolicLink(atPath: $0, withDestinationPath: other) }
        let message = try #require(Self.startFails(f))
        #expect(message.contains(Self.metadataPath(f)) && message.contains("symbolic link"), "\(message)")
        #expect(try Self.tables(other) == ["accounts"])
        #expect(try DatabaseQueue(path: other, configuration: .patientTest).read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "delete")
    }

    @Test func aForeignDatabaseInPlaceIsNeverAdopted() throws {
        let f = try ServiceFixture()
        let other = try Self.foreignDatabase(f)
        try Self.replaceMetadata(f) { try FileManager.default.copyItem(atPath: other, toPath: $0) }
        let message = try #require(Self.startFails(f))
        #expect(message.contains(Self.metadataPath(f)) && message.contains("accounts") && message.contains("not derive serve's"), "\(message)")
        #expect(try Self.tables(Self.metadataPath(f)) == ["accounts"])
        #expect(try DatabaseQueue(path: Self.metadataPath(f), configuration: .patientTest).read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "delete")
        // Another application's stamp, even with no table.
        try Self.replaceMetadata(f) { path in try DatabaseQueue(path: path, configuration: .patientTest).writeWithoutTransaction { try $0.execute(sql: "PRAGMA application_id = 42") } }
        let stamped = try #require(Self.startFails(f))
        #expect(stamped.contains("application_id 42"), "\(stamped)")
    }

    @Test func aFileThatIsNotADatabaseStopsTheStart() throws {
        let f = try ServiceFixture()
        try Self.replaceMetadata(f) { try Data("hello, not sqlite\n".utf8).write(to: URL(fileURLWithPath: $0)) }
        let message = try #require(Self.startFails(f))
        #expect(message.contains(Self.metadataPath(f)) && message.contains("not an SQLite database"), "\(message)")
        #expect(FileManager.default.contents(atPath: Self.metadataPath(f)) == Data("hello, not sqlite\n".utf8))
    }

    @Test func aWrongLayoutIsAClearError() throws {
        let f = try ServiceFixture()
        try Self.replaceMetadata(f) { path in try DatabaseQueue(path: path, configuration: .patientTest).write { try $0.execute(sql: "CREATE TABLE appendable_objects(x)") } }
        let message = try #require(Self.startFails(f))
        #expect(message.contains("appendable_objects") && message.contains("missing: anonymous, bucket") && !message.contains("SQLite error"), "\(message)")
    }

    @Test func anEmptyFileOrAnEarlierServesDatabaseIsOpenedAndStamped() throws {
        let f = try ServiceFixture()
        try Self.replaceMetadata(f) { _ = FileManager.default.createFile(atPath: $0, contents: Data()) }
        #expect(Self.startFails(f) == nil)
        func stamp() throws -> (Int32, Int)? {
            try DatabaseQueue(path: Self.metadataPath(f), configuration: .patientTest).read { db in
                (try Int32.fetchOne(db, sql: "PRAGMA application_id")!, try Int.fetchOne(db, sql: "PRAGMA user_version")!)
            }
        }
        #expect(try stamp()?.0 == MetadataDatabaseOwnership.applicationID)
        // A database an earlier serve made (no stamp, only serve's tables) is carried on.
        try Self.replaceMetadata(f) { path in
            try DatabaseQueue(path: path, configuration: .patientTest).write { try $0.execute(sql: "CREATE TABLE object_records (bucket TEXT NOT NULL, key BLOB NOT NULL, device INTEGER NOT NULL, inode INTEGER NOT NULL, size INTEGER NOT NULL, modified INTEGER NOT NULL, etag TEXT NOT NULL, last_modified INTEGER NOT NULL, headers TEXT NOT NULL, PRIMARY KEY (bucket, key, device, inode, size, modified))") }
        }
        #expect(Self.startFails(f) == nil)
        #expect(try stamp()?.0 == MetadataDatabaseOwnership.applicationID && stamp()?.1 == MetadataDatabaseOwnership.schemaVersion)
        // Restarted on its own stamped database.
        #expect(Self.startFails(f) == nil)
    }

    @Test func aSecondServerOnTheStateFolderIsRefused() throws {
        let folder = (try ScratchFolder.make("derive-serve-lock"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try ServeLock(stateFolder: folder.path)
        #expect(throws: ServeLock.Held.self) { _ = try ServeLock(stateFolder: folder.path) }
        do { _ = try ServeLock(stateFolder: folder.path) } catch {
            #expect("\(error)".contains("another derive serve (pid \(getpid()))") && "\(error)".contains(StateFiles.serveLock), "\(error)")
        }
        // clean keeps a held lock, and removes it once released.
        #expect(ServeStateCleanup.remove(in: folder.path, md5: { Array(Insecure.MD5.hash(data: $0)) }).contains { $0.contains("a derive serve is running") })
        withExtendedLifetime(first) {}
        _ = consume first
        #expect(ServeStateCleanup.remove(in: folder.path, md5: { Array(Insecure.MD5.hash(data: $0)) }).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/" + StateFiles.serveLock))
        _ = try ServeLock(stateFolder: folder.path)
    }

    @Test func stagedAppendsAStopLeftAreRemovedAtStart() throws {
        let f = try ServiceFixture()
        #expect(AttackTenTests.append(f.service, "log", 0, "x", fixture: f).status == 200)   // makes serve-uploads
        let uploads = f.service.manifest.stateFolder + "/" + StateFiles.serveUploads
        try Data("orphan".utf8).write(to: URL(fileURLWithPath: uploads + "/append-ab739948a63287b8"))
        try Data("mine".utf8).write(to: URL(fileURLWithPath: uploads + "/append-0000000000000001"))
        try FileManager.default.linkItem(atPath: uploads + "/append-0000000000000001", toPath: f.folder.appendingPathComponent("second-name").path)
        try Data("other".utf8).write(to: URL(fileURLWithPath: uploads + "/notes.txt"))
        // A symbolic link with a staged append's name, to a user's file: neither it nor its target goes.
        let victim = f.folder.appendingPathComponent("victim.txt").path
        try Data("victim".utf8).write(to: URL(fileURLWithPath: victim))
        try FileManager.default.createSymbolicLink(atPath: uploads + "/append-00000000000000ff", withDestinationPath: victim)
        let log = CapturedLog()
        _ = try AttackTenTests.restart(f, logger: log.logger)
        #expect(!FileManager.default.fileExists(atPath: uploads + "/append-ab739948a63287b8"))
        #expect(FileManager.default.fileExists(atPath: uploads + "/append-0000000000000001"), "a file with a second name is not serve's to remove")
        #expect(FileManager.default.fileExists(atPath: uploads + "/notes.txt"))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: uploads + "/append-00000000000000ff")) == victim, "a symbolic link is not serve's to remove")
        #expect(FileManager.default.contents(atPath: victim) == Data("victim".utf8))
        let lines = log.lines.withLockedValue { $0 }
        #expect(lines.contains { $0.contains("removed 1 staged append") && $0.contains("append-ab739948a63287b8") }, "\(lines)")
    }
}
