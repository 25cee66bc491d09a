import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #10, ninth attack, finding 5: after SIGTERM to `derive process`, its worker ran on for
/// 1.4–1.9 s. The worker notices its parent's end of the socket closing and exits at once,
/// removing its temporary folder.
@Suite(.ownThreads) struct WorkerSignalCLITests {
    let landscape = CLI.samples.appendingPathComponent("landscape.jpg").path

    /// Processes whose parent is `pid` (any of its threads may have started them).
    static func children(of pid: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { candidate in
            guard let stat = try? String(contentsOfFile: "/proc/\(candidate)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == pid
        }
    }

    /// Running (not gone, not a zombie).
    static func running(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    @Test func workerEndsPromptlyAfterSIGTERM() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("out.avif").path
        let process = Process()
        process.executableURL = CLI.executable
        // A wide blur then an AVIF encode of 4800 px: far more than the 1.5 s waited below even on a
        // quiet machine (the encode alone finished in time there), partly outside libvips' evaluation loop.
        process.arguments = ["process", landscape, "resize,w_4800,limit_0/blur,r_50,s_50/blur,r_50,s_50/format,avif", "--max-work", "100000000000",
                             "--max-memory", "4000000000", "--render-seconds", "60", "-o", target]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var worker: pid_t?
        let waitStart = Date()
        while worker == nil, Date().timeIntervalSince(waitStart) < 20 {
            worker = Self.children(of: process.processIdentifier).first
            usleep(20_000)
        }
        guard let worker else {
            process.terminate()
            Issue.record("derive process started no worker")
            return
        }
        // Let the render start, then stop derive as a service manager would.
        usleep(1_500_000)
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? [])
            .filter { $0.hasPrefix("derive-worker.\(process.processIdentifier).") }
        kill(process.processIdentifier, SIGTERM)
        let killed = Date()
        while Self.running(worker), Date().timeIntervalSince(killed) < 5 { usleep(5_000) }
        let gone = Date().timeIntervalSince(killed)
        process.waitUntilExit()
        // README: within about 50 ms; loose here for a loaded 2-core machine (1.4–1.9 s before the
        // fix; 0.5 s was crossed once at load 20, so the bound sits between the two).
        #expect(gone < 1, "the worker ran on for \(gone) s after SIGTERM")
        #expect(!FileManager.default.fileExists(atPath: target))
        usleep(100_000)
        for name in folders {
            #expect(!FileManager.default.fileExists(atPath: NSTemporaryDirectory() + "/" + name), "\(name) was left behind")
        }
    }
}
