import Access
import Confinement
import Crypto
import Foundation
import Imaging
import Logging
import Manifest
import NIOConcurrencyHelpers
import ProcessLanguage
import Testing
import TestSupport
@testable import DeriveServer

/// Buckets of every ACL, with object overrides, as issue #11 attacked them.
enum Hostile {
    static let manifest = """
        version: 1
        region: cn-hangzhou
        access_keys:
          - id: AKIDEXAMPLE
            secret_env: DERIVE_TEST_SECRET
        buckets:
          priv:
            path: buckets/priv
            acl: private
            objects:
              - match: "open/**"
                acl: public-read
          pubr:
            path: buckets/pubr
            acl: public-read
            objects:
              - match: "secret/**"
                acl: private
          prw:
            path: buckets/prw
            acl: public-read-write
            style_delimiters: ["!"]
            objects:
              - match: "locked/**"
                acl: private
        styles:
          thumb: image/resize,w_100
        """

    static let files = [
        "buckets/priv/open/shared.jpg": "landscape.jpg",
        "buckets/priv/cats/private2.jpg": "portrait.jpg",
        "buckets/priv/open/derived.jpg": "portrait.jpg",
        "buckets/pubr/photo.jpg": "landscape.jpg",
        "buckets/pubr/secret/x.jpg": "portrait.jpg",
        "buckets/pubr/out/private.jpg": "portrait.jpg",
        "buckets/pubr/logo.png": "logo-alpha.png",
        "buckets/prw/src.jpg": "landscape.jpg",
        "buckets/prw/locked/keep.txt": "text:keep",
    ]

    static func fixture(recorded: any RecordedOutputs = NoRecordedOutputs(), settings: ServerSettings = ServerSettings(),
                        logger: Logger = Logger(label: "test")) throws -> ServiceFixture {
        try ServiceFixture(manifest: manifest, files: files, recorded: recorded, settings: settings, logger: logger)
    }

    static func query(_ text: String) -> String { OSSSignature.uriEncode(text, keepSlash: false) }
}

/// Recorded outputs from a dictionary of `bucket/key` → ACL.
struct Recorded: RecordedOutputs {
    var acls: [String: BucketACL]
    func recordedACL(bucket: String, key: String) throws -> BucketACL? { acls[bucket + "/" + key] }
}

/// Log lines captured for assertions.
final class CapturedLog: Sendable {
    let lines = NIOLockedValueBox<[String]>([])
    var logger: Logger { Logger(label: "test") { _ in Handler(log: self) } }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { metadata[key] } set { metadata[key] = newValue } }
        func log(event: LogEvent) {
            let all = (event.metadata ?? [:]).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
            log.lines.withLockedValue { $0.append("\(event.message) \(all)") }
        }
    }
}

extension ServiceFixture {
    var buckets: URL { folder.appendingPathComponent("buckets") }

    /// A V1 header-signed request's headers.
    func v1Headers(method: String, bucket: String, key: String, query: [OSSSignature.Parameter] = [], extra: [String: String] = [:]) -> [String: String] {
        let date = "Tue, 14 Nov 2023 22:13:20 GMT"
        let stringToSign = OSSSignature.v1StringToSign(method: method, contentMD5: extra["content-md5"] ?? "", dateOrExpires: date,
                                                       headers: extra.filter { $0.key.hasPrefix("x-oss-") }, bucket: bucket, key: key, query: query)
        var headers = extra
        headers["host"] = "127.0.0.1:9000"
        headers["date"] = date
        headers["authorization"] = "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
        return headers
    }

