import Foundation
import Testing
import TestSupport

/// Issue #9, attack 58c: long paths. Foundation answers an empty current folder past about 1 024
/// bytes, and relative paths then resolved against "/": a project 1 237 bytes deep with a bucket
/// at `../NAME` wrote its outputs to `/NAME`, `check` called them up to date, and `--overwrite` and
/// `clean` replaced and deleted a file there. SQLite opens no database whose path reaches 512
/// bytes, and the refusal advised `chattr -i`.
@Suite(.ownThreads) struct LongPathsRound58Tests {
    /// The one-source project `makeSampleProject` makes, made by the shell: Foundation's file
    /// calls past 1 024 bytes copied nothing and said nothing.
    static func project(_ folder: URL, manifest: String) throws {
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/bin/sh")
        make.arguments = ["-c", "mkdir -p \"$1/src\" && cp \"$2\" \"$1/src/a.jpg\" && printf '%s' \"$3\" > \"$1/derive.yaml\"", "sh",
                          folder.path, CLI.samples.appendingPathComponent("landscape.jpg").path, manifest]
        try make.run()
        make.waitUntilExit()
        #expect(make.terminationStatus == 0)
    }

    /// A folder `depth` levels of 200-byte names below `root`.
    static func deep(_ root: URL, depth: Int) throws -> URL {
        var folder = root
        for level in 1...depth { folder = folder.appendingPathComponent(String(repeating: "d", count: 200) + "\(level)") }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test(arguments: ["plan", "build", "check", "clean"])
    func aCurrentFolderPastFoundationsReachIsRefused(command: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let base = try Self.deep(root, depth: 6)
        #expect(base.path.utf8.count > 1_100)
        let name = "derive-longcwd-\(UUID().uuidString)"
        try Self.project(base.appendingPathComponent("A"), manifest:
            "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: ../\(name)}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\nstate: \(root.path)/st\n")
        let run = try CLI.run([command, "A/derive.yaml"], in: base, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        defer { try? FileManager.default.removeItem(atPath: "/" + name) }
        #expect(run.status != 0 && said(run).contains("the current folder's path is") && said(run).contains("cd to a folder with a shorter path"), "\(said(run))")
        #expect(!FileManager.default.fileExists(atPath: "/" + name), "wrote to /\(name)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent(name).path)) ?? []).isEmpty)
    }

    /// The same project built from a short current folder, by its absolute path, builds into its
    /// own bucket.
    @Test func aDeepProjectBuildsFromAShortCurrentFolder() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let base = try Self.deep(root, depth: 6)
        try Self.project(base.appendingPathComponent("A"), manifest:
            "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: ../out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\nstate: \(root.path)/st\n")
        let run = try CLI.run(["build", base.appendingPathComponent("A/derive.yaml").path], in: root, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        #expect(run.status == 0, "\(said(run))")
        #expect(FileManager.default.fileExists(atPath: base.appendingPathComponent("out/a.jpg").path), "\(said(run)) \(run.stdout)")
    }

    @Test func aStatePathPastSQLitesLimitSaysSo() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let base = try Self.deep(root, depth: 3)
        #expect(base.path.utf8.count > 512 - 30)
        try Self.project(base, manifest: "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n")
        let run = try CLI.run(["build"], in: base, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        #expect(run.status != 0 && said(run).contains("SQLite opens no database whose path") && said(run).contains("set 'state:'") && !said(run).contains("chattr"), "\(said(run))")
    }

    /// 58d's M1: an output file name of 244 bytes was built once (by an older way in), then every
    /// rebuild, `clean` and orphan deletion failed with `File name too long`: its temporary name
    /// (`.NAME.PID.N.derive-tmp`, 31 bytes more) passes 255. Such a name is the source's failure
    /// in the plan, as a name past 255 bytes is; 224 bytes still build.
    @Test(arguments: [224, 225, 244])
    func anOutputNameItsTemporaryCannotHoldIsNotBuilt(bytes: Int) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let stem = String(repeating: "n", count: bytes - 4)
        try Self.project(root, manifest: "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n")
        try FileManager.default.moveItem(at: root.appendingPathComponent("src/a.jpg"), to: root.appendingPathComponent("src/\(stem).jpg"))
        let build = try CLI.run(["build"], in: root, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        let built = FileManager.default.fileExists(atPath: root.appendingPathComponent("out/\(stem).jpg").path)
        if bytes <= 224 {
            #expect(build.status == 0 && built, "\(said(build))")
        } else {
            #expect(build.status != 0 && !built && said(build).contains("an output's file name may be at most 224 bytes"), "\(said(build))")
        }
    }

    /// 58d's L1: a `lock:` (or index) name that validates but can never be written.
    @Test func aLockNameItsTemporaryCannotHoldIsAValidationError() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let lock = String(repeating: "l", count: 245) + ".lock"
        try Self.project(root, manifest: "version: 1\nlock: \(lock)\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n")
        let validate = try CLI.run(["validate"], in: root, environment: ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path])
        #expect(validate.status != 0 && said(validate).contains("has a file name of 250 bytes"), "\(said(validate))")
    }

