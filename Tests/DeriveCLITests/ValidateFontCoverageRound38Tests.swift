import Foundation
import Testing
import TestSupport

/// A leftover of atk37b: `derive validate` said "valid" for a text watermark with characters its
/// font (and every fallback) cannot draw; only the build refused them (`FontCatalog.checkDrawable`,
/// fonts-37). validate asks the render worker (derive links no fontconfig) and names each such
/// text where it is written, file:line:column.
@Suite(.ownThreads, .serialized) struct ValidateFontCoverageRound38Tests {
    @Test(.enabled(if: FontNamesRound37CLITests.listedNames.contains("DejaVu Sans") && !FontCoverageRound37CLITests.someFontHasTheEmoji,
                   "needs DejaVu Sans, and no installed font (an emoji font) with U+1F469"))
    func validateNamesCharactersNoFontCanDrawWhereTheyAreWritten() throws {
        let manifest = FontNamesRound37CLITests.manifest([(style: "emoji", text: "© 2026 Lake 👩‍💻", type: "DejaVu Sans")])
        let folder = try FontNamesRound37CLITests.project(manifest)
        defer { try? FileManager.default.removeItem(at: folder) }
        // The line the watermark (and its text) is written on.
        let line = try #require(manifest.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("👩") }) + 1
        let validate = try CLI.run(["validate", folder.appendingPathComponent("derive.yaml").path])
        let said = text(validate.stdout) + validate.stderr
        #expect(validate.status != 0, "\(said)")
        let error = said.split(separator: "\n").first { $0.contains("U+1F469 '👩' and U+1F4BB '💻'") }
        #expect(error?.contains("derive.yaml:\(line):") == true, "\(said)")
        #expect(error?.contains("error") == true, "\(said)")
        // The text the font draws whole is valid.
        let fine = try FontNamesRound37CLITests.project(FontNamesRound37CLITests.manifest([(style: "mark", text: "© 2026 Lake", type: "DejaVu Sans")]))
        defer { try? FileManager.default.removeItem(at: fine) }
        let valid = try CLI.run(["validate", fine.appendingPathComponent("derive.yaml").path])
        #expect(valid.status == 0, "\(text(valid.stdout)) \(valid.stderr)")
    }
}
