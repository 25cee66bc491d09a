import Access
import Crypto
import Foundation
import Manifest
import Testing
import TestSupport
import Confinement
@testable import DeriveServer

/// Requests signed with a V1 Authorization header, any method, bucket-level or object-level.
extension ServiceFixture {
    static let headerDate = "Tue, 14 Nov 2023 22:13:20 GMT"   // `now`

    static func encode(_ text: String, keepSlash: Bool) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
        if keepSlash { allowed.insert("/") }
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    func send(_ method: String, _ bucket: String, _ key: String = "", query: [(String, String?)] = [], headers: [String: String] = [:],
              body: Data = Data(), signed: Bool = true) -> ServiceResponse {
        var all = headers
        all["host"] = "127.0.0.1:9000"
        if signed {
            all["date"] = Self.headerDate
            let parameters = query.map { OSSSignature.Parameter($0.0, $0.1) }
            let stringToSign = OSSSignature.v1StringToSign(method: method, contentMD5: all["content-md5"] ?? "", contentType: all["content-type"] ?? "",
                                                           dateOrExpires: Self.headerDate, headers: all, bucket: bucket, key: key, query: parameters)
            all["authorization"] = "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
        }
        var target = "/" + bucket + "/" + Self.encode(key, keepSlash: true)
        if !query.isEmpty {
            target += "?" + query.map { name, value in
                Self.encode(name, keepSlash: false) + (value.map { "=" + Self.encode($0, keepSlash: false) } ?? "")
            }.joined(separator: "&")
        }
        return service.handle(ServiceRequest(method: method, target: target, headers: all, body: body))
    }

    func file(_ path: String) -> Data? { FileManager.default.contents(atPath: folder.appendingPathComponent(path).path) }

    func write(_ path: String, _ text: String) throws {
        let url = folder.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
}

extension ServiceResponse {
    /// The text of every `<name>` element, in order.
    func values(_ name: String) -> [String] {
        var found: [String] = []
        var rest = text[...]
        while let start = rest.range(of: "<\(name)>"), let end = rest.range(of: "</\(name)>", range: start.upperBound..<rest.endIndex) {
            found.append(String(rest[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "&quot;", with: "\"")
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&"))
            rest = rest[end.upperBound...]
        }
        return found
    }
}

/// A test double: keys the build owns.
struct Owned: RecordedOutputs {
    var keys: Set<String>
    func recordedACL(bucket: String, key: String) throws -> BucketACL? { keys.contains(bucket + "/" + key) ? .publicRead : nil }
}

@Suite(.ownThreads) struct ListObjectsTests {
    static func fixture() throws -> ServiceFixture {
        let f = try ServiceFixture()
        for path in ["a/1.txt", "a/2.txt", "a/sub/3.txt", "b.txt", "c/d/e.txt", "a.txt", "a0.txt"] { try f.write("photos/" + path, path) }
        return f
    }

    @Test func keysInByteOrderWithPrefixDelimiterAndMarker() throws {
        let f = try Self.fixture()
        let all = f.send("GET", "photos", query: [("max-keys", "1000")])
        #expect(all.status == 200, "\(all.text)")
        #expect(all.values("Key") == ["a.txt", "a/1.txt", "a/2.txt", "a/sub/3.txt", "a0.txt", "b.txt", "c/d/e.txt", "cats/kitten.jpg",
                                       "logo.png", "press/p.jpg"])
        #expect(all.values("IsTruncated") == ["false"])
        let rolled = f.send("GET", "photos", query: [("delimiter", "/")])
        #expect(rolled.values("Key") == ["a.txt", "a0.txt", "b.txt", "logo.png"])
        #expect(rolled.values("Prefix") == ["", "a/", "c/", "cats/", "press/"])   // the listing's prefix first
        let prefixed = f.send("GET", "photos", query: [("prefix", "a/"), ("delimiter", "/")])
        #expect(prefixed.values("Key") == ["a/1.txt", "a/2.txt"] && prefixed.values("Prefix") == ["a/", "a/sub/"])
        let after = f.send("GET", "photos", query: [("marker", "a/2.txt"), ("max-keys", "2")])
        #expect(after.values("Key") == ["a/sub/3.txt", "a0.txt"] && after.values("IsTruncated") == ["true"] && after.values("NextMarker") == ["a0.txt"])
        let size = f.send("GET", "photos", query: [("prefix", "b.txt")])
        #expect(size.values("Size") == ["5"] && size.values("ETag") == ["\"" + Insecure.MD5.hash(data: Data("b.txt".utf8)).map { String(format: "%02X", $0) }.joined() + "\""])
        #expect(size.values("LastModified").first?.hasSuffix(".000Z") == true)
    }

