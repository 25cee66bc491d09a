import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Whether `strace` is here and may trace (a container may forbid ptrace).
enum SystemCallTrace {
    static let strace = "/usr/bin/strace"
    static let isPossible: Bool = {
        guard FileManager.default.isExecutableFile(atPath: strace),
              let result = try? CLI.run(["-f", "-o", "/dev/null", "/bin/true"], executable: strace) else { return false }
        return result.status == 0
    }()
}

/// Attack 20's M1 and M2, counted in the system calls of a real no-op (`strace`; skipped where
/// it is missing or cannot trace): work on a no-op must not grow with what a stat can settle.
@Suite(.ownThreads, .enabled(if: SystemCallTrace.isPossible)) struct NoOpEdgesRound20Tests {
    static let strace = SystemCallTrace.strace

    /// Runs derive under strace; the file system calls it made (every process), one a line.
    static func traced(_ arguments: [String], in folder: URL) throws -> (result: CLI.Result, calls: [String]) {
        let trace = folder.appendingPathComponent("trace.txt").path
        defer { unlink(trace) }
        let result = try CLI.run(["-f", "-s", "65535", "-e", "trace=%file", "-o", trace, CLI.executable.path] + arguments,
                                 in: folder, executable: strace)
        let text = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
        return (result, text.split(separator: "\n").map(String.init))
    }

    /// The quoted strings of a trace line (the paths and names it passed).
    static func strings(_ line: String) -> [String] {
        var found: [String] = []
        var rest = line[...]
        while let open = rest.firstIndex(of: "\"") {
            let after = rest.index(after: open)
            guard let close = rest[after...].firstIndex(of: "\"") else { break }
            found.append(String(rest[after..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return found
    }

    static func settle() { Thread.sleep(forTimeInterval: 1.2) }

    /// Sets the file's mtime `seconds` ahead of now (its ctime moves to now, as `touch -d` does).
    static func dateAhead(_ path: String, by seconds: Int) throws {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var times = [timespec(tv_sec: now.tv_sec + seconds, tv_nsec: 0), timespec(tv_sec: now.tv_sec + seconds, tv_nsec: 0)]
        guard utimensat(AT_FDCWD, path, &times, 0) == 0 else { throw POSIXError(.EIO) }
    }

    static let manifest = """
    version: 1
    buckets:
      src: {path: src}
      out: {path: out}
    derivatives:
      - name: t
        from: src/**/*.jpg
        process: image/resize,w_16/format,png
        to: out/{name}.png

    """

    /// M1: sources dated an hour and half a year ahead are read by no no-op once their digests
    /// are recorded (they were opened three times by every no-op until the clock passed them).
    @Test(arguments: [3_600, 180 * 86_400])
    func aNoOpOpensNoSourceDatedAhead(seconds: Int) throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let sources = ["landscape.jpg", "portrait.jpg", "orientation-1.jpg"]
        for name in sources {
            try copySample(name, to: folder.appendingPathComponent("src/" + name))
            try Self.dateAhead(folder.appendingPathComponent("src/" + name).path, by: seconds)
        }
        Self.settle()
        for _ in 0..<2 {
            let built = try CLI.run(["build"], in: folder)
            #expect(built.status == 0, "\(built.stderr)")
            Self.settle()
        }
        for run in 1...2 {
            let (result, calls) = try Self.traced(["build"], in: folder)
            #expect(result.status == 0 && String(decoding: result.stdout, as: UTF8.self).contains("Nothing to do"), "\(result.stderr)")
            let opens = calls.filter { line in
                (line.contains("open(") || line.contains("openat(")) && Self.strings(line).contains { string in sources.contains { string.hasSuffix($0) } }
            }
            #expect(opens.isEmpty, "no-op \(run) opened sources \(opens.count) times: \(opens.prefix(3))")
        }
    }

    /// M2: one source below a chain of 300 folders. The no-op's path arguments name at most a
    /// few names per folder of the chain (each folder opened from its parent's descriptor);
    /// opened by full paths they named depth²/2 (45 000), growing without bound with the depth.
    @Test func aNoOpWalksADeepChainOfFoldersOnceOrSo() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let depth = 300
        let chain = String(repeating: "d/", count: depth)
        try copySample("portrait.jpg", to: folder.appendingPathComponent("src/" + chain + "deep.jpg"))
        let built = try CLI.run(["build"], in: folder)
        #expect(built.status == 0, "\(built.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/deep.png").path))
        Self.settle()
        _ = try CLI.run(["build"], in: folder)
        Self.settle()
        let (result, calls) = try Self.traced(["build"], in: folder)
        #expect(result.status == 0 && String(decoding: result.stdout, as: UTF8.self).contains("Nothing to do"), "\(result.stderr)")
        // Every name of the chain the kernel was given to walk: "d" alone, or each "d" of a path.
        var names = 0
        for line in calls {
            for string in Self.strings(line) where string == "d" || string.contains("/d/") || string.hasPrefix("d/") {
                names += string.split(separator: "/").filter { $0 == "d" }.count
            }
        }
        #expect(names <= 10 * depth, "the no-op walked \(names) names of a chain of \(depth) folders")
    }
}
