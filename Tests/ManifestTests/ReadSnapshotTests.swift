import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import Manifest
import Testing
import TestSupport

/// One manifest load is one snapshot of its neighbourhood (`ReadSnapshot`, attack 51c's 7): a
/// file, listing or real path is read once per load. Nothing of it may outlive the load: the
/// next load (the build after a no-op check, serve's reload, watch mode's next round) reads anew.
@Suite(.ownThreads) struct ReadSnapshotTests {
    @Test func aReadIsAnsweredOncePerSnapshotAndAnewAfterIt() throws {
        let root = try ScratchFolder.make("read-snapshot").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = root + "/m.yaml", missing = root + "/later.yaml"
        try "version: 1\n".write(toFile: file, atomically: false, encoding: .utf8)
        #expect(!ReadSnapshot.isOpen)
        ReadSnapshot.during {
            #expect(ReadSnapshot.isOpen)
            #expect(ControlFiles.manifestText(file) == Data("version: 1\n".utf8))
            #expect(ControlFiles.manifestText(missing) == nil)
            try? "version: 2\n".write(toFile: file, atomically: false, encoding: .utf8)
            try? "version: 1\n".write(toFile: missing, atomically: false, encoding: .utf8)
            // Within the snapshot, the first answers (a nil one too); a nested snapshot is the same one.
            #expect(ControlFiles.manifestText(file) == Data("version: 1\n".utf8))
            #expect(ControlFiles.manifestText(missing) == nil)
            ReadSnapshot.during { #expect(ControlFiles.manifestText(file) == Data("version: 1\n".utf8)) }
        }
        #expect(!ReadSnapshot.isOpen)
        #expect(ControlFiles.manifestText(file) == Data("version: 2\n".utf8))
        #expect(ControlFiles.manifestText(missing) == Data("version: 1\n".utf8))
        ReadSnapshot.during { #expect(ControlFiles.manifestText(file) == Data("version: 2\n".utf8)) }
    }

    /// A sibling manifest edited in place between two loads of one process (same size, its
    /// modification time put back) is read anew by the second: no answer outlives its load.
    @Test func aSiblingEditedBetweenTwoLoadsIsSeenByTheSecond() throws {
        let root = try ScratchFolder.make("read-snapshot-loads").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/src", withIntermediateDirectories: true)
        try "version: 1\nlock: site.lock\nbuckets:\n  src: {path: src}\n".write(toFile: root + "/derive.yaml", atomically: false, encoding: .utf8)
        let sibling = root + "/other.yaml"
        func write(_ lock: String) throws {
            try "version: 1\nlock: \(lock)\nbuckets:\n  src: {path: src}\n".write(toFile: sibling, atomically: false, encoding: .utf8)
            var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
            _ = utimensat(AT_FDCWD, sibling, &times, 0)
        }
        func shares() -> Bool {
            ManifestLoader().load(root + "/derive.yaml").diagnostics.all.contains { $0.message.contains("two manifests may not share a lock") }
        }
        try write("aaaa.lock")
        #expect(!shares())
        try write("site.lock")
        #expect(shares())
        try write("aaaa.lock")
        #expect(!shares())
    }
}