    /// A V4 header-signed request's headers, signing `payloadHash` as x-oss-content-sha256.
    func v4Headers(method: String, bucket: String, key: String, payloadHash: String, at time: Int? = nil) -> [String: String] {
        let dateTime = OSSSignature.v4DateTime(time ?? now)
        let scope = "\(dateTime.prefix(8))/cn-hangzhou/oss/aliyun_v4_request"
        var headers = ["x-oss-date": dateTime, "x-oss-content-sha256": payloadHash]
        let canonical = OSSSignature.v4CanonicalRequest(method: method, bucket: bucket, key: key, query: [], headers: headers)
        let stringToSign = OSSSignature.v4StringToSign(dateTime: dateTime, scope: scope, canonicalRequest: canonical)
        let signature = OSSSignature.v4Signature(key: OSSSignature.v4SigningKey(secret: "secret", date: String(dateTime.prefix(8)), region: "cn-hangzhou"),
                                                 stringToSign: stringToSign)
        headers["authorization"] = "OSS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\(scope),Signature=\(signature)"
        headers["host"] = "127.0.0.1:9000"
        return headers
    }
}

/// Issue #11, "What was seen" 1: private objects read through a watermark.
@Suite(.ownThreads) struct WatermarkAuthorizationTests {
    static func stamp(_ key: String) -> String {
        "image/watermark,image_\(Base64URL.encode(key)),t_100,g_nw,x_0,y_0/crop,w_600,h_450/format,png"
    }

    /// The answer without what legitimately differs (request id, the key named).
    static func shape(_ response: ServiceResponse, key: String) -> String {
        let text = response.text.replacingOccurrences(of: key, with: "KEY")
            .replacingOccurrences(of: #"<RequestId>[^<]*</RequestId>"#, with: "", options: .regularExpression)
        return "\(response.status) \(response.header("x-oss-ec") ?? "") \(text)"
    }

    @Test func anonymousWatermarkOfAPrivateObjectAnswersAsIfMissing() throws {
        let f = try Hostile.fixture()
        #expect(f.get("/priv/cats/private2.jpg").status == 403)
        let stolen = f.get("/priv/open/shared.jpg?x-oss-process=" + Hostile.query(Self.stamp("cats/private2.jpg")))
        #expect(stolen.status != 200)
        #expect(stolen.code == "WatermarkError")
        let missing = f.get("/priv/open/shared.jpg?x-oss-process=" + Hostile.query(Self.stamp("cats/nothing.jpg")))
        #expect(Self.shape(stolen, key: "cats/private2.jpg") == Self.shape(missing, key: "cats/nothing.jpg"), "no existence oracle")
        #expect(f.service.renders == 0)
    }

    @Test func signedCallersMayStampPrivateObjects() throws {
        let f = try Hostile.fixture()
        let response = f.get(f.signed("open/shared.jpg", process: Self.stamp("cats/private2.jpg"), bucket: "priv"))
        #expect(response.status == 200, "\(response.text)")
        #expect(try Raster.decode(response.body).width == 600)
    }

    @Test func anonymousStampOfAPublicObjectWorks() throws {
        let f = try Hostile.fixture()
        let response = f.get("/pubr/photo.jpg?x-oss-process=" + Hostile.query(Self.stamp("logo.png")))
        #expect(response.status == 200, "\(response.text)")
        // A private object of a public bucket is refused the same way.
        let secret = f.get("/pubr/photo.jpg?x-oss-process=" + Hostile.query(Self.stamp("secret/x.jpg")))
        #expect(secret.code == "WatermarkError")
    }

    @Test func saveAsCannotCopyAPrivateWatermarkIntoAPublicBucket() throws {
        let f = try Hostile.fixture()
        let body = "x-oss-process=\(Self.stamp("cats/private2.jpg"))|sys/saveas,o_\(Base64URL.encode("stolen.jpg")),b_\(Base64URL.encode("prw"))"
        let response = f.get("/priv/open/shared.jpg?x-oss-process", method: "POST", body: Data(body.utf8))
        #expect(response.status == 400 && response.code == "WatermarkError", "\(response.text)")
        #expect(!FileManager.default.fileExists(atPath: f.buckets.appendingPathComponent("prw/stolen.jpg").path))
    }

    @Test func aRecordedPrivateOutputIsNotAPublicWatermark() throws {
        let f = try Hostile.fixture(recorded: Recorded(acls: ["pubr/out/private.jpg": .private]))
        let response = f.get("/pubr/photo.jpg?x-oss-process=" + Hostile.query(Self.stamp("out/private.jpg")))
        #expect(response.code == "WatermarkError")
    }

    /// A readable watermark object over the byte limit is ImageTooLarge EC 0040-00000012 naming
    /// it and the limit (it was "does not exist", EC 0040-00000024), refused from its size.
    @Test func anOversizedWatermarkIsImageTooLargeNotMissing() throws {
        let f = try Hostile.fixture()
        let big = f.buckets.appendingPathComponent("pubr/w25.png")
        try FileManager.default.copyItem(at: f.buckets.appendingPathComponent("pubr/logo.png"), to: big)
        let handle = try FileHandle(forWritingTo: big)
        try handle.truncate(atOffset: 25 << 20)
        try handle.close()
        let response = f.get("/pubr/photo.jpg?x-oss-process=" + Hostile.query(Self.stamp("w25.png")))
        #expect(response.status == 400 && response.code == "ImageTooLarge", "\(response.text)")
        #expect(response.text.contains("0040-00000012"), "\(response.text)")
        #expect(response.text.contains("watermark: the image 'w25.png' is 26214400 bytes; the limit is 20971520 bytes"), "\(response.text)")
    }

    @Test func theResolverRefusesKeysThatWereNotAuthorised() throws {
        let f = try Hostile.fixture()
        let folder = try ConfinedFolder(path: f.folder.path)
        let resolver = ConfinedResolver(folder: folder, allowed: [], limits: Limits(maxBytes: 1 << 20))
        #expect(throws: ProcessError.self) { try resolver.object("derive.yaml") }
    }
}

/// 3: keys are bytes; file access is confined.
@Suite(.ownThreads) struct KeyConfinementTests {
    @Test func aCombiningMarkAfterDotDotDoesNotLeaveTheBucket() throws {
        let f = try Hostile.fixture()
        let put = f.get("/prw/../%CC%81escaped.txt", method: "PUT", body: Data("x".utf8))
        #expect(put.status == 400 && put.code == "InvalidObjectName")
        let outside = f.buckets.appendingPathComponent("\u{301}escaped.txt")
        #expect(!FileManager.default.fileExists(atPath: outside.path))
        try Data("outside".utf8).write(to: outside)
        let get = f.get("/pubr/../%CC%81escaped.txt")
        #expect(get.status == 400 && get.code == "InvalidObjectName")
        #expect(!get.text.contains("outside"))
    }

