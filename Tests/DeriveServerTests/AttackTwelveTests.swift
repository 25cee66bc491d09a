import Crypto
import Access
import Confinement
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 12 on `derive serve` (issue #12): serve's state files are its own even when a hard
/// link names a user's file (1, 3), clean leaves a running serve's files (2), the anonymous
/// share holds after a restart (4), a foreign database is not changed by the checks (5).
@Suite(.ownThreads) struct AttackTwelveTests {
    static func scratch() throws -> URL {
        let folder = (try ScratchFolder.make("derive-attack12"))
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("state"), withIntermediateDirectories: true)
        return folder
    }

    static func text(_ path: String) -> String? { FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } }

    // MARK: 1. serve.lock is written only when it is Derive's own file.

    @Test func aHardLinkAtServeLockIsRefusedAndItsOtherNameKept() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let victim = folder.appendingPathComponent("v2").path, state = folder.appendingPathComponent("state").path
        try Data("victim\n".utf8).write(to: URL(fileURLWithPath: victim))
        try FileManager.default.linkItem(atPath: victim, toPath: state + "/" + StateFiles.serveLock)
        do {
            _ = try ServeLock(stateFolder: state)
            Issue.record("a hard-linked serve.lock was opened")
        } catch {
            #expect("\(error)".contains("hard link") && "\(error)".contains(StateFiles.serveLock), "\(error)")
        }
        #expect(Self.text(victim) == "victim\n")
        // clean neither writes nor removes it, and says why.
        let left = ServeStateCleanup.remove(in: state, md5: { Array(Insecure.MD5.hash(data: $0)) })
        #expect(left.contains { $0.contains("hard link") }, "\(left)")
        #expect(Self.text(victim) == "victim\n" && FileManager.default.fileExists(atPath: state + "/" + StateFiles.serveLock))
    }

    /// A symbolic link at serve.lock (to a user's file, or dangling): never followed, written,
    /// created through, or removed, by serve or by clean.
    @Test func aSymbolicLinkAtServeLockIsRefusedAndItsTargetKept() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let state = folder.appendingPathComponent("state").path, lock = state + "/" + StateFiles.serveLock
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let victim = folder.appendingPathComponent("victim").path, absent = folder.appendingPathComponent("absent").path
        try Data("victim\n".utf8).write(to: URL(fileURLWithPath: victim))
        for target in [victim, absent] {
            try? FileManager.default.removeItem(atPath: lock)
            try FileManager.default.createSymbolicLink(atPath: lock, withDestinationPath: target)
            do {
                _ = try ServeLock(stateFolder: state)
                Issue.record("a symbolic link at serve.lock was opened (to \(target))")
            } catch {
                #expect("\(error)".contains("symbolic link") && "\(error)".contains(StateFiles.serveLock), "\(error)")
            }
            let left = ServeStateCleanup.remove(in: state, md5: { Array(Insecure.MD5.hash(data: $0)) })
            #expect(left.contains { $0.contains("symbolic link") }, "\(left)")
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: lock)) == target)
            #expect(Self.text(victim) == "victim\n" && !FileManager.default.fileExists(atPath: absent))
        }
    }

    @Test func aForeignFileAtServeLockIsNotOverwrittenNorShown() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let state = folder.appendingPathComponent("state").path, lock = state + "/" + StateFiles.serveLock
        for foreign in ["my important notes\n", "pid 12\u{1B}]0;owned\u{07}\n", "pid 1\npid 2\n"] {
            try Data(foreign.utf8).write(to: URL(fileURLWithPath: lock))
            #expect(throws: (any Error).self) { _ = try ServeLock(stateFolder: state) }
            #expect(Self.text(lock) == foreign)
        }
        #expect(ServeLockFile.isHolderLine(Array("pid 42\n".utf8)) && ServeLockFile.isHolderLine(Array("pid 42 (derive clean)\n".utf8)))
        #expect(!ServeLockFile.isHolderLine(Array("pid \u{1B}[2J\n".utf8)) && !ServeLockFile.isHolderLine(Array("pid ".utf8)))
        // Derive's own shapes are taken: empty (a stop before the line was written), or a line.
        for own in ["", "pid 99999\n"] {
            try Data(own.utf8).write(to: URL(fileURLWithPath: lock))
            let held = try ServeLock(stateFolder: state)
            #expect(Self.text(lock) == "pid \(getpid())\n")
            withExtendedLifetime(held) {}
        }
    }

    // MARK: 1, 3. The metadata database and its journals: one name each, or refused.

    static func makeDatabase(_ path: String) throws {
        let store = try ObjectMetadataStore(path: path)
        try store.write(bucket: "b", key: ObjectKey("k"), identity: ObjectFileIdentity(device: 1, inode: 2, size: 3, modified: 4),
                        metadata: ObjectMetadata(headers: ["content-type": "text/x-a"], etag: "\"E\"", lastModified: 5))
    }

    @Test func aHardLinkAtAJournalIsRefusedAndItsOtherNameKept() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        try Self.makeDatabase(path)
        for suffix in ["-shm", "-wal", "-journal"] {
            for name in StateFiles.journalSuffixes { try? FileManager.default.removeItem(atPath: path + name) }
            let victim = folder.appendingPathComponent("victim\(suffix)").path
            try Data("SHM VICTIM precious".utf8).write(to: URL(fileURLWithPath: victim))
            try FileManager.default.linkItem(atPath: victim, toPath: path + suffix)
            do {
                _ = try ObjectMetadataStore(path: path)
                Issue.record("opened with a hard link at \(suffix)")
            } catch {
                #expect("\(error)".contains(path + suffix) && "\(error)".contains("hard link"), "\(error)")
            }
            #expect(Self.text(victim) == "SHM VICTIM precious", "\(suffix)")
            #expect(FileManager.default.fileExists(atPath: path + suffix))
        }
    }

    /// `cp -al`: two projects' state folders share one database file; neither serve opens it.
    @Test func aDatabaseSharedThroughAHardLinkIsRefused() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        try Self.makeDatabase(path)
        let copy = folder.appendingPathComponent("copy.sqlite").path
        try FileManager.default.linkItem(atPath: path, toPath: copy)
        let before = FileManager.default.contents(atPath: path)
        #expect(throws: MetadataDatabaseError.self) { _ = try ObjectMetadataStore(path: path) }
        #expect(throws: MetadataDatabaseError.self) { _ = try ObjectMetadataStore(path: copy) }
        #expect(FileManager.default.contents(atPath: path) == before)
        // One name again: opened, with its records.
        try FileManager.default.removeItem(atPath: copy)
        let store = try ObjectMetadataStore(path: path)
        #expect(store.read(bucket: "b", key: try ObjectKey("k"), identity: ObjectFileIdentity(device: 1, inode: 2, size: 3, modified: 4))?.etag == "\"E\"")
    }

    // MARK: Known: the file SQLite opens is the file checked.

    /// A file swapped in between the check and SQLite's open (the window of a by-name open).
    @Test func aFileSwappedInAfterTheCheckIsRefused() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        try Self.makeDatabase(path)
        let checked = try MetadataDatabaseOwnership.open(path)
        defer { DatabasePins.release(checked.file) }
        // The swap: serve's file moved away, another database renamed into its place.
        let other = folder.appendingPathComponent("other.sqlite").path
        try DatabaseQueue(path: other, configuration: .patientTest).write { try $0.execute(sql: "CREATE TABLE object_records(bucket, key, device, inode, size, modified, etag, last_modified, headers)") }
        try FileManager.default.moveItem(atPath: path, toPath: folder.appendingPathComponent("moved.sqlite").path)
        try FileManager.default.moveItem(atPath: other, toPath: path)
        let queue = try DatabaseQueue(path: path, configuration: .patientTest)
        do {
            _ = try MetadataDatabaseOwnership.verify(queue, checked: checked, path: path)
            Issue.record("SQLite's file was not the one checked, and it was accepted")
        } catch {
            #expect("\(error)".contains("was replaced"), "\(error)")
        }
        // Unswapped: the same steps pass.
        let again = try MetadataDatabaseOwnership.open(path)
        defer { DatabasePins.release(again.file) }
        #expect(try MetadataDatabaseOwnership.verify(DatabaseQueue(path: path, configuration: .patientTest), checked: again, path: path) == true)
    }

    // MARK: 5. A foreign database's log is not replayed by the checks.

    @Test func aForeignDatabaseWithAWriteAheadLogIsRefusedUnchanged() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        let other = folder.appendingPathComponent("other.db").path
        // A WAL database whose table is still only in its log, copied while its writer is open.
        let writer = try DatabaseQueue(path: other, configuration: .patientTest)
        try writer.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            try db.execute(sql: "CREATE TABLE accounts(id, bal); INSERT INTO accounts VALUES (1, 100)")
        }
        try FileManager.default.copyItem(atPath: other, toPath: path)
        try FileManager.default.copyItem(atPath: other + "-wal", toPath: path + "-wal")
        let main = FileManager.default.contents(atPath: path), log = FileManager.default.contents(atPath: path + "-wal")
        #expect((log?.count ?? 0) > 0)
        do {
            _ = try ObjectMetadataStore(path: path)
            Issue.record("a foreign database with a log was opened")
        } catch {
            #expect("\(error)".contains("write-ahead log"), "\(error)")
        }
        #expect(FileManager.default.contents(atPath: path) == main && FileManager.default.contents(atPath: path + "-wal") == log)
        withExtendedLifetime(writer) {}
    }

    /// A new database is stamped in its main file, not only in a log: a stop before the first
    /// checkpoint does not make it look foreign at the next start.
    @Test func aNewDatabaseCarriesItsStampInTheMainFile() throws {
        let folder = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state/" + StateFiles.objectMetadata).path
        let store = try ObjectMetadataStore(path: path)
        let checked = try MetadataDatabaseOwnership.open(path)
        DatabasePins.release(checked.file)
        #expect(checked.application == MetadataDatabaseOwnership.applicationID)
        withExtendedLifetime(store) {}
    }
}

