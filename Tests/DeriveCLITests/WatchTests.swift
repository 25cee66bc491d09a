import Foundation
import Testing
import TestSupport
import Imaging

/// `derive build --watch` run as a user would: the real binary in a fresh project whose outputs
/// land in the same bucket (and folder tree) as the sources, so a watch that saw its own writes
/// would rebuild forever.
final class WatchSession: @unchecked Sendable {
    let root: URL
    let process = Process()
    private let lock = NSLock()
    private var output = ""
    private var errors = ""

    var manifest: URL { root.appendingPathComponent("derive.yaml") }
    var sources: URL { root.appendingPathComponent("photos/src") }
    var outputs: URL { root.appendingPathComponent("photos/out") }

    static func manifestText(width: Int) -> String {
        """
        version: 1
        buckets:
          photos: {path: photos}
        styles:
          small: image/resize,w_\(width)
        derivatives:
          - name: small
            from: photos/src/*.jpg
            styles: [small]
            to: photos/out/{name}.{ext}
        index: photos/derive-index.json
        """
    }

    /// Large blurred renders (seconds each) with no render deadline: the tests that need a build
    /// to be slow must not fail its renders at the default 20 s under load (s52's WatchRound20).
    static func heavyManifestText() -> String {
        manifestText(width: 64).replacingOccurrences(of: "resize,w_64", with: "resize,w_2400,limit_0/blur,r_20,s_20") + "\nlimits:\n  render_seconds: 0\n"
    }

    /// `manifestText` replaces the default manifest (sources stay in photos/src, outputs are expected in photos/out).
    /// `prepare` runs on the project folder before the watch starts.
    /// `arguments`: more options for `derive build --watch` (`--jobs 1`).
    /// `environment`: variables added to the watch's (a test hook).
    init(width: Int = 64, quiet: Bool = true, manifestText: String? = nil, arguments: [String] = [], environment: [String: String] = [:],
         prepare: (URL) throws -> Void = { _ in }) throws {
        root = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("photos/src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: sources.appendingPathComponent("a.jpg"))
        try Data((manifestText ?? Self.manifestText(width: width)).utf8).write(to: manifest)
        try prepare(root)
        process.executableURL = CLI.executable
        process.arguments = ["build", "--watch"] + (quiet ? ["--quiet"] : []) + arguments + [manifest.path]
        process.currentDirectoryURL = root
        // The periodic no-op check is spaced to cost 2 % of a core: at load 30 a check of 3 s put
        // it 150 s apart, past every test's wait (s53's full run). Watch tests test that it runs
        // and what it finds, not its share: keep it near its 5 s period unless a test says otherwise.
        let environment = ["DERIVE_TEST_RECHECK_SHARE": "1"].merging(environment) { _, new in new }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.output += String(decoding: data, as: UTF8.self) }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.errors += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var lines: [String] { lock.withLock { output.split(separator: "\n").map(String.init) } }
    var standardError: String { lock.withLock { errors } }

    /// Polls until `condition` holds; false after `timeout` seconds (generous: the machine is shared).
    func wait(_ timeout: Double = 60, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    func waitForLines(_ count: Int) -> Bool { wait { lines.count >= count } }

    /// The size of an output, nil while it cannot be decoded (missing).
    func size(_ name: String) -> (width: Int, height: Int)? {
        guard let data = FileManager.default.contents(atPath: outputs.appendingPathComponent(name).path),
              let raster = try? Raster.decode(data) else { return nil }
        return (raster.width, raster.height)
    }

    func terminate() -> Int32? {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let stopped = wait(30) { !process.isRunning }
        if !stopped { kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); return nil }
        return process.terminationStatus
    }

    func remove() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: root)
    }
}