    @Test func aCombiningMarkAfterSlashStaysUnderItsACL() throws {
        let f = try Hostile.fixture()
        try Data("hidden".utf8).write(to: f.buckets.appendingPathComponent("pubr/secret/\u{301}x.jpg"))
        let response = f.get("/pubr/secret/%CC%81x.jpg")
        #expect(response.status == 403 && response.code == "AccessDenied")
    }

    @Test(arguments: [
        "/pubr/secret%2Fx.jpg",                 // %2F is a '/' byte: the key is secret/x.jpg
        "/pubr/secret/%E2%80%8Dx.jpg",          // ZWJ after '/'
        "/pubr/secret/e%CC%81.jpg",             // NFD twin
        "/pubr/secret/%C3%A9.jpg",              // NFC twin
    ])
    func privatePrefixesHoldForEveryByteSpelling(_ target: String) throws {
        let f = try Hostile.fixture()
        for name in ["\u{200D}x.jpg", "e\u{301}.jpg", "\u{E9}.jpg"] {
            try Data("hidden".utf8).write(to: f.buckets.appendingPathComponent("pubr/secret/" + name))
        }
        let response = f.get(target)
        #expect(response.status == 403, "\(target): \(response.status)")
    }

    @Test func fullwidthSolidusIsNotASeparator() throws {
        let f = try Hostile.fixture()
        try Data("public".utf8).write(to: f.buckets.appendingPathComponent("pubr/secret\u{FF0F}y.txt"))
        let response = f.get("/pubr/secret%EF%BC%8Fy.txt")
        #expect(response.status == 200 && response.text == "public")
    }

