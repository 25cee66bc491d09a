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

    /// The edit must reach the watch through inotify: one made while a no-op check runs (the
    /// first build's, or a periodic one; seconds long on a loaded machine) is found stale by that
    /// check and built for it, and its inotify event then builds again ("Nothing to do", a third
    /// line, the witness saved again: seen at load 20). Such a try proves nothing either way; the
    /// next edit (a new source) tries again once the watch has printed that build.
    @Test func noSilentBuildFollowsAWatchBuildWhenNothingChanged() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        // Past the first build's check and anything it asked for (the first build makes photos/out).
        usleep(4_000_000)
        for attempt in 0..<3 {
            let before = watch.lines.count
            if attempt == 0 {
                try Self.replace(watch.sources.appendingPathComponent("a.jpg"), with: Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg")))
            } else {
                try copySample("portrait.jpg", to: watch.sources.appendingPathComponent("b\(attempt).jpg"))
            }
            #expect(watch.wait(60) { watch.lines.count > before }, "\(watch.lines) \(watch.standardError)")
            guard watch.lines.count > before else { break }
            if watch.lines[before].contains("found stale by the no-op check") && attempt < 2 {
                print("WatchSettleRound23Tests: edit \(attempt) landed in a no-op check: \(watch.lines[before]); again")
                _ = watch.wait(30) { watch.lines.count > before + 1 }   // the build its inotify event asks for
                usleep(2_000_000)
                continue
            }
            #expect(watch.lines[before].contains("built 1"), "\(watch.lines)")
            let saved = Self.witnessStat(watch)
            #expect(saved != nil, "no witness after the watch's build")
            // The settle build came 1.1 s after the check that follows the build: wait past it.
            usleep(4_000_000)
            #expect(Self.witnessStat(watch) == saved, "a silent build saved the witness again after the watch's build")
            let byHand = try CLI.run(["build", watch.manifest.path], in: watch.root)
            #expect(byHand.status == 0 && String(decoding: byHand.stdout, as: UTF8.self).hasPrefix("Nothing to do"), "\(byHand.status) \(byHand.stderr)")
            #expect(watch.lines.count == before + 1, "\(watch.lines)")
            break
        }
        #expect(watch.terminate() == 0)
    }
}
