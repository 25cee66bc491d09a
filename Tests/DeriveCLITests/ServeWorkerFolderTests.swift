import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #10, attack 11's F4f: after SIGTERM of `derive serve`, a worker's empty temporary
/// folder (`<tmp>/derive-worker.<serve's pid>.<n>`) stayed until the next `derive` swept it.
/// serve now ends its workers and removes every worker folder of its own on its way out.
@Suite(.ownThreads) struct ServeWorkerFolderTests {
    static func folders(of pid: pid_t) -> [String] {
        var base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        if !base.hasPrefix("/") { base = "/tmp" }
        if base.count > 1, base.hasSuffix("/") { base.removeLast() }
        let prefix = "derive-worker.\(pid)."
        return ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).filter { $0.hasPrefix(prefix) }.map { base + "/" + $0 }
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func serveLeavesNoWorkerFolderWhenItEnds(_ signal: Int32) throws {
        let server = try ServeConnectionTests.RunningServer()
        let connection = try ServeConnectionTests.Connection(port: server.port)
        connection.send(ServeConnectionTests.get("/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_40"))
        _ = try #require(connection.response())
        let pid = server.process.processIdentifier
        #expect(!Self.folders(of: pid).isEmpty, "serve's worker has no folder")
        // One as a worker that lost the race with its own exit leaves it, named as the pool names them.
        let stray = (Self.folders(of: pid).first.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? "/tmp")
            + "/derive-worker.\(pid).4242"
        #expect(mkdir(stray, 0o700) == 0)
        kill(pid, signal)
        server.process.waitUntilExit()
        let left = Self.folders(of: pid)
        for folder in left { try? FileManager.default.removeItem(atPath: folder) }
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
