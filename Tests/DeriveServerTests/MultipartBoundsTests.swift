import Access
import Crypto
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Issue 12 leftovers: abandoned multipart uploads are bounded per server (count and bytes,
/// `serve: multipart_max_uploads` / `multipart_max_bytes`) and expire (`multipart_expiry_hours`),
/// Complete never mixes a part's old and new bytes, and ListMultipartUploads pages as OSS does.
@Suite(.ownThreads) struct MultipartBoundsTests {
    static func initiate(_ f: ServiceFixture, _ key: String, bucket: String = "photos") -> ServiceResponse {
        f.send("POST", bucket, key, query: [("uploads", nil)])
    }

    static func part(_ f: ServiceFixture, _ key: String, _ id: String, _ number: Int, _ body: Data) -> ServiceResponse {
        f.send("PUT", "photos", key, query: [("partNumber", String(number)), ("uploadId", id)],
               headers: ["content-length": String(body.count)], body: body)
    }

    @Test func uploadsOpenAtOnceAreBoundedPerServer() throws {
        var settings = ServerSettings()
        settings.multipartMaxUploads = 2
        let f = try ServiceFixture(settings: settings)
        #expect(Self.initiate(f, "a.bin").status == 200)
        #expect(Self.initiate(f, "b.bin").status == 200)
        let third = Self.initiate(f, "c.bin")
        #expect(third.status == 400 && third.code == "TooManyUploads" && third.text.contains("multipart_max_uploads"), "\(third.text)")
    }

    /// Attack 7, finding 5: 100 anonymous Initiates in a public-read-write bucket used up the
    /// server-wide cap, and every multipart upload failed for 7 days, signed ones included.
    /// Anonymous uploads have their own, smaller budgets (count and bytes); signed ones keep the rest.
    @Test func anonymousUploadsCannotUseUpTheBudgetOfSignedOnes() throws {
        var settings = ServerSettings()
        settings.multipartMaxUploads = 4
        settings.multipartMaxAnonymousUploads = 2
        settings.multipartMaxBytes = 400_000
        settings.multipartMaxAnonymousBytes = 150_000
        let f = try ServiceFixture(settings: settings)
        func anonymous(_ key: String) -> ServiceResponse { f.send("POST", "drop", key, query: [("uploads", nil)], signed: false) }
        let a = try #require(anonymous("a.bin").values("UploadId").first)
        #expect(anonymous("b.bin").status == 200)
        let third = anonymous("c.bin")
        #expect(third.status == 400 && third.code == "TooManyUploads" && third.text.contains("multipart_max_anonymous_uploads"), "\(third.text)")
        // Signed callers keep their headroom, in a private bucket and in the same public one.
        let s = try #require(Self.initiate(f, "s.bin").values("UploadId").first)
        #expect(Self.initiate(f, "t.bin", bucket: "drop").status == 200)
        #expect(Self.initiate(f, "u.bin").code == "TooManyUploads")
        // Bytes: anonymous uploads' parts together at most their budget; signed ones keep the rest.
        func anonymousPart(_ number: Int, _ count: Int) -> ServiceResponse {
            f.send("PUT", "drop", "a.bin", query: [("partNumber", String(number)), ("uploadId", a)],
                   headers: ["content-length": String(count)], body: Data(repeating: 7, count: count), signed: false)
        }
        #expect(anonymousPart(1, 100_000).status == 200)
        let over = anonymousPart(2, 60_000)
        #expect(over.status == 400 && over.code == "EntityTooLarge" && over.text.contains("multipart_max_anonymous_bytes"), "\(over.text)")
        #expect(Self.part(f, "s.bin", s, 1, Data(repeating: 1, count: 250_000)).status == 200)
    }

    @Test func bytesHeldByOpenUploadsAreBoundedPerServer() throws {
        var settings = ServerSettings()
        settings.multipartMaxBytes = 150_000
        let f = try ServiceFixture(settings: settings)
        let a = try #require(Self.initiate(f, "a.bin").values("UploadId").first)
        let b = try #require(Self.initiate(f, "b.bin").values("UploadId").first)
        #expect(Self.part(f, "a.bin", a, 1, Data(repeating: 1, count: 100_000)).status == 200)
        let over = Self.part(f, "b.bin", b, 1, Data(repeating: 2, count: 60_000))
        #expect(over.status == 400 && over.code == "EntityTooLarge" && over.text.contains("multipart_max_bytes"), "\(over.text)")
        // Replacing a part counts its new size only.
        #expect(Self.part(f, "a.bin", a, 1, Data(repeating: 3, count: 140_000)).status == 200)
        // Aborting frees the bytes.
        #expect(f.send("DELETE", "photos", "a.bin", query: [("uploadId", a)]).status == 204)
        #expect(Self.part(f, "b.bin", b, 1, Data(repeating: 2, count: 60_000)).status == 200)
    }

    static func service(_ f: ServiceFixture, clock: @escaping @Sendable () -> Int) throws -> ObjectService {
        try ObjectService(manifest: f.service.manifest, verifier: Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou"),
                          engine: Engine(), cacheFolder: f.folder.appendingPathComponent("cache").path, maxBodyBytes: 1_000_000,
                          clock: clock)
    }

    @Test func abandonedUploadsExpireAtStartUpAndPeriodically() throws {
        let f = try ServiceFixture()
        let uploads = f.service.manifest.stateFolder + "/serve-uploads"
        let old = try #require(Self.initiate(f, "old.bin").values("UploadId").first)
        #expect(Self.part(f, "old.bin", old, 1, Data("x".utf8)).status == 200)
        #expect(FileManager.default.fileExists(atPath: uploads + "/" + old))
        // A server started 25 hours later (default expiry 24 hours) removes it at start-up.
        _ = try Self.service(f, clock: { [now = f.now] in now + 25 * 3600 })
        #expect(!FileManager.default.fileExists(atPath: uploads + "/" + old))
        // A running server removes abandoned uploads by its periodic sweep, whatever the request.
        let time = TestClock(f.now)
        let running = try Self.service(f, clock: { time.now })
        let id = try #require(running.handle(ServiceRequest(method: "POST", target: "/photos/later.bin?uploads",
                                                            headers: Self.signedHeaders("POST", "later.bin", query: [("uploads", nil)]))).values("UploadId").first)
        #expect(FileManager.default.fileExists(atPath: uploads + "/" + id))
        time.advance(24 * 3600 + 601)
        _ = running.handle(ServiceRequest(method: "GET", target: "/site/none.txt", headers: ["host": "127.0.0.1:9000"]))
        #expect(!FileManager.default.fileExists(atPath: uploads + "/" + id))
    }

    static func signedHeaders(_ method: String, _ key: String, query: [(String, String?)]) -> [String: String] {
        let date = ServiceFixture.headerDate
        let parameters = query.map { OSSSignature.Parameter($0.0, $0.1) }
        let stringToSign = OSSSignature.v1StringToSign(method: method, dateOrExpires: date, headers: ["date": date], bucket: "photos", key: key, query: parameters)
        return ["host": "127.0.0.1:9000", "date": date, "authorization": "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)]
    }

    /// Complete racing a re-upload of one of its parts: the object is exactly the parts whose
    /// ETags the request named, or the request fails with InvalidPart; never the new bytes of a
    /// part under the old part's ETag.
    @Test func completeRacingAPartReuploadNeverMixes() throws {
        // The fixture only calls the service, which is Sendable.
        nonisolated(unsafe) let f = try ServiceFixture()
        let first = Data(repeating: 0x41, count: 100 * 1024)
        let replacement = Data(repeating: 0x42, count: 100 * 1024 + 7)
        let tail = Data("tail".utf8)
        var mixed = 0, completed = 0, refused = 0
        for round in 0..<40 {
            let key = "race/\(round).bin"
            let id = try #require(Self.initiate(f, key).values("UploadId").first)
            #expect(Self.part(f, key, id, 1, first).status == 200)
            #expect(Self.part(f, key, id, 2, tail).status == 200)
            let body = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"\(MultipartTests.etag(first))\"</ETag></Part>"
                + "<Part><PartNumber>2</PartNumber><ETag>\"\(MultipartTests.etag(tail))\"</ETag></Part></CompleteMultipartUpload>"
            let answer = AnswerBox()
            DispatchQueue.concurrentPerform(iterations: 2) { worker in
                if worker == 0 {
                    answer.set(f.send("POST", "photos", key, query: [("uploadId", id)], body: Data(body.utf8)))
                } else {
                    for _ in 0..<3 { _ = Self.part(f, key, id, 1, replacement) }
                }
            }
            let done = try #require(answer.value)
            if done.status == 200 {
                completed += 1
                if f.file("photos/" + key) != first + tail { mixed += 1 }
            } else if done.code == "InvalidPart" || done.code == "NoSuchUpload" {
                refused += 1
                #expect(f.file("photos/" + key) == nil)
            } else {
                Issue.record("unexpected answer \(done.status) \(done.text)")
            }
        }
        #expect(mixed == 0, "\(mixed) of \(completed) completed objects held bytes the request did not name (\(refused) refused)")
    }

    /// Uploads of one key page by upload id with key-marker + upload-id-marker; a delimiter rolls
    /// keys into common prefixes, never repeated across pages.
    @Test func listMultipartUploadsPagesLikeOSS() throws {
        let f = try ServiceFixture()
        var ids: [String] = []
        for _ in 0..<5 { ids.append(try #require(Self.initiate(f, "same.bin").values("UploadId").first)) }
        _ = Self.initiate(f, "a/x.bin"); _ = Self.initiate(f, "a/y.bin"); _ = Self.initiate(f, "b.bin"); _ = Self.initiate(f, "z.bin")
        ids.sort()
        // Every upload once, two per page, in (key, upload id) order.
        var seen: [String] = []
        var keyMarker = "", idMarker = ""
        for _ in 0..<10 {
            var query: [(String, String?)] = [("uploads", nil), ("max-uploads", "2")]
            if !keyMarker.isEmpty { query += [("key-marker", keyMarker), ("upload-id-marker", idMarker)] }
            let page = f.send("GET", "photos", query: query)
            #expect(page.status == 200, "\(page.text)")
            seen += zip(page.values("Key"), page.values("UploadId")).map { $0 + " " + $1 }
            guard page.values("IsTruncated") == ["true"] else { break }
            keyMarker = try #require(page.values("NextKeyMarker").first)
            idMarker = try #require(page.values("NextUploadIdMarker").first)
        }
        #expect(seen.count == 9 && Set(seen).count == 9, "\(seen)")
        #expect(seen.filter { $0.hasPrefix("same.bin ") } == ids.map { "same.bin " + $0 })
        #expect(seen.map { String($0.split(separator: " ")[0]) } == ["a/x.bin", "a/y.bin", "b.bin"] + Array(repeating: "same.bin", count: 5) + ["z.bin"])
        // key-marker alone skips that key's uploads entirely.
        let after = f.send("GET", "photos", query: [("uploads", nil), ("key-marker", "same.bin")])
        #expect(after.values("Key") == ["z.bin"])
        // upload-id-marker: that key's uploads after the id, then later keys.
        let within = f.send("GET", "photos", query: [("uploads", nil), ("key-marker", "same.bin"), ("upload-id-marker", ids[2])])
        #expect(within.values("UploadId").prefix(2) == ids[3...].prefix(2) && within.values("Key").last == "z.bin")
        // Delimiter and prefix: a/ is one common prefix; paging with it as the marker goes on after it.
        let rolled = f.send("GET", "photos", query: [("uploads", nil), ("delimiter", "/"), ("max-uploads", "1")])
        #expect(rolled.values("Prefix").contains("a/") && rolled.values("Key").isEmpty && rolled.values("NextKeyMarker") == ["a/"], "\(rolled.text)")
        let next = f.send("GET", "photos", query: [("uploads", nil), ("delimiter", "/"), ("key-marker", "a/")])
        #expect(next.values("Key") == ["b.bin"] + Array(repeating: "same.bin", count: 5) + ["z.bin"] && !next.values("Prefix").contains("a/"), "\(next.text)")
        let prefixed = f.send("GET", "photos", query: [("uploads", nil), ("prefix", "a/")])
        #expect(prefixed.values("Key") == ["a/x.bin", "a/y.bin"])
        #expect(f.send("GET", "photos", query: [("uploads", nil), ("max-uploads", "0")]).code == "InvalidArgument")
    }
}

final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var time: Int
    init(_ time: Int) { self.time = time }
    var now: Int { lock.lock(); defer { lock.unlock() }; return time }
    func advance(_ seconds: Int) { lock.lock(); time += seconds; lock.unlock() }
}

final class AnswerBox: @unchecked Sendable {
    private let lock = NSLock()
    private var answer: ServiceResponse?
    func set(_ value: ServiceResponse) { lock.lock(); answer = value; lock.unlock() }
    var value: ServiceResponse? { lock.lock(); defer { lock.unlock() }; return answer }
}

/// #11 leftover: `?UploadId=`, `?PartNumber=`, `?Position=` selected their operation
/// (names are matched case-insensitively) but the handler then said the value was missing.
@Suite(.ownThreads) struct SubresourceValueCaseTests {
    @Test func mixedCaseNamesSupplyTheirValues() throws {
        let f = try ServiceFixture()
        let id = try #require(f.send("POST", "photos", "m.bin", query: [("uploads", nil)]).values("UploadId").first)
        let part = f.send("PUT", "photos", "m.bin", query: [("PartNumber", "1"), ("UploadId", id)], body: Data("x".utf8))
        #expect(part.status == 200, "\(part.text)")
        let listed = f.send("GET", "photos", "m.bin", query: [("UPLOADID", id)])
        #expect(listed.status == 200 && listed.values("PartNumber") == ["1"], "\(listed.text)")
        let append = f.send("POST", "photos", "ap.txt", query: [("Append", nil), ("Position", "0")], body: Data("a".utf8))
        #expect(append.status == 200, "\(append.text)")
        #expect(f.send("DELETE", "photos", "m.bin", query: [("uploadid", id)]).status == 204)
    }
}
