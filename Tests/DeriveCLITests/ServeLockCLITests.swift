import Foundation
import Testing
import TestSupport

/// Attack 11, finding 4: two `derive serve` on one state folder each kept their own table of
/// appendable objects. The second now refuses to start, naming the first.
@Suite(.ownThreads) struct ServeLockCLITests {
    @Test func aSecondServeOnTheStateFolderRefusesToStart() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("site"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  site:\n    path: site\n".utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let first = Process()
        first.executableURL = CLI.executable
        first.arguments = ["serve", "--port", "0"]
        first.currentDirectoryURL = folder
        let out = folder.appendingPathComponent("first.out")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        first.standardOutput = try FileHandle(forWritingTo: out)
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { first.terminate(); first.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(120)
        while first.isRunning, Date() < deadline, !((try? String(contentsOf: out, encoding: .utf8)) ?? "").contains("Serving") {
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(((try? String(contentsOf: out, encoding: .utf8)) ?? "").contains("Serving"))
        let second = try ServeRefusalTests.serve(in: folder)
        #expect(second.status == 1, "the second serve started: \(second.stdout)")
        #expect(second.stderr.contains("another derive serve (pid \(first.processIdentifier)) uses this state folder"), "\(second.stderr)")
        #expect(second.stderr.contains("serve.lock"), "\(second.stderr)")
        first.terminate()
        first.waitUntilExit()
        // Once it stopped, the folder is free: the third serve starts (waited for, not timed: a
        // fixed 3 s wait was outlasted by a loaded machine's start-up).
        let third = try ServeRefusalTests.serve(in: folder, seconds: 60, until: "Serving")
        #expect(third.stdout.contains("Serving"), "\(third.stderr)")
    }
}
