import Foundation
import Testing
import TestSupport
@testable import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// The one bounded reader of a lock's first line (`LockFirstLine`): a huge file without a
/// newline is read to its bound only, a FIFO at a lock's name never stalls it, a link is never
/// followed, and a user's file that merely starts like a lock is no Derive lock.
@Suite(.ownThreads) struct LockFirstLineTests {
    static let header = #"{"format":"derive.lock/2","manifest":"../g.yaml","note":"one output per line; written by derive build, do not edit"}"#

    @Test func theReaderIsBoundedAndReadsRegularFilesOnly() throws {
        let folder = try ScratchFolder.make("derive-lock-first-line")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = { (name: String) in folder.appendingPathComponent(name).path }
        // 8 MiB that start as a lock and have no newline: the first 4 KiB only.
        var huge = Data(#"{"format":"derive.lock/2","manifest":""#.utf8)
        huge.append(Data(repeating: UInt8(ascii: "a"), count: 8 << 20))
        try huge.write(to: URL(fileURLWithPath: path("huge.lock")))
        let line = try #require(LockFirstLine.read(path("huge.lock")))
        #expect(line.count == LockFirstLine.maxBytes && line == huge.prefix(LockFirstLine.maxBytes))
        #expect(LockFirstLine.lockHeader(path("huge.lock"))?.count == LockFirstLine.maxBytes)
        #expect(ControlFiles.lockOwnerLine(path("huge.lock")) == nil, "a header cut at the bound is no JSON")
        // A lock: its first line without the newline, the rest never read.
        try Data((Self.header + "\n" + #"{"path":"out/a.jpg"}"# + "\n").utf8).write(to: URL(fileURLWithPath: path("g.lock")))
        #expect(LockFirstLine.read(path("g.lock")) == Data(Self.header.utf8))
        #expect(LockFirstLine.isDerivesLock(path("g.lock")) && ControlFiles.isDeriveLock(path("g.lock")))
        #expect(ControlFiles.lockOwnerLine(path("g.lock")) == "../g.yaml")
        // A FIFO: nil at once (opened without blocking, no regular file).
        #expect(mkfifo(path("fifo.lock"), 0o600) == 0)
        #expect(LockFirstLine.read(path("fifo.lock")) == nil && !ControlFiles.isDeriveLock(path("fifo.lock")))
        // A link to a lock: never followed.
        #expect(symlink(path("g.lock"), path("link.lock")) == 0)
        #expect(LockFirstLine.read(path("link.lock")) == nil && !ControlFiles.isDeriveLock(path("link.lock")))
        #expect(ControlFiles.lockOwnerLine(path("link.lock")) == nil && NeighbourProjects.manifestNamed(byLock: path("link.lock")) == nil)
        // A file starting otherwise is read no further than the marker's length with a prefix.
        try Data("hello\nworld\n".utf8).write(to: URL(fileURLWithPath: path("notes.txt")))
        #expect(LockFirstLine.read(path("notes.txt")) == Data("hello".utf8) && LockFirstLine.lockHeader(path("notes.txt")) == nil)
        // A user's file that starts like a lock but is no header Derive writes (attack 50c's L2).
        try Data((#"{"format":"derive.lock/2","manifest":"x.yaml"}"# + "\nline2\n").utf8).write(to: URL(fileURLWithPath: path("mylog.jsonl")))
        #expect(ControlFiles.isDeriveLock(path("mylog.jsonl")) && !LockFirstLine.isDerivesLock(path("mylog.jsonl")))
        #expect(LeftLockFiles.listing(of: folder.path).locks.map { ($0.lock as NSString).lastPathComponent } == ["g.lock"])
    }
}
