import Foundation
import ProcessLanguage
import Testing
import TestSupport
@testable import DeriveServer

/// Issue #11 leftover (a): a key that is itself a symbolic link is never replaced by a write,
/// anonymous or signed, PUT or save-as: it answers like a PUT through a link (403, nothing changed).
@Suite(.ownThreads) struct LinkReplacementTests {
    /// A fixture with `prw/link.jpg` → `prw/src.jpg` (inside) and `prw/out.txt` → a file outside the bucket.
    static func fixture() throws -> (ServiceFixture, URL) {
        let f = try Hostile.fixture()
        let outside = f.folder.appendingPathComponent("outside.txt")
        try Data("outside".utf8).write(to: outside)
        try FileManager.default.createSymbolicLink(atPath: f.buckets.appendingPathComponent("prw/link.jpg").path, withDestinationPath: "src.jpg")
        try FileManager.default.createSymbolicLink(atPath: f.buckets.appendingPathComponent("prw/out.txt").path, withDestinationPath: outside.path)
        return (f, outside)
    }

    static func isLink(_ url: URL) -> Bool {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: url.path)) != nil
    }

    @Test func anonymousAndSignedPutsOntoALinkAreRefused() throws {
        let (f, outside) = try Self.fixture()
        let original = try Data(contentsOf: f.buckets.appendingPathComponent("prw/src.jpg"))
        for key in ["link.jpg", "out.txt"] {
            let anonymous = f.get("/prw/" + key, method: "PUT", body: Data("replaced".utf8))
            #expect(anonymous.status == 403 && anonymous.code == "AccessDenied", "\(key): \(anonymous.text)")
            #expect(!anonymous.text.lowercased().contains("link"))
            let signed = f.get("/prw/" + key, method: "PUT", headers: f.v1Headers(method: "PUT", bucket: "prw", key: key), body: Data("replaced".utf8))
            #expect(signed.status == 403 && signed.code == "AccessDenied", "\(key): \(signed.text)")
            #expect(Self.isLink(f.buckets.appendingPathComponent("prw/" + key)), "\(key) is no longer a link")
        }
        #expect(try Data(contentsOf: f.buckets.appendingPathComponent("prw/src.jpg")) == original)
        #expect(try String(contentsOf: outside, encoding: .utf8) == "outside")
    }

    @Test func saveAsOntoALinkIsRefused() throws {
        let (f, _) = try Self.fixture()
        let original = try Data(contentsOf: f.buckets.appendingPathComponent("prw/src.jpg"))
        let body = "x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode("link.jpg"))"
        let answer = f.get("/prw/src.jpg?x-oss-process", method: "POST", body: Data(body.utf8))
        #expect(answer.status == 403 && answer.code == "AccessDenied", "\(answer.text)")
        #expect(Self.isLink(f.buckets.appendingPathComponent("prw/link.jpg")))
        #expect(try Data(contentsOf: f.buckets.appendingPathComponent("prw/src.jpg")) == original)
    }

    /// A link made at the key while the body streams in is not replaced at commit either.
    @Test func aLinkMadeDuringTheUploadIsKept() throws {
        let f = try Hostile.fixture()
        guard case .upload(let upload) = f.service.begin(ServiceRequest(method: "PUT", target: "/prw/late.txt", headers: ["host": "127.0.0.1:9000"])) else {
            Issue.record("expected an upload"); return
        }
        upload.write(Data("body".utf8))
        try FileManager.default.createSymbolicLink(atPath: f.buckets.appendingPathComponent("prw/late.txt").path, withDestinationPath: "src.jpg")
        let answer = upload.finish()
        #expect(answer.status == 403 && answer.code == "AccessDenied", "\(answer.text)")
        #expect(Self.isLink(f.buckets.appendingPathComponent("prw/late.txt")))
    }
}