    @Test(arguments: ["/pubr/%2E%2E%2Fpriv%2Fcats%2Fprivate2.jpg", "/pubr/a/%2e%2e/b", "/pubr/%00x", "/pubr/a//b", "/pubr/./a",
                      "/pubr/%C0%AE%C0%AE/x", "/pubr/%FFx", "/pubr/a%5", "/pubr/x%0A"])
    func invalidKeysAnswer400(_ target: String) throws {
        let f = try Hostile.fixture()
        let response = f.get(target)
        #expect(response.status == 400 && response.code == "InvalidObjectName", "\(target): \(response.status) \(response.text)")
    }

    @Test func symbolicLinksInsideABucketAreNeverFollowed() throws {
        let f = try Hostile.fixture()
        try FileManager.default.createSymbolicLink(atPath: f.buckets.appendingPathComponent("pubr/link.jpg").path,
                                                   withDestinationPath: f.buckets.appendingPathComponent("priv/cats/private2.jpg").path)
        try FileManager.default.createSymbolicLink(atPath: f.buckets.appendingPathComponent("pubr/up").path,
                                                   withDestinationPath: f.buckets.appendingPathComponent("priv").path)
        #expect(f.get("/pubr/link.jpg").status == 404)
        #expect(f.get("/pubr/up/cats/private2.jpg").status == 404)
        try FileManager.default.createSymbolicLink(atPath: f.buckets.appendingPathComponent("prw/out").path,
                                                   withDestinationPath: f.folder.path)
        let put = f.get("/prw/out/derive.yaml", method: "PUT", body: Data("x".utf8))
        #expect(put.status == 403)
        #expect(try String(contentsOf: f.folder.appendingPathComponent("derive.yaml"), encoding: .utf8).contains("buckets"))
    }
}

/// 4: control files and the serve cache are out of reach.
@Suite(.ownThreads) struct ControlFileTests {
    @Test func serveRefusesACacheInsideABucket() throws {
        let fixture = try Hostile.fixture()
        #expect(throws: ServeSetupError.self) {
            _ = try ObjectService(manifest: fixture.service.manifest, verifier: fixture.service.verifier, engine: Engine(),
                                  cacheFolder: fixture.buckets.appendingPathComponent("prw/.derive/serve-cache").path)
        }
    }

    /// The manifest's validation refuses it first (manifest-9); the service refuses it again if
    /// handed such a manifest anyway.
    @Test func serveRefusesABucketHoldingTheManifest() throws {
        let f = try Hostile.fixture()
        let text = Hostile.manifest.replacingOccurrences(of: "path: buckets/prw", with: "path: .")
        try Data(text.utf8).write(to: f.folder.appendingPathComponent("derive.yaml"))
        let loaded = ManifestLoader().load(f.folder.appendingPathComponent("derive.yaml").path)
        #expect(loaded.diagnostics.errors.contains { $0.description.contains("holds the manifest") }, "\(loaded.diagnostics.all)")
        var manifest = f.service.manifest
        manifest.buckets[2].path = f.folder.path
        #expect(throws: ServeSetupError.self) {
            _ = try ObjectService(manifest: manifest, verifier: f.service.verifier, engine: Engine(), cacheFolder: "/tmp/derive-unrelated-cache")
        }
    }

    @Test func aTamperedCacheEntryIsNotServed() throws {
        let f = try Hostile.fixture()
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)],
                                              ofItemAtPath: f.buckets.appendingPathComponent("pubr/photo.jpg").path)
        let first = f.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_32")
        #expect(first.status == 200 && f.service.renders == 1)
        let cache = f.folder.appendingPathComponent("cache")
        let entries = try FileManager.default.subpathsOfDirectory(atPath: cache.path).filter { $0.count == 67 }
        #expect(entries.count == 1)
        try Data("text/html\n<script>alert(1)</script>".utf8).write(to: cache.appendingPathComponent(entries[0]))
        let second = f.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_32")
        #expect(second.header("Content-Type") == "image/jpeg" && f.service.renders == 2)
    }
}

