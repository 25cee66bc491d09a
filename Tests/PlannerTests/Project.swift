import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
import Testing
import Builder
import Manifest
import Planner
import ProcessLanguage

/// Counts renders and can run a hook during one (to edit files while a build runs).
final class RecordingRenderer: DerivativeRenderer, @unchecked Sendable {
    private let lock = NSLock()
    private var renders = 0
    var duringRender: (() -> Void)?

    var count: Int { lock.withLock { renders } }

    func render(_ source: Data, _ pipeline: Pipeline, bucketPath: String) throws -> Rendered {
        let hook: (() -> Void)? = lock.withLock { renders += 1; defer { duringRender = nil }; return duringRender }
        hook?()
        return try FakeRenderer().render(source, pipeline, bucketPath: bucketPath)
    }

    func memoryEstimate(_ source: Data) -> Int { 1 << 20 }
}

/// A manifest and its buckets in a temporary folder on the real disk, built through a
/// `BuildSession` with the fake renderer: what the CLI does, without libvips.
final class Project {
    let root: URL
    let renderer = RecordingRenderer()
    /// Sources here are text the stand-in renderer draws: not judged as images.
    var identity = EngineIdentity(renderVersion: "1", libvips: "8.14.1", encoder: "q85", refusesNonImages: false)
    var manifestName = "derive.yaml"
    /// Whether sessions may take the incremental paths (`DERIVE_INCREMENTAL=0` when false).
    var incremental = true

    /// `XDG_STATE_HOME` of this test process: build states' tokens (`StateBinding`) go there,
    /// never to the user's own `~/.local/state` (CI runs as root). The same folder as
    /// `CLI.userStateHome` (the modules share one test process, and each sets the variable
    /// once: two folders made a state bound in one look foreign when the other was set later).
    static let userStateHome: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("derive-test-state-home-\(ProcessInfo.processInfo.processIdentifier)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        setenv("XDG_STATE_HOME", path, 1)
        setenv("DERIVE_TEST_RENDER_SECONDS", "600", 0)   // as `CLI.renderSeconds`
        return path
    }()

    init(_ yaml: String, files: [String: String] = [:]) throws {
        _ = Self.userStateHome
        root = (try ScratchFolder.make("derive-safety"))
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try write(manifestName, yaml)
        for (path, text) in files { try write(path, text) }
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
    var manifestPath: String { path(manifestName) }

    func write(_ relative: String, _ text: String) throws {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func read(_ relative: String) -> String? {
        FileManager.default.contents(atPath: path(relative)).map { String(decoding: $0, as: UTF8.self) }
    }

    func exists(_ relative: String) -> Bool {
        var info = stat()
        return lstat(path(relative), &info) == 0
    }

    func remove(_ relative: String) throws { try FileManager.default.removeItem(atPath: path(relative)) }

    func session(overwrite: Bool = false) throws -> BuildSession {
        let result = ManifestLoader().load(manifestPath)
        guard let manifest = result.manifest, !result.diagnostics.hasErrors else {
            throw PlanError(message: "manifest errors: \(result.diagnostics.errors)")
        }
        let session = BuildSession(manifestPath: manifestPath, manifest: manifest, manifestFiles: result.files, identity: identity,
                                   overwrite: overwrite)
        session.incrementalPlans = incremental
        return session
    }

    @discardableResult
    func build(overwrite: Bool = false) throws -> BuildSession.BuildOutcome {
        try session(overwrite: overwrite).build(options: BuildOptions(jobs: 2, quiet: true)) { self.renderer }
    }

    func plan() throws -> Plan { try session().plan() }
    func check() throws -> BuildSession.CheckResult { try session().check() }

    /// Every regular file below the project, relative path → bytes (the user's files and Derive's).
    func snapshot() -> [String: Data] {
        var result: [String: Data] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: root.path) else { return result }
        for case let relative as String in enumerator {
            var info = stat()
            guard lstat(path(relative), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
                  let data = FileManager.default.contents(atPath: path(relative)) else { continue }
            result[relative] = data
        }
        return result
    }

    /// Waits out the racy-timestamp margin so the files written so far count as settled.
    func settle() { Thread.sleep(forTimeInterval: 1.1) }
}

let siteManifest = """
version: 1
buckets:
  photos:
    path: photos
  site:
    path: site
styles:
  thumb: image/resize,w_200
derivatives:
  - name: gallery
    from: photos/**/*.jpg
    styles: [thumb]
    to: site/{dir}/{name}.{style}.{ext}

"""
