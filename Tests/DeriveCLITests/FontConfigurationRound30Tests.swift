import Builder
import Foundation
import ProcessLanguage
import Testing
import TestSupport

/// Attack 30's finding 1: the engine cache was re-checked only against the files fontconfig
/// loaded, a fixed list of user places and the top level of the font folders. A file an
/// `<include ignore_missing="yes">` names, created later; a font added in a subfolder of
/// `~/.local/share/fonts`; a font added to a folder a user's `fonts.conf` names with `<dir>`:
/// each changed what a fresh build draws while plan, check and the no-op build said up to date.
/// Serialized: as root, fontconfig writes its caches for a new folder into `/var/cache/fontconfig`,
/// which every engine cache stamps, so one test's worker would make the others' cache miss.
@Suite(.ownThreads, .serialized) struct FontConfigurationRound30Tests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_300/watermark,text_\(Base64URL.encode("Derive text")),size_40,color_000000,g_center/format,png
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

    /// Turns antialiasing off for every font.
    static let antialiasOff = configuration(#"<match target="font"><edit name="antialias" mode="assign"><bool>false</bool></edit></match>"#)

    /// Gives the font file at `file` the family `MyNewFont`, and prefers that family for the
    /// default watermark type's: adding the file changes which font the watermark draws with.
    static func preferring(_ file: String, extra: String = "") -> String {
        configuration("""
            \(extra)
            <match target="scan"><test name="file"><string>\(file)</string></test>
              <edit name="family" mode="assign" binding="strong"><string>MyNewFont</string></edit></match>
            <match target="pattern"><test name="family"><string>WenQuanYi Zen Hei</string></test>
              <edit name="family" mode="prepend" binding="strong"><string>MyNewFont</string></edit></match>
            """)
    }

    static let font = "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"
    static let hasFontconfig = FileManager.default.fileExists(atPath: "/etc/fonts/conf.d/50-user.conf")
        && FileManager.default.fileExists(atPath: font)

    /// A project with one source, and a HOME, XDG folders and engine cache of its own.
    static func project(in root: URL, userConfiguration: String) throws -> [String: String] {
        let home = root.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".config/fontconfig"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("project/src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("project/src/a.jpg"))
        try Data(manifest.utf8).write(to: root.appendingPathComponent("project/derive.yaml"))
        try Data(userConfiguration.utf8).write(to: home.appendingPathComponent(".config/fontconfig/fonts.conf"))
        return ["HOME": home.path, "XDG_CONFIG_HOME": home.appendingPathComponent(".config").path,
                       "XDG_DATA_HOME": home.appendingPathComponent(".local/share").path,
                       "XDG_CACHE_HOME": home.appendingPathComponent(".cache").path,
                       EngineIdentityCache.environmentVariable: root.appendingPathComponent("engine-cache").path]
    }

    /// Builds, waits past the racy margin and sees the no-op; then `change` and expects plan and
    /// check to say the output rebuilds, as a build from scratch (without the engine cache) says.
    static func expectRebuildAfter(_ root: URL, _ environment: [String: String], _ change: () throws -> Void) throws {
        let project = root.appendingPathComponent("project")
        let first = try CLI.run(["build", "-q"], in: project, environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        Thread.sleep(forTimeInterval: 1.2)
        #expect(try CLI.run(["build"], in: project, environment: environment).standardOutput.contains("Nothing to do"))
        try change()
        // Asked first: a worker started without the cache (below) may write fontconfig's cache
        // folder, which the engine cache also stamps.
        let plan = try CLI.run(["plan"], in: project, environment: environment)
        #expect(!plan.standardOutput.contains("No changes") && plan.standardOutput.contains("out/a.png"), "\(plan.standardOutput)\(plan.stderr)")
        #expect(try CLI.run(["check"], in: project, environment: environment).status != 0)
        var uncached = environment
        uncached[EngineIdentityCache.environmentVariable] = "off"
        let truth = try CLI.run(["plan"], in: project, environment: uncached)
        #expect(!truth.standardOutput.contains("No changes"), "the change does not change the engine: the test proves nothing\n\(truth.standardOutput)")
        let build = try CLI.run(["build"], in: project, environment: environment)
        #expect(!build.standardOutput.contains("Nothing to do"), "\(build.standardOutput)\(build.stderr)")
    }

    @Test(.enabled(if: hasFontconfig, "needs fontconfig's user configuration and DejaVu"))
    func anIncludeCreatedLaterRebuilds() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let extra = root.appendingPathComponent("extra.conf")
        let environment = try Self.project(in: root, userConfiguration: Self.configuration(#"<include ignore_missing="yes">\#(extra.path)</include>"#))
        try Self.expectRebuildAfter(root, environment) {
            try Data(Self.antialiasOff.utf8).write(to: extra)
        }
    }

    @Test(.enabled(if: hasFontconfig, "needs fontconfig's user configuration and DejaVu"))
    func aFontAddedInASubfolderOfTheUsersFontsRebuilds() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let sub = root.appendingPathComponent("home/.local/share/fonts/sub")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        let file = sub.appendingPathComponent("my.ttf")
        let environment = try Self.project(in: root, userConfiguration: Self.preferring(file.path))
        try Self.expectRebuildAfter(root, environment) {
            try FileManager.default.copyItem(atPath: Self.font, toPath: file.path)
        }
    }

    @Test(.enabled(if: hasFontconfig, "needs fontconfig's user configuration and DejaVu"))
    func aFontAddedToAFolderTheUsersConfigurationNamesRebuilds() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("myfonts")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("my.ttf")
        let environment = try Self.project(in: root, userConfiguration: Self.preferring(file.path, extra: "<dir>\(folder.path)</dir>"))
        try Self.expectRebuildAfter(root, environment) {
            try FileManager.default.copyItem(atPath: Self.font, toPath: file.path)
        }
    }
}

private extension CLI.Result {
    var standardOutput: String { String(decoding: stdout, as: UTF8.self) }
}
