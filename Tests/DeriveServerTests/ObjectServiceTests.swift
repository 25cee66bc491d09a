import Access
import Confinement
import Foundation
import Imaging
import Logging
import Manifest
import ProcessLanguage
import Testing
import TestSupport
@testable import DeriveServer

/// The object service without a network: requests in, OSS answers out.
final class ServiceFixture {
    let folder: URL
    let service: ObjectService
    let credentials = Credentials(id: "AKIDEXAMPLE", secret: "secret")
    let now = 1_700_000_000

    static let defaultManifest = """
        version: 1
        region: cn-hangzhou
        access_keys:
          - id: AKIDEXAMPLE
            secret_env: DERIVE_TEST_SECRET
        buckets:
          photos:
            path: photos
            acl: private
            style_delimiters: ["!"]
            objects:
              - match: "press/**"
                acl: public-read
          drop:
            path: drop
            acl: public-read-write
          site:
            path: site
            acl: public-read
        styles:
          thumb: image/resize,w_100
        """

    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Samples")

    /// `files` maps a path below the fixture folder to a sample's name (or to text with `text:`).
    init(manifest: String = ServiceFixture.defaultManifest,
         files: [String: String] = ["photos/cats/kitten.jpg": "landscape.jpg", "photos/press/p.jpg": "portrait.jpg",
                                    "photos/logo.png": "logo-alpha.png", "drop/.keep": "text:", "site/.keep": "text:"],
         recorded: any RecordedOutputs = NoRecordedOutputs(), settings: ServerSettings = ServerSettings(), cacheFolder: String? = nil,
         logger: Logger = Logger(label: "test"), metadataBusyTimeout: TimeInterval? = nil, copying: URL? = nil) throws {
        folder = (try ScratchFolder.make("derive-serve"))
        // `copying`: a copy of that fixture's folder, as `cp -a` makes it (new inodes; attack 14, F2).
        if let copying {
            try FileManager.default.removeItem(at: folder)   // made empty: cp -a makes it as the copy
            let cp = Process()
            cp.executableURL = URL(fileURLWithPath: "/bin/cp")
            cp.arguments = ["-a", copying.path, folder.path]
            try cp.run()
            cp.waitUntilExit()
        }
        for (path, source) in copying == nil ? files : [:] {
            let url = folder.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            if source.hasPrefix("text:") {
                try Data(source.dropFirst(5).utf8).write(to: url)
            } else {
                try FileManager.default.copyItem(at: Self.samples.appendingPathComponent(source), to: url)
            }
        }
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let result = ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path)
        let manifest = try #require(result.manifest, "\(result.diagnostics)")
        let now = self.now
        // A shorter wait for another program's lock on the metadata database (attack 14, F1).
        let metadata = try metadataBusyTimeout.map {
            try ObjectMetadataStore(path: manifest.stateFolder + "/" + StateFiles.objectMetadata, busyTimeout: $0)
        }
        service = try ObjectService(manifest: manifest, verifier: Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou"),
                                    engine: Engine(), cacheFolder: cacheFolder ?? folder.appendingPathComponent("cache").path, maxBodyBytes: 1_000_000,
                                    settings: settings, recorded: recorded, metadata: metadata, logger: logger, clock: { now })
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    func get(_ target: String, method: String = "GET", headers: [String: String] = ["host": "127.0.0.1:9000"], body: Data = Data()) -> ServiceResponse {
        service.handle(ServiceRequest(method: method, target: target, headers: headers, body: body))
    }

    /// The path-and-query part of a signed URL.
    func signed(_ key: String, process: String? = nil, lifetime: Int = 3600, v4: Bool = false, bucket: String = "photos") -> String {
        let parameters = process.map { [OSSSignature.Parameter("x-oss-process", $0)] } ?? []
        let url = v4
            ? OSSSignature.signV4URL(endpoint: "http://127.0.0.1:9000", bucket: bucket, key: key, credentials: credentials, region: "cn-hangzhou",
                                     lifetime: lifetime, now: now, parameters: parameters)
            : OSSSignature.signV1URL(endpoint: "http://127.0.0.1:9000", bucket: bucket, key: key, credentials: credentials, lifetime: lifetime,
                                     now: now, parameters: parameters)
        return String(url.dropFirst("http://127.0.0.1:9000".count))
    }
}

extension ServiceResponse {
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var code: String? {
        guard let start = text.range(of: "<Code>"), let end = text.range(of: "</Code>") else { return nil }
        return String(text[start.upperBound..<end.lowerBound])
    }
}

