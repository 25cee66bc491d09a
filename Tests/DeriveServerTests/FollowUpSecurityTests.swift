import Access
import Confinement
import Crypto
import Foundation
import Manifest
import ProcessLanguage
import Testing
import TestSupport
@testable import DeriveServer

/// Breaks found by a second attack on `derive serve` after issue #11's first fixes.
@Suite(.ownThreads) struct FollowUpSecurityTests {
    static func md5(_ text: String) -> String { Data(Insecure.MD5.hash(data: Data(text.utf8))).base64EncodedString() }

    // MARK: 1. ETags of rendered answers

    @Test func renderedAnswersCarryTheMD5OfTheirBytesAsETag() throws {
        let f = try Hostile.fixture()
        let target = "/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_40%2Fformat%2Cpng"
        let rendered = f.get(target)
        let etag = try #require(rendered.header("ETag"))
        #expect(etag == "\"" + OSSSignature.hex(Insecure.MD5.hash(data: rendered.body), uppercase: true) + "\"")
        let hit = f.get(target)
        #expect(f.service.renders == 1, "the second answer comes from the cache")
        #expect(hit.header("ETag") == etag && hit.body == rendered.body)
        #expect(f.get(target, method: "HEAD").header("ETag") == etag)
        let notModified = f.get(target, headers: ["if-none-match": etag])
        #expect(notModified.status == 304 && notModified.body.isEmpty && notModified.header("ETag") == etag)
        #expect(f.get(target, headers: ["if-none-match": "W/" + etag + ", \"X\""]).status == 304)
        #expect(f.get(target, headers: ["if-none-match": "\"X\""]).status == 200)
    }

    @Test func plainObjectsAnswerIfNoneMatch() throws {
        let f = try Hostile.fixture()
        let etag = try #require(f.get("/pubr/photo.jpg").header("ETag"))
        #expect(f.get("/pubr/photo.jpg", headers: ["if-none-match": etag]).status == 304)
        // Authorisation comes first: a private object's ETag is no oracle.
        let secretTag = try #require(f.get(f.signedPath("secret/x.jpg", bucket: "pubr")).header("ETag"))
        #expect(f.get("/pubr/secret/x.jpg", headers: ["if-none-match": secretTag]).status == 403)
    }

    /// Old cache entries (`<type>\n<bytes>`, no MD5) are dropped and rendered again, not served without an ETag.
    @Test func cacheEntriesWithoutAnMD5AreRenderedAgain() throws {
        let f = try Hostile.fixture()
        let target = "/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_30%2Fformat%2Cpng"
        let first = f.get(target)
        let files = FileManager.default.enumerator(atPath: f.service.cacheFolder)!.compactMap { $0 as? String }
            .filter { RenderCache.isKey(URL(fileURLWithPath: $0).lastPathComponent) }
        #expect(files.count == 1)
        for file in files {
            try (Data("image/png\n".utf8) + first.body).write(to: URL(fileURLWithPath: f.service.cacheFolder + "/" + file))
        }
        let again = f.get(target)
        #expect(again.header("ETag") == first.header("ETag") && f.service.renders == 2)
    }

    // MARK: 2. Temporary files of uploads

    @Test func uploadsHaveNoNameWhileTheirBodyStreams() throws {
        let f = try Hostile.fixture()
        guard case .upload(let upload) = f.service.begin(ServiceRequest(method: "PUT", target: "/prw/new.txt", headers: ["content-length": "6"])) else {
            Issue.record("expected an upload"); return
        }
        upload.write(Data("abc".utf8))
        let during = try FileManager.default.contentsOfDirectory(atPath: f.buckets.appendingPathComponent("prw").path)
        #expect(!during.contains { $0.hasSuffix(ConfinedFolder.temporaryMarker) }, "\(during)")
        upload.write(Data("def".utf8))
        #expect(upload.finish().status == 200)
        #expect(try String(contentsOf: f.buckets.appendingPathComponent("prw/new.txt"), encoding: .utf8) == "abcdef")
        let after = try FileManager.default.contentsOfDirectory(atPath: f.buckets.appendingPathComponent("prw").path)
        #expect(!after.contains { $0.hasSuffix(ConfinedFolder.temporaryMarker) }, "\(after)")
    }

