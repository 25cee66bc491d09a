import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 15 (build) F6: `derive.lock` was read whole, whatever its size (a 300 MB lock: 1.2 GB
/// and 54 s). A lock over `LockFile.maxBytes` (128 MiB) is refused before a byte of it is read,
/// with a message saying what to do; the file is left as it is.
@Suite(.ownThreads, .serialized) struct LockSizeLimitTests {
    typealias Project = BuildSafetyAttackTests.Project

    @Test(arguments: [["plan"], ["check"], ["build"], ["clean"]])
    func aHugeLockIsRefusedUnread(_ command: [String]) throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        // The lock's own header followed by zeros up to 200 MiB (sparse: no disk is used).
        let lock = try Data(contentsOf: project.url("derive.lock"))
        try (lock.prefix { $0 != UInt8(ascii: "\n") } + Data("\n".utf8)).write(to: project.url("derive.lock"))
        #expect(truncate(project.url("derive.lock").path, 200 << 20) == 0)
        let (run, peakKiB) = try BuildSafetyRound13Tests().runMeasured(project, command)
        let output = String(decoding: run.stdout, as: UTF8.self) + run.stderr
        #expect(run.status != 0, "\(command): \(output)")
        #expect(output.contains("over the limit"), "\(command): \(output)")
        #expect(peakKiB > 0 && peakKiB < 150 * 1024, "\(command): peak \(peakKiB) KiB")
        var info = stat()
        #expect(stat(project.url("derive.lock").path, &info) == 0 && info.st_size == 200 << 20, "\(command) changed the lock")
    }
}
