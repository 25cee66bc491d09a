import Access
import Crypto
import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 7 on `derive serve`'s object API (#12), findings 1, 2, 3, 6, 7 and 8.
extension ServiceFixture {
    /// `application/x-www-form-urlencoded`, as Python's `requests` (oss2, ossfs) sends a query:
    /// a space is `+`, a plus `%2B`.
    static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: " "): out += "+"
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// A request whose query is form-encoded (`+` for spaces); signed with a V1 Authorization
    /// header over the decoded values, as oss2 signs.
    func sendForm(_ method: String, _ bucket: String, _ key: String = "", query: [(String, String?)], signed: Bool = false) -> ServiceResponse {
        var headers = ["host": "127.0.0.1:9000"]
        if signed {
            headers["date"] = Self.headerDate
            let stringToSign = OSSSignature.v1StringToSign(method: method, dateOrExpires: Self.headerDate, headers: headers, bucket: bucket, key: key,
                                                           query: query.map { OSSSignature.Parameter($0.0, $0.1) })
            headers["authorization"] = "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
        }
        let target = "/" + bucket + "/" + Self.encode(key, keepSlash: true) + "?"
            + query.map { Self.formEncode($0.0) + ($0.1.map { "=" + Self.formEncode($0) } ?? "") }.joined(separator: "&")
        return service.handle(ServiceRequest(method: method, target: target, headers: headers))
    }

    func append(_ bucket: String, _ key: String, position: Int, _ body: Data, signed: Bool = false) -> ServiceResponse {
        send("POST", bucket, key, query: [("append", nil), ("position", String(position))], body: body, signed: signed)
    }
}

@Suite(.ownThreads) struct AttackSevenTests {
    // MARK: 1. Every writer serialises on the key lock; an append links only over the file it copied.

    /// An appendable object of about 1.9 MB (the fixture's body limit is 1 MB), so an append's
    /// copy of it takes long enough for a racing writer to land inside it.
    static func appendable(_ f: ServiceFixture, _ key: String) -> Int {
        let piece = Data(repeating: UInt8(ascii: "A"), count: 950_000)
        #expect(f.append("drop", key, position: 0, piece, signed: false).status == 200)
        #expect(f.append("drop", key, position: piece.count, piece, signed: false).status == 200)
        return 2 * piece.count
    }

    @Test func anAppendRacingAPutNeverUndoesThePut() throws {
        nonisolated(unsafe) let f = try ServiceFixture()
        var appendsLost = 0
        for round in 0..<16 {
            let key = "race/put\(round).bin"
            let size = Self.appendable(f, key)
            nonisolated(unsafe) var appended = ServiceResponse(status: 0, headers: [], payload: .data(Data()))
            nonisolated(unsafe) var put = appended
            DispatchQueue.concurrentPerform(iterations: 2) { worker in
                // Both orders, whatever the machine's load: in odd rounds the append starts
                // late, so the PUT usually takes the key first (on a loaded machine the append,
                // started first, won all 16 rounds and the test proved nothing).
                if worker == 0 {
                    if round % 2 == 1 { usleep(UInt32(2_000 * (round % 4 + 1) * (round < 8 ? 1 : 25))) }   // later rounds: 50–200 ms, for a slow machine
                    appended = f.append("drop", key, position: size, Data("TAIL".utf8), signed: false)
                } else {
                    if round % 2 == 0 { usleep(UInt32(200 * (round % 8))) }
                    put = f.send("PUT", "drop", key, body: Data("NEWDATA".utf8), signed: false)
                }
            }
            #expect(put.status == 200)
            // Either serial order ends with the PUT's bytes: the append came first (200) or
            // found a normal object (409 ObjectNotAppendable, as OSS answers).
            #expect(f.file("drop/" + key) == Data("NEWDATA".utf8), "round \(round): append \(appended.status) undid the PUT")
            #expect(appended.status == 200 || appended.code == "ObjectNotAppendable" || appended.code == "PositionNotEqualToLength")
            if appended.status != 200 { appendsLost += 1 }
        }
        #expect(appendsLost > 0, "no round raced: the test proves nothing")
    }