    /// A temporary file a killed writer left (or one linked an instant before its rename) answers
    /// as if it did not exist: GET, HEAD, process, watermark, style by delimiter; and no request
    /// may write such a name.
    @Test func temporaryNamesAreNeverObjects() throws {
        let f = try Hostile.fixture()
        let name = ".up.txt.4242.17.derive-tmp"
        try Data("half".utf8).write(to: f.buckets.appendingPathComponent("prw/" + name))
        try FileManager.default.copyItem(at: f.buckets.appendingPathComponent("prw/src.jpg"),
                                         to: f.buckets.appendingPathComponent("prw/.src.jpg.4242.18.derive-tmp"))
        #expect(f.get("/prw/" + name).code == "NoSuchKey")
        #expect(f.get("/prw/" + name, method: "HEAD").status == 404)
        #expect(f.get(f.signedPath(name, bucket: "prw")).code == "NoSuchKey", "signed callers do not see it either")
        #expect(f.get("/prw/.src.jpg.4242.18.derive-tmp?x-oss-process=image%2Fresize%2Cw_10").code == "NoSuchKey")
        let stamp = "image/watermark,image_\(Base64URL.encode(".src.jpg.4242.18.derive-tmp")),t_100"
        #expect(f.get("/prw/src.jpg?x-oss-process=" + Hostile.query(stamp)).code == "WatermarkError")
        #expect(f.get("/prw/" + name, method: "PUT", body: Data("x".utf8)).code == "InvalidObjectName")
        // A user's object that merely ends like a temporary file is an object.
        try Data("mine".utf8).write(to: f.buckets.appendingPathComponent("prw/notes.derive-tmp"))
        try Data("mine".utf8).write(to: f.buckets.appendingPathComponent("prw/.a.b.c.derive-tmp"))
        #expect(f.get("/prw/notes.derive-tmp").status == 200)
        #expect(f.get("/prw/.a.b.c.derive-tmp").status == 200)
    }

    @Test func theTemporaryShapeIsExact() {
        #expect(ConfinedFolder.isTemporaryName(Array(".a.jpg.12.3456.derive-tmp".utf8)))
        #expect(!ConfinedFolder.isTemporaryName(Array("a.jpg.12.3456.derive-tmp".utf8)))
        #expect(!ConfinedFolder.isTemporaryName(Array("..12.3456.derive-tmp".utf8)))
        #expect(!ConfinedFolder.isTemporaryName(Array(".a.x12.3456.derive-tmp".utf8)))
        #expect(!ConfinedFolder.isTemporaryName(Array(".a.12..derive-tmp".utf8)))
        #expect(!ConfinedFolder.isTemporaryName(Array(".a.12.3456.derive-tmp.jpg".utf8)))
    }

    // MARK: 3. Repeated security headers

    @Test func twoDifferentContentMD5sAreInvalidDigest() throws {
        let f = try Hostile.fixture()
        let body = Data("payload".utf8)
        let request = ServiceRequest(method: "PUT", target: "/prw/d.txt",
                                     fields: [("Content-MD5", Self.md5("payload")), ("Content-MD5", Self.md5("other"))], body: body)
        let answer = f.service.handle(request)
        #expect(answer.status == 400 && answer.code == "InvalidDigest")
        let reversed = ServiceRequest(method: "PUT", target: "/prw/d.txt",
                                      fields: [("Content-MD5", Self.md5("other")), ("content-md5", Self.md5("payload"))], body: body)
        #expect(f.service.handle(reversed).code == "InvalidDigest")
        #expect(!FileManager.default.fileExists(atPath: f.buckets.appendingPathComponent("prw/d.txt").path))
        // The same value twice is one value.
        let twice = ServiceRequest(method: "PUT", target: "/prw/d.txt",
                                   fields: [("Content-MD5", Self.md5("payload")), ("Content-MD5", Self.md5("payload"))], body: body)
        #expect(f.service.handle(twice).status == 200)
    }

    @Test func otherRepeatedSecurityHeadersAreRefused() throws {
        let f = try Hostile.fixture()
        let signed = f.v1Headers(method: "GET", bucket: "priv", key: "cats/private2.jpg")
        #expect(f.get("/priv/cats/private2.jpg", headers: signed).status == 200)
        for name in ["authorization", "date", "x-oss-date", "content-length", "x-oss-content-sha256", "x-oss-security-token"] {
            var fields = signed.map { ($0.key, $0.value) }
            fields.append((name, "0"))
            if signed[name] == nil { fields.append((name, "1")) }
            let answer = f.service.handle(ServiceRequest(method: "GET", target: "/priv/cats/private2.jpg", fields: fields))
            #expect(answer.status == 400 && answer.code == "InvalidArgument", "\(name): \(answer.status) \(answer.text)")
        }
        // A signature parameter given twice in the query.
        let url = f.signedPath("cats/private2.jpg", bucket: "priv")
        #expect(f.get(url).status == 200)
        #expect(f.get(url + "&Signature=AAAA").code == "InvalidArgument")
        #expect(f.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_10&x-oss-process=image%2Fresize%2Cw_20").code == "InvalidArgument")
    }