@Suite(.ownThreads) struct ObjectServiceTests {
    @Test func aclDecidesAnonymousReads() throws {
        let f = try ServiceFixture()
        let denied = f.get("/photos/cats/kitten.jpg")
        #expect(denied.status == 403 && denied.code == "AccessDenied" && denied.header("x-oss-ec") == "0003-00000001")
        #expect(denied.header("Content-Type") == "application/xml" && denied.header("x-oss-request-id")?.count == 24)
        let open = f.get("/photos/press/p.jpg")
        #expect(open.status == 200 && open.header("Content-Type") == "image/jpeg" && open.body.count > 1000)
        let processed = f.get("/photos/press/p.jpg?x-oss-process=image%2Fresize%2Cw_50")
        #expect(processed.status == 200)
        #expect(try Raster.decode(processed.body).width == 50)
    }

    @Test func signedURLs() throws {
        let f = try ServiceFixture()
        for v4 in [false, true] {
            let response = f.get(f.signed("cats/kitten.jpg", process: "image/resize,w_80", v4: v4))
            #expect(response.status == 200, "\(response.text)")
            #expect(try Raster.decode(response.body).width == 80)
        }
        let style = f.get(f.signed("cats/kitten.jpg", process: "style/thumb"))
        #expect(try Raster.decode(style.body).width == 100)
        let plain = f.get(f.signed("cats/kitten.jpg"))
        #expect(plain.status == 200 && plain.header("ETag")?.hasPrefix("\"") == true)
    }

    @Test func expiredAndTamperedURLs() throws {
        let f = try ServiceFixture()
        let expired = f.get(f.signed("cats/kitten.jpg", lifetime: -10))
        #expect(expired.status == 403 && expired.code == "AccessDenied" && expired.text.contains("Request has expired."))
        let tampered = f.get(f.signed("cats/kitten.jpg", process: "image/resize,w_80").replacingOccurrences(of: "w_80", with: "w_81"))
        #expect(tampered.status == 403 && tampered.code == "SignatureDoesNotMatch")
        #expect(tampered.text.contains("<StringToSign>GET\n\n\n1700003600\n/photos/cats/kitten.jpg?x-oss-process=image/resize,w_81</StringToSign>"))
        #expect(tampered.text.contains("<StringToSignBytes>47 45 54"))
    }

    @Test func missingObjectsAndBuckets() throws {
        let f = try ServiceFixture()
        let missing = f.get(f.signed("cats/nope.jpg"))
        #expect(missing.status == 404 && missing.code == "NoSuchKey" && missing.text.contains("<Key>cats/nope.jpg</Key>"))
        #expect(f.get("/nobucket/a.jpg").code == "NoSuchBucket")
    }

    @Test func badProcessStrings() throws {
        let f = try ServiceFixture()
        let response = f.get("/photos/press/p.jpg?x-oss-process=image%2Fresize%2Cw_0")
        #expect(response.status == 400 && response.code == "InvalidArgument" && response.header("x-oss-ec") == "0040-00000312")
        #expect(f.get("/photos/press/p.jpg?x-oss-process=image%2Fslim%2C1").header("x-oss-ec") == "0040-00000213")
        #expect(f.get("/photos/press/p.jpg?x-oss-process=style%2Fnope").status == 404)
        let saveasOnGet = f.get("/photos/press/p.jpg?x-oss-process=image%2Fresize%2Cw_10%7Csys%2Fsaveas%2Co_eA")
        #expect(saveasOnGet.status == 400)
    }

    @Test func answersInJSON() throws {
        let f = try ServiceFixture()
        let info = f.get("/photos/press/p.jpg?x-oss-process=image%2Finfo")
        #expect(info.header("Content-Type") == "application/json" && info.text.contains("\"ImageWidth\": {\"value\": \"800\"}"))
        let hue = f.get("/photos/press/p.jpg?x-oss-process=image%2Faverage-hue")
        #expect(hue.text.hasPrefix("{\"RGB\": \"0x"))
    }

    @Test func virtualHostAndStyleDelimiter() throws {
        let f = try ServiceFixture()
        let response = f.get("/p.jpg?x-oss-process=image%2Fresize%2Cw_30", headers: ["host": "photos.localhost:9000"])
        #expect(response.status == 403)   // /p.jpg is not under press/: private
        let press = f.get("/press/p.jpg?x-oss-process=image%2Fresize%2Cw_30", headers: ["host": "photos.localhost:9000"])
        #expect(try Raster.decode(press.body).width == 30)
        let delimited = f.get("/photos/press/p.jpg!thumb")
        #expect(delimited.status == 200)
        #expect(try Raster.decode(delimited.body).width == 100)
    }