/// 5 and 6: the effective object ACL (rule `acl:` recorded, overrides) governs reads and writes.
@Suite(.ownThreads) struct EffectiveACLTests {
    @Test func aPrivateObjectInAPublicReadWriteBucketIsNotWritableAnonymously() throws {
        let f = try Hostile.fixture()
        let put = f.get("/prw/locked/keep.txt", method: "PUT", body: Data("overwritten".utf8))
        #expect(put.status == 403 && put.code == "AccessDenied")
        let body = "x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode("locked/keep.txt"))"
        let saveAs = f.get("/prw/src.jpg?x-oss-process", method: "POST", body: Data(body.utf8))
        #expect(saveAs.status == 403)
        #expect(try String(contentsOf: f.buckets.appendingPathComponent("prw/locked/keep.txt"), encoding: .utf8) == "keep")
        #expect(f.get("/prw/open.txt", method: "PUT", body: Data("ok".utf8)).status == 200)
        let signed = f.get("/prw/locked/keep.txt", method: "PUT", headers: f.v1Headers(method: "PUT", bucket: "prw", key: "locked/keep.txt"),
                           body: Data("signed".utf8))
        #expect(signed.status == 200, "\(signed.text)")
    }

    @Test func aRecordedRuleACLIsEnforcedOnReads() throws {
        let recorded = Recorded(acls: ["pubr/out/private.jpg": .private, "priv/open/derived.jpg": .private])
        let f = try Hostile.fixture(recorded: recorded)
        let anonymous = f.get("/pubr/out/private.jpg")
        #expect(anonymous.status == 403)
        #expect(f.get("/pubr/out/private.jpg?x-oss-process=image%2Fresize%2Cw_10").status == 403)
        let signed = f.get(f.signed("out/private.jpg", bucket: "pubr"))
        #expect(signed.status == 200 && signed.header("x-oss-object-acl") == "private")
        // A public override on a private bucket does not publish an output recorded private.
        #expect(f.get("/priv/open/derived.jpg").status == 403)
        #expect(f.get("/priv/open/shared.jpg").status == 200)
    }

    @Test func aRecordedPublicOutputCanBeOverwrittenOnlyIfPublicReadWrite() throws {
        let f = try Hostile.fixture(recorded: Recorded(acls: ["prw/src.jpg": .publicRead]))
        #expect(f.get("/prw/src.jpg", method: "PUT", body: Data("x".utf8)).status == 403)
    }

    @Test func aFailingRecordIsPrivate() throws {
        struct Broken: RecordedOutputs {
            func recordedACL(bucket: String, key: String) throws -> BucketACL? { throw CancellationError() }
        }
        let f = try Hostile.fixture(recorded: Broken())
        #expect(f.get("/pubr/photo.jpg").status == 403)
    }
}

/// 7 and 8: integrity headers and request time.
@Suite(.ownThreads) struct IntegrityTests {
    @Test func contentMD5OfOtherBytesIsInvalidDigest() throws {
        let f = try Hostile.fixture()
        let other = Data(Insecure.MD5.hash(data: Data("other".utf8))).base64EncodedString()
        let response = f.get("/prw/a.txt", method: "PUT", headers: ["host": "h", "content-md5": other], body: Data("mine".utf8))
        #expect(response.status == 400 && response.code == "InvalidDigest")
        #expect(f.get("/prw/a.txt").status == 404)
        let malformed = f.get("/prw/a.txt", method: "PUT", headers: ["host": "h", "content-md5": "nope"], body: Data("mine".utf8))
        #expect(malformed.status == 400 && malformed.code == "InvalidDigest")
        let right = Data(Insecure.MD5.hash(data: Data("mine".utf8))).base64EncodedString()
        let ok = f.get("/prw/a.txt", method: "PUT", headers: ["host": "h", "content-md5": right], body: Data("mine".utf8))
        #expect(ok.status == 200 && f.get("/prw/a.txt").text == "mine")
    }

