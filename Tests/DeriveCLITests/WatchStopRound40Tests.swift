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

    /// As the attack ran it: `derive build --watch` in the project, naming no manifest (so the
    /// manifest is found again in the moved folder).
    @Test func aRenamedProjectIsNamedByRelativePaths() throws {
        let outer = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outer) }
        let root = outer.appendingPathComponent("project"), moved = outer.appendingPathComponent("project2")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("photos/src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("photos/src/a.jpg"))
        try Data(WatchSession.manifestText(width: 64).utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let log = outer.appendingPathComponent("watch.out")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["build", "--watch", "--quiet"]
        process.currentDirectoryURL = root
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        func lines() -> [String] { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        func wait(until condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline { if condition() { return true }; usleep(50_000) }
            return condition()
        }
        #expect(wait { lines().count >= 1 }, "\(lines())")
        // The edit right after the move: one burst, whose events name the old paths.
        try FileManager.default.moveItem(at: root, to: moved)
        let temporary = moved.appendingPathComponent("photos/src/.a.jpg.swp")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: temporary)
        #expect(rename(temporary.path, moved.appendingPathComponent("photos/src/a.jpg").path) == 0)
        #expect(wait { lines().contains { $0.contains(" changed: built 1,") } }, "\(lines())")
        #expect(lines().contains { $0.contains("] photos/") && $0.contains(" changed: built 1,") }, "\(lines())")
        #expect(!lines().contains { $0.contains(root.path + "/") }, "\(lines())")
        kill(process.processIdentifier, SIGTERM)
        #expect(wait { !process.isRunning })
        #expect(process.terminationStatus == 0)
    }
}
