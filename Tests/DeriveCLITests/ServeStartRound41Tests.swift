import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 41b's M1, M2 and L2: `derive serve` whose bind failed exited 0 without a word about
/// half the time (the shutdown watchdog took the failing group's cancellation for a signal and
/// called `_exit(0)` before the error was printed), else 1 with NIO's raw `bind(descriptor:…)`;
/// `--port 99999` listened on 34463 (the port wrapped modulo 65536); `--host ::1` printed
/// `http://::1:PORT`, which is no URL.
@Suite(.ownThreads) struct ServeStartRound41Tests {
    /// A folder with a one-bucket manifest serve starts on.
    static func project() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("site"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  site: {path: site, acl: public-read}\n".utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    struct Run { var status: Int32?; var stdout: String; var stderr: String }

    /// Runs derive with `arguments` in `folder` for at most `seconds`; `status` nil when it was
    /// still running then (it is killed). `until`: stops it (SIGTERM) once its output holds this.
    static func run(_ arguments: [String], in folder: URL, seconds: Double = 20, until: String? = nil) throws -> Run {
        let out = folder.appendingPathComponent("run.out"), err = folder.appendingPathComponent("run.err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = arguments
        process.currentDirectoryURL = folder
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        var timedOut = false
        while process.isRunning {
            if let until, ((try? String(contentsOf: out, encoding: .utf8)) ?? "").contains(until) {
                kill(process.processIdentifier, SIGTERM)
                process.waitUntilExit()
                break
            }
            if Date() > deadline {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                break
            }
            usleep(20_000)
        }
        return Run(status: timedOut ? nil : process.terminationStatus,
                   stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "", stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// A TCP port on 127.0.0.1 held by a listening socket of this test (closed by the caller).
    static func takenPort() throws -> (socket: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        try #require(bound == 0 && listen(descriptor, 4) == 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func aTakenPortIsAnErrorEveryTime() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (held, port) = try Self.takenPort()
        defer { close(held) }
        for attempt in 1...5 {
            let run = try Self.run(["serve", "--port", String(port)], in: folder)
            #expect(run.status == 1, "attempt \(attempt): \(String(describing: run.status)) \(run.stderr)")
            #expect(run.stderr.hasPrefix("derive: error: ") && run.stderr.contains("127.0.0.1:\(port)") && run.stderr.contains("already in use")
                    && run.stderr.contains("--port 0"), "attempt \(attempt): \(run.stderr)")
            #expect(!run.stderr.contains("bind(descriptor") && !run.stdout.contains("Serving"), "attempt \(attempt): \(run.stderr) \(run.stdout)")
        }
    }

    @Test func anUnknownHostIsAnError() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        for attempt in 1...2 {
            let run = try Self.run(["serve", "--port", "0", "--host", "nosuch.invalid"], in: folder)
            #expect(run.status == 1, "attempt \(attempt): \(String(describing: run.status)) \(run.stderr)")
            #expect(run.stderr.hasPrefix("derive: error: ") && run.stderr.contains("nosuch.invalid") && run.stderr.contains("--host")
                    && run.stderr.contains("no address found") && !run.stderr.contains("SocketAddressError"),
                    "attempt \(attempt): \(run.stderr)")
        }
    }

    @Test func aPortOutsideItsRangeIsAUsageError() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        for port in ["65536", "99999", "131152", "-1"] {
            let run = try Self.run(["serve", "--port=" + port], in: folder, seconds: 15)
            #expect(run.status == 64, "--port \(port): \(String(describing: run.status)) \(run.stdout) \(run.stderr)")
            #expect(run.stderr.contains("derive: error: --port must be from 0 to 65535, not \(port)"), "--port \(port): \(run.stderr)")
        }
    }

    /// `::1` and `[::1]` both bind the IPv6 loopback; the address printed is a URL (`http://[::1]:PORT`).
    @Test func anIPv6HostIsPrintedInBrackets() throws {
        // Skipped where the machine has no IPv6 loopback.
        let probe = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        let usable = probe >= 0 && withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        } == 0
        if probe >= 0 { close(probe) }
        guard usable else { return }
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        for host in ["::1", "[::1]"] {
            let run = try Self.run(["serve", "--port", "0", "--host", host], in: folder, until: "\n")
            #expect(run.stdout.range(of: #"^Serving site on http://\[::1\]:[0-9]+ "#, options: .regularExpression) != nil, "--host \(host): \(run.stdout) \(run.stderr)")
            #expect(!run.stdout.contains("http://::1") && !run.stdout.contains("[[") && run.status == 0, "--host \(host): \(run.stdout) \(run.stderr)")
        }
    }
}
