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

    /// Attack 53c's F3: the real path of every file a load names is its folder's real path (read
    /// once per load) and its name, unless the name is a link. So within one load a folder turned
    /// into a link keeps the real path it had when first resolved, and the next load follows it.
    @Test func aFoldersRealPathIsReadOncePerSnapshot() throws {
        let made = try ScratchFolder.make("read-snapshot-real").path
        defer { try? FileManager.default.removeItem(atPath: made) }
        let root = try #require(FileSystemPath.realPathNow(made))
        let files = FileManager.default
        for folder in ["d", "e"] { try files.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true) }
        for file in ["d/a", "d/b", "e/b"] { try Data().write(to: URL(fileURLWithPath: root + "/" + file)) }
        ReadSnapshot.during {
            #expect(FileSystemPath(manifest: root + "/d/a").real == root + "/d/a")
            // The folder is made a link to another one mid-load: this load keeps its first answer.
            try? files.moveItem(atPath: root + "/d", toPath: root + "/d0")
            try? files.createSymbolicLink(atPath: root + "/d", withDestinationPath: root + "/e")
            #expect(FileSystemPath(manifest: root + "/d/b").real == root + "/d/b")
        }
        #expect(FileSystemPath(manifest: root + "/d/b").real == root + "/e/b")
        ReadSnapshot.during { #expect(FileSystemPath(manifest: root + "/d/b").real == root + "/e/b") }
    }

    /// The real paths a load gives are realpath's, whatever the shape: a link last, a link on the
    /// way, a missing tail, the root.
    @Test func realPathsAreRealpathsInsideAndOutsideASnapshot() throws {
        let made = try ScratchFolder.make("read-snapshot-shapes").path
        defer { try? FileManager.default.removeItem(atPath: made) }
        let root = try #require(FileSystemPath.realPathNow(made))
        let files = FileManager.default
        for folder in ["d/in", "e"] { try files.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true) }
        for file in ["d/a", "d/in/c", "e/t"] { try Data().write(to: URL(fileURLWithPath: root + "/" + file)) }
        try files.createSymbolicLink(atPath: root + "/d/last", withDestinationPath: "../e/t")
        try files.createSymbolicLink(atPath: root + "/way", withDestinationPath: "d/in")
        let expected = [root + "/d/a": root + "/d/a", root + "/d/last": root + "/e/t", root + "/way/c": root + "/d/in/c",
                        root + "/way": root + "/d/in", root + "/d/none/x": root + "/d/none/x", root + "/way/none": root + "/d/in/none",
                        "/": "/", root: root]
        for (path, real) in expected { #expect(FileSystemPath(resolvingNow: path).real == real, "\(path)") }
        ReadSnapshot.during {
            for (path, real) in expected.sorted(by: { $0.key < $1.key }) { #expect(FileSystemPath(manifest: path).real == real, "\(path)") }
            #expect(FileSystemPath(manifest: root + "/way/c").sameFile(as: FileSystemPath(manifest: root + "/d/in/c")))
        }
    }
}
