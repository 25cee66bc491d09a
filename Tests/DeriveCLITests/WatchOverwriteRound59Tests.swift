import Foundation
import Testing
import TestSupport
import Imaging

/// Attack 59b's F3: `derive build --watch --overwrite` kept the consent for the whole watch: a
/// hand edit of an output made seconds after the first build was rendered over without a word.
/// `--overwrite` is for the files in the way at start; later builds refuse a changed output.
@Suite(.ownThreads) struct WatchOverwriteRound59Tests {
    @Test func overwriteAppliesToTheWatchsFirstBuildOnly() throws {
        let watch = try WatchSession(arguments: ["--overwrite"]) { root in
            try FileManager.default.createDirectory(at: root.appendingPathComponent("photos/out"), withIntermediateDirectories: true)
            try Data("in the way at start".utf8).write(to: root.appendingPathComponent("photos/out/a.jpg"))
        }
        defer { _ = watch.terminate(); try? FileManager.default.removeItem(at: watch.root) }
        #expect(watch.waitForLines(1), "\(watch.lines) \(watch.standardError)")
        // The file in the way at start was replaced: the consent given.
        #expect(watch.size("a.jpg")?.width == 64, "\(watch.lines) \(watch.standardError)")
        usleep(1_500_000)
        let edit = Data("my retouched thumbnail".utf8)
        try edit.write(to: watch.outputs.appendingPathComponent("a.jpg"))
        #expect(watch.wait { watch.lines.count >= 2 }, "\(watch.lines) \(watch.standardError)")
        usleep(1_000_000)
        #expect(FileManager.default.contents(atPath: watch.outputs.appendingPathComponent("a.jpg").path) == edit,
                "the hand edit was rendered over: \(watch.lines) \(watch.standardError)")
        #expect(watch.standardError.contains("was changed since Derive wrote it"), "\(watch.lines) \(watch.standardError)")
    }
}
