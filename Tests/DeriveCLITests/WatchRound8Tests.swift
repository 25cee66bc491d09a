import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Watch mode after the eighth build-safety attack (issue 9, F3): a source bucket folder replaced
/// or made again is followed, and a file a build wrote (an output, the lock, the index) changed
/// by hand is a change (only the build's own writes are not).
@Suite(.ownThreads, .serialized) struct WatchRound8Tests {
    /// Sources in their own bucket folder (photos/src), outputs and index in another (photos/out).
    static let separateBuckets = """
    version: 1
    buckets:
      src: {path: photos/src}
      out: {path: photos/out}
    derivatives:
      - name: small
        from: src/*.jpg
        process: image/resize,w_64
        to: out/{name}.{ext}
    index: out/index.json

    """

    @Test func aSourceFolderReplacedByACopyIsWatchedAgain() throws {
        let watch = try WatchSession(manifestText: Self.separateBuckets)
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(watch.size("a.jpg")?.width == 64, "\(watch.lines) \(watch.standardError)")
        // An atomic folder swap: mv src src.old && cp -a src.old src.
        let old = watch.root.appendingPathComponent("photos/src.old")
        #expect(rename(watch.sources.path, old.path) == 0)
        try FileManager.default.copyItem(at: old, to: watch.sources)
        #expect(watch.waitForLines(2), "\(watch.lines) \(watch.standardError)")
        usleep(500_000)
        try copySample("portrait.jpg", to: watch.sources.appendingPathComponent("b.jpg"))
        #expect(watch.wait(30) { watch.size("b.jpg")?.width == 64 }, "a file added to the new folder was not seen: \(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
        #expect(try CLI.run(["check", watch.manifest.path], in: watch.root).status == 0)
    }

    @Test func aSourceFolderRemovedAndMadeAgainIsWatchedAgain() throws {
        let watch = try WatchSession(manifestText: Self.separateBuckets)
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try FileManager.default.removeItem(at: watch.sources)
        #expect(watch.waitForLines(2), "\(watch.lines) \(watch.standardError)")
        try FileManager.default.createDirectory(at: watch.sources, withIntermediateDirectories: true)
        usleep(500_000)
        try copySample("portrait.jpg", to: watch.sources.appendingPathComponent("b.jpg"))
        #expect(watch.wait(30) { watch.size("b.jpg")?.width == 64 }, "a file in the new folder was not seen: \(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
    }

    @Test func anOutputDeletedByHandIsBuiltAgain() throws {
        let watch = try WatchSession(manifestText: Self.separateBuckets)
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try FileManager.default.removeItem(at: watch.outputs.appendingPathComponent("a.jpg"))
        #expect(watch.wait(30) { watch.size("a.jpg")?.width == 64 }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
        #expect(try CLI.run(["check", watch.manifest.path], in: watch.root).status == 0)
    }

    @Test func anOutputInTheSourceBucketDeletedByHandIsBuiltAgain() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try FileManager.default.removeItem(at: watch.outputs.appendingPathComponent("a.jpg"))
        #expect(watch.wait(30) { watch.size("a.jpg")?.width == 64 }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
    }

    @Test func aLockEmptiedAndAnIndexDeletedByHandAreWrittenAgain() throws {
        let watch = try WatchSession(manifestText: Self.separateBuckets)
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        let lock = watch.root.appendingPathComponent("derive.lock")
        let index = watch.outputs.appendingPathComponent("index.json")
        #expect(FileManager.default.fileExists(atPath: index.path))
        try Data().write(to: lock)
        #expect(watch.wait(30) { ((try? Data(contentsOf: lock))?.count ?? 0) > 0 }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.waitForLines(2), "\(watch.lines) \(watch.standardError)")
        try FileManager.default.removeItem(at: index)
        #expect(watch.wait(30) { FileManager.default.fileExists(atPath: index.path) }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.waitForLines(3), "\(watch.lines) \(watch.standardError)")
        // And no loop: its own rewrites start nothing more.
        let count = watch.lines.count
        usleep(2_000_000)
        #expect(watch.lines.count == count, "\(watch.lines)")
        #expect(watch.terminate() == 0)
        #expect(try CLI.run(["check", watch.manifest.path], in: watch.root).status == 0)
    }
}
