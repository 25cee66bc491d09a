import Confinement
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Manifest
import NIOConcurrencyHelpers
import ProcessLanguage
import Testing
import TestSupport
@testable import DeriveServer

/// Issue #12, the open points after attack 9: listings stop when their client leaves, an
/// anonymous listing pays for the private keys it walks past and resumes after them without
/// naming them, `serve: list_max_concurrent`, forbid-overwrite from Initiate kept for Complete,
/// HEAD with a Range, and the bounded table of appendable objects.
@Suite(.ownThreads) struct ObjectAPIFollowUpTests {
    // MARK: 1. A listing whose client disconnected stops walking.

    @Test func aListingWhoseClientLeftStopsBeforeItsWalk() throws {
        let f = try ServiceFixture()
        guard case .work(let job) = f.service.begin(ServiceRequest(method: "GET", target: "/site/?max-keys=5", headers: ["host": "127.0.0.1:9000"])) else {
            Issue.record("a listing must be a job the HTTP front can cancel")
            return
        }
        #expect(f.service.listingsInFlight == 1)
        job.cancellation.cancel()   // the client went away before the job ran
        let answer = job.run()
        #expect(answer.status == 503 && answer.text.contains("cancelled"), "\(answer.status) \(answer.text)")
        #expect(f.service.listingsInFlight == 0)
        // Not cancelled, the same request lists.
        #expect(f.get("/site/?max-keys=5").status == 200)
    }

    @Test func aCancelledWalkStopsAtTheNextEntry() throws {
        let root = try ListingBudgetTests.tree(small: 10, big: 5_000)
        defer { try? FileManager.default.removeItem(at: root) }
        final class Calls: @unchecked Sendable { var count = 0 }
        let calls = Calls()
        var listing = try ListingBudgetTests.listing(root, maxKeys: 1000, budget: 100_000)
        listing.cancelled = { calls.count += 1; return calls.count > 20 }
        let page = listing.list()
        #expect(page.cancelled && page.entriesRead <= 20, "read \(page.entriesRead)")
        #expect(!page.truncated && page.resume == nil)
    }

    @Test func listPartsAndListMultipartUploadsAreCancellableJobs() throws {
        let f = try ServiceFixture()
        let id = try #require(f.send("POST", "drop", "big.bin", query: [("uploads", nil)], signed: false).values("UploadId").first)
        #expect(f.send("PUT", "drop", "big.bin", query: [("partNumber", "1"), ("uploadId", id)], body: Data("part".utf8), signed: false).status == 200)
        for target in ["/drop/big.bin?uploadId=\(id)", "/drop/?uploads"] {
            guard case .work(let job) = f.service.begin(ServiceRequest(method: "GET", target: target, headers: ["host": "127.0.0.1:9000"])) else {
                Issue.record("\(target) must be a job the HTTP front can cancel")
                continue
            }
            job.cancellation.cancel()
            let answer = job.run()
            #expect(answer.status == 503 && answer.text.contains("cancelled"), "\(target): \(answer.text)")
        }
        #expect(f.get("/drop/big.bin?uploadId=\(id)").values("PartNumber") == ["1"])
    }

    // MARK: 2. Hidden keys are charged; pages resume after them without naming them.

    static let hiddenManifest = """
        version: 1
        access_keys:
          - id: AKIDEXAMPLE
            secret_env: DERIVE_TEST_SECRET
        buckets:
          pub:
            path: pub
            acl: public-read
            objects:
              - match: "hidden/**"
                acl: private
          other:
            path: other
            acl: public-read
        """

    /// 20 folders of 50 private files between two public ones.
    static func hiddenFixture(budget: Int) throws -> ServiceFixture {
        var files = ["pub/a.txt": "text:a", "pub/z.txt": "text:z", "other/o.txt": "text:o"]
        for folder in 0..<20 {
            for file in 0..<50 { files[String(format: "pub/hidden/%02d/f%03d.txt", folder, file)] = "text:secret" }
        }
        var settings = ServerSettings()
        settings.listEntryBudget = budget
        return try ServiceFixture(manifest: hiddenManifest, files: files, settings: settings)
    }

