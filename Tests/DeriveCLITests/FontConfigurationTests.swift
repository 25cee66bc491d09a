import Builder
import Foundation
import ProcessLanguage
import Testing
import TestSupport

/// Attack 20's B1: fontconfig's configuration decides how a text watermark is drawn
/// (antialiasing, hinting, sub-pixel order) without changing the font file. A user's
/// `~/.config/fontconfig/fonts.conf` turning antialiasing off, or a `FONTCONFIG_FILE` that does,
/// changed the output's bytes while plan, check and the no-op build said "up to date".
@Suite(.ownThreads) struct FontConfigurationTests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        styles:
          stamped: image/resize,w_400/watermark,text_\(Base64URL.encode("Lake Studio 2026")),size_40,color_FFFFFF,g_sw/format,png
        derivatives:
          - from: src/*.jpg
            styles: [stamped]
            to: out/{name}.{style}.{ext}

        """

    static let antialiasOff = """
        <?xml version="1.0"?>
        <!DOCTYPE fontconfig SYSTEM "fonts.dtd">
        <fontconfig>
          <match target="font"><edit name="antialias" mode="assign"><bool>false</bool></edit></match>
          <match target="font"><edit name="hintstyle" mode="assign"><const>hintfull</const></edit></match>
        </fontconfig>

        """

    /// A project with one source, and a HOME and engine cache of its own.
    static func project() throws -> (root: URL, environment: [String: String]) {
        let root = try CLI.temporaryFolder()
        let home = root.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("project/src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("project/src/lake.jpg"))
        try Data(manifest.utf8).write(to: root.appendingPathComponent("project/derive.yaml"))
        // XDG_CONFIG_HOME as fontconfig's default reads it (`~/.config`), whatever the test runner's is.
        return (root, ["HOME": home.path, "XDG_CONFIG_HOME": home.appendingPathComponent(".config").path,
                       EngineIdentityCache.environmentVariable: root.appendingPathComponent("engine-cache").path])
    }

    static func output(_ root: URL) throws -> Data { try Data(contentsOf: root.appendingPathComponent("project/out/lake.stamped.png")) }

    /// What a build from scratch writes under `environment`, in a fresh copy of the project.
    static func fromScratch(_ root: URL, environment: [String: String]) throws -> Data {
        let fresh = root.appendingPathComponent("fresh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: fresh.appendingPathComponent("project/src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: root.appendingPathComponent("project/src/lake.jpg"), to: fresh.appendingPathComponent("project/src/lake.jpg"))
        try Data(manifest.utf8).write(to: fresh.appendingPathComponent("project/derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: fresh.appendingPathComponent("project"), environment: environment)
        #expect(build.status == 0, "\(build.stderr)")
        return try output(fresh)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/etc/fonts/conf.d/50-user.conf"), "needs fontconfig's user configuration (50-user.conf)"))
    func aUserConfigurationThatChangesHowTextIsDrawnRebuilds() throws {
        let (root, environment) = try Self.project()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = root.appendingPathComponent("project")
        #expect(try CLI.run(["build", "-q"], in: project, environment: environment).status == 0)
        Thread.sleep(forTimeInterval: 1.2)   // past the racy margin: the no-op answers from its witness
        #expect(try CLI.run(["build"], in: project, environment: environment).standardOutput.contains("Nothing to do"))
        let before = try Self.output(root)

        let config = root.appendingPathComponent("home/.config/fontconfig")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        try Data(Self.antialiasOff.utf8).write(to: config.appendingPathComponent("fonts.conf"))
        let truth = try Self.fromScratch(root, environment: environment)
        #expect(truth != before, "the configuration does not change the bytes: the test proves nothing")

        let plan = try CLI.run(["plan"], in: project, environment: environment)
        #expect(!plan.standardOutput.contains("No changes"), "\(plan.standardOutput)")
        #expect(try CLI.run(["check"], in: project, environment: environment).status != 0)
        let build = try CLI.run(["build"], in: project, environment: environment)
        #expect(build.status == 0 && !build.standardOutput.contains("Nothing to do"), "\(build.standardOutput)\(build.stderr)")
        #expect(try Self.output(root) == truth)
        #expect(try CLI.run(["check"], in: project, environment: environment).status == 0)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/etc/fonts/fonts.conf"), "needs fontconfig's configuration"))
    func aConfigurationFileNamedByTheEnvironmentRebuilds() throws {
        let (root, environment) = try Self.project()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = root.appendingPathComponent("project")
        #expect(try CLI.run(["build", "-q"], in: project, environment: environment).status == 0)
        let before = try Self.output(root)
        let file = root.appendingPathComponent("fc.conf")
        try Data(Self.antialiasOff.replacingOccurrences(of: "<fontconfig>", with: "<fontconfig>\n  <include>/etc/fonts/fonts.conf</include>").utf8).write(to: file)
        var changed = environment
        changed["FONTCONFIG_FILE"] = file.path
        let truth = try Self.fromScratch(root, environment: changed)
        #expect(truth != before)
        #expect(try CLI.run(["check"], in: project, environment: changed).status != 0)
        #expect(try CLI.run(["build", "-q"], in: project, environment: changed).status == 0)
        #expect(try Self.output(root) == truth)
        // And an edit of that file in place (same path) is seen too.
        try Data(Self.antialiasOff.replacingOccurrences(of: "<fontconfig>", with: "<fontconfig>\n  <include>/etc/fonts/fonts.conf</include>")
            .replacingOccurrences(of: "<bool>false</bool>", with: "<bool>true</bool>").utf8).write(to: file)
        #expect(try CLI.run(["check"], in: project, environment: changed).status != 0)
    }
}

private extension CLI.Result {
    var standardOutput: String { String(decoding: stdout, as: UTF8.self) }
}
