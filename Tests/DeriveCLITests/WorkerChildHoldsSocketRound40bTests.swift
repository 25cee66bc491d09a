import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 40b's L1: a worker that exits (status 127) while a child it started still holds its
/// socket was reported only at the 30 s start deadline, as "did not answer", its status unsaid.
@Suite(.ownThreads) struct WorkerChildHoldsSocketRound40bTests {
    @Test func versionSaysTheWorkersEndingAtOnce() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let worker = folder.appendingPathComponent("w2.sh")
        let pidFile = folder.appendingPathComponent("helper.pid")
        // The helper keeps the inherited socket (fd 3) and nothing else: not derive's standard error,
        // nor a descriptor of the test process that leaked this far (a reader would wait for its end).
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "printf '#!/bin/sh\\nfor f in /proc/$$/fd/*; do n=${f##*/}; [ \"$n\" -gt 3 ] && eval \"exec $n>&-\"; done 2>/dev/null\\nsleep 60 >/dev/null 2>&1 &\\necho $! > \"%s\"\\necho \"bad lib\" >&2\\nexit 127\\n' \"$2\" > \"$1\" && chmod 755 \"$1\"",
                           "sh", worker.path, pidFile.path]
        try shell.run()
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 0)
        defer {
            if let text = try? String(contentsOf: pidFile, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGTERM) }
        }
        // Into a file, not a pipe: the test process's own pipes, inherited without close-on-exec,
        // would live on in the helper and keep a reader waiting for their end.
        let output = folder.appendingPathComponent("version.out")
        #expect(FileManager.default.createFile(atPath: output.path, contents: nil))
        let handle = try FileHandle(forWritingTo: output)
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["--version"]
        process.environment = ProcessInfo.processInfo.environment.merging(["DERIVE_RENDER_WORKER": worker.path, "XDG_STATE_HOME": CLI.userStateHome.path]) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        let started = Date()
        try process.run()
        process.waitUntilExit()
        try handle.close()
        #expect(Date().timeIntervalSince(started) < 20)   // not a speed goal: the 30 s start deadline is what it tells apart
        let said = try String(contentsOf: output, encoding: .utf8)
        #expect(said.contains("did not start (exited with status 127)"), "\(said)")
        #expect(!said.contains("did not answer"), "\(said)")
    }
}
