import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #10, attack 12's G2 remainder, end to end: under a raised byte limit, a source and its
/// watermark image, each under the limit but together over what one render sends its worker,
/// were read whole before the render refused them (process: 27.8 s and 2.5 GB; serve: 29 s and
/// 2.3 GB). Their sizes are checked together from their files, and nothing is read. And a
/// raised-limit source that renders is held once per process, not twice.
@Suite(.ownThreads, .serialized) struct EngineRound14CLITests {
    typealias Project = BuildSafetyAttackTests.Project
    static let sourceBytes: UInt64 = 600 << 20, markBytes: UInt64 = 500 << 20
    /// Far below either file: a process that read one of them would be over it.
    static let unreadPeakKiB = 200 << 10
    static let mark = Data("w500.png".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")

    /// Runs `derive` (as BuildSafetyRound13Tests.runMeasured does, VmHWM polled from /proc) and
    /// returns the peak of derive itself and the highest peak of any process it started (its
    /// render workers), in KiB.
    static func runMeasured(_ arguments: [String], in folder: URL) throws -> (result: CLI.Result, peakKiB: Int, childPeakKiB: Int, seconds: Double) {
        let out = folder.appendingPathComponent("measured.out").path, err = folder.appendingPathComponent("measured.err").path
        let argv = ["/bin/sh", "-c", "cd \"$1\" && shift && exec \"$@\" >\"$OUT\" 2>\"$ERR\"", "sh", folder.path, CLI.executable.path] + arguments
        let environment = ProcessInfo.processInfo.environment.merging(["OUT": out, "ERR": err]) { $1 }.map { "\($0.key)=\($0.value)" }
        var cArguments = argv.map { strdup($0) } + [nil]
        var cEnvironment = environment.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) }; cEnvironment.forEach { free($0) } }
        let started = Date()
        var pid: pid_t = 0
        try #require(posix_spawn(&pid, "/bin/sh", nil, nil, &cArguments, &cEnvironment) == 0)
        var status: Int32 = 0, peak = 0, childPeak = 0
        while true {
            peak = max(peak, BuildSafetyRound13Tests.peakResidentKiB(of: pid) ?? 0)
            for child in children(of: pid) { childPeak = max(childPeak, BuildSafetyRound13Tests.peakResidentKiB(of: child) ?? 0) }
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            if waited < 0 && errno != EINTR { Issue.record("waitpid \(pid): errno \(errno)"); break }
            usleep(2_000)
        }
        let seconds = Date().timeIntervalSince(started)
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let result = CLI.Result(status: exitStatus, stdout: (try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data(),
                                stderr: String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: err))) ?? Data(), as: UTF8.self))
        return (result, peak, childPeak, seconds)
    }

    /// The processes `pid` started, from its threads' `children` files.
    static func children(of pid: pid_t) -> [pid_t] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task -> [pid_t] in
            let fd = open("/proc/\(pid)/task/\(task)/children", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return [] }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return [] }
            return String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    /// `p600.png` and `w500.png` (valid PNGs padded sparsely: reading one costs its size) in `folder`.
    static func bigPair(in folder: URL) throws {
        try EngineRound11CLITests.paddedPNG(at: folder.appendingPathComponent("p600.png"), bytes: sourceBytes)
        try EngineRound11CLITests.paddedPNG(at: folder.appendingPathComponent("w500.png"), bytes: markBytes)
    }

    static func expectRefusal(_ text: String, source: String) {
        #expect(text.contains("ImageTooLarge"), "\(text)")
        #expect(text.contains("the source '\(source)' (629145600 bytes) and its watermark image 'w500.png' (524288000 bytes) are 1153433600 bytes together"), "\(text)")
        #expect(text.contains("one render takes at most 1072693248 bytes of source and watermark images"), "\(text)")
    }

    @Test func processRefusesASourceAndAMarkTooLargeTogetherWithoutReadingThem() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.bigPair(in: folder)
        let (result, peak, workerPeak, seconds) = try Self.runMeasured(
            ["process", "p600.png", "watermark,image_\(Self.mark)", "--bucket-root", ".", "--max-bytes", "1000000000", "-o", "o.png"], in: folder)
        #expect(result.status == 1, "\(result.stderr)")
        Self.expectRefusal(result.stderr, source: "p600.png")
        #expect(result.stderr.contains("EC 0040-00000012") && result.stderr.contains("whatever --max-bytes says"), "\(result.stderr)")
        #expect(peak > 0 && peak < Self.unreadPeakKiB, "derive peaked at \(peak) KiB")
        #expect(workerPeak == 0, "a render worker was started (\(workerPeak) KiB)")
        #expect(seconds < 10, "refused after \(seconds) s")   // reading them took 28 s
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("o.png").path))
    }

    @Test func buildRefusesThePairFromTheirSizes() throws {
        let project = try Project(index: false)
        defer { try? FileManager.default.removeItem(at: project.root) }
        try Self.bigPair(in: project.url("src"))
        try project.write("derive.yaml", """
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
            limits:
              bytes: 1000000000
            derivatives:
              - name: marked
                from: src/p600.png
                process: image/watermark,image_\(Self.mark)
                to: out/{name}.{ext}

            """)
        let (result, peak, _, _) = try Self.runMeasured(["build"], in: project.root)
        #expect(result.status == 1, "\(result.stderr)")
        Self.expectRefusal(result.stderr, source: "src/p600.png")
        #expect(result.stderr.contains("whatever limits: bytes in the manifest says"), "\(result.stderr)")
        // The plan hashes both in 64 KiB pieces; the build reads neither.
        #expect(peak > 0 && peak < Self.unreadPeakKiB, "derive peaked at \(peak) KiB")
        #expect(!project.exists("out/p600.png"))
    }

    @Test func serveRefusesThePairFromTheirSizes() throws {
        // `limits:` is a top-level key, after the serve block RunningServer writes last.
        let server = try ServeConnectionTests.RunningServer(serve: "  cache_max_bytes: 1073741824\nlimits:\n  bytes: 1000000000\n")
        try Self.bigPair(in: server.folder.appendingPathComponent("pubr"))
        let connection = try ServeConnectionTests.Connection(port: server.port)
        let started = Date()
        connection.send(ServeConnectionTests.get("/pubr/p600.png?x-oss-process=image%2Fwatermark%2Cimage_\(Self.mark)"))
        let response = try #require(connection.response())
        let seconds = Date().timeIntervalSince(started)
        let body = String(decoding: response.body, as: UTF8.self)
        #expect(response.status == 400, "\(body)")
        Self.expectRefusal(body, source: "p600.png")
        #expect(body.contains("<EC>0040-00000012</EC>") && body.contains("whatever limits: bytes in the manifest says"), "\(body)")
        let peak = BuildSafetyRound13Tests.peakResidentKiB(of: server.process.processIdentifier) ?? 0
        #expect(peak > 0 && peak < Self.unreadPeakKiB, "serve peaked at \(peak) KiB")
        #expect(seconds < 10, "answered after \(seconds) s")   // it read and hashed them first: 29 s
    }

    /// A 200 MiB source under a raised limit renders; derive and its worker each hold it once
    /// (derive held it twice, as itself and encoded into the worker's message; the worker held the
    /// message and its decoded copy).
    @Test func aRaisedLimitSourceIsHeldOncePerProcess() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let bytes: UInt64 = 200 << 20
        try EngineRound11CLITests.paddedPNG(at: folder.appendingPathComponent("p200.png"), bytes: bytes)
        let (result, peak, workerPeak, _) = try Self.runMeasured(
            ["process", "p200.png", "resize,w_10", "--max-bytes", "1000000000", "-o", "o.png"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("o.png: 10x10 png"), "\(result.stderr)")
        let once = Int(bytes >> 10)
        #expect(peak >= once && peak < once * 3 / 2, "derive peaked at \(peak) KiB for a \(once) KiB source")
        #expect(workerPeak >= once && workerPeak < once * 3 / 2, "the worker peaked at \(workerPeak) KiB for a \(once) KiB source")
    }
}
