import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Attack (#11, round 4, finding 2): 1-byte anonymous PUTs with 120 KB of x-oss-meta-* headers
/// grew the metadata database by 70 MB in 30 s. User metadata is limited to 8 KiB as on OSS,
/// stored standard headers have documented lengths, and a refused PUT stores nothing.
@Suite(.ownThreads) struct MetadataLimitTests {
    @Test func userMetadataOver8KiBIsRefusedAndNothingStored() throws {
        let f = try Hostile.fixture()
        let huge = ["x-oss-meta-a": String(repeating: "v", count: 120_000)]
        let refused = ObjectSemanticsTests.put(f, "meta.bin", Data("x".utf8), headers: huge)
        #expect(refused.status == 400 && refused.code == "InvalidArgument", "\(refused.status) \(refused.text)")
        #expect(refused.header("x-oss-ec") == "0011-00000002")
        #expect(ObjectSemanticsTests.get(f, "meta.bin").status == 404)
        // Many names, each small, add up.
        var many: [String: String] = [:]
        for index in 0..<100 { many["x-oss-meta-k\(index)"] = String(repeating: "v", count: 80) }
        #expect(ObjectSemanticsTests.put(f, "meta.bin", Data("x".utf8), headers: many).status == 400)
        // Just under the limit is stored and served back.
        let fits = ["x-oss-meta-a": String(repeating: "v", count: 8 * 1024 - "x-oss-meta-a".utf8.count)]
        #expect(ObjectSemanticsTests.put(f, "meta.bin", Data("x".utf8), headers: fits).status == 200)
        #expect(ObjectSemanticsTests.get(f, "meta.bin").header("x-oss-meta-a") == fits["x-oss-meta-a"])
    }

    @Test func storedStandardHeadersHaveALength() throws {
        let f = try Hostile.fixture()
        for (name, limit) in ObjectMetadata.maxHeaderValueBytes {
            let refused = ObjectSemanticsTests.put(f, "h.bin", Data("x".utf8), headers: [name: String(repeating: "a", count: limit + 1)])
            #expect(refused.status == 400 && refused.code == "InvalidArgument" && refused.text.contains(name), "\(name): \(refused.status)")
            #expect(ObjectSemanticsTests.get(f, "h.bin").status == 404)
        }
        #expect(ObjectSemanticsTests.put(f, "h.bin", Data("x".utf8), headers: ["content-type": "text/plain"]).status == 200)
    }

    /// Every operation that stores a request's headers checks them as PutObject does.
    @Test func appendMultipartAndCopyCheckTheLimitsToo() throws {
        let f = try ServiceFixture()
        try f.write("photos/src.txt", "source")
        let huge = ["x-oss-meta-a": String(repeating: "v", count: 9 * 1024)]
        let append = f.send("POST", "photos", "log.txt", query: [("append", nil), ("position", "0")], headers: huge, body: Data("x".utf8))
        #expect(append.status == 400 && append.code == "InvalidArgument", "append: \(append.status) \(append.text)")
        #expect(f.file("photos/log.txt") == nil)
        let initiate = f.send("POST", "photos", "big.bin", query: [("uploads", nil)], headers: huge)
        #expect(initiate.status == 400 && initiate.code == "InvalidArgument", "initiate: \(initiate.status) \(initiate.text)")
        let copy = f.send("PUT", "photos", "copy.txt", headers: huge.merging(["x-oss-copy-source": "/photos/src.txt", "x-oss-metadata-directive": "REPLACE"]) { a, _ in a })
        #expect(copy.status == 400 && copy.code == "InvalidArgument", "copy: \(copy.status) \(copy.text)")
        #expect(f.file("photos/copy.txt") == nil)
    }
}