    // MARK: 7. Other writes

    /// A built output is the builder's: never overwritten anonymously, even where its ACL
    /// (inherited from a public-read-write source) would allow it. Nor by a signed caller
    /// (issue #12: "refused, derive build owns them"; attack 9 finding 5).
    @Test func builtOutputsAreNotWrittenAnonymously() throws {
        let f = try Hostile.fixture(recorded: Recorded(acls: ["prw/out/thumb.jpg": .publicReadWrite]))
        try FileManager.default.createDirectory(at: f.buckets.appendingPathComponent("prw/out"), withIntermediateDirectories: true)
        try Data("built".utf8).write(to: f.buckets.appendingPathComponent("prw/out/thumb.jpg"))
        #expect(f.get("/prw/out/thumb.jpg", method: "PUT", body: Data("defaced".utf8)).status == 403)
        let saveAs = "x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode("out/thumb.jpg"))"
        #expect(f.get("/prw/src.jpg?x-oss-process", method: "POST", body: Data(saveAs.utf8)).status == 403)
        #expect(try String(contentsOf: f.buckets.appendingPathComponent("prw/out/thumb.jpg"), encoding: .utf8) == "built")
        #expect(f.get("/prw/other.txt", method: "PUT", body: Data("fine".utf8)).status == 200)
        let signed = f.v1Headers(method: "PUT", bucket: "prw", key: "out/thumb.jpg")
        let owner = f.get("/prw/out/thumb.jpg", method: "PUT", headers: signed, body: Data("owner".utf8))
        #expect(owner.status == 403 && owner.text.contains("output of derive build"), "\(owner.text)")
        #expect(try String(contentsOf: f.buckets.appendingPathComponent("prw/out/thumb.jpg"), encoding: .utf8) == "built")
    }

    /// Sub-resources of other operations never fall through to a plain PUT or GET: a signed
    /// `PUT ?acl` (oss2's put_object_acl) replaced the object with its empty body; `?append`
    /// overwrote it; `?uploadId&partNumber` wrote a part over it.
    @Test func otherOperationsDoNotTouchTheObject() throws {
        let f = try Hostile.fixture()
        let original = try Data(contentsOf: f.buckets.appendingPathComponent("prw/src.jpg"))
        let signed = f.v1Headers(method: "PUT", bucket: "prw", key: "src.jpg", query: [.init("acl", nil)],
                                 extra: ["x-oss-object-acl": "public-read"])
        let acl = f.get("/prw/src.jpg?acl", method: "PUT", headers: signed)
        #expect(acl.status == 501 && acl.code == "NotImplemented")
        // AppendObject with PUT is its own NotImplemented operation; an unknown upload 404; the rest 501.
        for (query, status) in [("append&position=0", 501), ("uploadId=1&partNumber=1", 404), ("symlink", 501), ("tagging", 501)] {
            #expect(f.get("/prw/src.jpg?" + query, method: "PUT", body: Data("x".utf8)).status == status, "\(query)")
        }
        #expect(f.get("/prw/src.jpg?acl").status == 200)   // GetObjectAcl: the object is intact
        #expect(try Data(contentsOf: f.buckets.appendingPathComponent("prw/src.jpg")) == original)
    }

    /// A PUT with x-oss-copy-source is CopyObject: the source is authorised like a GET of it, so
    /// an anonymous copy of a private object into a public-read-write bucket stores nothing.
    @Test func copySourceIsRefused() throws {
        let f = try Hostile.fixture()
        let answer = f.get("/prw/copy.jpg", method: "PUT", headers: ["x-oss-copy-source": "/priv/cats/private2.jpg"])
        #expect(answer.status == 403 && answer.code == "AccessDenied")
        #expect(!FileManager.default.fileExists(atPath: f.buckets.appendingPathComponent("prw/copy.jpg").path))
    }
}

extension ServiceFixture {
    /// A V1-signed path for `key` of `bucket`.
    func signedPath(_ key: String, bucket: String) -> String { signed(key, bucket: bucket) }
}