    /// 58d's H1: a watch started in a short folder, given its manifest by a relative path, whose
    /// project then moved under a path past Foundation's reach (the current folder moves with
    /// it): the next build made `/.derive/derive` and the watch crashed. It stops, saying why.
    @Test func aWatchWhoseCurrentFolderMovesPastFoundationsReachStops() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let rootState = FileManager.default.fileExists(atPath: "/.derive")
        defer { if !rootState { try? FileManager.default.removeItem(atPath: "/.derive") } }
        let short = root.appendingPathComponent("p")
        try Self.project(short, manifest: "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: ../wout}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n")
        let watch = Process()
        watch.executableURL = CLI.executable
        watch.arguments = ["build", "--watch", "--quiet", "derive.yaml"]
        watch.currentDirectoryURL = short
        watch.environment = ProcessInfo.processInfo.environment.merging(["XDG_STATE_HOME": root.appendingPathComponent("xdg").path, "DERIVE_TEST_RECHECK_SHARE": "1"]) { $1 }
        let errors = Pipe(), output = Pipe()
        watch.standardError = errors
        watch.standardOutput = output
        let lines = LineCount()
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            lines.add(data.filter { $0 == 0x0A }.count)
        }
        try watch.run()
        defer { if watch.isRunning { kill(watch.processIdentifier, SIGKILL); watch.waitUntilExit() } }
        // The first build's line, and its follow-up check, before the move: a move during a build
        // is another case (s58's full run, at load, moved it mid-build).
        let first = Date().addingTimeInterval(240)
        while Date() < first, lines.value < 1 { usleep(100_000) }
        #expect(lines.value >= 1 && FileManager.default.fileExists(atPath: root.appendingPathComponent("wout/a.jpg").path))
        usleep(2_000_000)
        let deep = try Self.deep(root, depth: 6)
        #expect(rename(short.path, deep.appendingPathComponent("p").path) == 0)
        // Past the periodic no-op check (every 5 s here), which trapped in s58's full run when it came first.
        usleep(7_000_000)
        let copy = Process()
        copy.executableURL = URL(fileURLWithPath: "/bin/cp")
        copy.arguments = [CLI.samples.appendingPathComponent("portrait.jpg").path, deep.appendingPathComponent("p/src/b.jpg").path]
        try copy.run()
        copy.waitUntilExit()
        let said = Self.expectStoppedForItsCurrentFolder(watch, errors: errors) {}
        #expect(rootState || !FileManager.default.fileExists(atPath: "/.derive"), "made /.derive: \(said)")
    }
}

extension LongPathsRound58Tests {
    /// Waits (120 s) for `watch` to stop by itself, `meanwhile` called at each look, and expects it
    /// stopped with an error naming its current folder's path, not by a signal (a trap); what it
    /// said on standard error.
    static func expectStoppedForItsCurrentFolder(_ watch: Process, errors: Pipe, meanwhile: () -> Void) -> String {
        let end = Date().addingTimeInterval(120)
        while Date() < end, watch.isRunning { meanwhile(); usleep(50_000) }
        let stoppedByItself = !watch.isRunning
        if !stoppedByItself { kill(watch.processIdentifier, SIGKILL); watch.waitUntilExit() }
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stoppedByItself && watch.terminationReason == .exit && watch.terminationStatus != 0,
                "stopped by itself: \(stoppedByItself), \(watch.terminationReason == .exit ? "exit" : "signal") \(watch.terminationStatus): \(said.prefix(2_000))")
        #expect(said.contains("the current folder's path is") && said.contains("the watch stopped"), "\(said.prefix(2_000))")
        return said
    }
}

/// Lines a watch printed, counted from its output's reading thread.
final class LineCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add(_ lines: Int) { lock.withLock { count += lines } }
}
