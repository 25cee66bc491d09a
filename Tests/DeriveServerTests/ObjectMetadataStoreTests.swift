import Confinement
import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// The metadata store's API (used by PutObject and save-as here, by copy and delete operations).
@Suite(.ownThreads) struct ObjectMetadataStoreTests {
    let one = ObjectFileIdentity(device: 1, inode: 2, size: 3, modified: 4)

    @Test func recordsAreReadOnlyForTheFileTheyDescribe() throws {
        let store = try ObjectMetadataStore(path: nil)
        let key = try ObjectKey("a/b.txt")
        let record = ObjectMetadata(headers: ["content-type": "text/x", "x-oss-meta-z": "1", "x-oss-meta-a": "2"], etag: "\"AB\"", lastModified: 9)
        try store.write(bucket: "b", key: key, identity: one, metadata: record)
        #expect(store.read(bucket: "b", key: key, identity: one) == record)
        #expect(store.read(bucket: "c", key: key, identity: one) == nil)
        for changed in [ObjectFileIdentity(device: 9, inode: 2, size: 3, modified: 4), ObjectFileIdentity(device: 1, inode: 9, size: 3, modified: 4),
                        ObjectFileIdentity(device: 1, inode: 2, size: 9, modified: 4), ObjectFileIdentity(device: 1, inode: 2, size: 3, modified: 9)] {
            #expect(store.read(bucket: "b", key: key, identity: changed) == nil)
        }
        #expect(record.orderedHeaders.map(\.0) == ["content-type", "x-oss-meta-a", "x-oss-meta-z"])
        try store.delete(bucket: "b", key: key)
        #expect(store.read(bucket: "b", key: key, identity: one) == nil)
    }

    @Test func copyCarriesTheRecordOfAnUnchangedSource() throws {
        let store = try ObjectMetadataStore(path: nil)
        let from = try ObjectKey("src"), to = try ObjectKey("dst")
        let other = ObjectFileIdentity(device: 1, inode: 5, size: 3, modified: 4)
        try store.write(bucket: "b", key: from, identity: one, metadata: ObjectMetadata(headers: ["x-oss-meta-a": "1"], etag: "\"E\"", lastModified: 1))
        #expect(try store.copy(from: ("b", from), fromIdentity: one, to: ("c", to), identity: other, lastModified: 7))
        #expect(store.read(bucket: "c", key: to, identity: other) == ObjectMetadata(headers: ["x-oss-meta-a": "1"], etag: "\"E\"", lastModified: 7))
        // A source changed on disk has no record: the target's old one is dropped, not kept.
        #expect(try !store.copy(from: ("b", from), fromIdentity: other, to: ("c", to), identity: other, lastModified: 8))
        #expect(store.read(bucket: "c", key: to, identity: other) == nil)
    }

    /// Answers are cached in memory; writes and deletes are seen at once.
    @Test func cachedAnswersFollowWrites() throws {
        let store = try ObjectMetadataStore(path: nil)
        let key = try ObjectKey("k")
        #expect(store.read(bucket: "b", key: key, identity: one) == nil)
        let record = ObjectMetadata(etag: "\"1\"", lastModified: 1)
        try store.write(bucket: "b", key: key, identity: one, metadata: record)
        #expect(store.read(bucket: "b", key: key, identity: one) == record)
        try store.delete(bucket: "b", key: key)
        #expect(store.read(bucket: "b", key: key, identity: one) == nil)
    }

    /// Keys are bytes: two keys that differ only in normalisation are two records.
    @Test func keysAreBytes() throws {
        let store = try ObjectMetadataStore(path: nil)
        let nfc = try ObjectKey("\u{E9}"), nfd = try ObjectKey("e\u{301}")
        try store.write(bucket: "b", key: nfc, identity: one, metadata: ObjectMetadata(etag: "\"1\"", lastModified: 1))
        #expect(store.read(bucket: "b", key: nfd, identity: one) == nil)
    }
}

/// Request ids are OSS-shaped (24 upper-case hex digits) and do not carry the process id.
@Suite(.ownThreads) struct RequestIdTests {
    @Test func requestIdsDoNotEmbedThePID() throws {
        let ids = (0..<3).map { _ in Counter().nextId() }
        for id in ids {
            #expect(id.count == 24 && id.allSatisfy { $0.isHexDigit && !$0.isLowercase })
            #expect(!id.hasPrefix(String(format: "%08X", getpid())))
        }
        #expect(Set(ids.map { $0.prefix(8) }).count > 1, "a random prefix per server")
    }

    /// Range and the conditions are security-relevant headers too: two different copies are refused.
    @Test func conflictingConditionHeadersAreRefused() throws {
        let f = try Hostile.fixture()
        for name in ["range", "if-match", "if-modified-since", "if-unmodified-since"] {
            let request = ServiceRequest(method: "GET", target: "/pubr/photo.jpg", fields: [("host", "127.0.0.1:9000"), (name, "a"), (name, "b")])
            let answer = f.service.handle(request)
            #expect(answer.status == 400, "\(name)")
        }
    }
}