    @Test func pagesWithDelimiterNeverRepeatAPrefix() throws {
        let f = try Self.fixture()
        var marker = "", seen: [String] = [], pages = 0
        repeat {
            let page = f.send("GET", "photos", query: [("delimiter", "/"), ("max-keys", "2"), ("marker", marker)])
            #expect(page.status == 200)
            let items = page.values("Key") + page.values("Prefix").dropFirst()
            seen += items
            pages += 1
            guard page.values("IsTruncated") == ["true"] else { break }
            marker = page.values("NextMarker").first ?? ""
        } while pages < 10
        #expect(Set(seen).count == seen.count && Set(seen) == ["a.txt", "a0.txt", "b.txt", "logo.png", "a/", "c/", "cats/", "press/"])
    }

    @Test func version2ContinuationStartAfterAndOwner() throws {
        let f = try Self.fixture()
        var token: String?
        var keys: [String] = []
        for _ in 0..<10 {
            var query: [(String, String?)] = [("list-type", "2"), ("max-keys", "3")]
            if let token { query.append(("continuation-token", token)) }
            let page = f.send("GET", "photos", query: query)
            #expect(page.status == 200 && page.values("KeyCount") == [String(page.values("Key").count)])
            #expect(!page.text.contains("<Owner>"))
            keys += page.values("Key")
            guard let next = page.values("NextContinuationToken").first else { break }
            token = next
        }
        #expect(keys.count == 10 && keys == keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        let after = f.send("GET", "photos", query: [("list-type", "2"), ("start-after", "c/d/e.txt"), ("fetch-owner", "true")])
        #expect(after.values("Key") == ["cats/kitten.jpg", "logo.png", "press/p.jpg"] && after.text.contains("<Owner>"))
        #expect(f.send("GET", "photos", query: [("max-keys", "1001")]).code == "InvalidArgument")
    }

    @Test func urlEncodingAndHiddenEntries() throws {
        let f = try ServiceFixture()
        try f.write("photos/sp ace/é.txt", "x")
        try f.write("photos/.x.123.456.derive-tmp", "temp")
        try FileManager.default.createSymbolicLink(atPath: f.folder.appendingPathComponent("photos/link.jpg").path, withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: f.folder.appendingPathComponent("photos/linkdir").path, withDestinationPath: "/etc")
        mkfifo(f.folder.appendingPathComponent("photos/fifo").path, 0o644)
        let listed = f.send("GET", "photos", query: [("encoding-type", "url")])
        #expect(listed.values("Key") == ["cats/kitten.jpg", "logo.png", "press/p.jpg", "sp%20ace/%C3%A9.txt"], "\(listed.text)")
        #expect(listed.values("EncodingType") == ["url"])
        let v2 = f.send("GET", "photos", query: [("list-type", "2"), ("prefix", "link")])
        #expect(v2.values("KeyCount") == ["0"])
    }

