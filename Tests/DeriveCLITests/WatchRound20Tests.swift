import Foundation
import Testing
import TestSupport

/// Watch mode after the twentieth attack (issue 13): changes made while the *first* build runs
/// are built after it (W3).
@Suite(.ownThreads, .serialized) struct WatchRound20Tests {
    func check(_ watch: WatchSession) -> Int32? {
        try? CLI.run(["check", watch.manifest.path], in: watch.root).status
    }

    func exists(_ watch: WatchSession, _ name: String) -> Bool {
        FileManager.default.fileExists(atPath: watch.outputs.appendingPathComponent(name).path)
    }

    // MARK: W3: the watches are in place before the first build looks at anything

    /// A slow first build (5 large blurred renders, one at a time); once it is rendering, the
    /// style is edited, a photo added and one removed. On 0.13.0 nothing followed the first
    /// build's line: the site stayed on the old style, without the new photo, with the removed
    /// one's output, and `check` failed, until some later unrelated change.
    /// No render deadline (`WatchSession.heavyManifestText`): at load 20 these renders passed the
    /// default 20 s, failed, and the first build never ended in the wait (s52). Four renders left
    /// after the first are seconds on a fast machine, while the changes take milliseconds (the
    /// `#require` below says when they did not).
    @Test func changesMadeDuringTheFirstBuildAreBuiltAfterIt() throws {
        let watch = try WatchSession(quiet: false, manifestText: WatchSession.heavyManifestText(), arguments: ["--jobs", "1"]) { root in
            for number in 0..<4 { try copySample("landscape.jpg", to: root.appendingPathComponent("photos/src/c\(number).jpg")) }
        }
        defer { watch.remove() }
        // Its plan is made and it is rendering (the first progress line comes after one render).
        #expect(watch.wait(300) { watch.standardError.contains("built 1/") }, "\(watch.lines) \(watch.standardError)")
        try Data(WatchSession.manifestText(width: 32).utf8).write(to: watch.manifest)
        try copySample("portrait.jpg", to: watch.sources.appendingPathComponent("n1.jpg"))
        try FileManager.default.removeItem(at: watch.sources.appendingPathComponent("c0.jpg"))
        try #require(watch.lines.isEmpty, "the first build ended before the changes were made (renders too fast to test this): \(watch.lines)")
        #expect(watch.wait(600) { !watch.lines.isEmpty }, "\(watch.standardError)")
        // Within a bound after the first build: the outputs follow every change, and check agrees.
        #expect(watch.wait(120) {
            watch.size("a.jpg")?.width == 32 && watch.size("n1.jpg")?.width == 32 && !exists(watch, "c0.jpg") && check(watch) == 0
        }, "the changes made during the first build were not built: \(watch.lines) \(watch.standardError.suffix(2000))")
        #expect(watch.lines.count >= 2 && watch.lines[1].contains("changed"), "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }
}