    @Test func v4PayloadHashOfOtherBytesIsRefused() throws {
        let f = try Hostile.fixture()
        let other = OSSSignature.hex(SHA256.hash(data: Data("other".utf8)))
        let refused = f.get("/priv/up.txt", method: "PUT", headers: f.v4Headers(method: "PUT", bucket: "priv", key: "up.txt", payloadHash: other),
                            body: Data("mine".utf8))
        #expect(refused.status == 403 && refused.code == "SignatureDoesNotMatch", "\(refused.text)")
        #expect(!FileManager.default.fileExists(atPath: f.buckets.appendingPathComponent("priv/up.txt").path))
        let right = OSSSignature.hex(SHA256.hash(data: Data("mine".utf8)))
        let ok = f.get("/priv/up.txt", method: "PUT", headers: f.v4Headers(method: "PUT", bucket: "priv", key: "up.txt", payloadHash: right),
                       body: Data("mine".utf8))
        #expect(ok.status == 200, "\(ok.text)")
        let unsigned = f.get("/priv/up2.txt", method: "PUT",
                             headers: f.v4Headers(method: "PUT", bucket: "priv", key: "up2.txt", payloadHash: "UNSIGNED-PAYLOAD"), body: Data("x".utf8))
        #expect(unsigned.status == 200)
    }

    @Test func futureDatedV4URLsAreSkewed() throws {
        let f = try Hostile.fixture()
        let future = OSSSignature.signV4URL(endpoint: "http://h", bucket: "priv", key: "cats/private2.jpg", credentials: f.credentials,
                                            region: "cn-hangzhou", lifetime: 604_800, now: f.now + 300 * 86_400)
        let response = f.get(String(future.dropFirst("http://h".count)))
        #expect(response.status == 403 && response.code == "RequestTimeTooSkewed", "\(response.text)")
        let nearFuture = OSSSignature.signV4URL(endpoint: "http://h", bucket: "priv", key: "cats/private2.jpg", credentials: f.credentials,
                                                region: "cn-hangzhou", lifetime: 60, now: f.now + 600)
        #expect(f.get(String(nearFuture.dropFirst("http://h".count))).status == 200)
        let header = f.get("/priv/cats/private2.jpg", headers: f.v4Headers(method: "GET", bucket: "priv", key: "cats/private2.jpg",
                                                                          payloadHash: "UNSIGNED-PAYLOAD", at: f.now + 3600))
        #expect(header.status == 403 && header.code == "RequestTimeTooSkewed")
    }
}

/// 9: errors are OSS's 400s, and a 500 says nothing but the request id.
@Suite(.ownThreads) struct ErrorShapeTests {
    @Test func keysUnderAnObjectOrEndingInSlashAre400() throws {
        let f = try Hostile.fixture()
        for target in ["/prw/src.jpg/x", "/prw/dir/", "/prw/locked"] {
            let response = f.get(target, method: "PUT", headers: f.v1Headers(method: "PUT", bucket: "prw", key: String(target.dropFirst(5))),
                                 body: Data("x".utf8))
            #expect(response.status == 400 && response.code == "InvalidObjectName", "\(target): \(response.status) \(response.text)")
            #expect(!response.text.contains(f.folder.path) && !response.text.contains("NSFilePath"))
        }
        let body = "x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode("sub/"))"
        let saveAs = f.get("/prw/src.jpg?x-oss-process", method: "POST", body: Data(body.utf8))
        #expect(saveAs.status == 400 && saveAs.code == "InvalidObjectName")
        let under = "x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode("src.jpg/thumb.jpg"))"
        #expect(f.get("/prw/src.jpg?x-oss-process", method: "POST", body: Data(under.utf8)).status == 400)
        #expect(f.get("/prw/src.jpg/x").status == 404)
    }

