import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 39b's L6 and L1's second half: SIGTERM (or Ctrl-C) during a watch's rebuild printed a
/// `failure: …: RequestTimeout: the render was cancelled` line per source, calling the user's own
/// stop a failure and a timeout; and after `mv project project2` the status lines named the
/// project's old absolute path.
@Suite(.ownThreads, .serialized) struct WatchStopRound40Tests {
    /// Slow renders (large AVIFs, one at a time), so that a stop finds them running.
    static func slowManifest() -> String {
        WatchSession.manifestText(width: 64).replacingOccurrences(of: "image/resize,w_64", with: "image/resize,w_2400,limit_0/format,avif")
    }

    @Test func aStopDuringARebuildSaysOneLineAndNoFailure() throws {
        let watch = try WatchSession(arguments: ["--jobs", "1"]) { root in
            for name in ["b", "c", "d"] {
                try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: root.appendingPathComponent("photos/src/\(name).jpg"))
            }
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try Data(Self.slowManifest().utf8).write(to: watch.manifest)
        // The rebuild starts after the quiet period; its first render takes seconds.
        usleep(2_000_000)
        #expect(watch.terminate() == 0)
        let said = watch.lines.joined(separator: "\n") + "\n" + watch.standardError
        #expect(!said.contains("RequestTimeout") && !said.contains("failure") && !said.contains("cancelled"), "\(said)")
        #expect(said.range(of: #"stopped: [0-9]+ derivatives? not built; the next build makes them"#, options: .regularExpression) != nil, "\(said)")
    }

    @Test func aRenamedProjectIsNamedByRelativePaths() throws {
        let watch = try WatchSession()
        let moved = watch.root.deletingLastPathComponent().appendingPathComponent(watch.root.lastPathComponent + "-moved")
        defer { watch.remove(); try? FileManager.default.removeItem(at: moved) }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try FileManager.default.moveItem(at: watch.root, to: moved)
        usleep(1_500_000)   // the move's own events settle first
        let temporary = moved.appendingPathComponent("photos/src/.a.jpg.swp")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: temporary)
        #expect(rename(temporary.path, moved.appendingPathComponent("photos/src/a.jpg").path) == 0)
        #expect(watch.wait { watch.lines.contains { $0.contains("a.jpg changed") } }, "\(watch.lines) \(watch.standardError)")
        let line = watch.lines.first { $0.contains("a.jpg changed") } ?? ""
        #expect(line.contains("] photos/src/a.jpg changed"), "\(watch.lines)")
        #expect(!watch.lines.contains { $0.contains(watch.root.path) }, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }
}
