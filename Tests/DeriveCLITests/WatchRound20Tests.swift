import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Watch mode after the twentieth attack (issue 13): changes made while the *first* build runs
/// are built after it (W3), and what inotify cannot report is found by the no-op check (M3).
@Suite(.serialized) struct WatchRound20Tests {
    func check(_ watch: WatchSession) -> Int32? {
        try? CLI.run(["check", watch.manifest.path], in: watch.root).status
    }

    func exists(_ watch: WatchSession, _ name: String) -> Bool {
        FileManager.default.fileExists(atPath: watch.outputs.appendingPathComponent(name).path)
    }

    // MARK: W3: the watches are in place before the first build looks at anything

    /// A slow first build (17 large blurred renders, one at a time); once it is rendering, the
    /// style is edited, a photo added and one removed. On 0.13.0 nothing followed the first
    /// build's line: the site stayed on the old style, without the new photo, with the removed
    /// one's output, and `check` failed, until some later unrelated change.
    @Test func changesMadeDuringTheFirstBuildAreBuiltAfterIt() throws {
        let heavy = WatchSession.manifestText(width: 64).replacingOccurrences(of: "resize,w_64", with: "resize,w_2400,limit_0/blur,r_20,s_20")
        let watch = try WatchSession(quiet: false, manifestText: heavy, arguments: ["--jobs", "1"]) { root in
            for number in 0..<16 { try copySample("landscape.jpg", to: root.appendingPathComponent("photos/src/c\(number).jpg")) }
        }
        defer { watch.remove() }
        // Its plan is made and it is rendering (the first progress line comes after one render).
        #expect(watch.wait(300) { watch.standardError.contains("built 1/") }, "\(watch.lines) \(watch.standardError)")
        try Data(WatchSession.manifestText(width: 32).utf8).write(to: watch.manifest)
        try copySample("portrait.jpg", to: watch.sources.appendingPathComponent("n1.jpg"))
        try FileManager.default.removeItem(at: watch.sources.appendingPathComponent("c0.jpg"))
        try #require(watch.lines.isEmpty, "the first build ended before the changes were made (renders too fast to test this): \(watch.lines)")
        #expect(watch.wait(300) { !watch.lines.isEmpty }, "\(watch.standardError)")
        // Within a bound after the first build: the outputs follow every change, and check agrees.
        #expect(watch.wait(120) {
            watch.size("a.jpg")?.width == 32 && watch.size("n1.jpg")?.width == 32 && !exists(watch, "c0.jpg") && check(watch) == 0
        }, "the changes made during the first build were not built: \(watch.lines) \(watch.standardError.suffix(2000))")
        #expect(watch.lines.count >= 2 && watch.lines[1].contains("changed"), "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }

    // MARK: M3: what inotify does not report is found by the periodic no-op check

    /// `photos/src/a.jpg` is a hard link of `import/a.jpg` (an import folder, a `cp -al`
    /// snapshot): edited in place under that other name, no watched folder has an event. The
    /// no-op check, every few seconds while idle, finds the source changed and rebuilds.
    @Test func anEditThroughAHardLinkOutsideTheWatchedFoldersIsBuilt() throws {
        let watch = try WatchSession { root in
            try FileManager.default.createDirectory(at: root.appendingPathComponent("import"), withIntermediateDirectories: true)
            #expect(link(root.appendingPathComponent("photos/src/a.jpg").path, root.appendingPathComponent("import/a.jpg").path) == 0)
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(watch.size("a.jpg").map { $0.width == 64 && $0.height < 64 } == true, "\(watch.lines)")
        usleep(300_000)
        // Written in place through the other name (the same inode): the portrait's bytes.
        let portrait = try Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg"))
        let descriptor = open(watch.root.appendingPathComponent("import/a.jpg").path, O_WRONLY | O_TRUNC)
        try #require(descriptor >= 0)
        let wrote = portrait.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        #expect(wrote == portrait.count)
        // Bounded by the check's period (5 s) and one small build; generous for a shared machine.
        #expect(watch.wait(60) { watch.size("a.jpg").map { $0.height > 64 } == true },
                "the edit through the hard link was never built: \(watch.lines) \(watch.standardError)")
        #expect(watch.wait(10) { check(watch) == 0 })
        #expect(watch.lines.last?.contains("inotify did not report") == true, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }

    /// The periodic check costs a stat pass and never rebuilds what is up to date: a quiet watch
    /// prints nothing more, and a build by hand between checks still runs (no lock is held).
    @Test func thePeriodicCheckOfAnUpToDateTreePrintsNothingAndHoldsNoLock() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
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