    /// FuzzRouter found it: a segment longer than the file system allows answered 500.
    @Test func segmentsTooLongForTheFileSystemAreNot500() throws {
        let f = try Hostile.fixture()
        let long = String(repeating: "%EF%BF%BD", count: 85) + "p.png"
        #expect(f.get("/pubr/" + long).status == 404)
        #expect(f.get("/pubr/" + long + "?x-oss-process=image%2Finfo").status == 404)
        let put = f.get("/prw/" + String(repeating: "a", count: 256), method: "PUT", body: Data("x".utf8))
        #expect(put.status == 400 && put.code == "InvalidObjectName")
        let saveAs = "x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode(String(repeating: "b", count: 300)))"
        #expect(f.get("/prw/src.jpg?x-oss-process", method: "POST", body: Data(saveAs.utf8)).status == 400)
        // A watermark key that long is simply missing.
        let stamp = "image/watermark,image_\(Base64URL.encode(String(repeating: "c", count: 300)))"
        #expect(f.get("/pubr/photo.jpg?x-oss-process=" + Hostile.query(stamp)).code == "WatermarkError")
    }

    @Test func internalErrorsSayOnlyTheRequestId() throws {
        let log = CapturedLog()
        let manifest = Hostile.manifest + "\n" // a bucket whose folder is a file: creating it fails inside Foundation
        let f = try ServiceFixture(manifest: manifest.replacingOccurrences(of: "path: buckets/prw", with: "path: buckets/prw-file"),
                                   files: Hostile.files.merging(["buckets/prw-file": "text:not a folder"]) { a, _ in a }, logger: log.logger)
        let response = f.get("/prw/x.txt", method: "PUT", body: Data("x".utf8))
        #expect(response.status == 500 && response.code == "InternalError")
        let requestId = try #require(response.header("x-oss-request-id"))
        #expect(!response.text.contains(f.folder.path) && !response.text.contains("NSFilePath") && !response.text.contains("prw-file"))
        #expect(log.lines.withLockedValue { $0 }.contains { $0.contains(requestId) && $0.contains("internal error") })
    }
}

/// 2 and 10: bounded work, streamed bodies, bounded cache.
@Suite(.ownThreads) struct BoundedWorkTests {
    @Test func aFullRenderQueueAnswersSlowDownWhilePlainRequestsGoOn() throws {
        var settings = ServerSettings()
        settings.renderThreads = 1
        settings.renderQueue = 1
        let f = try Hostile.fixture(settings: settings)
        var held: [RenderJob] = []
        for width in [11, 12] {
            guard case .render(let job) = f.service.begin(ServiceRequest(method: "GET", target: "/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_\(width)", headers: [:])) else {
                Issue.record("expected a render")
                return
            }
            held.append(job)
        }
        let refused = f.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_13")
        #expect(refused.status == 503 && refused.code == "SlowDown" && refused.header("Retry-After") == "1")
        // Plain GETs, HEADs and errors answer at once, without a render slot.
        guard case .respond(let plain) = f.service.begin(ServiceRequest(method: "GET", target: "/pubr/photo.jpg", headers: [:])) else {
            Issue.record("a plain GET must not need a render slot")
            return
        }
        #expect(plain.status == 200)
        #expect(f.get("/nobucket/x").code == "NoSuchBucket")
        // A render whose client left is dropped without touching libvips, and frees its slot.
        let leaving = held.removeFirst()
        leaving.cancellation.cancel()
        let dropped = leaving.run()
        #expect(dropped.status != 200 && f.service.renders == 0)
        #expect(f.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_13").status == 200)
        held.removeAll()
        #expect(f.service.rendersInFlight == 0)
    }

    @Test func aDisconnectCancelsARunningRender() throws {
        let f = try Hostile.fixture()
        let blurs = String(repeating: "%2Fblur%2Cr_50%2Cs_50", count: 30)
        guard case .render(let job) = f.service.begin(ServiceRequest(method: "GET", target: "/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_1200" + blurs, headers: [:])) else {
            Issue.record("expected a render"); return
        }
        let cancellation = job.cancellation
        Thread.detachNewThread { usleep(200_000); cancellation.cancel() }
        let response = job.run()
        #expect(response.status != 200 && response.status != 500, "\(response.status) \(response.text)")
        #expect(f.service.rendersInFlight == 0)
    }

