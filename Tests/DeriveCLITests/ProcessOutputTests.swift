import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Where `derive process` and `derive info` put their bytes: only regular files are replaced, and
/// a standard output that cannot be written is an error, never a crash.
@Suite(.ownThreads) struct ProcessOutputTests {
    let landscape = CLI.samples.appendingPathComponent("landscape.jpg").path

    @Test func outputOntoAFIFOIsRefusedAndTheFIFOStays() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("out.jpg").path
        #expect(mkfifo(fifo, 0o644) == 0)
        let result = try CLI.run(["process", landscape, "resize,w_10", "-o", fifo])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not a regular file"), "\(result.stderr)")
        var info = stat()
        #expect(lstat(fifo, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO, "the FIFO was replaced")
    }

    @Test func outputOntoASymbolicLinkIsRefusedAndTheLinkStays() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("target.jpg").path
        try Data("user".utf8).write(to: URL(fileURLWithPath: target))
        let link = folder.appendingPathComponent("link.jpg").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "target.jpg")
        let result = try CLI.run(["process", landscape, "resize,w_10", "-o", link])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not a regular file"), "\(result.stderr)")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == "target.jpg")
        #expect(FileManager.default.contents(atPath: target) == Data("user".utf8))
    }

    @Test func aRegularFileIsStillReplaced() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("out.jpg").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        let result = try CLI.run(["process", landscape, "resize,w_10", "-o", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.contents(atPath: path)?.prefix(2) == Data([0xFF, 0xD8]))
    }

    /// Runs derive with standard output on /dev/full (every write fails with ENOSPC).
    func runIntoAFullDevice(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = arguments
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        process.standardOutput = full
        let err = Pipe()
        process.standardError = err
        try process.run()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stderr, as: UTF8.self))
    }

    @Test func aStandardOutputThatCannotBeWrittenIsAnErrorNotACrash() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { return }
        for arguments in [["process", landscape, "resize,w_100", "-o", "-"], ["process", landscape, "average-hue", "-o", "-"],
                          ["info", landscape]] {
            let result = try runIntoAFullDevice(arguments)
            #expect(result.status == 1, "\(arguments): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("cannot write standard output"), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("Fatal error"), "\(arguments): \(result.stderr)")
        }
    }

    @Test func renderSecondsOutOfRangeIsRefused() throws {
        for value in ["nan", "inf", "-1", "1e20", "86401"] {
            let result = try CLI.run(["process", landscape, "resize,w_10", "--render-seconds", value, "-o", "-"])
            #expect(result.status != 0 && result.status != 1 || result.stderr.contains("render-seconds"), "\(value): \(result.status) \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(value) rendered")
            #expect(result.stderr.contains("render-seconds"), "\(value): \(result.stderr)")
        }
        let ok = try CLI.run(["process", landscape, "resize,w_10", "--render-seconds", "86400", "-o", "-"])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    /// `--render-seconds -1` (space form) gave ArgumentParser's "Missing value": now the same
    /// range error as `--render-seconds=-1`; hex and fractions are refused as in the manifest.
    @Test func limitFlagsTakeTheManifestsNumbers() throws {
        for arguments in [["--render-seconds", "-1"], ["--render-seconds=-1"], ["--max-work", "-5"]] {
            let result = try CLI.run(["process", landscape, "resize,w_10"] + arguments + ["-o", "-"])
            #expect(result.status != 0 && result.stderr.contains("must be") && !result.stderr.contains("Missing value"),
                    "\(arguments): \(result.stderr)")
        }
        for value in ["0x10", "1.5", "1e3"] {
            let result = try CLI.run(["process", landscape, "resize,w_10", "--render-seconds", value, "-o", "-"])
            #expect(result.status != 0 && result.stdout.isEmpty, "\(value): \(result.stderr)")
        }
        let ok = try CLI.run(["process", landscape, "resize,w_10", "--max-work", "4_000_000_000", "-o", "-"])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test func renderSecondsInAManifestIsBounded() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        let manifest = """
        version: 1
        buckets: {src: {path: src}, out: {path: out}}
        limits: {render_seconds: 9999999999999}
        derivatives:
          - {name: thumbs, from: "src/*.jpg", process: "image/resize,w_10", to: "out/{name}.{ext}"}

        """
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let result = try CLI.run(["validate"], in: folder)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("render_seconds"), "\(result.stderr)")
    }

    /// Found by the last attack: `--max-memory` near Int.max overflowed the worker's memory cap
    /// (a trap, exit 132); negative limits reached the render as nonsense.
    @Test func limitFlagsOutOfRangeAreRefusedNotACrash() throws {
        for (flag, value) in [("--max-memory", "9223372036854775807"), ("--max-memory", "-5"), ("--max-bytes", "-1"),
                              ("--max-side", "-1"), ("--max-pixels", "-1"), ("--max-output-side", "-1"), ("--max-work", "-1")] {
            let result = try CLI.run(["process", landscape, "resize,w_10", "\(flag)=\(value)", "-o", "-"])
            #expect(result.status != 0 && result.status != 132, "\(flag) \(value): \(result.status) \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(flag) \(value) rendered")
            #expect(result.stderr.contains(flag), "\(flag) \(value): \(result.stderr)")
        }
    }
}