    @Test func anAppendRacingADeleteNeverBringsTheObjectBack() throws {
        nonisolated(unsafe) let f = try ServiceFixture()
        var refused = 0
        for round in 0..<48 {
            let key = "race/del\(round).bin"
            let size = Self.appendable(f, key)
            nonisolated(unsafe) var appended = ServiceResponse(status: 0, headers: [], payload: .data(Data()))
            nonisolated(unsafe) var deleted = appended
            DispatchQueue.concurrentPerform(iterations: 2) { worker in
                // Both orders, whatever the machine's load: every third round the append starts
                // late, so the delete usually comes first.
                if worker == 0 {
                    if round % 3 == 2 { usleep(UInt32(2_000 * (round % 4 + 1))) }
                    appended = f.append("drop", key, position: size, Data("TAIL".utf8), signed: false)
                } else {
                    if round % 3 != 2 { usleep(UInt32(250 * (round % 16))) }   // spread over an append's length, whatever its speed
                    deleted = f.send("DELETE", "drop", key, signed: false)
                }
            }
            #expect(deleted.status == 204)
            #expect(f.file("drop/" + key) == nil, "round \(round): append \(appended.status) brought the deleted object back")
            #expect(f.send("HEAD", "drop", key, signed: false).status == 404)
            if appended.status != 200 {
                #expect(appended.status == 409 && appended.code == "PositionNotEqualToLength", "\(appended.text)")
                refused += 1
            }
        }
        #expect(refused > 0, "no round raced: the test proves nothing")
    }

    // MARK: 2. `+` in a query is a space, for every parameter and in the signature.

