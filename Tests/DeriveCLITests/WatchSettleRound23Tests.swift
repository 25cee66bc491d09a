import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Round 22's note (issue 15): in the watch's layout, where outputs and the index go into
/// `photos/`, the folder the rules read, every watch build was followed 1.1 s later by a silent
/// full-plan build (its witness never held: it was taken before the build's own writes), which
/// held the build lock, so a hand `derive build` then got status 75. The witness a build saves
/// now holds at once, so the check right after the build finds the outputs current.
@Suite(.ownThreads, .serialized) struct WatchSettleRound23Tests {
    static func witnessStat(_ watch: WatchSession) -> [Int]? {
        var info = stat()
        guard lstat(watch.root.appendingPathComponent(".derive/derive/noop-witness").path, &info) == 0 else { return nil }
        return [Int(info.st_ino), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
    }

    /// Puts `data` at `file` in one step (written beside the project, renamed in): a write in
    /// place truncates first, and a loaded machine can pause between that and the bytes for longer
    /// than the watch's quiet time (0.2 s), so the watch built the empty file, then the whole one:
    /// a third line.
    static func replace(_ file: URL, with data: Data) throws {
        let aside = file.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("incoming-\(UUID().uuidString)")
        try data.write(to: aside)
        guard rename(aside.path, file.path) == 0 else { throw POSIXError(.EIO) }
    }

    @Test func noSilentBuildFollowsAWatchBuildWhenNothingChanged() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        // Past the first build's check and anything it asked for (the first build makes photos/out).
        usleep(4_000_000)
        try Self.replace(watch.sources.appendingPathComponent("a.jpg"), with: Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg")))
        #expect(watch.wait(60) { watch.lines.count >= 2 }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.lines.count >= 2 && watch.lines[1].contains("built 1"), "\(watch.lines)")
        let saved = Self.witnessStat(watch)
        #expect(saved != nil, "no witness after the watch's build")
        // The settle build came 1.1 s after the check that follows the build: wait past it.
        usleep(4_000_000)
        #expect(Self.witnessStat(watch) == saved, "a silent build saved the witness again after the watch's build")
        let byHand = try CLI.run(["build", watch.manifest.path], in: watch.root)
        #expect(byHand.status == 0 && String(decoding: byHand.stdout, as: UTF8.self).hasPrefix("Nothing to do"), "\(byHand.status) \(byHand.stderr)")
        #expect(watch.lines.count == 2, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }
}
