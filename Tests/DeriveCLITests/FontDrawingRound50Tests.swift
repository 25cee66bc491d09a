import Builder
import Foundation
import Imaging
import Testing
import TestSupport

/// Attack 50b's H3-H5, M1, M3 and L2: the fingerprint of a text watermark named each face with a
/// hand-picked list of its fontconfig properties, asked without the size the text is drawn at
/// and without the process's language. `embeddedbitmap`, `verticallayout` or `pixelsize`
/// edits, a rule testing the size, another locale (`LANG`, `FC_LANG`) or `FREETYPE_PROPERTIES`
/// drew other pixels while plan, check and build said up to date. Each face is now the one Pango
/// lays the text out with, as its whole resolved pattern at the drawn size, and the environment
/// the text is drawn under is in the fingerprint. A fallback that vanished made plan say
/// "rebuild" while the build failed: the plan now fails as the build does.
/// Serialized: as root, fontconfig may write its caches into `/var/cache/fontconfig`, which
/// every engine cache stamps.
@Suite(.ownThreads, .serialized) struct FontDrawingRound50Tests {
    static func manifest(size: Int) -> String {
        """
        version: 1
        styles:
          mark: [{resize: {w: 300}}, {watermark: {text: "湖 AV Lake", type: "DejaVu Sans", size: \(size), color: "000000", g: center}}, {format: png}]
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - {name: m, from: src/landscape.jpg, styles: [mark], to: "out/{name}.png"}

        """
    }

    static func configuration(_ body: String) -> String {
        """
        <?xml version="1.0"?>
        <!DOCTYPE fontconfig SYSTEM "fonts.dtd">
        <fontconfig>
        \(body)
        </fontconfig>

        """
    }

    /// The report's base: `湖` drawn with WenQuanYi Zen Hei Sharp, which carries bitmap strikes.
    static let sharpPreferred = """
        <alias binding="strong"><family>DejaVu Sans</family>
          <prefer><family>DejaVu Sans</family><family>WenQuanYi Zen Hei Sharp</family></prefer></alias>
        """

