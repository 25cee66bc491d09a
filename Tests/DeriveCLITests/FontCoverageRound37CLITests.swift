import Foundation
import Testing
import TestSupport
import Imaging

/// Attack 36a L3 through the `derive` executable (r-emoji-tofu.sh): an emoji no installed font
/// has fails the build naming it, and nothing is written for that output.
@Suite(.ownThreads, .serialized) struct FontCoverageRound37CLITests {
    /// Whether some installed font has 👩 (U+1F469): `fc-list ':charset=1f469'` lists one.
    static let someFontHasTheEmoji: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/fc-list")
        process.arguments = [":charset=1f469", "family"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return true }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }()

    @Test(.enabled(if: FontNamesRound37CLITests.listedNames.contains("DejaVu Sans") && !someFontHasTheEmoji,
                   "needs DejaVu Sans, and no installed font (an emoji font) with U+1F469"))
    func anEmojiNoFontHasFailsTheBuildNamingIt() throws {
        let folder = try FontNamesRound37CLITests.project(FontNamesRound37CLITests.manifest([(style: "emoji", text: "© 2026 Lake 👩‍💻", type: "DejaVu Sans")]))
        defer { try? FileManager.default.removeItem(at: folder) }
        let build = try CLI.run(["build", folder.appendingPathComponent("derive.yaml").path, "--quiet"])
        #expect(build.status == 1, "\(build.stderr)")
        #expect(build.stderr.contains("U+1F469 '👩' and U+1F4BB '💻'"), "\(build.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("site/landscape.emoji.png").path))
        // The source's other output is still built.
        #expect(try Raster.decode(try Data(contentsOf: folder.appendingPathComponent("site/landscape.plain.png"))).width == 300)
    }
}
