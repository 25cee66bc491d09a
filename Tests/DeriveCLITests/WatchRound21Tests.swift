import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Watch mode against what inotify cannot report (issue 13; attack 20's M3, round 21's N6): after
/// every build and every few seconds while idle, the watch makes the no-op check `derive build`
/// makes, so its last line never says the outputs are current for longer than that.
@Suite(.ownThreads, .serialized) struct WatchRound21Tests {
    func check(_ watch: WatchSession) -> Int32? {
        try? CLI.run(["check", watch.manifest.path], in: watch.root).status
    }

    /// Attack 20's M3: `photos/src/a.jpg` is a hard link of `import/a.jpg` (an import folder, a
    /// `cp -al` snapshot). Edited in place under that other name, no watched folder has an event;
    /// on 0.13 the watch never rebuilt. The periodic no-op check finds the source changed.
    @Test func anEditThroughAHardLinkOutsideTheWatchedFoldersIsBuilt() throws {
        let watch = try WatchSession { root in
            try FileManager.default.createDirectory(at: root.appendingPathComponent("import"), withIntermediateDirectories: true)
            #expect(link(root.appendingPathComponent("photos/src/a.jpg").path, root.appendingPathComponent("import/a.jpg").path) == 0)
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(watch.size("a.jpg").map { $0.width == 64 && $0.height < 64 } == true, "\(watch.lines)")
        // Past the check right after the first build and the silent build it may ask for (the
        // first build's own writes into `photos/` leave no witness that holds): the periodic check
        // must still be on (the first try at it turned itself off there).
        usleep(5_000_000)
        // Written in place through the other name (the same inode): the portrait's bytes.
        let portrait = try Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg"))
        let descriptor = open(watch.root.appendingPathComponent("import/a.jpg").path, O_WRONLY | O_TRUNC)
        try #require(descriptor >= 0)
        let wrote = portrait.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        #expect(wrote == portrait.count)
        // Bounded by the check's period (5 s) and one small build; generous for a shared machine.
        #expect(watch.wait(120) { watch.size("a.jpg").map { $0.height > 64 } == true },
                "the edit through the hard link was never built: \(watch.lines) \(watch.standardError)")
        #expect(watch.wait(60) { check(watch) == 0 })
        #expect(watch.wait(60) { watch.lines.count >= 2 }, "\(watch.lines)")
        #expect(watch.lines.last?.contains("no-op check") == true && watch.lines.last?.contains("built 1") == true, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }

    /// Round 21's N6: an output changed by hand while the rebuild that wrote it still runs (the
    /// test hook edits `out/b.jpg` just after the build put it in place, then waits out the racy
    /// margin). The watch took the event for its own write; its last line said `built 1` while
    /// `derive check` failed. Now the check after the build finds it, and the watch says so.
    @Test func anOutputChangedWhileTheRebuildThatWroteItRunsIsReported() throws {
        let edited = Data("EDITED BY HAND while the watch rebuilt\n".utf8)
        let bytes = FileManager.default.temporaryDirectory.appendingPathComponent("derive-n6-\(getpid()).bin")
        try edited.write(to: bytes)
        let watch = try WatchSession(environment: ["DERIVE_TEST_AFTER_OUTPUT_WRITE": "b.jpg=" + bytes.path])
        defer { watch.remove(); try? FileManager.default.removeItem(at: bytes) }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try copySample("portrait.jpg", to: watch.sources.appendingPathComponent("b.jpg"))
        #expect(watch.wait(60) { watch.lines.count >= 2 }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.lines.count >= 2 && watch.lines[1].contains("built 1"), "\(watch.lines)")
        // 75: the watch's own check after that build holds the build lock at this moment (a loaded
        // machine); asked again until it answers.
        var status: Int32?
        _ = watch.wait(30) { status = check(watch); return status != 75 }
        #expect(status == 1, "the hook did not change the output: \(watch.lines)")
        // Within the check's period after that line: a line that does not call the outputs current.
        #expect(watch.wait(30) { watch.lines.count >= 3 },
                "the watch's last line says the outputs are current while check fails: \(watch.lines) \(watch.standardError)")
        #expect(watch.lines.count >= 3 && watch.lines[2].contains("not built"), "\(watch.lines)")
        #expect(watch.standardError.contains("out/b.jpg was changed since Derive wrote it"), "\(watch.standardError)")
        // The user's bytes are kept; the watch does not loop on them: a failed build is not checked
        // again, only tried again after a bounded back-off (attack 41b's M3: 5 s, then 15 s).
        #expect((try? Data(contentsOf: watch.outputs.appendingPathComponent("b.jpg"))) == edited)
        usleep(12_000_000)
        #expect(watch.lines.count <= 4 && watch.lines.dropFirst(3).allSatisfy { $0.contains("the failed build tried again (1 of ") && $0.contains("not built") },
                "\(watch.lines)")
        #expect((try? Data(contentsOf: watch.outputs.appendingPathComponent("b.jpg"))) == edited)
        #expect(watch.terminate() == 0)
    }

    /// The periodic check costs a stat pass and never rebuilds what is up to date: a quiet watch
    /// prints nothing more, and a build by hand between checks still runs (no lock is held).
    @Test func thePeriodicCheckOfAnUpToDateTreePrintsNothingAndHoldsNoLock() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        // Settled first: the first build's writes into `photos/` (which holds the sources' folder)
        // leave no witness that holds; the check builds once more, silently, past their racy margin.
        usleep(5_000_000)
        let deadline = Date().addingTimeInterval(12)
        while Date() < deadline {
            let byHand = try CLI.run(["build", watch.manifest.path], in: watch.root)
            #expect(byHand.status == 0, "\(byHand.stderr)")
            usleep(700_000)
        }
        #expect(watch.lines.count == 1, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }
}