    @Test func putAndSaveAs() throws {
        let f = try ServiceFixture()
        let put = f.get("/drop/new/file.txt", method: "PUT", body: Data("hello".utf8))
        #expect(put.status == 200)
        #expect(f.get("/drop/new/file.txt").text == "hello")
        let refused = f.get("/site/x.txt", method: "PUT", body: Data("x".utf8))
        #expect(refused.status == 403)
        let signedPut = f.get(f.signed("uploads/x.txt").replacingOccurrences(of: "GET", with: ""), method: "PUT", body: Data("x".utf8))
        #expect(signedPut.status == 403 && signedPut.code == "SignatureDoesNotMatch")   // signed for GET, used for PUT
        let big = f.get("/drop/big.bin", method: "PUT", body: Data(count: 1_000_001))
        #expect(big.status == 400 && big.code == "EntityTooLarge")

        let body = "x-oss-process=image/resize,w_40|sys/saveas,o_\(Base64URL.encode("thumbs/k40.jpg")),b_\(Base64URL.encode("drop"))"
        let saved = f.get("/drop/../photos", method: "POST")
        #expect(saved.status == 400)
        let target = f.signed("cats/kitten.jpg").split(separator: "?").first.map(String.init)! + "?x-oss-process"
        let anonymous = f.get(target, method: "POST", body: Data(body.utf8))
        #expect(anonymous.status == 403)   // the source is private
        let headerDate = "Tue, 14 Nov 2023 22:13:20 GMT"
        let stringToSign = OSSSignature.v1StringToSign(method: "POST", dateOrExpires: headerDate, bucket: "photos", key: "cats/kitten.jpg",
                                                       query: [.init("x-oss-process", nil)])
        let authorization = "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
        let ok = f.get(target, method: "POST", headers: ["host": "127.0.0.1:9000", "date": headerDate, "authorization": authorization], body: Data(body.utf8))
        #expect(ok.status == 200, "\(ok.text)")
        let written = try #require(FileManager.default.contents(atPath: f.folder.appendingPathComponent("drop/thumbs/k40.jpg").path))
        #expect(ok.text == "{\"bucket\": \"drop\", \"fileSize\": \(written.count), \"object\": \"thumbs/k40.jpg\", \"status\": \"OK\"}")
        #expect(try Raster.decode(written).width == 40)
    }

    @Test(arguments: ["/photos/..%2Fsecret", "/photos/a/%2E%2E/b", "/photos/%00x", "/photos/a//b", "/photos/./a"])
    func keysCannotEscape(_ target: String) throws {
        let f = try ServiceFixture()
        let response = f.get(target)
        #expect(response.status == 400 && response.code == "InvalidObjectName", "\(target): \(response.status)")
    }

    @Test func headCarriesTheErrorInAHeader() throws {
        let f = try ServiceFixture()
        let head = f.get("/photos/cats/kitten.jpg", method: "HEAD")
        #expect(head.status == 403 && head.body.isEmpty)
        let xml = String(decoding: Data(base64Encoded: head.header("x-oss-err") ?? "") ?? Data(), as: UTF8.self)
        #expect(xml.contains("<Code>AccessDenied</Code>"))
        let ok = f.get("/photos/press/p.jpg", method: "HEAD")
        #expect(ok.status == 200 && ok.body.isEmpty)
        #expect((Int(ok.header("Content-Length") ?? "") ?? 0) > 1000)
    }

    @Test func cacheHitsDoNotRender() throws {
        let f = try ServiceFixture()
        // A settled source (not modified in the last second) is trusted by its stat.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)],
                                              ofItemAtPath: f.folder.appendingPathComponent("photos/press/p.jpg").path)
        let first = f.get("/photos/press/p.jpg?x-oss-process=image%2Fresize%2Cw_64%2Fformat%2Cwebp")
        let rendersAfterFirst = f.service.renders
        let second = f.get("/photos/press/p.jpg?x-oss-process=image%2Fresize%2Cw_64%2Fformat%2Cwebp")
        #expect(first.body == second.body && second.header("Content-Type") == "image/webp")
        #expect(f.service.renders == rendersAfterFirst)
        #expect(f.service.digests.hashes == 1, "a cache hit must not read the source again")
        // An equivalent spelling has the same canonical form, so the same cache entry.
        _ = f.get("/photos/press/p.jpg?x-oss-process=image%2Fresize%2Cm_lfit%2Cw_64%2Fformat%2Cwebp")
        #expect(f.service.renders == rendersAfterFirst)
    }

    @Test func bothSignaturesIsInvalid() throws {
        let f = try ServiceFixture()
        let response = f.get(f.signed("cats/kitten.jpg"), headers: ["host": "h", "authorization": "OSS AKIDEXAMPLE:x", "date": "Tue, 14 Nov 2023 22:13:20 GMT"])
        #expect(response.status == 400 && response.code == "InvalidArgument")
    }
}
