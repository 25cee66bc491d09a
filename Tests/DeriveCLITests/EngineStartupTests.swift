import Builder
import Foundation
import Testing
import TestSupport

/// derive does not link libvips: renders run in derive-render-worker, and the engine's identity
/// comes from the worker's report, kept on disk until the worker or a library it maps changes.
@Suite(.ownThreads) struct EngineStartupTests {
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

    /// The same rule as the dynamic loader lived it, not as ldd reads the file: release builds
    /// carry the Swift runtime inside the executables (Package.swift), and a library opened at
    /// run time (dlopen) never shows in ldd's list. ld.so's record of a build that renders
    /// through the worker names libvips in the worker's process and never in derive's.
    @Test func aBuildLoadsLibvipsInTheWorkerOnly() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"),
                                         to: folder.appendingPathComponent("src/a.jpg"))
        try Data("""
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
            styles:
              small: image/resize,w_16
            derivatives:
              - from: src/*.jpg
                styles: [small]
                to: out/{name}.{style}.{ext}

            """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let trace = folder.appendingPathComponent("loader")   // ld.so writes loader.<pid> per process
        let result = try CLI.run(["build", "derive.yaml", "--quiet"], in: folder,
                                 environment: ["LD_DEBUG": "files", "LD_DEBUG_OUTPUT": trace.path, "DERIVE_ENGINE_CACHE": "off"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/a.small.jpg").path))

        var records: [String: String] = [:]   // the program each record's libraries were needed by
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasPrefix("loader.") {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            for program in [CLI.executable.path, Self.worker] where text.contains("needed by \(program) ") {
                records[program, default: ""] += text
            }
        }
        let derive = try #require(records[CLI.executable.path], "no loader record for derive")
        let worker = try #require(records[Self.worker], "no loader record for the worker")
        for library in ["libvips", "libheif", "libjpeg", "libpango", "libMagick", "libfontconfig"] {
            #expect(!derive.contains(library), "derive loaded \(library)")
        }
        #expect(worker.contains("libvips"))
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

    /// The cache file holds the whole report: read back, it is the worker's answer field for
    /// field. A file in another format (the JSON of earlier versions), cut short or with bytes
    /// after its end asks the worker again, and the answer replaces it.
    @Test func theCacheFileRoundTripsAndAnythingElseAsksAgain() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let cache = folder.appendingPathComponent("cache")
        var environment = ProcessInfo.processInfo.environment
        environment[EngineIdentityCache.environmentVariable] = cache.path
        let asked = try EngineIdentityCache.lookup(executable: Self.worker, environment: environment)
        #expect(!asked.fromCache)
        let cached = try EngineIdentityCache.lookup(executable: Self.worker, environment: environment)
        #expect(cached.fromCache)
        #expect(cached.report == asked.report)
        #expect(cached.report.mappedFiles.count > 10 && !cached.report.fonts.isEmpty && !cached.report.libraries.isEmpty)
        #expect(cached.libvipsDigest == asked.libvipsDigest)
        #expect(cached.identity == asked.identity)

        let names = try FileManager.default.contentsOfDirectory(atPath: cache.path)
        #expect(names.count == 1, "\(names)")
        let file = cache.appendingPathComponent(try #require(names.first))
        let bytes = try Data(contentsOf: file)
        for garbled in [bytes.prefix(bytes.count / 2), Data("{\"format\":1,\"stamps\":[]}".utf8), bytes + Data("1\n".utf8)] {
            try garbled.write(to: file)
            #expect(try !EngineIdentityCache.lookup(executable: Self.worker, environment: environment).fromCache)
            #expect(try EngineIdentityCache.lookup(executable: Self.worker, environment: environment).fromCache)
        }
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
