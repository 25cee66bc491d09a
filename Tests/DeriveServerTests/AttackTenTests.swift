import Access
import Confinement
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import Imaging
import Logging
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 10 on `derive serve` (issue #12): appendable records in the metadata database, one row
/// per key, settled after a stop (C); an anonymous share of the appendable table (B); an empty
/// `x-oss-object-acl` (D); messages and the start-up cut in the log (E); ranges outside the
/// object answered as OSS does.
@Suite(.ownThreads) struct AttackTenTests {
    static let drop = "drop"

    static func append(_ service: ObjectService, _ key: String, _ position: Int, _ body: String, signed: Bool = false,
                       fixture f: ServiceFixture) -> ServiceResponse {
        if signed {
            return f.sendTo(service, "POST", drop, key, query: [("append", nil), ("position", String(position))], body: Data(body.utf8))
        }
        return service.handle(ServiceRequest(method: "POST", target: "/\(drop)/\(key)?append&position=\(position)",
                                             headers: ["host": "127.0.0.1:9000"], body: Data(body.utf8)))
    }

    /// A server started again on the fixture's state folder (what a restart sees).
    static func restart(_ f: ServiceFixture, settings: ServerSettings = ServerSettings(), logger: Logger = Logger(label: "test")) throws -> ObjectService {
        let now = f.now
        return try ObjectService(manifest: f.service.manifest, verifier: Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou"),
                                 engine: Engine(), cacheFolder: f.folder.appendingPathComponent("cache").path, maxBodyBytes: 1_000_000,
                                 settings: settings, logger: logger, clock: { now })
    }

    static func rows(_ f: ServiceFixture) throws -> [Row] {
        let queue = try DatabaseQueue(path: f.service.manifest.stateFolder + "/" + StateFiles.objectMetadata, configuration: .patientTest)
        return try queue.read { try Row.fetchAll($0, sql: "SELECT * FROM appendable_objects ORDER BY key") }
    }

    static func status(_ url: URL) -> FileStatus {
        var info = stat()
        stat(url.path, &info)
        return FileStatus(size: Int64(info.st_size), mtime: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                          ctime: 0, inode: UInt64(info.st_ino))
    }

    // MARK: C. One row per key in serve-metadata.sqlite, written per append.

    @Test func appendableRecordsAreRowsOfTheMetadataDatabase() throws {
        let f = try ServiceFixture()
        #expect(Self.append(f.service, "log.txt", 0, "abc", fixture: f).status == 200)
        #expect(Self.append(f.service, "log.txt", 3, "de", fixture: f).status == 200)
        #expect(Self.append(f.service, "other.txt", 0, "x", fixture: f).status == 200)
        let state = f.service.manifest.stateFolder
        #expect(!FileManager.default.fileExists(atPath: state + "/" + StateFiles.serveAppendable), "no JSON record file any more")
        let rows = try Self.rows(f)
        #expect(rows.count == 2)
        let log = try #require(rows.first { ($0["key"] as Data) == Data("log.txt".utf8) })
        #expect((log["size"] as Int64) == 5 && (log["next_inode"] as Int64?) == nil && (log["anonymous"] as Bool))
        #expect((log["inode"] as Int64) == Int64(Self.status(f.folder.appendingPathComponent("drop/log.txt")).inode))
        let mode = try DatabaseQueue(path: state + "/" + StateFiles.objectMetadata, configuration: .patientTest).read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        // A delete removes its row; a restarted server still knows the other object.
        #expect(f.send("DELETE", Self.drop, "other.txt", signed: false).status == 204)
        #expect(try Self.rows(f).count == 1)
        let again = try Self.restart(f)
        #expect(Self.append(again, "log.txt", 5, "f", fixture: f).status == 200)
        #expect(f.file("drop/log.txt") == Data("abcdef".utf8))
    }

    @Test func aLegacyRecordFileIsCarriedOverOnceAndRemoved() throws {
        let f = try ServiceFixture()
        try f.write("drop/old.txt", "12345")
        let status = Self.status(f.folder.appendingPathComponent("drop/old.txt"))
        let file = f.service.manifest.stateFolder + "/" + StateFiles.serveAppendable
        let records = ["drop\0old.txt": AppendableObjects.LegacyRecord(inode: status.inode, size: status.size),
                       "drop\0gone.txt": AppendableObjects.LegacyRecord(inode: 1, size: 1)]
        try JSONEncoder().encode(records).write(to: URL(fileURLWithPath: file))
        let log = CapturedLog()
        let started = try Self.restart(f, logger: log.logger)
        #expect(!FileManager.default.fileExists(atPath: file))
        #expect(log.lines.withLockedValue { $0 }.contains { $0.contains("carried 2 appendable objects over") })
        #expect(Self.append(started, "old.txt", 5, "6", fixture: f).status == 200)
        // Once: a later start finds no file and the row is still there.
        let later = try Self.restart(f)
        #expect(Self.append(later, "old.txt", 6, "7", fixture: f).status == 200)
        #expect(f.file("drop/old.txt") == Data("1234567".utf8))
    }

    /// The crash story, each stop point made exactly: the next version recorded but not linked,
    /// linked but not made the version, and a first append recorded but not linked. A new server
    /// on the same state settles each so that record and bytes agree.
    @Test func aStopAtAnyPointOfAnAppendLeavesRecordAndBytesInAgreement() throws {
        let f = try ServiceFixture()
        let bucket = try #require(f.service.manifest.bucket(named: Self.drop))
        #expect(Self.append(f.service, "a.txt", 0, "aaa", fixture: f).status == 200)
        #expect(Self.append(f.service, "b.txt", 0, "bbb", fixture: f).status == 200)
        // a.txt: stopped after its next version was recorded, before the rename.
        let a = f.folder.appendingPathComponent("drop/a.next")
        try Data("aaaAAA".utf8).write(to: a)
        try f.service.appendables.prepare(bucket, ObjectKey("a.txt"), next: Self.status(a), creating: false, anonymous: true)
        try FileManager.default.removeItem(at: a)
        // b.txt: stopped after the rename, before the row was updated.
        let b = f.folder.appendingPathComponent("drop/b.next")
        try Data("bbbBBB".utf8).write(to: b)
        try f.service.appendables.prepare(bucket, ObjectKey("b.txt"), next: Self.status(b), creating: false, anonymous: true)
        #expect(rename(b.path, f.folder.appendingPathComponent("drop/b.txt").path) == 0)
        // c.txt: a first append stopped before its rename.
        try f.service.appendables.prepare(bucket, ObjectKey("c.txt"), next: FileStatus(size: 3, mtime: 1, ctime: 0, inode: 99), creating: true, anonymous: true)
        #expect(try Self.rows(f).count { ($0["next_inode"] as Int64?) != nil } == 3)

        let log = CapturedLog()
        let restarted = try Self.restart(f, logger: log.logger)
        #expect(try Self.rows(f).allSatisfy { ($0["next_inode"] as Int64?) == nil })
        #expect(try Self.rows(f).count == 2)
        let lines = log.lines.withLockedValue { $0 }
        #expect(lines.contains { $0.contains("'a.txt'") && $0.contains("keeps its earlier bytes") }, "\(lines)")
        #expect(lines.contains { $0.contains("'b.txt'") && $0.contains("appendable at 6 bytes") }, "\(lines)")
        #expect(lines.contains { $0.contains("'c.txt'") && $0.contains("there is no object") }, "\(lines)")
        // Appendable exactly at the length of the bytes each holds.
        let headA = restarted.handle(ServiceRequest(method: "HEAD", target: "/drop/a.txt", headers: ["host": "127.0.0.1:9000"]))
        #expect(headA.header("x-oss-object-type") == "Appendable" && headA.header("x-oss-next-append-position") == "3")
        let headB = restarted.handle(ServiceRequest(method: "HEAD", target: "/drop/b.txt", headers: ["host": "127.0.0.1:9000"]))
        #expect(headB.header("x-oss-object-type") == "Appendable" && headB.header("x-oss-next-append-position") == "6")
        #expect(Self.append(restarted, "a.txt", 3, "!", fixture: f).status == 200)
        #expect(Self.append(restarted, "b.txt", 6, "!", fixture: f).status == 200)
        #expect(Self.append(restarted, "c.txt", 0, "c", fixture: f).status == 200)
        #expect(f.file("drop/a.txt") == Data("aaa!".utf8) && f.file("drop/b.txt") == Data("bbbBBB!".utf8) && f.file("drop/c.txt") == Data("c".utf8))
    }

    /// A PUT over an appendable object makes it normal, and its row, which names the replaced
    /// file by inode, size and modification time, never matches a later file.
    @Test func aReplacedAppendableObjectStaysNormal() throws {
        let f = try ServiceFixture()
        #expect(Self.append(f.service, "p.txt", 0, "abc", fixture: f).status == 200)
        #expect(f.get("/drop/p.txt", method: "PUT", body: Data("xyz".utf8)).status == 200)
        let refused = Self.append(f.service, "p.txt", 3, "d", fixture: f)
        #expect(refused.status == 409 && refused.code == "ObjectNotAppendable")
    }

    // MARK: B. Anonymous callers have a share of the table; signed callers keep the rest.

    @Test func anonymousCallersCannotTakeTheSlotsSignedCallersNeed() throws {
        var settings = ServerSettings()
        settings.appendableMaxObjects = 4
        settings.appendableMaxAnonymous = 2
        let f = try ServiceFixture(settings: settings)
        #expect(Self.append(f.service, "a1", 0, "x", fixture: f).status == 200)
        #expect(Self.append(f.service, "a2", 0, "x", fixture: f).status == 200)
        let refused = Self.append(f.service, "a3", 0, "x", fixture: f)
        #expect(refused.status == 400 && refused.code == "InvalidArgument" && refused.text.contains("appendable_max_anonymous"), "\(refused.text)")
        #expect(f.file("drop/a3") == nil)
        // Anonymous appends to the objects they made go on.
        #expect(Self.append(f.service, "a1", 1, "y", fixture: f).status == 200)
        // Signed callers keep the other slots, then the total holds for them too.
        #expect(Self.append(f.service, "s1", 0, "x", signed: true, fixture: f).status == 200)
        #expect(Self.append(f.service, "s2", 0, "x", signed: true, fixture: f).status == 200)
        let full = Self.append(f.service, "s3", 0, "x", signed: true, fixture: f)
        #expect(full.status == 400 && full.text.contains("appendable_max_objects"), "\(full.text)")
        // A deleted anonymous object frees an anonymous slot.
        #expect(f.send("DELETE", Self.drop, "a2", signed: false).status == 204)
        #expect(Self.append(f.service, "a3", 0, "x", fixture: f).status == 200)
        // The share is kept across a restart (the row says who created it).
        let again = try Self.restart(f, settings: settings)
        #expect(Self.append(again, "a4", 0, "x", fixture: f).code == "InvalidArgument")
    }

    @Test func theAnonymousShareIsValidatedBelowTheTotal() throws {
        let folder = (try ScratchFolder.make("derive-appendable"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func load(_ serve: String) throws -> ManifestLoader.Result {
            let file = folder.appendingPathComponent("derive.yaml")
            try Data("version: 1\nserve:\n\(serve)".utf8).write(to: file)
            return ManifestLoader().load(file.path)
        }
        let equal = try load("  appendable_max_objects: 10\n  appendable_max_anonymous: 10\n")
        #expect(equal.diagnostics.errors.contains { $0.message.contains("serve.appendable_max_anonymous (10) must be smaller than serve.appendable_max_objects (10)") },
                "\(equal.diagnostics)")
        let defaults = try load("  render_queue: 4\n")
        #expect(defaults.manifest?.serve.appendableMaxObjects == 10_000 && defaults.manifest?.serve.appendableMaxAnonymous == 5_000)
        let half = try load("  appendable_max_objects: 9\n")
        #expect(half.manifest?.serve.appendableMaxAnonymous == 4)
        let none = try load("  appendable_max_objects: 9\n  appendable_max_anonymous: 0\n")
        #expect(none.manifest?.serve.appendableMaxAnonymous == 0 && none.diagnostics.errors.isEmpty, "\(none.diagnostics)")
    }

    // MARK: D. An empty x-oss-object-acl is an invalid value.

    @Test func anEmptyObjectACLIsInvalid() throws {
        let f = try ServiceFixture()
        for value in ["", "  "] {
            let put = f.get("/drop/e.txt", method: "PUT", headers: ["host": "127.0.0.1:9000", "x-oss-object-acl": value], body: Data("x".utf8))
            #expect(put.status == 400 && put.code == "InvalidArgument" && put.text.contains("x-oss-object-acl"), "'\(value)': \(put.status) \(put.text)")
            #expect(f.file("drop/e.txt") == nil)
        }
    }

    // MARK: E. Messages and the log.

    @Test func theAnonymousMultipartCapSaysOneUploadInTheSingular() throws {
        var settings = ServerSettings()
        settings.multipartMaxUploads = 4
        settings.multipartMaxAnonymousUploads = 1
        let f = try ServiceFixture(settings: settings)
        #expect(f.send("POST", Self.drop, "m1", query: [("uploads", nil)], signed: false).status == 200)
        let refused = f.send("POST", Self.drop, "m2", query: [("uploads", nil)], signed: false)
        #expect(refused.code == "TooManyUploads" && refused.text.contains("1 multipart upload initiated without a signature is open"), "\(refused.text)")
    }

    @Test func aWriteOntoAFIFODoesNotBlameTheACL() throws {
        let f = try ServiceFixture()
        let fifo = f.folder.appendingPathComponent("drop/pipe")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        let put = f.get("/drop/pipe", method: "PUT", body: Data("x".utf8))
        #expect(put.status == 403 && put.code == "AccessDenied")
        #expect(!put.text.contains("no right") && put.text.contains("not about the object's ACL"), "\(put.text)")
    }

    @Test func recordsCutAtStartAreLogged() throws {
        var settings = ServerSettings()
        settings.appendableMaxObjects = 3
        settings.appendableMaxAnonymous = 1
        let f = try ServiceFixture()
        var records: [String: AppendableObjects.LegacyRecord] = [:]
        for n in 0..<5 { records["drop\0k\(n)"] = AppendableObjects.LegacyRecord(inode: UInt64(100 + n), size: 1) }
        try JSONEncoder().encode(records).write(to: URL(fileURLWithPath: f.service.manifest.stateFolder + "/" + StateFiles.serveAppendable))
        let log = CapturedLog()
        let started = try Self.restart(f, settings: settings, logger: log.logger)
        // Legacy rows count as anonymous: cut to the anonymous share (1), not only to the total
        // (attack 12, finding 4).
        #expect(started.appendables.counts.records == 1)
        #expect(started.appendables.startup.cut == ["drop/k1", "drop/k2", "drop/k3", "drop/k4"])
        let lines = log.lines.withLockedValue { $0 }
        #expect(lines.contains { $0.contains("4 appendable objects past the bounds") && $0.contains("'drop/k1', 'drop/k2', 'drop/k3', 'drop/k4'") }, "\(lines)")
        #expect(try Self.rows(f).count == 1)
    }

    // MARK: Ranges outside the object, as OSS answers them.

    @Test func aRangeOutsideTheObjectIsIgnoredUnlessStandardBehaviourIsAsked() throws {
        let f = try ServiceFixture()
        let body = Data((0..<100).map { UInt8($0) })
        #expect(f.get("/drop/r.bin", method: "PUT", body: body).status == 200)
        func get(_ range: String, standard: Bool = false) -> ServiceResponse {
            var headers = ["host": "127.0.0.1:9000", "range": range]
            if standard { headers["x-oss-range-behavior"] = "standard" }
            return f.get("/drop/r.bin", headers: headers)
        }
        // OSS's default: a range not inside the object is ignored, the whole object answered.
        for range in ["bytes=0-100", "bytes=50-5000", "bytes=100-200", "bytes=100-", "bytes=-101"] {
            let answer = get(range)
            #expect(answer.status == 200 && answer.body == body && answer.header("Content-Range") == nil, "\(range): \(answer.status)")
        }
        let inside = get("bytes=10-99")
        #expect(inside.status == 206 && inside.body == body[10...] && inside.header("Content-Range") == "bytes 10-99/100")
        #expect(get("bytes=-100").status == 206)
        // x-oss-range-behavior: standard (the V2 SDK's downloader): clamped, or 416.
        let clamped = get("bytes=50-5000", standard: true)
        #expect(clamped.status == 206 && clamped.body == body[50...] && clamped.header("Content-Range") == "bytes 50-99/100")
        let beyond = get("bytes=100-200", standard: true)
        #expect(beyond.status == 416 && beyond.code == "InvalidRange")
        let suffix = get("bytes=-500", standard: true)
        #expect(suffix.status == 206 && suffix.body == body)
        // An empty object: bytes=0- is outside it.
        #expect(f.get("/drop/empty", method: "PUT").status == 200)
        #expect(f.get("/drop/empty", headers: ["host": "127.0.0.1:9000", "range": "bytes=0-"]).status == 200)
        #expect(f.get("/drop/empty", headers: ["host": "127.0.0.1:9000", "range": "bytes=0-", "x-oss-range-behavior": "standard"]).status == 416)
    }
}

extension ServiceFixture {
    /// `send`, to another service on the same fixture (a restarted server).
    func sendTo(_ other: ObjectService, _ method: String, _ bucket: String, _ key: String, query: [(String, String?)], body: Data) -> ServiceResponse {
        var all: [String: String] = ["host": "127.0.0.1:9000", "date": Self.headerDate]
        let parameters = query.map { OSSSignature.Parameter($0.0, $0.1) }
        let stringToSign = OSSSignature.v1StringToSign(method: method, contentMD5: "", contentType: "", dateOrExpires: Self.headerDate, headers: all,
                                                       bucket: bucket, key: key, query: parameters)
        all["authorization"] = "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
        let target = "/" + bucket + "/" + key + "?" + query.map { $0.0 + ($0.1.map { "=" + $0 } ?? "") }.joined(separator: "&")
        return other.handle(ServiceRequest(method: method, target: target, headers: all, body: body))
    }
}
