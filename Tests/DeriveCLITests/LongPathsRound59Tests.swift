import Foundation
import Testing
import TestSupport

/// Issue #9, s58's known window: a watch given its manifest by a relative path, whose project (and
/// so its current folder) moves under a path past Foundation's reach *during* a build, after the
/// watch checked for a move and before the build loaded the manifest. The load made the relative
/// path absolute against the "" Foundation answers there: the build's files named `/`.
@Suite(.ownThreads) struct LongPathsRound59Tests {
    @Test func aProjectMovedPastFoundationsReachDuringABuildWritesNothingAtTheRoot() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let atRoot = ["/.derive", "/wout", "/derive.lock"]
        let before = atRoot.filter { FileManager.default.fileExists(atPath: $0) }
        defer { for path in atRoot where !before.contains(path) { try? FileManager.default.removeItem(atPath: path) } }
        let short = root.appendingPathComponent("p")
        try LongPathsRound58Tests.project(short, manifest: "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: ../wout}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n")
        let pause = root.appendingPathComponent("pause")
        let watch = Process()
        watch.executableURL = CLI.executable
        watch.arguments = ["build", "--watch", "--quiet", "derive.yaml"]
        watch.currentDirectoryURL = short
        watch.environment = ProcessInfo.processInfo.environment.merging(["XDG_STATE_HOME": root.appendingPathComponent("xdg").path,
                                                                         "DERIVE_TEST_BEFORE_WATCH_BUILD": pause.path]) { $1 }
        let errors = Pipe(), output = Pipe()
        watch.standardError = errors
        watch.standardOutput = output
        let lines = LineCount()
        output.fileHandleForReading.readabilityHandler = { handle in
            lines.add(handle.availableData.filter { $0 == 0x0A }.count)
        }
        try watch.run()
        defer { if watch.isRunning { kill(watch.processIdentifier, SIGKILL); watch.waitUntilExit() } }
        func paused(within seconds: Double) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end, watch.isRunning { if FileManager.default.fileExists(atPath: pause.path) { return true }; usleep(20_000) }
            return false
        }
        // The first build goes on at once.
        #expect(paused(within: 240))
        try? FileManager.default.removeItem(at: pause)
        let first = Date().addingTimeInterval(240)
        while Date() < first, lines.value < 1 { usleep(50_000) }
        #expect(lines.value >= 1 && FileManager.default.fileExists(atPath: root.appendingPathComponent("wout/a.jpg").path))
        // A new photo starts the second build; the project moves while it waits before its load.
        let copy = Process()
        copy.executableURL = URL(fileURLWithPath: "/bin/cp")
        copy.arguments = [CLI.samples.appendingPathComponent("portrait.jpg").path, short.appendingPathComponent("src/b.jpg").path]
        try copy.run()
        copy.waitUntilExit()
        #expect(paused(within: 120))
        let deep = try LongPathsRound58Tests.deep(root, depth: 6)
        #expect(rename(short.path, deep.appendingPathComponent("p").path) == 0)
        try? FileManager.default.removeItem(at: pause)
        let said = LongPathsRound58Tests.expectStoppedForItsCurrentFolder(watch, errors: errors) {
            // Any later build goes on at once.
            if FileManager.default.fileExists(atPath: pause.path) { try? FileManager.default.removeItem(at: pause) }
        }
        let made = atRoot.filter { !before.contains($0) && FileManager.default.fileExists(atPath: $0) }
        #expect(made.isEmpty, "made \(made) at the root: \(said.prefix(2_000))")
        #expect(!said.contains(" /.derive") && !said.contains(" /wout") && !said.contains(" /derive.lock"), "\(said.prefix(2_000))")
    }

    /// Attack 59a's F5: the limit said 1 023 bytes and the refusal "past the 1 024 bytes"; the
    /// runtime resolves relative paths against current folders up to 1 025 bytes.
    @Test func theCurrentFolderLimitIsTheOneDocumented() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let base = try LongPathsRound58Tests.deep(root, depth: 4)
        for length in [1_025, 1_026] {
            let folder = base.path + "/" + String(repeating: "q", count: length - base.path.utf8.count - 1)
            try LongPathsRound58Tests.project(URL(fileURLWithPath: folder), manifest:
                "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\nstate: \(root.path)/st\(length)\n")
            let plan = try CLI.run(["plan"], in: URL(fileURLWithPath: folder), environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
            if length == 1_025 {
                #expect(plan.status == 0 && said(plan).contains("create"), "\(length): \(said(plan))")
            } else {
                #expect(plan.status == 64 && said(plan).contains("is 1026 bytes long, past the 1 025 bytes"), "\(length): \(said(plan))")
            }
        }
    }
}
