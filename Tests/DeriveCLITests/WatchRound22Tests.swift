import Foundation
import ProcessLanguage
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Round 22's V2: the watch's periodic no-op check did not see a fontconfig configuration change
/// (`~/.config/fontconfig/fonts.conf` written while `derive build --watch` runs; a text
/// watermark's bytes change), although a plain `derive check` or `build` does (attack 20's B1).
/// The watch looked the engine (and how fonts are drawn) up once for its whole life, and its
/// render workers kept the configuration they loaded at start. Now each check and each build
/// looks it up again as a fresh command does, and workers that drew with the old configuration
/// are not used again.
@Suite(.ownThreads, .serialized) struct WatchRound22Tests {
    static let manifest = """
        version: 1
        buckets:
          photos: {path: photos}
        styles:
          stamped: image/resize,w_400/watermark,text_\(Base64URL.encode("Lake Studio 2026")),size_40,color_FFFFFF,g_sw/format,png
        derivatives:
          - name: stamped
            from: photos/src/*.jpg
            styles: [stamped]
            to: photos/out/{name}.{ext}
        index: photos/derive-index.json
        """

    /// A HOME of the test's own (an existing folder), its fontconfig user configuration place and
    /// an engine cache in it, whatever the test runner's are.
    static func environment(_ home: URL) -> [String: String] {
        ["HOME": home.path, "XDG_CONFIG_HOME": home.appendingPathComponent(".config").path,
         "DERIVE_ENGINE_CACHE": home.appendingPathComponent("engine-cache").path]
    }

    /// What a build from scratch writes under `environment`, in a fresh project.
    static func fromScratch(_ folder: URL, environment: [String: String]) throws -> Data {
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos/src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/src/a.jpg"))
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: folder, environment: environment)
        #expect(build.status == 0, "\(build.stderr)")
        return try Data(contentsOf: folder.appendingPathComponent("photos/out/a.png"))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/etc/fonts/conf.d/50-user.conf"), "needs fontconfig's user configuration (50-user.conf)"))
    func aFontConfigurationWrittenWhileWatchingIsBuilt() throws {
        let scratch = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let home = scratch.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let environment = Self.environment(home)
        let watch = try WatchSession(manifestText: Self.manifest, environment: environment)
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        let output = watch.outputs.appendingPathComponent("a.png")
        // Past the check right after the first build and the silent build it may ask for.
        usleep(5_000_000)
        let before = try Data(contentsOf: output)

        // Antialiasing off for every font: the same font file, other pixels.
        let config = home.appendingPathComponent(".config/fontconfig")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        try Data(FontConfigurationTests.antialiasOff.utf8).write(to: config.appendingPathComponent("fonts.conf"))
        let truth = try Self.fromScratch(scratch.appendingPathComponent("fresh"), environment: environment)
        #expect(truth != before, "the configuration does not change the bytes: the test proves nothing")

        // Bounded by the check's period (5 s) and one small build; generous for a shared machine.
        #expect(watch.wait(60) { (try? Data(contentsOf: output)) == truth },
                "the watch never drew the text as the new configuration says: \(watch.lines) \(watch.standardError)")
        #expect(watch.wait(10) { (try? CLI.run(["check", watch.manifest.path], in: watch.root, environment: environment))?.status == 0 })
        #expect(watch.wait(10) { watch.lines.count >= 2 }, "\(watch.lines)")
        #expect(watch.lines.last?.contains("no-op check") == true && watch.lines.last?.contains("built 1") == true, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }
}