    @Test func anAnonymousListingPaysForHiddenKeysAndResumesWithoutNamingThem() throws {
        let f = try Self.hiddenFixture(budget: 200)
        // V1: every page within its budget, the walk goes on past 1 000 private keys, and no
        // NextMarker names one of them (a resume marker is sealed).
        var keys: [String] = [], marker = "", pages = 0
        while pages < 40 {
            pages += 1
            let page = f.send("GET", "pub", query: [("marker", marker), ("max-keys", "1000")], signed: false)
            #expect(page.status == 200, "\(page.text)")
            keys += page.values("Key")
            guard page.values("IsTruncated") == ["true"], let next = page.values("NextMarker").first else { break }
            #expect(next.hasPrefix(ListingTokens.markerPrefix) && !next.contains("hidden"), "\(next)")
            if let sealed = next.split(separator: ".").last, let opened = Base64URL.decode(String(sealed)) {
                #expect(!String(decoding: opened, as: UTF8.self).contains("hidden"))
            }
            marker = next
        }
        #expect(keys == ["a.txt", "z.txt"], "\(keys)")
        #expect(pages > 2 && pages < 40, "\(pages) pages")
        // V2: the same with continuation tokens.
        var v2Keys: [String] = [], token = "", v2Pages = 0
        while v2Pages < 40 {
            v2Pages += 1
            let page = f.send("GET", "pub", query: [("list-type", "2"), ("continuation-token", token), ("max-keys", "1000")], signed: false)
            #expect(page.status == 200, "\(page.text)")
            v2Keys += page.values("Key")
            guard page.values("IsTruncated") == ["true"], let next = page.values("NextContinuationToken").first else { break }
            if let opened = Base64URL.decode(next) { #expect(!String(decoding: opened, as: UTF8.self).contains("hidden")) }
            token = next
        }
        #expect(v2Keys == ["a.txt", "z.txt"] && v2Pages > 2, "\(v2Keys) in \(v2Pages)")
        // A signed caller sees every key (within its own budget, pages of the same size).
        let signed = f.send("GET", "pub", query: [("max-keys", "1000")])
        #expect(signed.values("Key").first == "a.txt" && signed.values("Key").dropFirst().allSatisfy { $0.hasPrefix("hidden/") })
    }

    @Test func hiddenKeysCountAgainstThePageBudget() throws {
        let root = try ListingBudgetTests.tree(small: 10, big: 0)
        defer { try? FileManager.default.removeItem(at: root) }
        for index in 0..<100 { _ = FileManager.default.createFile(atPath: root.appendingPathComponent("a/h\(index)").path, contents: Data()) }
        var listing = BucketListing(folder: try ConfinedFolder(path: root.path), prefix: [], delimiter: [], marker: [], maxKeys: 1000) { key in
            !key.string.contains("/h")
        }
        listing.budget = 150
        let page = listing.list()
        // 2 + 110 entries read, then hidden keys charged until the budget: truncated at a hidden key.
        #expect(page.entriesRead == 150 && page.truncated && !page.resumesAtLastItem, "\(page.entriesRead)")
        #expect(page.items.count == 10)
        let resume = String(decoding: try #require(page.resume), as: UTF8.self)
        #expect(resume.hasPrefix("a/h"))
    }

    @Test func tokensAreSealedPerBucketAndServer() throws {
        let f = try Self.hiddenFixture(budget: 200)
        let first = f.send("GET", "pub", query: [("list-type", "2"), ("max-keys", "1")], signed: false)
        let token = try #require(first.values("NextContinuationToken").first)
        #expect(f.send("GET", "pub", query: [("list-type", "2"), ("continuation-token", token)], signed: false).status == 200)
        // Another bucket, a tampered token, the old plain base64 form: refused, never a position.
        let elsewhere = f.send("GET", "other", query: [("list-type", "2"), ("continuation-token", token)], signed: false)
        #expect(elsewhere.status == 400 && elsewhere.code == "InvalidArgument")
        var bytes = Array(try #require(Base64URL.decode(token)))
        bytes[bytes.count / 2] ^= 1
        #expect(f.send("GET", "pub", query: [("list-type", "2"), ("continuation-token", Base64URL.encode(Data(bytes)))], signed: false).status == 400)
        #expect(f.send("GET", "pub", query: [("list-type", "2"), ("continuation-token", Base64URL.encode("hidden/00/f000.txt"))], signed: false).status == 400)
        // A V1 marker that merely looks like a resume marker is a key like any other.
        let fake = f.send("GET", "other", query: [("marker", ListingTokens.markerPrefix + "nothing")], signed: false)
        #expect(fake.status == 200 && fake.values("Key") == ["o.txt"], "\(fake.text)")
    }

    // MARK: 3. The listing concurrency cap is a documented serve: key.

    @Test func listMaxConcurrentIsAServeKey() throws {
        let folder = (try ScratchFolder.make("derive-listcap"))
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("b"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func load(_ value: String) throws -> ManifestLoader.Result {
            try Data("version: 1\nbuckets:\n  b: {path: b, acl: public-read}\nserve:\n  list_max_concurrent: \(value)\n".utf8)
                .write(to: folder.appendingPathComponent("derive.yaml"))
            return ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path)
        }
        let one = try #require(try load("1").manifest)
        #expect(one.serve.listMaxConcurrent == 1 && ServerSettings(one).listConcurrency == 1)
        #expect(ServerSettings(try #require(try load("3").manifest)).listConcurrency == 3)
        for bad in ["0", "4", "two"] {
            let result = try load(bad)
            #expect(result.diagnostics.errors.contains { $0.message.contains("list_max_concurrent") }, "\(bad)")
        }
        #expect(ManifestSchema.serve.contains { $0.name == "list_max_concurrent" })
        // And the page budget: serve: list_max_entries.
        try Data("version: 1\nbuckets:\n  b: {path: b, acl: public-read}\nserve:\n  list_max_entries: 500\n".utf8)
            .write(to: folder.appendingPathComponent("derive.yaml"))
        let budget = try #require(ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path).manifest)
        #expect(ServerSettings(budget).listEntryBudget == 500 && ServerSettings(one).listEntryBudget == 100_000)
        // With 1, a second listing while one walks is 503 SlowDown naming the key.
        var settings = ServerSettings()
        settings.listConcurrency = 1
        let f = try ServiceFixture(settings: settings)
        guard case .work(let job) = f.service.begin(ServiceRequest(method: "GET", target: "/site/", headers: ["host": "127.0.0.1:9000"])) else {
            Issue.record("expected a listing job")
            return
        }
        let second = f.get("/site/")
        #expect(second.status == 503 && second.code == "SlowDown" && second.text.contains("list_max_concurrent"), "\(second.text)")
        #expect(job.run().status == 200)
        #expect(f.get("/site/").status == 200)
    }

    // MARK: 4. x-oss-forbid-overwrite on Initiate holds at Complete.

    @Test func forbidOverwriteFromInitiateHoldsAtComplete() throws {
        let f = try ServiceFixture()
        let part = Data("MP".utf8)
        let body = Data("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"\(MultipartTests.etag(part))\"</ETag></Part></CompleteMultipartUpload>".utf8)
        func upload(_ key: String) throws -> String {
            let id = try #require(f.send("POST", "drop", key, query: [("uploads", nil)], headers: ["x-oss-forbid-overwrite": "true"], signed: false)
                .values("UploadId").first)
            #expect(f.send("PUT", "drop", key, query: [("partNumber", "1"), ("uploadId", id)], body: part, signed: false).status == 200)
            return id
        }
        // oss2's resumable_upload sends the caller's headers on Initiate only.
        let id = try upload("kept.txt")
        #expect(f.send("PUT", "drop", "kept.txt", body: Data("meanwhile".utf8), signed: false).status == 200)
        let done = f.send("POST", "drop", "kept.txt", query: [("uploadId", id)], body: body, signed: false)
        #expect(done.status == 409 && done.code == "FileAlreadyExists", "\(done.text)")
        #expect(f.file("drop/kept.txt") == Data("meanwhile".utf8))
        // Complete's own header decides when it sends one (OSS: set it to false to overwrite).
        let lifted = f.send("POST", "drop", "kept.txt", query: [("uploadId", id)], headers: ["x-oss-forbid-overwrite": "false"], body: body, signed: false)
        #expect(lifted.status == 200 && f.file("drop/kept.txt") == part, "\(lifted.text)")
        // Nothing in the way: the upload completes.
        let free = try upload("free.txt")
        #expect(f.send("POST", "drop", "free.txt", query: [("uploadId", free)], body: body, signed: false).status == 200)
        #expect(f.file("drop/free.txt") == part)
    }

    // MARK: 5. HEAD ignores Range, as OSS's HeadObject (no Range in its API) and RFC 9110 §14.2.

    @Test func headWithARangeAnswersWhatAGetWithoutOneAnswers() throws {
        let f = try Hostile.fixture()
        _ = ObjectSemanticsTests.put(f, "r.bin", headers: ["content-type": "application/x-test", "x-oss-meta-a": "1"])
        let get = ObjectSemanticsTests.get(f, "r.bin")
        func comparable(_ response: ServiceResponse) -> [String] {
            response.headers.filter { $0.0.lowercased() != "x-oss-request-id" }.map { "\($0.0.lowercased()): \($0.1)" }.sorted()
        }
        for range in ["bytes=0-9", "bytes=990-", "bytes=-10", "bytes=5000-6000", "bytes=0-1,5-6", "bytes=abc"] {
            let head = ObjectSemanticsTests.get(f, "r.bin", ["range": range], method: "HEAD")
            #expect(head.status == 200 && head.body.isEmpty, "\(range)")
            #expect(head.header("Content-Length") == "1000" && head.header("Content-Range") == nil, "\(range)")
            #expect(comparable(head) == comparable(get), "\(range)")
        }
    }

    // MARK: 6. The table of appendable objects is bounded.

    @Test func transientVersionsOfAppendableObjectsAreBounded() throws {
        final class Clock: @unchecked Sendable { var now = 1_000 }
        let clock = Clock()
        let table = try AppendableObjects(store: ObjectMetadataStore(path: nil), legacyFile: nil, clock: { clock.now })
        let bucket = try #require(try ServiceFixture().service.manifest.bucket(named: "drop"))
        func status(_ n: Int) -> FileStatus { FileStatus(size: Int64(n), mtime: Int64(n), ctime: 0, inode: UInt64(n)) }
        // Every key appended twice: each leaves its replaced version behind.
        for n in 0..<3_000 {
            let key = try ObjectKey("k\(n)")
            try table.prepare(bucket, key, next: status(2 * n + 1), creating: false, anonymous: false)
            try table.commit(bucket, key, linked: status(2 * n + 1), replaced: status(2 * n), anonymous: false)
        }
        #expect(table.counts.transient <= AppendableObjects.maxTransient, "\(table.counts.transient)")
        // Once they expired, the next append leaves its own version only.
        clock.now += AppendableObjects.retiredSeconds + 1
        let last = try ObjectKey("last")
        try table.commit(bucket, last, linked: status(10_001), replaced: status(10_000), anonymous: false)
        #expect(table.counts.transient == 1)
        #expect(table.isAppendable(bucket, last, status(10_000)))
    }

    /// Attack 9, finding 3: past 10 000 appendable objects an append answered 200 and made an
    /// object that could not be appended to. It is now refused before anything is written.
    @Test func aFullTableRefusesANewAppendableObjectBeforeWriting() throws {
        let f = try ServiceFixture()
        let folder = f.folder.appendingPathComponent("drop/full")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var records: [String: AppendableObjects.LegacyRecord] = [:]
        for n in 0..<AppendableObjects.Limits().total {
            let path = folder.appendingPathComponent("\(n)").path
            _ = FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
            var info = stat()
            stat(path, &info)
            records["drop\0full/\(n)"] = AppendableObjects.LegacyRecord(inode: UInt64(info.st_ino), size: 1)
        }
        try FileManager.default.createDirectory(atPath: f.service.manifest.stateFolder, withIntermediateDirectories: true)
        try JSONEncoder().encode(records).write(to: URL(fileURLWithPath: f.service.manifest.stateFolder + "/" + StateFiles.serveAppendable))
        let now = f.now
        let service = try MultipartBoundsTests.service(f, clock: { now })
        func append(_ key: String, _ position: Int) -> ServiceResponse {
            service.handle(ServiceRequest(method: "POST", target: "/drop/\(key)?append&position=\(position)", headers: ["host": "127.0.0.1:9000"],
                                          body: Data("y".utf8)))
        }
        let refused = append("new.txt", 0)
        #expect(refused.status == 400 && refused.text.contains("appendable objects"), "\(refused.status) \(refused.text)")
        #expect(f.file("drop/new.txt") == nil)
        // An existing appendable object still takes appends; a freed slot takes a new one. (The
        // carried rows are anonymous: cut to their share at start, the first names in byte order
        // kept, attack 12, finding 4.)
        #expect(append("full/1", 1).status == 200)
        #expect(append("full/7", 1).status == 409)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("8"))
        // Signed: the carried-over records count as anonymous, so their share is full (attack 10, B).
        // Each refusal looks at a bounded batch of rows (attack 11, 2): the stale row is found
        // within a round of the table.
        var signed = f.sendTo(service, "POST", "drop", "new.txt", query: [("append", nil), ("position", "0")], body: Data("y".utf8))
        for _ in 0...(AppendableObjects.Limits().total / AppendableObjects.sweepBatch) where signed.status == 400 {
            signed = f.sendTo(service, "POST", "drop", "new.txt", query: [("append", nil), ("position", "0")], body: Data("y".utf8))
        }
        #expect(signed.status == 200)
        #expect(append("new.txt", 1).status == 200 && f.file("drop/new.txt") == Data("yy".utf8))
    }

    @Test func aHandWrittenAppendableFileBeyondTheBoundIsCut() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("derive-appendable-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        var records: [String: AppendableObjects.LegacyRecord] = [:]
        let total = AppendableObjects.Limits().total
        for n in 0..<(total + 50) { records["b\0k\(n)"] = AppendableObjects.LegacyRecord(inode: UInt64(n), size: 1) }
        try JSONEncoder().encode(records).write(to: file)
        // Legacy rows count as anonymous: cut to the anonymous share (attack 12, finding 4).
        #expect(try AppendableObjects(store: ObjectMetadataStore(path: nil), legacyFile: file.path).counts.records == AppendableObjects.Limits().anonymous)
    }
}