@Suite(.ownThreads, .serialized) struct WatchTests {
    @Test func aSourceEditRebuildsTheDerivative() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(watch.size("a.jpg").map { $0.width == 64 && $0.height < 64 } == true, "\(watch.lines)")
        // Replace the landscape with the portrait (atomically, as editors save).
        let temporary = watch.sources.appendingPathComponent(".a.jpg.swp")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: temporary)
        #expect(rename(temporary.path, watch.sources.appendingPathComponent("a.jpg").path) == 0)
        #expect(watch.wait { watch.size("a.jpg").map { $0.height > 64 } == true }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.waitForLines(2))
        #expect(watch.lines.last?.contains("photos/src/a.jpg") == true && watch.lines.last?.contains("built 1") == true, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }

    @Test func aNewSourceAddsItsOutputs() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: watch.sources.appendingPathComponent("b.jpg"))
        #expect(watch.wait { watch.size("b.jpg")?.width == 64 }, "\(watch.lines) \(watch.standardError)")
        let index = watch.root.appendingPathComponent("photos/derive-index.json")
        #expect(watch.wait { (try? String(contentsOf: index, encoding: .utf8))?.contains("out/b.jpg") == true }, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }

    @Test func aStyleChangeInTheManifestRebuilds() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try Data(WatchSession.manifestText(width: 48).utf8).write(to: watch.manifest)
        #expect(watch.wait { watch.size("a.jpg")?.width == 48 }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.waitForLines(2))
        #expect(watch.lines[1].contains("derive.yaml changed"), "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }

    @Test func aBrokenManifestKeepsWatchingAndAFixRebuilds() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try Data("version: 1\nbuckets: [oops\n".utf8).write(to: watch.manifest)
        #expect(watch.wait { watch.lines.count >= 2 }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.lines[1].contains("not built"), "\(watch.lines)")
        #expect(watch.standardError.contains("derive.yaml"), "\(watch.standardError)")
        #expect(watch.process.isRunning)
        #expect(watch.size("a.jpg")?.width == 64)   // the old outputs stay
        try Data(WatchSession.manifestText(width: 32).utf8).write(to: watch.manifest)
        #expect(watch.wait { watch.size("a.jpg")?.width == 32 }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.terminate() == 0)
    }

    @Test func sigtermExitsZero() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(watch.terminate() == 0)
        // No temporary file left anywhere.
        let left = FileManager.default.enumerator(atPath: watch.root.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".derive-tmp") }
        #expect(left == [])
    }

    @Test func sigtermDuringARebuildExitsZeroAndLeavesNoHalfWrittenOutput() throws {
        let watch = try WatchSession(quiet: false)
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        // Enough large renders that the signal lands while some are in progress.
        try Data(WatchSession.heavyManifestText().utf8).write(to: watch.manifest)
        for number in 0..<8 {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: watch.sources.appendingPathComponent("c\(number).jpg"))
        }
        #expect(watch.wait { watch.standardError.contains("/9") }, "\(watch.standardError)")
        #expect(watch.terminate() == 0, "\(watch.lines) \(watch.standardError)")
        let left = FileManager.default.enumerator(atPath: watch.root.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".derive-tmp") }
        #expect(left == [])
        // Every output there is whole, and the next build finishes the job.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: watch.outputs.path)) ?? [] {
            #expect(watch.size(name) != nil, "\(name) is not a whole image")
        }
        let again = try CLI.run(["build", "--quiet", watch.manifest.path], in: watch.root)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try CLI.run(["check", watch.manifest.path], in: watch.root).status == 0)
    }

    @Test func itsOwnOutputsNeverTriggerARebuild() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        try copySample("portrait.jpg", to: watch.sources.appendingPathComponent("b.jpg"))   // whole (a copy in place can be built half-written)
        #expect(watch.waitForLines(2), "\(watch.lines) \(watch.standardError)")
        // A quiet period several times the debounce: the outputs, index and lock the rebuild
        // wrote (in the watched bucket) must not start another build.
        usleep(2_000_000)
        #expect(watch.lines.count == 2, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }

    @Test func aBuildByHandWhileWatchIsIdleRuns() throws {
        let watch = try WatchSession()
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        // Watch holds the build lock only while it builds.
        let byHand = try CLI.run(["build", watch.manifest.path], in: watch.root)
        #expect(byHand.status == 0, "\(byHand.stderr)")
        #expect(String(decoding: byHand.stdout, as: UTF8.self).contains("Nothing to do"))
        #expect(watch.terminate() == 0)
    }
}