    @Test func aPlusInTheQueryIsASpaceForListingsAndDeletes() throws {
        let f = try ServiceFixture()
        for key in ["tmp x/1", "tmp+x/keep"] { #expect(f.send("PUT", "drop", key, body: Data(key.utf8), signed: false).status == 200) }
        // oss2's ObjectIterator(prefix='tmp x/') sends prefix=tmp+x%2F.
        let listed = f.sendForm("GET", "drop", query: [("prefix", "tmp x/")])
        #expect(listed.values("Key") == ["tmp x/1"] && listed.values("Prefix") == ["tmp x/"], "\(listed.text)")
        for key in listed.values("Key") { #expect(f.send("DELETE", "drop", key, signed: false).status == 204) }
        #expect(f.file("drop/tmp+x/keep") == Data("tmp+x/keep".utf8) && f.file("drop/tmp x/1") == nil)
        // A plus is %2B; a raw curl with %20 means the same as +.
        #expect(f.get("/drop/?prefix=tmp%2Bx").values("Key") == ["tmp+x/keep"])
        #expect(f.get("/drop/?prefix=tmp%20x").values("Key").isEmpty && f.get("/drop/?prefix=tmp+x").values("Key").isEmpty)
        // V2 listings: start-after and delimiter take the same decoder.
        #expect(f.get("/drop/?list-type=2&start-after=tmp+x%2F1&prefix=tmp").values("Key") == ["tmp+x/keep"])
        #expect(f.get("/drop/?delimiter=%2B&prefix=tmp").values("Prefix").contains("tmp+"))
        let spaced = f.get("/drop/?delimiter=+&prefix=tmp")
        #expect(spaced.values("Key") == ["tmp+x/keep"] && !spaced.values("Prefix").contains("tmp+"))
    }

    @Test func v1PagingWithAFormEncodedMarkerListsEveryKey() throws {
        let f = try ServiceFixture()
        let keys = ["a b/y", "a%", "a+b"]
        for key in keys { #expect(f.send("PUT", "drop", key, body: Data("x".utf8), signed: false).status == 200) }
        var seen: [String] = []
        var marker: String?
        for _ in 0..<10 {
            var query: [(String, String?)] = [("max-keys", "1"), ("prefix", "a")]
            if let marker { query.append(("marker", marker)) }
            let page = f.sendForm("GET", "drop", query: query)
            seen += page.values("Key")
            guard page.values("IsTruncated") == ["true"], let next = page.values("NextMarker").first else { break }
            marker = next
        }
        #expect(seen == keys)
    }

    @Test func headerSignedSubresourcesWithSpacesVerify() throws {
        let f = try ServiceFixture()
        let disposition = "attachment; filename=\"a b.txt\""
        let answer = f.sendForm("GET", "photos", "logo.png", query: [("response-content-disposition", disposition)], signed: true)
        #expect(answer.status == 200, "\(answer.text)")
        #expect(answer.header("Content-Disposition") == disposition)
        // V4 signs the decoded value re-encoded with %20 (oss2 v4 and the V2 SDK): a + in the query still verifies.
        let now = f.now
        let dateTime = OSSSignature.v4DateTime(now)
        let scope = "\(dateTime.prefix(8))/cn-hangzhou/oss/aliyun_v4_request"
        var headers = ["host": "127.0.0.1:9000", "x-oss-date": dateTime, "x-oss-content-sha256": "UNSIGNED-PAYLOAD"]
        let canonical = OSSSignature.v4CanonicalRequest(method: "GET", bucket: "photos", key: "logo.png",
                                                        query: [OSSSignature.Parameter("response-content-disposition", disposition)],
                                                        headers: headers)
        let signature = OSSSignature.v4Signature(key: OSSSignature.v4SigningKey(secret: "secret", date: String(dateTime.prefix(8)), region: "cn-hangzhou"),
                                                 stringToSign: OSSSignature.v4StringToSign(dateTime: dateTime, scope: scope, canonicalRequest: canonical))
        headers["authorization"] = "OSS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\(scope),Signature=\(signature)"
        let v4 = f.service.handle(ServiceRequest(method: "GET", target: "/photos/logo.png?response-content-disposition=" + ServiceFixture.formEncode(disposition),
                                                 headers: headers))
        #expect(v4.status == 200, "\(v4.text)")
        #expect(v4.header("Content-Disposition") == disposition)
    }

    @Test func aQueryThatIsNotUTF8IsRefused() throws {
        let f = try ServiceFixture()
        for target in ["/drop/?prefix=%ff", "/drop/?prefix=%zz", "/drop/?prefix=%4"] {
            let answer = f.get(target)
            #expect(answer.status == 400 && answer.code == "InvalidArgument", "\(target): \(answer.text)")
        }
    }

    // MARK: 3. x-oss-forbid-overwrite on every writer that can replace a key.

    @Test func forbidOverwriteHoldsForCopyInitiateAndComplete() throws {
        let f = try ServiceFixture()
        let forbid = ["x-oss-forbid-overwrite": "true"]
        #expect(f.send("PUT", "drop", "keep.txt", body: Data("original".utf8), signed: false).status == 200)
        #expect(f.send("PUT", "drop", "other.txt", body: Data("other".utf8), signed: false).status == 200)
        let copy = f.send("PUT", "drop", "keep.txt", headers: forbid.merging(["x-oss-copy-source": "/drop/other.txt"]) { a, _ in a }, signed: false)
        #expect(copy.status == 409 && copy.code == "FileAlreadyExists")
        #expect(f.file("drop/keep.txt") == Data("original".utf8))
        // A copy to a free key with the header goes ahead.
        #expect(f.send("PUT", "drop", "free.txt", headers: forbid.merging(["x-oss-copy-source": "/drop/other.txt"]) { a, _ in a }, signed: false).status == 200)
        // Initiate refuses at once; a Complete whose key was taken meanwhile refuses too.
        #expect(f.send("POST", "drop", "keep.txt", query: [("uploads", nil)], headers: forbid, signed: false).code == "FileAlreadyExists")
        let id = try #require(f.send("POST", "drop", "late.txt", query: [("uploads", nil)], headers: forbid, signed: false).values("UploadId").first)
        let part = Data("MP".utf8)
        #expect(f.send("PUT", "drop", "late.txt", query: [("partNumber", "1"), ("uploadId", id)], body: part, signed: false).status == 200)
        #expect(f.send("PUT", "drop", "late.txt", body: Data("meanwhile".utf8), signed: false).status == 200)
        let body = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"\(MultipartTests.etag(part))\"</ETag></Part></CompleteMultipartUpload>"
        let done = f.send("POST", "drop", "late.txt", query: [("uploadId", id)], headers: forbid, body: Data(body.utf8), signed: false)
        #expect(done.status == 409 && done.code == "FileAlreadyExists", "\(done.text)")
        #expect(f.file("drop/late.txt") == Data("meanwhile".utf8))
    }

    @Test func racingForbidOverwriteCopiesLeaveExactlyOneWinner() throws {
        nonisolated(unsafe) let f = try ServiceFixture()
        for who in 0..<4 { #expect(f.send("PUT", "drop", "src\(who).txt", body: Data("from \(who)".utf8), signed: false).status == 200) }
        for round in 0..<10 {
            let won = NIOLockedCounter()
            DispatchQueue.concurrentPerform(iterations: 4) { who in
                let copy = f.send("PUT", "drop", "once\(round).txt", headers: ["x-oss-forbid-overwrite": "true", "x-oss-copy-source": "/drop/src\(who).txt"],
                                  signed: false)
                if copy.status == 200 { won.add() } else { #expect(copy.code == "FileAlreadyExists") }
            }
            #expect(won.value == 1, "round \(round): \(won.value) copies replaced the object")
        }
    }

    // MARK: 6. HEAD and GET say the object's type as listings do.

    @Test func headAndGetNameAppendableAndMultipartObjects() throws {
        let f = try ServiceFixture()
        #expect(f.append("drop", "ap2", position: 0, Data("abc".utf8)).header("x-oss-next-append-position") == "3")
        for method in ["HEAD", "GET"] {
            let answer = f.send(method, "drop", "ap2", signed: false)
            #expect(answer.header("x-oss-object-type") == "Appendable" && answer.header("x-oss-next-append-position") == "3")
        }
        #expect(f.send("GET", "drop", query: [("prefix", "ap2")], signed: false).values("Type") == ["Appendable"])
        // The V2 SDK's append_file reopens it from HEAD's next position.
        #expect(f.append("drop", "ap2", position: 3, Data("de".utf8)).status == 200)
        #expect(f.send("HEAD", "drop", "ap2", signed: false).header("x-oss-next-append-position") == "5")
        let id = try #require(f.send("POST", "drop", "mp.bin", query: [("uploads", nil)], signed: false).values("UploadId").first)
        #expect(f.send("PUT", "drop", "mp.bin", query: [("partNumber", "1"), ("uploadId", id)], body: Data("MP".utf8), signed: false).status == 200)
        #expect(f.send("POST", "drop", "mp.bin", query: [("uploadId", id)], headers: ["x-oss-complete-all": "yes"], signed: false).status == 200)
        let head = f.send("HEAD", "drop", "mp.bin", signed: false)
        #expect(head.header("x-oss-object-type") == "Multipart" && head.header("x-oss-next-append-position") == nil)
        #expect(f.send("GET", "drop", query: [("prefix", "mp.bin")], signed: false).values("Type") == ["Multipart"])
        #expect(f.send("HEAD", "drop", "other", signed: false).status == 404)
        #expect(f.send("PUT", "drop", "n.txt", body: Data("n".utf8), signed: false).status == 200)
        #expect(f.send("HEAD", "drop", "n.txt", signed: false).header("x-oss-object-type") == "Normal")
    }

    // MARK: 7. A copy takes the metadata of the very bytes it copied.

    @Test func aCopyRacingAnOverwriteOfItsSourceKeepsTheCopiedBytesHeaders() throws {
        nonisolated(unsafe) let f = try ServiceFixture()
        let old = ["content-type": "text/old", "x-oss-meta-m": "old"]
        for round in 0..<24 {
            // A 1.9 MB source (two appends: the fixture's body limit is 1 MB) whose headers are recorded.
            let piece = Data(repeating: UInt8(ascii: "o"), count: 950_000)
            #expect(f.send("DELETE", "drop", "csrc", signed: false).status == 204)
            #expect(f.send("POST", "drop", "csrc", query: [("append", nil), ("position", "0")], headers: old, body: piece, signed: false).status == 200)
            #expect(f.send("POST", "drop", "csrc", query: [("append", nil), ("position", String(piece.count))], body: piece, signed: false).status == 200)
            DispatchQueue.concurrentPerform(iterations: 2) { worker in
                // The PUT's fsyncs take milliseconds: the copy starts at staggered times inside them.
                if worker == 0 {
                    usleep(UInt32(1500 * (round % 12)))
                    let copy = f.send("PUT", "drop", "cdst", headers: ["x-oss-copy-source": "/drop/csrc"], signed: false)
                    #expect(copy.status == 200, "\(copy.text)")
                } else {
                    #expect(f.send("PUT", "drop", "csrc", headers: ["content-type": "text/new", "x-oss-meta-m": "new"], body: Data("n".utf8), signed: false).status == 200)
                }
            }
            let copied = f.send("GET", "drop", "cdst", signed: false)
            let who = copied.body.first == UInt8(ascii: "o") ? "old" : "new"
            #expect(copied.header("content-type") == "text/\(who)" && copied.header("x-oss-meta-m") == who,
                    "round \(round): the \(who) bytes came with \(copied.header("content-type") ?? "none")")
        }
    }

    // MARK: 8. Smaller differences from OSS.

    @Test func copySourceQueriesAreRefusedNotIgnored() throws {
        let f = try ServiceFixture()
        #expect(f.send("PUT", "drop", "src.txt", body: Data("src".utf8), signed: false).status == 200)
        let version = f.send("PUT", "drop", "v.txt", headers: ["x-oss-copy-source": "/drop/src.txt?versionId=1"], signed: false)
        #expect(version.status == 501 && version.code == "NotImplemented")
        let process = f.send("PUT", "drop", "p.txt", headers: ["x-oss-copy-source": "/drop/src.txt?x-oss-process=image/resize,w_10"], signed: false)
        #expect(process.status == 400 && process.code == "InvalidArgument")
        #expect(f.file("drop/v.txt") == nil && f.file("drop/p.txt") == nil)
    }

    @Test func deleteWithAProcessIsRefusedAndDeletesNothing() throws {
        let f = try ServiceFixture()
        #expect(f.send("PUT", "drop", "k.txt", body: Data("k".utf8), signed: false).status == 200)
        let answer = f.get("/drop/k.txt?x-oss-process=image/resize,w_1", method: "DELETE")
        #expect(answer.status == 501 && answer.code == "NotImplemented")
        #expect(f.file("drop/k.txt") == Data("k".utf8))
    }

    @Test func anUnknownUploadIdInAnyCaseIsNoSuchUpload() throws {
        let f = try ServiceFixture()
        #expect(f.send("PUT", "drop", "k.txt", body: Data("k".utf8), signed: false).status == 200)
        for target in ["/drop/k.txt?UPLOADID=x", "/drop/k.txt?uploadid=x", "/drop/k.txt?uploadId=x"] {
            let answer = f.get(target, method: "DELETE")
            #expect(answer.status == 404 && answer.code == "NoSuchUpload", "\(target): \(answer.text)")
        }
        #expect(f.file("drop/k.txt") == Data("k".utf8))
    }

    @Test func deleteMultipleEncodesTheKeysOfItsErrors() throws {
        let f = try Hostile.fixture()
        let body = Data("<Delete><Object><Key>locked/a%20b.txt</Key></Object></Delete>".utf8)
        let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
        let answer = f.get("/prw/?delete&encoding-type=url", method: "POST", headers: ["host": "127.0.0.1:9000", "content-md5": md5], body: body)
        #expect(answer.values("Key") == ["locked/a%20b.txt"], "\(answer.text)")
        #expect(answer.values("Code") == ["AccessDenied"])
    }
}
