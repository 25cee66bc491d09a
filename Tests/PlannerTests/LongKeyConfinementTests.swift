import Foundation
import Manifest
import Planner
import Testing
import TestSupport

/// noop-21's note (round 22): source and output keys longer than an object key may be (1 023
/// bytes, `ObjectKey.maxBytes`) were said to be stat'ed and read by their full path, following
/// links. Every path below a bucket, however long its key, must be reached by the descriptor
/// walk (openat, O_NOFOLLOW from the bucket's folder): a folder on the way swapped for a link to
/// a folder outside the bucket is never followed, by a stat, a batch of stats, a read, a write
/// or a removal, nor by the listing.
@Suite(.ownThreads) struct LongKeyConfinementTests {
    /// Ten folders of 110 bytes and a file: a key of more than 1 100 bytes (below PATH_MAX).
    static let folders = (0..<10).map { String(repeating: "f", count: 110) + String($0) }

    struct Tree {
        let base: String
        var bucket: String { base + "/photos" }
        var outside: String { base + "/outside" }
        /// The key of the real file, and the key of a file reached only through the link.
        let key: String, linkedKey: String

        init() throws {
            base = (try ScratchFolder.make("derive-longkey")).path
            let deep = LongKeyConfinementTests.folders.joined(separator: "/")
            key = deep + "/deep.jpg"
            // The same chain but for its last folder, a link to a folder outside the bucket.
            let linkedFolder = LongKeyConfinementTests.folders.dropLast().joined(separator: "/") + "/linked"
            linkedKey = linkedFolder + "/secret.jpg"
            try FileManager.default.createDirectory(atPath: base + "/photos/" + deep, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: base + "/outside", withIntermediateDirectories: true)
            try Data("inside".utf8).write(to: URL(fileURLWithPath: base + "/photos/" + key))
            try Data("outside, not the bucket's".utf8).write(to: URL(fileURLWithPath: base + "/outside/secret.jpg"))
            try FileManager.default.createSymbolicLink(atPath: base + "/photos/" + linkedFolder, withDestinationPath: base + "/outside")
        }

        func remove() { try? FileManager.default.removeItem(atPath: base) }
    }

    @Test func aLongKeyIsReachedAndALongKeyThroughALinkedFolderIsNot() throws {
        let tree = try Tree()
        defer { tree.remove() }
        #expect(tree.key.utf8.count > 1_023 && tree.linkedKey.utf8.count > 1_023)
        // The system itself follows the link: the file is there by full path.
        #expect(FileManager.default.fileExists(atPath: tree.bucket + "/" + tree.linkedKey))
        let disk = RealDisk(confiningTo: [tree.bucket])
        let real = tree.bucket + "/" + tree.key, linked = tree.bucket + "/" + tree.linkedKey
        #expect(disk.stat(real)?.size == 6)
        #expect(try disk.read(real) == Data("inside".utf8))
        #expect(disk.stat(linked) == nil, "stat followed the link")
        #expect(disk.stats([real, linked]).map { $0?.size } == [6, nil], "stats followed the link")
        #expect(!disk.exists(linked), "exists followed the link")
        #expect((try? disk.read(linked)) == nil, "read followed the link")
        #expect((try? disk.head(linked, bytes: 4)) == nil, "head followed the link")
        #expect((try? disk.digestAndHead(linked, headBytes: 4)) == nil, "the digest followed the link")
        // Written through it: refused, the file outside untouched; removed through it: not removed.
        #expect((try? disk.writeAtomically(Data("over".utf8), to: linked, replacing: true)) == nil, "a write followed the link")
        let digest = ContentDigests.digest(Data("outside, not the bucket's".utf8))
        _ = try? disk.remove(linked, ifDigest: digest)
        #expect(try Data(contentsOf: URL(fileURLWithPath: tree.outside + "/secret.jpg")) == Data("outside, not the bucket's".utf8))
    }

    /// The listing names the link as such and lists nothing below it, the long key beside it as a key.
    @Test func theListingNamesALinkOnALongKeyAndListsNothingBelowIt() throws {
        let tree = try Tree()
        defer { tree.remove() }
        let listing = try #require(DiskObjectLister().entries(inFolder: tree.bucket, skipping: []))
        #expect(listing.keys == [tree.key])
        let link = String(tree.linkedKey.dropLast("/secret.jpg".count))
        #expect(listing.others.contains { $0.key == link && $0.kind == DiskObjectLister.linkToFolder }, "\(listing.others.map(\.kind))")
    }
}
