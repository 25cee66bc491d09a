import Foundation
import Planner
import Testing
import TestSupport

/// Issue 9, round 39: `StateFolderTrust.readToken` read only a token file's first 4 KiB, while a
/// lock's provenance (`LockProvenance`: a line per bucket, with its folder's real path) can be
/// longer: the last buckets' lines were lost, so a bucket re-pointed since still looked like the
/// one the lock was written for (its lines vouched for files Derive never wrote there). Tokens
/// are read whole up to `Self.bound` (1 MiB); a longer one is no token at all.
@Suite(.ownThreads, .serialized) struct TokenLengthRound39Tests {
    /// `StateFolderTrust.maxTokenBytes`, as README states it.
    static let bound = 1 << 20

    /// A project folder with `count` bucket folders of long names, and their provenance lines.
    static func buckets(_ count: Int) throws -> (root: String, lines: String, last: String) {
        _ = Project.userStateHome
        let root = (try ScratchFolder.make("derive-token")).path
        var lines = "", last = ""
        for index in 0 ..< count {
            let folder = root + "/bucket-folder-with-a-rather-long-name-number-\(index)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let identity = try #require(FileIdentity.ofFolder(folder))
            last = RealFolder.of(folder)
            lines += "bucket \(identity.device) \(identity.inode) [\"b\(index)\",\"\(last)\"]\n"
        }
        return (root, lines, last)
    }

    @Test func aProvenanceLongerThan4KiBIsReadWhole() throws {
        let (root, lines, last) = try Self.buckets(60)
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(lines.utf8.count > 4096, "\(lines.utf8.count)")
        let database = root + "/.derive/derive/state.sqlite", lock = root + "/derive.lock"
        try LockProvenance.remember(lockDigest: "d1", lockPath: lock, ownRecord: true, buckets: lines, forState: database)
        defer { if let file = StateBinding.file(forState: database) { try? FileManager.default.removeItem(atPath: file + ".lock") } }
        // The whole token is what was written: judged already with these folders.
        #expect(LockProvenance.isJudged(lockDigest: "d1", lockPath: lock, buckets: lines, forState: database))
        // The last bucket re-pointed at another folder: its lines say nothing of the files there.
        let other = root + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        #expect(LockProvenance.movedFrom(bucket: "b59", folder: other, lockPath: lock, forState: database) == last)
        #expect(LockProvenance.movedFrom(bucket: "b59", folder: last, lockPath: lock, forState: database) == nil)
    }

    /// Over the bound: never written, and a file that long (not Derive's) is not read in part.
    @Test func aTokenOverTheBoundIsRefused() throws {
        let (root, lines, last) = try Self.buckets(2)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let database = root + "/.derive/derive/state.sqlite", lock = root + "/derive.lock"
        let huge = String(repeating: lines, count: Self.bound / lines.utf8.count + 1)
        #expect(throws: (any Error).self) {
            try LockProvenance.remember(lockDigest: "d1", lockPath: lock, ownRecord: true, buckets: huge, forState: database)
        }
        try LockProvenance.remember(lockDigest: "d1", lockPath: lock, ownRecord: true, buckets: lines, forState: database)
        let file = try #require(StateBinding.file(forState: database)) + ".lock"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let other = root + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        #expect(LockProvenance.movedFrom(bucket: "b1", folder: other, lockPath: lock, forState: database) == last)
        #expect(LockProvenance.vouches(lockDigest: "d1", lockPath: lock, forState: database))
        // The same token grown past the bound: nothing of it is read (no lock vouched for).
        let grown = try #require(FileManager.default.contents(atPath: file)) + Data(repeating: 0x0A, count: Self.bound)
        #expect(FileManager.default.createFile(atPath: file, contents: grown))
        #expect(!LockProvenance.vouches(lockDigest: "d1", lockPath: lock, forState: database))
        #expect(LockProvenance.movedFrom(bucket: "b1", folder: other, lockPath: lock, forState: database) == nil)
    }
}