    static let fonts = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
                        "/usr/share/fonts/truetype/arphic/ukai.ttc", "/usr/share/fonts/truetype/arphic/uming.ttc",
                        "/etc/fonts/conf.d/50-user.conf"]
    static let hasFonts = fonts.allSatisfy { FileManager.default.fileExists(atPath: $0) }

    /// A project with one source, a HOME, XDG folders and engine cache of its own, and every
    /// variable the drawing reads set (the test process's own must not decide). Other font suites
    /// use it with a manifest of their own (`manifest`; else `manifest(size:)`).
    struct Project {
        var folder: URL
        var environment: [String: String]
        var home: String

        init(root: URL, size: Int = 40, configuration body: String?, manifest: String? = nil) throws {
            let home = root.appendingPathComponent("home")
            try FileManager.default.createDirectory(at: home.appendingPathComponent(".config/fontconfig"), withIntermediateDirectories: true)
            folder = root.appendingPathComponent("project")
            try copySample("landscape.jpg", to: folder.appendingPathComponent("src/landscape.jpg"))
            try Data((manifest ?? FontDrawingRound50Tests.manifest(size: size)).utf8).write(to: folder.appendingPathComponent("derive.yaml"))
            self.home = home.path
            environment = ["HOME": home.path, "XDG_CONFIG_HOME": home.appendingPathComponent(".config").path,
                           "XDG_DATA_HOME": home.appendingPathComponent(".local/share").path,
                           "XDG_CACHE_HOME": home.appendingPathComponent(".cache").path,
                           EngineIdentityCache.environmentVariable: root.appendingPathComponent("engine-cache").path,
                           "LANG": "C.UTF-8", "LC_ALL": "", "LC_CTYPE": "", "LANGUAGE": "", "PANGO_LANGUAGE": "", "FC_LANG": "",
                           "FREETYPE_PROPERTIES": ""]
            if let body { try configure(body) }
        }

        func configure(_ body: String) throws {
            try Data(FontDrawingRound50Tests.configuration(body).utf8).write(to: URL(fileURLWithPath: home + "/.config/fontconfig/fonts.conf"))
        }

        func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: folder, environment: environment) }

        func output(_ name: String = "landscape.png") throws -> Raster { try Raster.decode(Data(contentsOf: folder.appendingPathComponent("out/" + name))) }
    }

    /// Builds at `size` under `before` (fonts.conf body) and the base environment, then applies
    /// `change`: plan and check must call the output stale, the plan saying `reason`, and the
    /// build must draw other pixels, after which the plan is clean.
    static func expectRebuild(size: Int, before: String?, naming reason: String, change: (inout Project) throws -> Void) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        var project = try Project(root: root, size: size, configuration: before)
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        let old = try project.output()
        try change(&project)

        let plan = try project.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 2, "\(said(plan))")
        #expect(said(plan).contains("out/landscape.png") && said(plan).contains(reason), "\(said(plan))")
        let check = try project.run(["check"])
        #expect(check.status == 1, "\(said(check))")
        let build = try project.run(["build"])
        #expect(build.status == 0 && !said(build).contains("Nothing to do"), "\(said(build))")
        let new = try project.output()
        #expect(old.width == new.width && old.height == new.height)
        #expect(old.pixels != new.pixels, "the change draws the same pixels: the test proves nothing")
        let again = try project.run(["plan", "--detailed-exitcode"])
        #expect(again.status == 0, "\(said(again))")
    }


    /// H3: properties the hand-picked list left out, edited for every face.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"), arguments: [
        #"<edit name="embeddedbitmap" mode="assign"><bool>false</bool></edit>"#,
        #"<edit name="verticallayout" mode="assign"><bool>true</bool></edit>"#,
        #"<edit name="pixelsize" mode="assign"><double>30</double></edit>"#,
    ])
    func aFacePropertyOutsideTheOldListRebuilds(edit: String) throws {
        try Self.expectRebuild(size: 12, before: Self.sharpPreferred, naming: "font 'WenQuanYi Zen Hei Sharp' (fallback for 'DejaVu Sans') changed") {
            try $0.configure(Self.sharpPreferred + #"<match target="font">"# + edit + "</match>")
        }
    }

    /// H4: the locale picks AR PL UMing for `湖` where C.UTF-8 picked WenQuanYi Zen Hei.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"), arguments: ["LANG", "FC_LANG"])
    func anotherLocaleThatPicksAnotherFallbackRebuilds(variable: String) throws {
        try Self.expectRebuild(size: 40, before: nil, naming: "font 'AR PL UMing") {
            $0.environment[variable] = variable == "LANG" ? "zh_HK.UTF-8" : "zh-hk"
        }
    }

    /// H5: rules that test the drawn size: antialiasing off for the fallback above 14 px, and a
    /// fallback picked by size.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"))
    func aRuleTestingTheSizeTurnsTheFallbacksAntialiasingOff() throws {
        try Self.expectRebuild(size: 40, before: nil, naming: "font 'WenQuanYi Zen Hei' (fallback for 'DejaVu Sans') changed") {
            try $0.configure("""
                <match target="font"><test name="family"><string>WenQuanYi Zen Hei</string></test>
                  <test name="pixelsize" compare="more"><double>14</double></test>
                  <edit name="antialias" mode="assign"><bool>false</bool></edit></match>
                """)
        }
    }

    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"))
    func aRuleTestingTheSizePicksAnotherFallback() throws {
        try Self.expectRebuild(size: 40, before: nil, naming: "font 'AR PL UKai CN' (fallback for 'DejaVu Sans') changed") {
            try $0.configure("""
                <match target="pattern"><test name="pixelsize" compare="more"><double>14</double></test>
                  <edit name="family" mode="assign" binding="strong"><string>DejaVu Sans</string><string>AR PL UKai CN</string></edit></match>
                """)
        }
    }

    /// M1: FreeType's properties change the rasterizer, not any face.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"))
    func freeTypePropertiesRebuild() throws {
        try Self.expectRebuild(size: 12, before: Self.sharpPreferred, naming: "the environment text is drawn under changed") {
            $0.environment["FREETYPE_PROPERTIES"] = "autofitter:no-stem-darkening=0"
        }
    }

    /// Attack 51c's 1: HarfBuzz's shaper list (`fallback`: no kerning, no ligatures) is read from
    /// the environment by a name no list held; the families of such variables count.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"))
    func harfBuzzsShaperListRebuilds() throws {
        try Self.expectRebuild(size: 40, before: nil, naming: "the environment text is drawn under changed") {
            $0.environment["HB_SHAPER_LIST"] = "fallback"
        }
    }

    /// L2: a rendering value with a comma (two font features) is one item of the fingerprint: the
    /// reason names the font alone, not a piece of its features.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"))
    func fontFeaturesWithACommaAreNamedAsTheirFont() throws {
        try Self.expectRebuild(size: 40, before: nil, naming: "rebuild: font 'DejaVu Sans' changed\n") {
            try $0.configure("""
                <match target="font"><test name="family"><string>DejaVu Sans</string></test>
                  <edit name="fontfeatures" mode="append"><string>liga off</string><string>kern off</string></edit></match>
                """)
        }
    }

    /// M3: the fallback rejected, no face draws `湖`: plan and check fail as build and validate
    /// do, each naming the character, rather than planning a rebuild the build cannot make.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"))
    func aVanishedFallbackFailsThePlanAsTheBuild() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = try Project(root: root, size: 40, configuration: nil)
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try project.configure("""
            <selectfont><rejectfont><glob>/usr/share/fonts/truetype/wqy/*</glob><glob>/usr/share/fonts/truetype/arphic/*</glob>
              <glob>/usr/share/fonts/truetype/droid/*</glob><glob>/usr/share/fonts/opentype/*</glob><glob>/usr/share/fonts/truetype/noto/*</glob></rejectfont></selectfont>
            """)
        for command in [["plan"], ["check"], ["build"], ["validate"]] {
            let result = try project.run(command)
            #expect(result.status == 1, "\(command): \(said(result))")
            #expect(said(result).contains("U+6E56"), "\(command): \(said(result))")
        }
    }
}
