import Builder
import Foundation
import Testing

/// derive does not link libvips: renders run in derive-render-worker, and the engine's identity
/// comes from the worker's report, kept on disk until the worker or a library it maps changes.
@Suite struct EngineStartupTests {
    static var worker: String { CLI.executable.deletingLastPathComponent().appendingPathComponent("derive-render-worker").path }

    static func ldd(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
        process.arguments = [path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ldd"), "needs ldd"))
    func deriveDoesNotLinkLibvipsButItsWorkerDoes() throws {
        let derive = try Self.ldd(CLI.executable.path)
        #expect(derive.contains("libc.so"), "\(derive)")
        for library in ["libvips", "libheif", "libjpeg", "libpango", "libMagick", "libfontconfig"] {
            #expect(!derive.contains(library), "derive links \(library)")
        }
        #expect(try Self.ldd(Self.worker).contains("libvips"))
    }

    @Test func versionAndHelpNeedNoWorker() throws {
        let missing = ["DERIVE_RENDER_WORKER": "/nonexistent/derive-render-worker"]
        let version = try CLI.run(["--version"], environment: missing)
        #expect(version.status == 0, "\(version.stderr)")
        #expect(String(decoding: version.stdout, as: UTF8.self).hasPrefix("derive "))
        #expect(try CLI.run(["--help"], environment: missing).status == 0)
    }

    static func setModified(_ path: String, _ seconds: Int) {
        var times = [timespec(tv_sec: seconds, tv_nsec: 0), timespec(tv_sec: seconds, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
    }

    /// A copy of the system's libvips, loaded by the worker through LD_LIBRARY_PATH, stands for
    /// an upgraded library: the same bytes with a new date ask the worker again and keep the
    /// identity; different bytes (a rebuilt or patched libvips, same version number) change it.
    @Test func theIdentityFollowsTheLibvipsFile() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var environment = ProcessInfo.processInfo.environment
        environment[EngineIdentityCache.environmentVariable] = folder.appendingPathComponent("cache").path
        let system = try EngineIdentityCache.lookup(executable: Self.worker, environment: environment)
        #expect(system.report.libvipsFile.contains("libvips.so"), "\(system.report.libvipsFile)")
        #expect(system.identity.libraries["libvips-file"]?.hasPrefix("sha256-") == true)

        let libraries = folder.appendingPathComponent("lib")
        try FileManager.default.createDirectory(at: libraries, withIntermediateDirectories: true)
        let copy = libraries.appendingPathComponent("libvips.so.42").path
        try FileManager.default.copyItem(atPath: system.report.libvipsFile, toPath: copy)
        environment["LD_LIBRARY_PATH"] = ([libraries.path] + (environment["LD_LIBRARY_PATH"].map { [$0] } ?? [])).joined(separator: ":")

        let first = try EngineIdentityCache.lookup(executable: Self.worker, environment: environment)
        #expect(!first.fromCache)
        #expect(first.report.libvipsFile == copy)
        #expect(first.identity == system.identity)   // the same bytes

        let again = try EngineIdentityCache.lookup(executable: Self.worker, environment: environment)
        #expect(again.fromCache)
        #expect(again.identity == first.identity)

        Self.setModified(copy, 1_600_000_000)
        let touched = try EngineIdentityCache.lookup(executable: Self.worker, environment: environment)
        #expect(!touched.fromCache)
        #expect(touched.identity == first.identity)

        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: copy))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("a patched build".utf8))
        try handle.close()
        let patched = try EngineIdentityCache.lookup(executable: Self.worker, environment: environment)
        #expect(!patched.fromCache)
        #expect(patched.identity != first.identity)
        #expect(patched.identity.engine != first.identity.engine)
    }

    /// Any library the worker maps counts, not only libvips; so does the worker itself.
    @Test func aChangedWorkerOrLibraryAsksAgain() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let worker = folder.appendingPathComponent("derive-render-worker").path
        try FileManager.default.copyItem(atPath: Self.worker, toPath: worker)
        var environment = ProcessInfo.processInfo.environment
        environment[EngineIdentityCache.environmentVariable] = folder.appendingPathComponent("cache").path
        let first = try EngineIdentityCache.lookup(executable: worker, environment: environment)
        #expect(!first.fromCache)
        #expect(first.report.mappedFiles.count > 10)
        #expect(try EngineIdentityCache.lookup(executable: worker, environment: environment).fromCache)
        Self.setModified(worker, 1_600_000_000)
        #expect(try !EngineIdentityCache.lookup(executable: worker, environment: environment).fromCache)
        environment["FONTCONFIG_FILE"] = "/etc/fonts/fonts.conf"   // what decides what loads is part of the key
        #expect(try !EngineIdentityCache.lookup(executable: worker, environment: environment).fromCache)
    }
}