    @Test func anonymousListingsSeeOnlyPublicKeys() throws {
        let f = try ServiceFixture()
        #expect(f.send("GET", "photos", signed: false).code == "AccessDenied")   // private bucket
        try f.write("site/open.txt", "x")
        #expect(f.send("GET", "site", signed: false).values("Key") == [".keep", "open.txt"])
        let manifest = ServiceFixture.defaultManifest + "\n"
        _ = manifest
        let g = try ServiceFixture(manifest: ServiceFixture.defaultManifest.replacingOccurrences(of: "    acl: public-read\n", with: "    acl: public-read\n    objects:\n      - match: \"hidden/**\"\n        acl: private\n"))
        try g.write("site/hidden/a.txt", "x")
        try g.write("site/shown.txt", "x")
        let anonymous = g.send("GET", "site", query: [("delimiter", "/")], signed: false)
        #expect(anonymous.values("Key") == [".keep", "shown.txt"] && anonymous.values("Prefix") == [""], "\(anonymous.text)")
        #expect(g.send("GET", "site", query: [("delimiter", "/")]).values("Prefix") == ["", "hidden/"])
    }
}

@Suite(.ownThreads) struct BucketAndACLTests {
    @Test func bucketInfoAndACLs() throws {
        let f = try ServiceFixture()
        let info = f.send("GET", "site", query: [("bucketInfo", nil)])
        #expect(info.status == 200 && info.values("Name") == ["site"] && info.values("Grant") == ["public-read"] && info.values("Location") == ["oss-cn-hangzhou"])
        #expect(f.send("GET", "site", query: [("bucketInfo", nil)], signed: false).code == "AccessDenied")
        #expect(f.send("GET", "photos", query: [("acl", nil)]).values("Grant") == ["private"])
        #expect(f.send("GET", "photos", "press/p.jpg", query: [("acl", nil)]).values("Grant") == ["public-read"])
        #expect(f.send("GET", "photos", "cats/kitten.jpg", query: [("acl", nil)]).values("Grant") == ["default"])
        #expect(f.send("GET", "photos", "cats/kitten.jpg", query: [("acl", nil)], signed: false).code == "AccessDenied")
        #expect(f.send("GET", "photos", "cats/none.jpg", query: [("acl", nil)]).code == "NoSuchKey")
        // A built derivative reports the ACL its rule recorded.
        let g = try ServiceFixture(recorded: Recorded(acls: ["site/thumb.jpg": .private]), )
        try g.write("site/thumb.jpg", "t")
        #expect(g.send("GET", "site", "thumb.jpg", query: [("acl", nil)]).values("Grant") == ["private"])
    }

    @Test func putACLIsRefusedAndTheObjectIsIntact() throws {
        let f = try ServiceFixture()
        let before = try #require(f.file("photos/cats/kitten.jpg"))
        let object = f.send("PUT", "photos", "cats/kitten.jpg", query: [("acl", nil)], headers: ["x-oss-object-acl": "public-read"])
        #expect(object.status == 501 && object.text.contains("declared in the manifest"))
        #expect(f.file("photos/cats/kitten.jpg") == before)
        #expect(f.send("GET", "photos", "cats/kitten.jpg", signed: false).status == 403)
        let bucket = f.send("PUT", "photos", query: [("acl", nil)], headers: ["x-oss-acl": "public-read"])
        #expect(bucket.status == 501 && bucket.text.contains("declared in the manifest"))
        #expect(f.send("GET", "photos", query: [("lifecycle", nil)]).status == 501)
    }
}

@Suite(.ownThreads) struct DeleteTests {
    @Test func deleteObjectRemovesOneFileOnly() throws {
        let f = try ServiceFixture()
        try f.write("photos/x/y.txt", "y")
        let deleted = f.send("DELETE", "photos", "x/y.txt")
        #expect(deleted.status == 204 && f.file("photos/x/y.txt") == nil)
        #expect(FileManager.default.fileExists(atPath: f.folder.appendingPathComponent("photos/x").path))   // the folder stays
        #expect(f.send("DELETE", "photos", "x/never.txt").status == 204)
        #expect(f.send("DELETE", "photos", "x").status == 204 && FileManager.default.fileExists(atPath: f.folder.appendingPathComponent("photos/x").path))
        try FileManager.default.createSymbolicLink(atPath: f.folder.appendingPathComponent("photos/l.txt").path, withDestinationPath: f.folder.appendingPathComponent("drop/.keep").path)
        #expect(f.send("DELETE", "photos", "l.txt").status == 204)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: f.folder.appendingPathComponent("photos/l.txt").path)) != nil)
        #expect(f.send("DELETE", "photos", "cats/kitten.jpg", signed: false).code == "AccessDenied")
        #expect(f.file("photos/cats/kitten.jpg") != nil)
        try f.write("drop/anon.txt", "a")
        #expect(f.send("DELETE", "drop", "anon.txt", signed: false).status == 204 && f.file("drop/anon.txt") == nil)
    }