    @Test func cacheHitsDoNotNeedARenderSlot() throws {
        var settings = ServerSettings()
        settings.renderThreads = 1
        settings.renderQueue = 0
        let f = try Hostile.fixture(settings: settings)
        #expect(f.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_20").status == 200)
        guard case .render(let job) = f.service.begin(ServiceRequest(method: "GET", target: "/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_21", headers: [:])) else {
            Issue.record("expected a render"); return
        }
        let hit = f.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_20")
        #expect(hit.status == 200 && hit.header("Content-Type") == "image/jpeg")
        _ = job
    }

    @Test func objectsAndCacheHitsStreamFromFiles() throws {
        let f = try Hostile.fixture()
        guard case .respond(let plain) = f.service.begin(ServiceRequest(method: "GET", target: "/pubr/photo.jpg", headers: [:])),
              case .file(let file) = plain.payload else {
            Issue.record("a plain GET streams its file"); return
        }
        #expect(file.length == (try Data(contentsOf: f.buckets.appendingPathComponent("pubr/photo.jpg"))).count)
        #expect(plain.header("ETag") == "\"" + OSSSignature.hex(Insecure.MD5.hash(data: try file.readAll()), uppercase: true) + "\"")
    }

    @Test func putIsRefusedBeforeItsBody() throws {
        let f = try Hostile.fixture()
        // Anonymous PUT to a private bucket: 403 from the head alone.
        guard case .respond(let denied) = f.service.begin(ServiceRequest(method: "PUT", target: "/priv/big.bin", headers: ["content-length": "20000000"])) else {
            Issue.record("the ACL must be checked before the body"); return
        }
        #expect(denied.status == 403)
        guard case .respond(let tooLarge) = f.service.begin(ServiceRequest(method: "PUT", target: "/prw/big.bin", headers: ["content-length": "20000000"])) else {
            Issue.record("Content-Length must be checked before the body"); return
        }
        #expect(tooLarge.status == 400 && tooLarge.code == "EntityTooLarge")
        // A body longer than it said is cut off; one shorter is incomplete; neither is stored.
        guard case .upload(let upload) = f.service.begin(ServiceRequest(method: "PUT", target: "/prw/s.bin", headers: ["content-length": "3"])) else {
            Issue.record("expected an upload"); return
        }
        upload.write(Data("abcd".utf8))
        #expect(upload.finish().code == "EntityTooLarge")
        guard case .upload(let short) = f.service.begin(ServiceRequest(method: "PUT", target: "/prw/s.bin", headers: ["content-length": "3"])) else {
            Issue.record("expected an upload"); return
        }
        short.write(Data("ab".utf8))
        #expect(short.finish().code == "IncompleteBody")
        #expect(!FileManager.default.fileExists(atPath: f.buckets.appendingPathComponent("prw/s.bin").path))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: f.buckets.appendingPathComponent("prw").path).filter { $0.hasSuffix(".derive-tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test func theRenderCacheIsCappedAndEvictsTheLeastRecentlyUsed() throws {
        var settings = ServerSettings()
        settings.cacheMaxBytes = 6_000
        let f = try Hostile.fixture(settings: settings)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)],
                                              ofItemAtPath: f.buckets.appendingPathComponent("pubr/photo.jpg").path)
        func get(_ width: Int) -> ServiceResponse { f.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_\(width)%2Fformat%2Cpng") }
        #expect(get(8).status == 200)
        for width in 9...30 {
            #expect(get(width).status == 200)
            _ = get(8)   // keep the first one recently used
            #expect(f.service.cache.totalBytes <= 6_000)
        }
        let renders = f.service.renders
        _ = get(8)
        #expect(f.service.renders == renders, "the most recently used entry stays")
        _ = get(9)
        #expect(f.service.renders == renders + 1, "the least recently used entry went")
        let onDisk = try FileManager.default.subpathsOfDirectory(atPath: f.service.cacheFolder).filter { $0.count == 67 }.map {
            (try FileManager.default.attributesOfItem(atPath: f.service.cacheFolder + "/" + $0)[.size] as? NSNumber)?.intValue ?? 0
        }.reduce(0, +)
        #expect(onDisk <= 6_000)
    }
}