/// Attack 12, findings 2 and 4, against a service.
@Suite(.ownThreads) struct AttackTwelveServiceTests {
    static let drop = AttackTenTests.drop

    /// A running serve holds serve.lock: clean keeps its uploads in progress and its render
    /// cache, and says so; once it stops, clean removes them.
    @Test func cleanKeepsARunningServersUploadsAndCache() throws {
        let f = try ServiceFixture()
        let state = f.service.manifest.stateFolder
        var serving: ServeLock? = try ServeLock(stateFolder: state)
        let initiated = f.get("/drop/big?uploads", method: "POST")
        let text = initiated.text
        let id = try #require(text.range(of: "<UploadId>").flatMap { start in
            text.range(of: "</UploadId>").map { String(text[start.upperBound..<$0.lowerBound]) } })
        let part = f.get("/drop/big?partNumber=1&uploadId=\(id)", method: "PUT", body: Data(repeating: 7, count: 2000))
        #expect(part.status == 200)
        let cached = state + "/" + StateFiles.serveCache + "/ab/ab" + String(repeating: "0", count: 62)
        try FileManager.default.createDirectory(atPath: (cached as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // An entry as serve writes it (clean removes only those): `<content type> <MD5 of the body>\n<body>`.
        let body = Data("render".utf8)
        let md5 = Insecure.MD5.hash(data: body).map { String(format: "%02x", $0) }.joined()
        try (Data("image/png \(md5)\n".utf8) + body).write(to: URL(fileURLWithPath: cached))
        let left = ServeStateCleanup.remove(in: state, md5: { Array(Insecure.MD5.hash(data: $0)) })
        #expect(left.contains { $0.contains("a derive serve is running") && $0.contains(StateFiles.serveUploads) && $0.contains(StateFiles.serveCache) }, "\(left)")
        #expect(FileManager.default.fileExists(atPath: state + "/" + StateFiles.serveUploads + "/" + id))
        #expect(FileManager.default.fileExists(atPath: cached))
        let etag = try #require(part.header("ETag"))
        let complete = f.get("/drop/big?uploadId=\(id)", method: "POST",
                             body: Data("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\(etag)</ETag></Part></CompleteMultipartUpload>".utf8))
        #expect(complete.status == 200, "\(complete.text)")
        #expect(f.file("drop/big")?.count == 2000)
        // Stopped: clean removes them, and the lock.
        withExtendedLifetime(serving) {}
        serving = nil
        // A child another test spawns at this moment holds a copy of the lock's descriptor
        // until its exec closes it (O_CLOEXEC); flock is released when the last copy goes.
        var remaining = ServeStateCleanup.remove(in: state, md5: { Array(Insecure.MD5.hash(data: $0)) })
        for _ in 0..<100 where remaining.contains(where: { $0.contains("a derive serve is running") }) {
            usleep(50_000)
            remaining = ServeStateCleanup.remove(in: state, md5: { Array(Insecure.MD5.hash(data: $0)) })
        }
        #expect(remaining.isEmpty, "\(remaining)")
        #expect(!FileManager.default.fileExists(atPath: cached) && !FileManager.default.fileExists(atPath: state + "/" + StateFiles.serveLock))
    }

    /// While clean holds the lock no serve starts, and the refusal says it is clean.
    @Test func noServerStartsWhileCleanRuns() throws {
        let folder = (try ScratchFolder.make("derive-attack12"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let cleaning = try ServeLockFile(folder: folder.path, note: " (derive clean)")
        do {
            _ = try ServeLock(stateFolder: folder.path)
            Issue.record("a serve started while clean held the lock")
        } catch {
            #expect("\(error)".contains("derive clean (pid \(getpid()))"), "\(error)")
        }
        cleaning.remove()
    }

    /// A lowered `appendable_max_anonymous`: anonymous rows are cut to their share at start, so
    /// a signed caller finds a slot.
    @Test func aLoweredAnonymousShareIsEnforcedAtStart() throws {
        var settings = ServerSettings()
        settings.appendableMaxObjects = 10
        settings.appendableMaxAnonymous = 5
        let f = try ServiceFixture(settings: settings)
        for n in 1...5 { #expect(AttackTenTests.append(f.service, "a\(n)", 0, "x", fixture: f).status == 200) }
        var lowered = ServerSettings()
        lowered.appendableMaxObjects = 5
        lowered.appendableMaxAnonymous = 2
        let log = CapturedLog()
        let again = try AttackTenTests.restart(f, settings: lowered, logger: log.logger)
        #expect(again.appendables.anonymousCount == 2 && again.appendables.counts.records == 2)
        #expect(AttackTenTests.append(again, "sig1", 0, "S", signed: true, fixture: f).status == 200)
        #expect(AttackTenTests.append(again, "a1", 1, "y", fixture: f).status == 200, "the first in byte order is kept")
        let lines = log.lines.withLockedValue { $0 }
        #expect(lines.contains { $0.contains("3 appendable objects past the bounds") && $0.contains("appendable_max_anonymous 2") && $0.contains("'drop/a3'") }, "\(lines)")
    }

    /// The legacy record file is read with its names as bytes (NFC and NFD are two objects),
    /// its rows count against the anonymous share, and only rows added are counted.
    @Test func theLegacyRecordFileKeepsEquivalentSpellingsApart() throws {
        var settings = ServerSettings()
        settings.appendableMaxObjects = 10
        settings.appendableMaxAnonymous = 2
        let f = try ServiceFixture(settings: settings)
        #expect(AttackTenTests.append(f.service, "kept", 0, "k", signed: true, fixture: f).status == 200)
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
        try f.write("drop/" + nfc, "12")
        try f.write("drop/" + nfd, "345")
        let file = f.service.manifest.stateFolder + "/" + StateFiles.serveAppendable
        func entry(_ key: String, _ path: String) -> String {
            let status = AttackTenTests.status(f.folder.appendingPathComponent("drop/" + path))
            return "\"drop\\u0000\(key)\":{\"inode\":\(status.inode),\"size\":\(status.size)}"
        }
        let kept = AttackTenTests.status(f.folder.appendingPathComponent("drop/kept"))
        let json = "{" + entry(nfc, nfc) + ", " + entry(nfd, nfd) + ",\"drop\\u0000kept\":{\"inode\":\(kept.inode),\"size\":1}}"
        try Data(json.utf8).write(to: URL(fileURLWithPath: file))
        let log = CapturedLog()
        let started = try AttackTenTests.restart(f, settings: settings, logger: log.logger)
        #expect(log.lines.withLockedValue { $0 }.contains { $0.contains("carried 2 appendable objects over") }, "\(log.lines.withLockedValue { $0 })")
        #expect(try AttackTenTests.rows(f).count == 3)
        #expect(AttackTenTests.append(started, "caf%C3%A9", 2, "x", fixture: f).status == 200)
        #expect(AttackTenTests.append(started, "cafe%CC%81", 3, "y", fixture: f).status == 200)
        #expect(f.file("drop/" + nfc) == Data("12x".utf8) && f.file("drop/" + nfd) == Data("345y".utf8))
        // The signed row stays signed: the anonymous share (2) is full, a signed caller still gets in.
        #expect(started.appendables.anonymousCount == 2)
        #expect(AttackTenTests.append(started, "sig2", 0, "s", signed: true, fixture: f).status == 200)
    }

    @Test func theLegacyParserTakesNamesAsBytes() {
        let parsed = AppendableObjects.LegacyFile.entries(Array("{\"a\\u0000caf\\u00e9\":{\"inode\":1,\"size\":2},\"a\\u0000cafe\u{301}\":{\"size\":3,\"inode\":4},\"a\\u0000\\ud83d\\ude00\":{\"inode\":5,\"size\":6}}".utf8))
        #expect(parsed?.count == 3)
        #expect(parsed?[0].0 == Array("a\0caf\u{E9}".utf8) && parsed?[1].0 == Array("a\0cafe\u{301}".utf8) && parsed?[2].0 == Array("a\0😀".utf8))
        #expect(parsed?[1].1 == AppendableObjects.LegacyRecord(inode: 4, size: 3))
        #expect(AppendableObjects.LegacyFile.entries(Array("{}".utf8))?.isEmpty == true)
        for bad in ["", "[]", "{\"a\":1}", "{\"a\":{\"inode\":1}}", "{\"a\":{\"inode\":1,\"size\":2}", "{\"a\\q\":{\"inode\":1,\"size\":2}}",
                    // Cut short, lone surrogates, trailing bytes: refused, never a crash.
                    "{", "{\"a", "{\"a\\", "{\"a\\u00", "{\"a\\ud800\":{\"inode\":1,\"size\":2}}", "{\"a\\udc00\":{\"inode\":1,\"size\":2}}",
                    "{\"a\\ud83d\\u0041\":{\"inode\":1,\"size\":2}}", "{} x", "{\"a\":{\"inode\":1,\"size\":2},}", String(repeating: "{", count: 100_000)] {
            #expect(AppendableObjects.LegacyFile.entries(Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test func logsShowKeysByteForByte() {
        #expect(AppendableObjects.shown(Array("caf\u{E9}".utf8)) == "caf%C3%A9")
        #expect(AppendableObjects.shown(Array("cafe\u{301}".utf8)) == "cafe%CC%81")
        #expect(AppendableObjects.shown(Array("a b%\n".utf8)) == "a b%25%0A")
        #expect(ObjectService.count(1, "appendable object") == "1 appendable object" && ObjectService.count(3, "appendable object") == "3 appendable objects")
    }
}
