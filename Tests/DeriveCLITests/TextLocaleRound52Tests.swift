import Foundation
import Imaging
import Testing
import TestSupport

/// s51's "Noticed": the raw locale (`LANG`, `LC_*`, `LANGUAGE`, …) was in a text watermark's
/// fingerprint, so two team members with different locales flipped every text output and the
/// committed lock, though both drew the same pixels. The fingerprint now holds what the locale
/// changes (each face Pango picks, its pattern without the names fontconfig orders by locale,
/// and the language Pango shapes in), so only a locale that draws otherwise rebuilds.
/// Attack 51c's 4 (build showed one of two text failures) and 5 (an installed family a strong
/// alias replaces was called "not installed"). Uses FontDrawingRound50Tests' font project.
/// Serialized: as root, fontconfig may write its caches into `/var/cache/fontconfig`, which
/// every engine cache stamps.
@Suite("Text watermarks: the locale, failures and substitutes (round 52)", .ownThreads, .serialized)
struct TextLocaleRound52Tests {
    typealias Project = FontDrawingRound50Tests.Project
    static let hasFonts = FontDrawingRound50Tests.hasFonts

    static func lockLines(_ project: Project) throws -> [String] {
        try String(contentsOf: project.folder.appendingPathComponent("derive.lock"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map(String.init)
    }

    /// `ja_JP.UTF-8` and `zh_CN.UTF-8` draw `湖 AV Lake` with the same faces in the same
    /// language (fontconfig only orders WenQuanYi's names otherwise): a fresh build under each
    /// gives the same pixels and the same lock, and the one built under `ja_JP` is up to date
    /// under `zh_CN` and `en_GB` (with `LANGUAGE` as desktops set it).
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"))
    func localesThatDrawTheSamePixelsKeepTheLock() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        var japanese = try Project(root: root.appendingPathComponent("ja"), configuration: nil)
        japanese.environment["LANG"] = "ja_JP.UTF-8"
        var chinese = try Project(root: root.appendingPathComponent("zh"), configuration: nil)
        chinese.environment["LANG"] = "zh_CN.UTF-8"
        for project in [japanese, chinese] {
            let build = try project.run(["build", "-q"])
            #expect(build.status == 0, "\(said(build))")
        }
        #expect(try japanese.output().pixels == chinese.output().pixels, "the two locales draw otherwise: the test proves nothing")
        #expect(try Self.lockLines(japanese) == Self.lockLines(chinese))

        for (variable, value) in [("LANG", "zh_CN.UTF-8"), ("LANG", "en_GB.UTF-8"), ("LANGUAGE", "en_GB:en"), ("LC_ALL", "zh_CN.UTF-8")] {
            var other = japanese
            other.environment[variable] = value
            let plan = try other.run(["plan", "--detailed-exitcode"])
            #expect(plan.status == 0, "\(variable)=\(value): \(said(plan))")
            let check = try other.run(["check"])
            #expect(check.status == 0, "\(variable)=\(value): \(said(check))")
        }
    }

    /// No missed staleness: a locale whose fallback for `湖` is another face (`zh_HK`: AR PL
    /// UMing) rebuilds the output built under `ja_JP`, naming that face, whichever variable
    /// sets it, and draws other pixels.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"),
          arguments: ["LANG", "LC_ALL", "LC_CTYPE"])
    func aLocaleThatPicksAnotherFaceRebuilds(variable: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        var project = try Project(root: root, configuration: nil)
        project.environment["LANG"] = "ja_JP.UTF-8"
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        let old = try project.output()

        project.environment[variable] = "zh_HK.UTF-8"
        let plan = try project.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 2 && said(plan).contains("font 'AR PL UMing"), "\(said(plan))")
        let check = try project.run(["check"])
        #expect(check.status == 1, "\(said(check))")
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        #expect(try project.output().pixels != old.pixels)
        let again = try project.run(["plan", "--detailed-exitcode"])
        #expect(again.status == 0, "\(said(again))")
    }

    /// Attack 51c's 4: two styles whose texts no font draws, one source: build named the source
    /// with the first reason only ("2 failed", one message). Each reason is said now, with the
    /// output it failed, as plan says them.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans and fontconfig's user configuration"))
    func everyReasonASourceFailedForIsSaid() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let manifest = """
            version: 1
            buckets: {src: {path: src}, out: {path: out}}
            styles:
              a: [{resize: {w: 100}}, {watermark: {text: "A \u{1F469}", type: "DejaVu Sans", size: 20}}, {format: png}]
              b: [{resize: {w: 100}}, {watermark: {text: "B \u{1F4BB}", type: "DejaVu Sans", size: 20}}, {format: png}]
              c: [{resize: {w: 100}}, {watermark: {text: "C", type: "DejaVu Sans", size: 20}}, {format: png}]
            derivatives:
              - {from: src/*.jpg, styles: [a, b, c], to: "out/{name}.{style}.png"}

            """
        let project = try Project(root: root, configuration: nil, manifest: manifest)
        let plan = try project.run(["plan"])
        try #require(said(plan).contains("U+1F469") && said(plan).contains("U+1F4BB"), "an emoji font is installed: \(said(plan))")
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(said(build))")
        #expect(build.stderr.contains("derive: failure: src/landscape.jpg: 2 derivatives not built, for 2 reasons:\n"), "\(build.stderr)")
        for (output, character) in [("out/landscape.a.png", "U+1F469"), ("out/landscape.b.png", "U+1F4BB")] {
            let line = build.stderr.split(separator: "\n").first { $0.hasPrefix("  \(output): ") }.map(String.init) ?? ""
            #expect(line.contains(character), "\(output): \(build.stderr)")
        }
        #expect(FileManager.default.fileExists(atPath: project.folder.appendingPathComponent("out/landscape.c.png").path))
    }

    /// Attack 51c's 5: a strong alias draws AR PL UKai CN for DejaVu Sans, which `fc-list`
    /// lists: "not installed (list … with fc-list : family)" sent the user to a list holding it.
    /// The error names the substitute and the way out.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, AR PL UKai and fontconfig's user configuration"))
    func aFamilyAStrongAliasReplacesIsNamedAsSubstituted() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = try Project(root: root, configuration: """
            <alias binding="strong"><family>DejaVu Sans</family><prefer><family>AR PL UKai CN</family></prefer></alias>
            """)
        for command in [["validate"], ["build"]] {
            let result = try project.run(command)
            #expect(result.status == 1, "\(command): \(said(result))")
            #expect(said(result).contains("font family 'DejaVu Sans' in style 'mark' is installed, but the fontconfig configuration substitutes 'AR PL UKai CN' for it"),
                    "\(command): \(said(result))")
            #expect(!said(result).contains("not installed"), "\(command): \(said(result))")
        }
        // A family not installed at all is still said so.
        try Data(FontDrawingRound50Tests.manifest(size: 40).replacingOccurrences(of: "DejaVu Sans", with: "No Such Sans").utf8)
            .write(to: project.folder.appendingPathComponent("derive.yaml"))
        let missing = try project.run(["validate"])
        #expect(missing.status == 1 && said(missing).contains("font family 'No Such Sans' in style 'mark' is not installed"), "\(said(missing))")
    }
}
