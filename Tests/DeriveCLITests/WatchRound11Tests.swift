import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Watch mode after the tenth build-safety attack (issue 9, N3): a folder above the source
/// bucket's parent swapped or removed and made again is followed.
@Suite(.ownThreads, .serialized) struct WatchRound11Tests {
    /// Sources two folders down (media/src, inside photos/ which the watch session made), outputs in `out`.
    static let deepSource = """
    version: 1
    buckets:
      src: {path: photos/media/src}
      out: {path: out}
    derivatives:
      - name: small
        from: src/*.jpg
        process: image/resize,w_64
        to: out/{name}.{ext}

    """

    func output(_ watch: WatchSession, _ name: String) -> Bool {
        FileManager.default.fileExists(atPath: watch.root.appendingPathComponent("out/\(name)").path)
    }

    /// Starts watching a project whose source bucket is photos/media/src, holding a1.jpg.
    func start() throws -> WatchSession {
        try WatchSession(manifestText: Self.deepSource) { root in
            try FileManager.default.createDirectory(at: root.appendingPathComponent("photos/media/src"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"),
                                             to: root.appendingPathComponent("photos/media/src/a1.jpg"))
        }
    }

    @Test func aFolderAboveTheSourceParentRemovedAndMadeAgainIsWatchedAgain() throws {
        let watch = try start()
        defer { watch.remove() }
        let media = watch.root.appendingPathComponent("photos/media")
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(output(watch, "a1.jpg"), "\(watch.lines) \(watch.standardError)")
        // rm -rf photos/media; mkdir -p photos/media/src; new files.
        let lines = watch.lines.count
        try FileManager.default.removeItem(at: media)
        #expect(watch.waitForLines(lines + 1), "\(watch.lines) \(watch.standardError)")
        try FileManager.default.createDirectory(at: media.appendingPathComponent("src"), withIntermediateDirectories: true)
        try copySample("landscape.jpg", to: media.appendingPathComponent("src/n1.jpg"))
        usleep(1_500_000)
        try copySample("portrait.jpg", to: media.appendingPathComponent("src/n2.jpg"))
        #expect(watch.wait(30) { output(watch, "n1.jpg") && output(watch, "n2.jpg") && !output(watch, "a1.jpg") },
                "the new media/src was not followed: \(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
        let check = try CLI.run(["check", watch.manifest.path], in: watch.root)
        #expect(check.status == 0, "\(String(decoding: check.stdout, as: UTF8.self))")
    }

    @Test func aFolderAboveTheSourceParentSwappedForACopyIsWatchedAgain() throws {
        let watch = try start()
        defer { watch.remove() }
        let media = watch.root.appendingPathComponent("photos/media")
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(output(watch, "a1.jpg"), "\(watch.lines) \(watch.standardError)")
        // mv photos/media photos/media.old && cp -a photos/media.old photos/media; then a new file.
        let lines = watch.lines.count
        let old = watch.root.appendingPathComponent("photos/media.old")
        #expect(rename(media.path, old.path) == 0)
        try FileManager.default.copyItem(at: old, to: media)
        #expect(watch.waitForLines(lines + 1), "\(watch.lines) \(watch.standardError)")
        usleep(500_000)
        try copySample("portrait.jpg", to: media.appendingPathComponent("src/b.jpg"))
        #expect(watch.wait(30) { output(watch, "b.jpg") }, "a file added to the new media/src was not seen: \(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
        #expect(try CLI.run(["check", watch.manifest.path], in: watch.root).status == 0)
    }
}
