import Builder
import Foundation
import Imaging
import ProcessLanguage
import Testing
import TestSupport

/// Attack 49c's finding 1: a text watermark draws the characters its `type` font lacks with a
/// fallback face fontconfig picks (`湖` in DejaVu Sans), and that face was in no fingerprint. A
/// user's fonts.conf that picked another fallback, or turned antialiasing off for it alone, left
/// the output stale while plan, check and build said up to date. Each fallback face now counts
/// as the font of `type` does: its file's digest and how fontconfig draws it.
/// Serialized: as root, fontconfig may write its caches into `/var/cache/fontconfig`, which
/// every engine cache stamps.
@Suite(.ownThreads, .serialized) struct FallbackFontRound49Tests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_200/watermark,text_\(Base64URL.encode("湖A")),type_\(Base64URL.encode("DejaVu Sans")),size_60,color_000000,g_center/format,png
            to: out/{name}.png

        """

    static func configuration(_ body: String) -> String {
        """
        <?xml version="1.0"?>
        <!DOCTYPE fontconfig SYSTEM "fonts.dtd">
        <fontconfig>
        \(body)
        </fontconfig>

        """
    }

    /// The report's repro: AR PL UKai CN appended to DejaVu Sans's families, so `湖` is drawn with
    /// it rather than with WenQuanYi Zen Hei.
    static let ukaiAppended = configuration("""
        <match target="pattern"><test name="family"><string>DejaVu Sans</string></test>
          <edit name="family" mode="append" binding="strong"><string>AR PL UKai CN</string></edit></match>
        """)

    /// The variant: the default fallback kept, its antialiasing alone turned off.
    static let fallbackAntialiasOff = configuration("""
        <match target="font"><test name="family"><string>WenQuanYi Zen Hei</string></test>
          <edit name="antialias" mode="assign"><bool>false</bool></edit></match>
        """)

    static let fonts = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
                        "/usr/share/fonts/truetype/arphic/ukai.ttc", "/etc/fonts/conf.d/50-user.conf"]
    static let hasFonts = fonts.allSatisfy { FileManager.default.fileExists(atPath: $0) }

    /// A built project with one source, and a HOME (no fonts.conf yet), XDG folders and engine
    /// cache of its own; returns its folder, environment and the output's bytes.
    static func built(in root: URL) throws -> (project: URL, environment: [String: String], output: Data) {
        let home = root.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".config/fontconfig"), withIntermediateDirectories: true)
        let project = root.appendingPathComponent("project")
        try copySample("landscape.jpg", to: project.appendingPathComponent("src/a.jpg"))
        try Data(manifest.utf8).write(to: project.appendingPathComponent("derive.yaml"))
        let environment = ["HOME": home.path, "XDG_CONFIG_HOME": home.appendingPathComponent(".config").path,
                           "XDG_DATA_HOME": home.appendingPathComponent(".local/share").path,
                           "XDG_CACHE_HOME": home.appendingPathComponent(".cache").path,
                           EngineIdentityCache.environmentVariable: root.appendingPathComponent("engine-cache").path]
        let build = try CLI.run(["build", "-q"], in: project, environment: environment)
        #expect(build.status == 0, "\(said(build))")
        return (project, environment, try Data(contentsOf: project.appendingPathComponent("out/a.png")))
    }

    /// Writes `configuration` as the user's fonts.conf; plan, check and build must see the output
    /// stale, the plan naming the fallback face, and the rebuilt output must hold other pixels.
    static func expectRebuild(with configuration: String, naming reason: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (project, environment, before) = try built(in: root)
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: environment["HOME"]! + "/.config/fontconfig/fonts.conf"))

        let plan = try CLI.run(["plan", "--detailed-exitcode"], in: project, environment: environment)
        #expect(plan.status == 2, "\(said(plan))")
        #expect(said(plan).contains("out/a.png") && said(plan).contains(reason), "\(said(plan))")
        #expect(try CLI.run(["check"], in: project, environment: environment).status == 1)
        let build = try CLI.run(["build"], in: project, environment: environment)
        #expect(build.status == 0 && !said(build).contains("Nothing to do"), "\(said(build))")
        let after = try Data(contentsOf: project.appendingPathComponent("out/a.png"))
        let (old, new) = (try Raster.decode(before), try Raster.decode(after))
        #expect(old.width == new.width && old.height == new.height)
        #expect(old.pixels != new.pixels, "the configuration draws the same pixels: the test proves nothing")
        let again = try CLI.run(["plan", "--detailed-exitcode"], in: project, environment: environment)
        #expect(again.status == 0, "\(said(again))")
    }

    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and fontconfig's user configuration"))
    func anotherFallbackFacePickedRebuilds() throws {
        try Self.expectRebuild(with: Self.ukaiAppended, naming: "rebuild: font 'AR PL UKai CN' (fallback for 'DejaVu Sans') changed")
    }

    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and fontconfig's user configuration"))
    func theFallbackFaceDrawnWithoutAntialiasingRebuilds() throws {
        try Self.expectRebuild(with: Self.fallbackAntialiasOff, naming: "rebuild: font 'WenQuanYi Zen Hei' (fallback for 'DejaVu Sans') changed")
    }
}
