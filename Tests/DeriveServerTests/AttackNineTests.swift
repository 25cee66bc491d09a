import Crypto
import Foundation
import Manifest
import ProcessLanguage
import Testing
import TestSupport
@testable import DeriveServer
#if canImport(Glibc)
import Glibc
#endif

/// A test double: recorded outputs, and keys a rule of the manifest may write (not built yet).
struct RuleOutputs: RecordedOutputs {
    var recorded: Set<String> = []
    var derivatives: Set<String> = []
    func recordedACL(bucket: String, key: String) throws -> BucketACL? { recorded.contains(bucket + "/" + key) ? .publicRead : nil }
    func isDerivative(bucket: String, key: String) -> Bool { derivatives.contains(bucket + "/" + key) }
}

/// Attack 9 on `derive serve`'s object API (#12), findings 2, 5, 6, 7 and 8.
@Suite(.ownThreads) struct AttackNineTests {
    static func md5(_ text: String) -> String { Data(Insecure.MD5.hash(data: Data(text.utf8))).base64EncodedString() }

    // MARK: 2. Headers that ask for what the manifest declares (or serve cannot do) are refused.

    /// `x-oss-object-acl: private` on a PUT into a public-read-write bucket answered 200 and the
    /// object stayed public. ACLs are the manifest's: a value that would change the effective
    /// ACL is PutObjectAcl's 501, before anything is written; an invalid value is 400.
    @Test func anObjectACLHeaderThatWouldChangeTheACLIsRefusedOnEveryWriter() throws {
        let f = try ServiceFixture()
        try f.write("drop/src.txt", "source")
        let writers: [(String, (String, Bool) -> ServiceResponse)] = [
            ("PUT", { key, signed in f.send("PUT", "drop", key, headers: ["x-oss-object-acl": "private"], body: Data("alice,100000".utf8), signed: signed) }),
            ("copy", { key, signed in f.send("PUT", "drop", key, headers: ["x-oss-object-acl": "private", "x-oss-copy-source": "/drop/src.txt"], signed: signed) }),
            ("initiate", { key, signed in f.send("POST", "drop", key, query: [("uploads", nil)], headers: ["x-oss-object-acl": "private"], signed: signed) }),
            ("append", { key, signed in f.send("POST", "drop", key, query: [("append", nil), ("position", "0")], headers: ["x-oss-object-acl": "private"],
                                               body: Data("x".utf8), signed: signed) }),
        ]
        for (name, write) in writers {
            for signed in [false, true] {
                let key = "payroll-\(name)-\(signed).csv"
                let answer = write(key, signed)
                #expect(answer.status == 501 && answer.code == "NotImplemented" && answer.text.contains("declared in the manifest"),
                        "\(name) signed=\(signed): \(answer.status) \(answer.text)")
                #expect(f.file("drop/" + key) == nil, "\(name) signed=\(signed) wrote the object")
            }
        }
        #expect(f.send("GET", "drop", query: [("uploads", nil)]).values("UploadId").isEmpty)
        // An invalid value is OSS's 400 InvalidArgument; the effective ACL itself, or `default`
        // where the object follows its bucket, changes nothing and is accepted.
        let bogus = f.send("PUT", "drop", "b.txt", headers: ["x-oss-object-acl": "bogus"], body: Data("b".utf8), signed: false)
        #expect(bogus.status == 400 && bogus.code == "InvalidArgument" && f.file("drop/b.txt") == nil, "\(bogus.text)")
        for value in ["public-read-write", "default", "DEFAULT"] {
            let same = f.send("PUT", "drop", "same.txt", headers: ["x-oss-object-acl": value], body: Data(value.utf8), signed: false)
            #expect(same.status == 200 && f.file("drop/same.txt") == Data(value.utf8), "\(value): \(same.text)")
        }
        // In photos (private) `press/**` is public-read: `default` would make it private.
        let press = f.send("PUT", "photos", "press/new.jpg", headers: ["x-oss-object-acl": "default"], body: Data("p".utf8))
        #expect(press.status == 501 && f.file("photos/press/new.jpg") == nil, "\(press.text)")
        #expect(f.send("PUT", "photos", "press/new.jpg", headers: ["x-oss-object-acl": "public-read"], body: Data("p".utf8)).status == 200)
        // CompleteMultipartUpload takes the header too.
        let id = try #require(f.send("POST", "drop", "m.bin", query: [("uploads", nil)]).values("UploadId").first)
        let part = f.send("PUT", "drop", "m.bin", query: [("partNumber", "1"), ("uploadId", id)], body: Data("part".utf8))
        let tag = try #require(part.headers.first { $0.0 == "ETag" }?.1)
        let body = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\(tag)</ETag></Part></CompleteMultipartUpload>"
        let complete = f.send("POST", "drop", "m.bin", query: [("uploadId", id)], headers: ["x-oss-object-acl": "public-read"], body: Data(body.utf8))
        #expect(complete.status == 501 && f.file("drop/m.bin") == nil, "\(complete.text)")
    }

    /// Tagging, server-side encryption and storage classes other than Standard were accepted
    /// with 200 and ignored: the caller believed they took effect.
    @Test func taggingEncryptionAndStorageClassHeadersAreNotPretended() throws {
        let f = try ServiceFixture()
        let refused: [(String, String, Int, String)] = [
            ("x-oss-tagging", "a=b", 501, "NotImplemented"),
            ("x-oss-server-side-encryption", "KMS", 501, "NotImplemented"),
            ("x-oss-server-side-encryption", "AES256", 501, "NotImplemented"),
            ("x-oss-server-side-data-encryption", "SM4", 501, "NotImplemented"),
            ("x-oss-server-side-encryption-key-id", "k", 501, "NotImplemented"),
            ("x-oss-storage-class", "Archive", 501, "NotImplemented"),
            ("x-oss-storage-class", "IA", 501, "NotImplemented"),
            ("x-oss-storage-class", "Gold", 400, "InvalidArgument"),
        ]
        for (header, value, status, code) in refused {
            for signed in [false, true] {
                let put = f.send("PUT", "drop", "t.txt", headers: [header: value], body: Data("t".utf8), signed: signed)
                #expect(put.status == status && put.code == code, "\(header): \(value): \(put.status) \(put.text)")
                let initiate = f.send("POST", "drop", "t.txt", query: [("uploads", nil)], headers: [header: value], signed: signed)
                #expect(initiate.status == status, "\(header) on Initiate: \(initiate.text)")
                #expect(f.file("drop/t.txt") == nil)
            }
        }
        for value in ["Standard", "STANDARD"] {
            #expect(f.send("PUT", "drop", "s.txt", headers: ["x-oss-storage-class": value], body: Data("s".utf8), signed: false).status == 200)
        }
    }

    // MARK: 5. Build outputs (and keys a rule will write) are refused to every writer.

    @Test func aSignedPutOrSaveAsNeverReplacesABuildOutputOrARuleKey() throws {
        let f = try ServiceFixture(recorded: RuleOutputs(recorded: ["photos/thumbs/k.jpg"], derivatives: ["photos/thumbs/notyet.jpg"]))
        try f.write("photos/thumbs/k.jpg", "built")
        let put = f.send("PUT", "photos", "thumbs/k.jpg", body: Data("evil".utf8))
        #expect(put.status == 403 && put.text.contains("output of derive build"), "\(put.text)")
        #expect(f.file("photos/thumbs/k.jpg") == Data("built".utf8))
        let putRule = f.send("PUT", "photos", "thumbs/notyet.jpg", body: Data("evil".utf8))
        #expect(putRule.status == 403 && putRule.text.contains("output of derive build") && f.file("photos/thumbs/notyet.jpg") == nil, "\(putRule.text)")
        for target in ["thumbs/k.jpg", "thumbs/notyet.jpg"] {
            let body = "x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode(target)),b_\(Base64URL.encode("photos"))"
            let saved = f.send("POST", "photos", "cats/kitten.jpg", query: [("x-oss-process", nil)], body: Data(body.utf8))
            #expect(saved.status == 403 && saved.text.contains("output of derive build"), "\(target): \(saved.status) \(saved.text)")
        }
        #expect(f.file("photos/thumbs/k.jpg") == Data("built".utf8) && f.file("photos/thumbs/notyet.jpg") == nil)
        // The other writers, as before: one check for all.
        #expect(f.send("PUT", "photos", "thumbs/notyet.jpg", headers: ["x-oss-copy-source": "/photos/cats/kitten.jpg"]).status == 403)
        #expect(f.send("POST", "photos", "thumbs/notyet.jpg", query: [("append", nil), ("position", "0")], body: Data("x".utf8)).status == 403)
        #expect(f.send("POST", "photos", "thumbs/notyet.jpg", query: [("uploads", nil)]).status == 403)
        #expect(f.file("photos/thumbs/notyet.jpg") == nil)
        // Other keys stay writable by a signed caller.
        #expect(f.send("PUT", "photos", "thumbs/mine.jpg", body: Data("mine".utf8)).status == 200)
    }

    // MARK: 6. x-oss-complete-all with a body.

    @Test func completeAllWithABodyIsRefused() throws {
        let f = try ServiceFixture()
        let id = try #require(f.send("POST", "photos", "all.bin", query: [("uploads", nil)]).values("UploadId").first)
        let first = Data(repeating: 1, count: 100 * 1024)
        #expect(f.send("PUT", "photos", "all.bin", query: [("partNumber", "1"), ("uploadId", id)], body: first).status == 200)
        let second = f.send("PUT", "photos", "all.bin", query: [("partNumber", "2"), ("uploadId", id)], body: Data("two".utf8))
        let tag = try #require(second.headers.first { $0.0 == "ETag" }?.1)
        let body = "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>\(tag)</ETag></Part></CompleteMultipartUpload>"
        let refused = f.send("POST", "photos", "all.bin", query: [("uploadId", id)], headers: ["x-oss-complete-all": "YES"], body: Data(body.utf8))
        #expect(refused.status == 400 && refused.code == "InvalidArgument", "\(refused.status) \(refused.text)")
        #expect(f.file("photos/all.bin") == nil)
        // The upload is still there: completing it properly works.
        let all = f.send("POST", "photos", "all.bin", query: [("uploadId", id)], headers: ["x-oss-complete-all": "yes"])
        #expect(all.status == 200 && f.file("photos/all.bin")?.count == first.count + 3, "\(all.text)")
    }

    // MARK: 7. A FIFO (any non-regular file) at the key is kept like a link.

    @Test func aFIFOAtTheKeyIsNeverReplacedAndAnswersConsistently() throws {
        let f = try ServiceFixture()
        try f.write("drop/src.txt", "source")
        let fifo = f.folder.appendingPathComponent("drop/fifo")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        func isFIFO() -> Bool {
            var info = stat()
            return lstat(fifo.path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO
        }
        let writes: [(String, ServiceResponse)] = [
            ("anonymous PUT", f.send("PUT", "drop", "fifo", body: Data("x".utf8), signed: false)),
            ("signed PUT", f.send("PUT", "drop", "fifo", body: Data("x".utf8))),
            ("append", f.send("POST", "drop", "fifo", query: [("append", nil), ("position", "0")], body: Data("x".utf8), signed: false)),
            ("copy", f.send("PUT", "drop", "fifo", headers: ["x-oss-copy-source": "/drop/src.txt"])),
            ("save-as", f.send("POST", "photos", "cats/kitten.jpg", query: [("x-oss-process", nil)],
                               body: Data("x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode("fifo")),b_\(Base64URL.encode("drop"))".utf8))),
        ]
        for (name, answer) in writes {
            #expect(answer.status == 403 && answer.code == "AccessDenied", "\(name): \(answer.status) \(answer.text)")
            #expect(isFIFO(), "\(name) replaced the FIFO")
        }
        // A multipart upload onto it is refused at Complete at the latest.
        let initiated = f.send("POST", "drop", "fifo", query: [("uploads", nil)])
        if let id = initiated.values("UploadId").first {
            let part = f.send("PUT", "drop", "fifo", query: [("partNumber", "1"), ("uploadId", id)], body: Data("p".utf8))
            let tag = part.headers.first { $0.0 == "ETag" }?.1 ?? ""
            let body = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\(tag)</ETag></Part></CompleteMultipartUpload>"
            let complete = f.send("POST", "drop", "fifo", query: [("uploadId", id)], body: Data(body.utf8))
            #expect(complete.status == 403, "\(complete.text)")
        } else {
            #expect(initiated.status == 403, "\(initiated.text)")
        }
        #expect(isFIFO())
        // Reads call it missing, DELETE answers as for a missing key and keeps it (as for a link).
        #expect(f.send("GET", "drop", "fifo", signed: false).code == "NoSuchKey")
        #expect(f.send("HEAD", "drop", "fifo", signed: false).status == 404)
        #expect(f.send("DELETE", "drop", "fifo", signed: false).status == 204)
        #expect(isFIFO())
    }

    /// A FIFO made at the key while the body streams is not replaced at commit either.
    @Test func aFIFOMadeDuringTheUploadIsKept() throws {
        let f = try ServiceFixture()
        guard case .upload(let upload) = f.service.begin(ServiceRequest(method: "PUT", target: "/drop/late", headers: ["host": "127.0.0.1:9000"])) else {
            Issue.record("expected an upload"); return
        }
        upload.write(Data("body".utf8))
        let fifo = f.folder.appendingPathComponent("drop/late")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        let answer = upload.finish()
        #expect(answer.status == 403 && answer.code == "AccessDenied", "\(answer.text)")
        var info = stat()
        #expect(lstat(fifo.path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO)
    }

    // MARK: 8. The anonymous multipart caps stay below the totals.

    /// `multipart_max_uploads: 8` alone left the anonymous cap at 20: anonymous callers took all 8.
    @Test func anonymousCallersNeverTakeEverySlotWhenOnlyTheTotalIsSet() throws {
        var settings = ServerSettings()
        settings.multipartMaxUploads = 8
        let f = try ServiceFixture(settings: settings)
        var anonymous = 0
        for index in 0..<8 where f.send("POST", "drop", "a\(index).bin", query: [("uploads", nil)], signed: false).status == 200 { anonymous += 1 }
        #expect(anonymous < 8)
        let signed = f.send("POST", "drop", "s.bin", query: [("uploads", nil)])
        #expect(signed.status == 200, "\(signed.text)")
    }
}
