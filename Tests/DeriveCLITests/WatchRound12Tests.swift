import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Watch mode after the eleventh build-safety attack (issue 9, A3): a source bucket folder, or a
/// folder above it, that is for a moment a loop of symbolic links is handled like a missing
/// folder: the build fails naming it, the watch keeps running and builds again when it is back.
@Suite(.ownThreads, .serialized) struct WatchRound12Tests {
    typealias Round11 = WatchRound11Tests

    /// `mv folder folder.x; ln -s folder folder` (a link to itself), then back, then a new source.
    @Test(arguments: ["photos/media/src", "photos/media"])
    func aWatchedFolderBrieflyALoopOfLinksKeepsTheWatchRunning(_ looped: String) throws {
        let round11 = Round11()
        let watch = try round11.start()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(round11.output(watch, "a1.jpg"), "\(watch.lines) \(watch.standardError)")
        let folder = watch.root.appendingPathComponent(looped), aside = watch.root.appendingPathComponent(looped + ".x")
        let lines = watch.lines.count
        #expect(rename(folder.path, aside.path) == 0)
        #expect(symlink(folder.lastPathComponent, folder.path) == 0)
        #expect(watch.waitForLines(lines + 1), "\(watch.lines) \(watch.standardError)")
        usleep(1_000_000)
        #expect(unlink(folder.path) == 0)
        #expect(rename(aside.path, folder.path) == 0)
        usleep(1_000_000)
        try copySample("portrait.jpg", to: watch.root.appendingPathComponent("photos/media/src/n7.jpg"))
        #expect(watch.wait(30) { round11.output(watch, "n7.jpg") }, "n7 was not built after the loop went: \(watch.lines) \(watch.standardError)")
        #expect(!watch.standardError.contains("cannot watch"), "\(watch.standardError)")
        #expect(watch.terminate() == 0, "\(watch.standardError)")
    }
}