    @Test func buildOutputsAreNeverDeletedOrReplaced() throws {
        let f = try ServiceFixture(recorded: Owned(keys: ["photos/thumbs/k.jpg"]))
        try f.write("photos/thumbs/k.jpg", "built")
        let refused = f.send("DELETE", "photos", "thumbs/k.jpg")
        #expect(refused.status == 403 && refused.text.contains("output of derive build") && f.file("photos/thumbs/k.jpg") == Data("built".utf8))
        let copy = f.send("PUT", "photos", "thumbs/k.jpg", headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg"])
        #expect(copy.status == 403 && f.file("photos/thumbs/k.jpg") == Data("built".utf8))
        #expect(f.send("POST", "photos", "thumbs/k.jpg", query: [("append", nil), ("position", "0")], body: Data("x".utf8)).status == 403)
        #expect(f.send("POST", "photos", "thumbs/k.jpg", query: [("uploads", nil)]).status == 403)
        let body = "<Delete><Quiet>false</Quiet><Object><Key>thumbs/k.jpg</Key></Object></Delete>"
        let batch = f.send("POST", "photos", query: [("delete", nil)], headers: ["content-md5": Data(Insecure.MD5.hash(data: Data(body.utf8))).base64EncodedString()],
                           body: Data(body.utf8))
        #expect(batch.status == 200 && batch.values("Deleted").isEmpty && batch.values("Code") == ["AccessDenied"])
        #expect(f.file("photos/thumbs/k.jpg") == Data("built".utf8))
    }

    @Test func deleteMultipleObjects() throws {
        let f = try ServiceFixture()
        for name in ["m/1.txt", "m/2.txt", "m/3 &.txt"] { try f.write("photos/" + name, name) }
        func request(_ keys: [String], quiet: Bool, md5: String? = nil, encoded: Bool = false) -> ServiceResponse {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>\(quiet)</Quiet>" +
                keys.map { "<Object><Key>\($0)</Key></Object>" }.joined() + "</Delete>"
            let digest = md5 ?? Data(Insecure.MD5.hash(data: Data(body.utf8))).base64EncodedString()
            return f.send("POST", "photos", query: [("delete", nil)] + (encoded ? [("encoding-type", "url")] : []),
                          headers: ["content-md5": digest], body: Data(body.utf8))
        }
        let verbose = request(["m/1.txt", "m/missing.txt", "m/3 &amp;.txt"], quiet: false)
        #expect(verbose.status == 200 && verbose.values("Key") == ["m/1.txt", "m/missing.txt", "m/3 &.txt"], "\(verbose.text)")
        #expect(f.file("photos/m/1.txt") == nil && f.file("photos/m/3 &.txt") == nil && f.file("photos/m/2.txt") != nil)
        let quiet = request(["m%2F2.txt"], quiet: true, encoded: true)
        #expect(quiet.status == 200 && quiet.values("Key").isEmpty && f.file("photos/m/2.txt") == nil)
        #expect(request(["cats/kitten.jpg"], quiet: true, md5: Data(Insecure.MD5.hash(data: Data("other".utf8))).base64EncodedString()).code == "InvalidDigest")
        let body = "<Delete><Object><Key>cats/kitten.jpg</Key></Object></Delete>"
        #expect(f.send("POST", "photos", query: [("delete", nil)], body: Data(body.utf8)).code == "MissingArgument")
        #expect(request(Array(repeating: "cats/kitten.jpg", count: 1001), quiet: true).code == "MalformedXML")
        #expect(f.file("photos/cats/kitten.jpg") != nil)
    }
}

@Suite(.ownThreads) struct CopyAndAppendTests {
    @Test func copyObjectChecksTheSourceLikeAGet() throws {
        let f = try ServiceFixture()
        let source = try #require(f.file("photos/cats/kitten.jpg"))
        let copied = f.send("PUT", "photos", "copies/k.jpg", headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg"])
        #expect(copied.status == 200 && f.file("photos/copies/k.jpg") == source, "\(copied.text)")
        let etag = "\"" + Insecure.MD5.hash(data: source).map { String(format: "%02X", $0) }.joined() + "\""
        #expect(copied.values("ETag") == [etag])
        // Anonymous: the target is public-read-write, the source private: refused, nothing written.
        let stolen = f.send("PUT", "drop", "stolen.jpg", headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg"], signed: false)
        #expect(stolen.status == 403 && f.file("drop/stolen.jpg") == nil)
        let open = f.send("PUT", "drop", "p.jpg", headers: ["x-oss-copy-source": "/photos/press/p.jpg"], signed: false)
        #expect(open.status == 200 && f.file("drop/p.jpg") == f.file("photos/press/p.jpg"))
        #expect(f.send("PUT", "photos", "c.jpg", headers: ["x-oss-copy-source": "/photos/nope.jpg"]).code == "NoSuchKey")
        #expect(f.send("PUT", "photos", "c.jpg", headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg", "x-oss-metadata-directive": "MOVE"]).code == "InvalidArgument")
        #expect(f.send("PUT", "photos", "c.jpg", headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg", "x-oss-copy-source-if-match": "\"00\""]).status == 412)
        #expect(f.send("PUT", "photos", "c.jpg", headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg", "x-oss-copy-source-if-none-match": etag]).status == 304)
        #expect(f.file("photos/c.jpg") == nil)
        #expect(f.send("PUT", "photos", "c.jpg", headers: ["x-oss-copy-source": "/photos/..%2Fdrop/x"]).status == 400)
        #expect(f.send("PUT", "photos", "c.jpg", headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg", "x-oss-metadata-directive": "REPLACE"]).status == 200)
    }

    @Test func appendObject() throws {
        let f = try ServiceFixture()
        let first = f.send("POST", "photos", "log.txt", query: [("append", nil), ("position", "0")], body: Data("hello ".utf8))
        #expect(first.status == 200 && first.header("x-oss-next-append-position") == "6", "\(first.text)")
        let second = f.send("POST", "photos", "log.txt", query: [("append", nil), ("position", "6")], body: Data("world".utf8))
        #expect(second.status == 200 && second.header("x-oss-next-append-position") == "11" && f.file("photos/log.txt") == Data("hello world".utf8))
        let wrong = f.send("POST", "photos", "log.txt", query: [("append", nil), ("position", "3")], body: Data("x".utf8))
        #expect(wrong.status == 409 && wrong.code == "PositionNotEqualToLength" && wrong.values("NextAppendPosition") == ["11"])
        #expect(f.file("photos/log.txt") == Data("hello world".utf8))
        let normal = f.send("POST", "photos", "cats/kitten.jpg", query: [("append", nil), ("position", "0")], body: Data("x".utf8))
        #expect(normal.status == 409 && normal.code == "ObjectNotAppendable")
        #expect(f.send("GET", "photos", query: [("prefix", "log.txt")]).values("Type") == ["Appendable"])
        // A PUT over it makes it a normal object again.
        #expect(f.send("PUT", "photos", "log.txt", body: Data("new".utf8)).status == 200)
        #expect(f.send("POST", "photos", "log.txt", query: [("append", nil), ("position", "3")], body: Data("x".utf8)).code == "ObjectNotAppendable")
        #expect(f.send("POST", "photos", "fresh.txt", query: [("append", nil), ("position", "5")], body: Data("x".utf8)).code == "PositionNotEqualToLength")
        #expect(f.send("POST", "site", "a.txt", query: [("append", nil), ("position", "0")], body: Data("x".utf8), signed: false).status == 403)
    }
}

@Suite(.ownThreads) struct MultipartTests {
    static let partSize = 100 * 1024

    static func etag(_ data: Data) -> String { Insecure.MD5.hash(data: data).map { String(format: "%02X", $0) }.joined() }

    @Test func uploadListCompleteWithOSSETag() throws {
        let f = try ServiceFixture()
        let initiated = f.send("POST", "photos", "big/file.bin", query: [("uploads", nil)])
        let id = try #require(initiated.values("UploadId").first, "\(initiated.text)")
        #expect(id.count == 32)
        let parts = [Data(repeating: 1, count: Self.partSize), Data(repeating: 2, count: Self.partSize), Data("tail".utf8)]
        for (index, part) in parts.enumerated() {
            let put = f.send("PUT", "photos", "big/file.bin", query: [("partNumber", String(index + 1)), ("uploadId", id)], body: part)
            #expect(put.status == 200 && put.header("ETag") == "\"" + Self.etag(part) + "\"", "\(put.text)")
        }
        // Parts live in the state folder, never in the bucket.
        #expect(f.file("photos/big/file.bin") == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.folder.appendingPathComponent("photos").path).contains("big") == false)
        let listed = f.send("GET", "photos", "big/file.bin", query: [("uploadId", id)])
        #expect(listed.values("PartNumber") == ["1", "2", "3"] && listed.values("Size") == [String(Self.partSize), String(Self.partSize), "4"])
        let uploads = f.send("GET", "photos", query: [("uploads", nil)])
        #expect(uploads.values("UploadId") == [id] && uploads.values("Key") == ["big/file.bin"])
        let body = "<CompleteMultipartUpload>" + parts.indices.map { "<Part><PartNumber>\($0 + 1)</PartNumber><ETag>\"\(Self.etag(parts[$0]))\"</ETag></Part>" }.joined()
            + "</CompleteMultipartUpload>"
        let done = f.send("POST", "photos", "big/file.bin", query: [("uploadId", id)], body: Data(body.utf8))
        #expect(done.status == 200, "\(done.text)")
        var combined = Insecure.MD5()
        for part in parts { combined.update(data: Data(Insecure.MD5.hash(data: part))) }
        let expected = "\"" + combined.finalize().map { String(format: "%02X", $0) }.joined() + "-3\""
        #expect(done.header("ETag") == expected)
        #expect(f.file("photos/big/file.bin") == parts.reduce(Data(), +))
        #expect(f.send("GET", "photos", query: [("uploads", nil)]).values("UploadId").isEmpty)
        #expect(f.send("GET", "photos", "big/file.bin", query: [("uploadId", id)]).code == "NoSuchUpload")
    }

    @Test func unknownUploadsSmallPartsOrderAndAbort() throws {
        let f = try ServiceFixture()
        let before = try #require(f.file("photos/cats/kitten.jpg"))
        let unknown = f.send("PUT", "photos", "cats/kitten.jpg", query: [("partNumber", "1"), ("uploadId", "0123456789ABCDEF0123456789ABCDEF")], body: Data("x".utf8))
        #expect(unknown.code == "NoSuchUpload" && f.file("photos/cats/kitten.jpg") == before)
        #expect(f.send("PUT", "photos", "cats/kitten.jpg", query: [("partNumber", "1"), ("uploadId", "../../x")], body: Data("x".utf8)).code == "NoSuchUpload")
        let id = try #require(f.send("POST", "photos", "s.bin", query: [("uploads", nil)]).values("UploadId").first)
        #expect(f.send("PUT", "photos", "other.bin", query: [("partNumber", "1"), ("uploadId", id)], body: Data("x".utf8)).code == "NoSuchUpload")
        #expect(f.send("PUT", "photos", "s.bin", query: [("partNumber", "0"), ("uploadId", id)], body: Data("x".utf8)).code == "InvalidArgument")
        let small = [Data("a".utf8), Data("b".utf8)]
        for (index, part) in small.enumerated() {
            _ = f.send("PUT", "photos", "s.bin", query: [("partNumber", String(index + 1)), ("uploadId", id)], body: part)
        }
        func complete(_ numbers: [Int], tags: [String]? = nil) -> ServiceResponse {
            let body = "<CompleteMultipartUpload>" + numbers.enumerated().map { i, n in
                "<Part><PartNumber>\(n)</PartNumber><ETag>\"\(tags?[i] ?? Self.etag(small[n - 1]))\"</ETag></Part>"
            }.joined() + "</CompleteMultipartUpload>"
            return f.send("POST", "photos", "s.bin", query: [("uploadId", id)], body: Data(body.utf8))
        }
        #expect(complete([1, 2]).code == "EntityTooSmall")
        #expect(complete([2, 1]).code == "InvalidPartOrder")
        #expect(complete([1], tags: ["00"]).code == "InvalidPart")
        #expect(complete([3], tags: ["00"]).code == "InvalidPart")
        #expect(f.file("photos/s.bin") == nil)
        #expect(complete([2]).status == 200 && f.file("photos/s.bin") == Data("b".utf8))
        let other = try #require(f.send("POST", "photos", "t.bin", query: [("uploads", nil)]).values("UploadId").first)
        #expect(f.send("DELETE", "photos", "t.bin", query: [("uploadId", other)]).status == 204)
        #expect(f.send("DELETE", "photos", "t.bin", query: [("uploadId", other)]).code == "NoSuchUpload")
        #expect(f.send("POST", "site", "t.bin", query: [("uploads", nil)], signed: false).status == 403)
    }

    @Test func uploadPartCopyWithRange() throws {
        let f = try ServiceFixture()
        let source = try #require(f.file("photos/cats/kitten.jpg"))
        let id = try #require(f.send("POST", "photos", "copy.bin", query: [("uploads", nil)]).values("UploadId").first)
        let copied = f.send("PUT", "photos", "copy.bin", query: [("partNumber", "1"), ("uploadId", id)],
                            headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg", "x-oss-copy-source-range": "bytes=0-99"])
        #expect(copied.status == 200 && copied.header("ETag") == "\"" + Self.etag(source.prefix(100)) + "\"", "\(copied.text)")
        let body = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"\(Self.etag(source.prefix(100)))\"</ETag></Part></CompleteMultipartUpload>"
        #expect(f.send("POST", "photos", "copy.bin", query: [("uploadId", id)], body: Data(body.utf8)).status == 200)
        #expect(f.file("photos/copy.bin") == source.prefix(100))
        let anonymous = f.send("PUT", "drop", "x.bin", query: [("partNumber", "1"), ("uploadId", id)],
                               headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg"], signed: false)
        #expect(anonymous.status == 404 || anonymous.status == 403)
    }
}

@Suite(.ownThreads) struct SubresourceMethodTests {
    /// `PUT ?append` (AppendObject needs POST) once fell through to a plain PUT and overwrote the
    /// object: an operation with the wrong method is its own NotImplemented operation.
    @Test func aSubresourceWithTheWrongMethodNeverWrites() throws {
        let f = try ServiceFixture()
        let before = try #require(f.file("photos/cats/kitten.jpg"))
        for query in [[("append", nil), ("position", "0")], [("uploads", nil)]] as [[(String, String?)]] {
            let answer = f.send("PUT", "photos", "cats/kitten.jpg", query: query, body: Data("x".utf8))
            #expect(answer.status == 501 && answer.code == "NotImplemented")
        }
        #expect(f.send("GET", "photos", "cats/kitten.jpg", query: [("append", nil)]).status == 501)
        #expect(f.file("photos/cats/kitten.jpg") == before)
    }
}

@Suite(.ownThreads) struct ListObjectsV2TokenTests {
    /// oss2's list_objects_v2 sends `continuation-token=` (empty) on its first page.
    @Test func anEmptyContinuationTokenIsTheFirstPage() throws {
        let f = try ServiceFixture()
        let page = f.send("GET", "photos", query: [("list-type", "2"), ("continuation-token", "")])
        #expect(page.status == 200 && page.values("Key") == ["cats/kitten.jpg", "logo.png", "press/p.jpg"], "\(page.text)")
        #expect(f.send("GET", "photos", query: [("list-type", "2"), ("continuation-token", "%%%")]).code == "InvalidArgument")
    }
}

@Suite(.ownThreads) struct ObjectMetaTests {
    /// ossfs asks GetObjectMeta before every write; it answered 501.
    @Test func objectMetaIsAHeadWithLengthETagAndTime() throws {
        let f = try ServiceFixture()
        let source = try #require(f.file("photos/cats/kitten.jpg"))
        let meta = f.send("HEAD", "photos", "cats/kitten.jpg", query: [("objectMeta", nil)])
        #expect(meta.status == 200 && meta.header("Content-Length") == String(source.count) && meta.body.isEmpty)
        #expect(meta.header("ETag") == "\"" + MultipartTests.etag(source) + "\"" && meta.header("Last-Modified")?.hasSuffix(" GMT") == true)
        #expect(f.send("HEAD", "photos", "cats/none.jpg", query: [("objectMeta", nil)]).status == 404)
        #expect(f.send("HEAD", "photos", "cats/kitten.jpg", query: [("objectMeta", nil)], signed: false).status == 403)
    }
}

@Suite(.ownThreads) struct MultipartRaceTests {
    /// A part whose upload is aborted while its body streams is not kept (its folder was
    /// recreated by the part's temporary file and would have stayed forever).
    @Test func aPartOfAnUploadAbortedMidBodyLeavesNothing() throws {
        let f = try ServiceFixture()
        let id = try #require(f.send("POST", "photos", "r.bin", query: [("uploads", nil)]).values("UploadId").first)
        // The part's head is accepted, then the upload is aborted before its body arrives.
        let date = ServiceFixture.headerDate
        let query = [OSSSignature.Parameter("partNumber", "1"), OSSSignature.Parameter("uploadId", id)]
        let stringToSign = OSSSignature.v1StringToSign(method: "PUT", dateOrExpires: date, headers: ["date": date], bucket: "photos", key: "r.bin", query: query)
        let headers = ["host": "127.0.0.1:9000", "date": date,
                       "authorization": "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)]
        guard case .upload(let upload) = f.service.begin(ServiceRequest(method: "PUT", target: "/photos/r.bin?partNumber=1&uploadId=\(id)", headers: headers)) else {
            Issue.record("the part was not accepted"); return
        }
        #expect(f.send("DELETE", "photos", "r.bin", query: [("uploadId", id)]).status == 204)
        upload.write(Data("late".utf8))
        let answer = upload.finish()
        #expect(answer.status == 404 && answer.code == "NoSuchUpload", "\(answer.status) \(answer.text)")
        let uploads = f.service.manifest.stateFolder + "/serve-uploads"
        #expect(!FileManager.default.fileExists(atPath: uploads + "/" + id))
    }

    @Test func headOfABucketHasNoBody() throws {
        let f = try ServiceFixture()
        let head = f.send("HEAD", "photos")
        #expect(head.status == 200 && head.body.isEmpty)
        #expect(f.send("HEAD", "photos", signed: false).status == 403)
    }
}

@Suite(.ownThreads) struct ObjectAPIMetadataTests {
    @Test func multipartObjectsKeepTheirETagAndHeaders() throws {
        let f = try ServiceFixture()
        let id = try #require(f.send("POST", "photos", "m.bin", query: [("uploads", nil)],
                                     headers: ["content-type": "application/x-test", "x-oss-meta-who": "me"]).values("UploadId").first)
        let part = Data("only part".utf8)
        _ = f.send("PUT", "photos", "m.bin", query: [("partNumber", "1"), ("uploadId", id)], body: part)
        let body = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"\(MultipartTests.etag(part))\"</ETag></Part></CompleteMultipartUpload>"
        let done = f.send("POST", "photos", "m.bin", query: [("uploadId", id)], body: Data(body.utf8))
        let etag = try #require(done.header("ETag"))
        #expect(etag.hasSuffix("-1\""))
        let head = f.send("HEAD", "photos", "m.bin")
        #expect(head.header("ETag") == etag && head.header("Content-Type") == "application/x-test" && head.header("x-oss-meta-who") == "me")
        let listed = f.send("GET", "photos", query: [("prefix", "m.bin")])
        #expect(listed.values("ETag") == [etag] && listed.values("Type") == ["Multipart"])
    }

    @Test func copiesKeepOrReplaceTheSourceHeaders() throws {
        let f = try ServiceFixture()
        #expect(f.send("PUT", "photos", "src.txt", headers: ["content-type": "text/x-source", "x-oss-meta-a": "1"], body: Data("s".utf8)).status == 200)
        _ = f.send("PUT", "photos", "kept.txt", headers: ["x-oss-copy-source": "/photos/src.txt"])
        let kept = f.send("HEAD", "photos", "kept.txt")
        #expect(kept.header("Content-Type") == "text/x-source" && kept.header("x-oss-meta-a") == "1")
        _ = f.send("PUT", "photos", "replaced.txt", headers: ["x-oss-copy-source": "/photos/src.txt", "x-oss-metadata-directive": "REPLACE",
                                                             "content-type": "text/x-new"])
        let replaced = f.send("HEAD", "photos", "replaced.txt")
        #expect(replaced.header("Content-Type") == "text/x-new" && replaced.header("x-oss-meta-a") == nil)
        #expect(f.send("DELETE", "photos", "src.txt").status == 204)
        #expect(f.service.metadata.read(bucket: "photos", key: try ObjectKey("src.txt"),
                                        identity: ObjectFileIdentity(device: 0, inode: 0, size: 0, modified: 0)) == nil)
    }
}
