import Foundation
import Testing
import TestSupport

/// fonts-30 made plan, check and the no-op build see a font added to any folder fontconfig
/// scans (`FontConfigurationRound30Tests`); this is the same for `derive build --watch`: a font
/// appearing in the user's `~/.fonts`, or in a folder the user's `fonts.conf` names with `<dir>`,
/// while the watch runs, changes what a text watermark draws, and the watch builds it (as a
/// build from scratch draws it), then settles.
@Suite(.ownThreads, .serialized) struct FontFolderWatchTests {
    /// The places a font is added to: `~/.fonts`, or a `<dir>` of the user's configuration.
    enum Place: String, CaseIterable { case dotFonts, configuredFolder }

    /// Gives the font file at `file` the watermark's default family (WenQuanYi Zen Hei, whose
    /// name the engine checks) and a style of its own, which requests for that family ask for:
    /// once the file is there, the watermark draws with it (the build still succeeds).
    static func styled(_ file: String, extra: String) -> String {
        FontConfigurationRound30Tests.configuration("""
            \(extra)
            <match target="scan"><test name="file"><string>\(file)</string></test>
              <edit name="family" mode="assign" binding="strong"><string>WenQuanYi Zen Hei</string></edit>
              <edit name="style" mode="assign" binding="strong"><string>DeriveTestStyle</string></edit></match>
            <match target="pattern"><test name="family"><string>WenQuanYi Zen Hei</string></test>
              <edit name="style" mode="assign" binding="strong"><string>DeriveTestStyle</string></edit></match>
            """)
    }

    @Test(.enabled(if: FontConfigurationRound30Tests.hasFontconfig, "needs fontconfig's user configuration and DejaVu"),
          arguments: Place.allCases)
    func aFontAddedToAWatchedFontFolderIsBuilt(_ place: Place) throws {
        let scratch = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let home = scratch.appendingPathComponent("home")
        let folder = place == .dotFonts ? home.appendingPathComponent(".fonts") : scratch.appendingPathComponent("myfonts")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".config/fontconfig"), withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("my.ttf")
        let extra = place == .configuredFolder ? "<dir>\(folder.path)</dir>" : ""
        try Data(Self.styled(file.path, extra: extra).utf8).write(to: home.appendingPathComponent(".config/fontconfig/fonts.conf"))
        let environment = ["HOME": home.path, "XDG_CONFIG_HOME": home.appendingPathComponent(".config").path,
                           "XDG_DATA_HOME": home.appendingPathComponent(".local/share").path,
                           "XDG_CACHE_HOME": home.appendingPathComponent(".cache").path,
                           "DERIVE_ENGINE_CACHE": scratch.appendingPathComponent("engine-cache").path]
        let watch = try WatchSession(manifestText: WatchRound22Tests.manifest, environment: environment)
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        let output = watch.outputs.appendingPathComponent("a.png")
        // Past the check right after the first build and the silent build it may ask for.
        usleep(5_000_000)
        let before = try Data(contentsOf: output)
        let settled = watch.lines.count

        // fontconfig trusts a folder's cache while the folder's mtime second is the cache's: a
        // second later, the font is a change it sees.
        usleep(1_200_000)
        // The font arrives whole, by rename: copied in place, a scan between the file's creation and
        // its last byte (the watch's, on a loaded machine) caches the folder without the font, and
        // writing the rest leaves the folder's mtime, so that cache stays valid: the build from
        // scratch below then drew the old face (s57's one failed run).
        let part = scratch.appendingPathComponent("my.ttf.part")
        try FileManager.default.copyItem(atPath: FontConfigurationRound30Tests.font, toPath: part.path)
        try FileManager.default.moveItem(at: part, to: file)
        let truth = try WatchRound22Tests.fromScratch(scratch.appendingPathComponent("fresh"), environment: environment)
        #expect(truth != before, "the font does not change the bytes: the test proves nothing")

        // Bounded by the check's period (5 s) and one small build; generous for a shared machine.
        #expect(watch.wait(120) { (try? Data(contentsOf: output)) == truth },
                "the watch never drew the text with the new font: \(watch.lines) \(watch.standardError)")
        #expect(watch.wait(60) { (try? CLI.run(["check", watch.manifest.path], in: watch.root, environment: environment))?.status == 0 })
        // One build for the font, then nothing more: the watch settles.
        #expect(watch.wait(60) { watch.lines.count > settled }, "\(watch.lines)")
        let afterFont = watch.lines.count
        usleep(12_000_000)
        #expect(watch.lines.count == afterFont, "the watch kept building: \(watch.lines)")
        #expect(watch.terminate() == 0)
    }
}
