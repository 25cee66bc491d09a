import Foundation
import Testing
import TestSupport
import ProcessLanguage
@testable import Imaging

/// Attack 36a L3: a character that neither the font nor fontconfig's fallbacks (those Pango
/// really draws with) have is an error naming it, not a box with its hex digits drawn in its place.
@Suite(.ownThreads) struct FontCoverageRound37Tests: TextMarkDrawing {
    /// 👩 💻 (U+1F469, U+1F4BB) and an unassigned code point are in no installed font: the
    /// render fails, naming each character and the fix, instead of drawing a box with its hex digits.
    @Test(.enabled(if: InstalledFonts.has("DejaVu Sans") && !InstalledFonts.covers("\u{1F469}") && !InstalledFonts.covers("\u{378}"),
                   "needs DejaVu Sans, and no installed font (an emoji font) with U+1F469 or U+0378"),
          arguments: [("© 2026 Lake 👩\u{200D}💻", "U+1F469 '👩' and U+1F4BB '💻'", "1f469 1f4bb"), ("Lake \u{378}", "U+0378,", "378")])
    func aCharacterNoFontHasIsAnError(_ text: String, _ named: String, _ hex: String) throws {
        #expect {
            _ = try render(text, type: "DejaVu Sans", size: 24)
        } throws: { error in
            guard let error = error as? ProcessError else { return false }
            return error.code == .invalidArgument && error.parameter == "text"
                && error.message.contains(named) && error.message.contains("fc-list ':charset=\(hex)' family")
        }
    }

    /// What fontconfig's fallbacks draw still renders: a CJK character in a Latin font is drawn
    /// by an installed CJK font, pixel for pixel as when that font is named, and tabs, line
    /// breaks and zero-width characters (which draw nothing) are no error.
    @Test(.enabled(if: InstalledFonts.has("DejaVu Sans") && InstalledFonts.covers("湖"),
                   "needs DejaVu Sans and a CJK font with 湖 (fonts-wqy-zenhei)"))
    func latinAndFallbackCJKStillRender() throws {
        let mixed = try render("Lake 湖", type: "DejaVu Sans")
        #expect(try ink(mixed) > 300)
        let fallback = try render("湖", type: "DejaVu Sans")
        // Faces that have 湖 themselves (not through a fallback of their own).
        let cjkFamilies = Set(InstalledFonts.familiesWith("湖")).sorted().filter { (try? FontCatalog.file(for: $0)) != nil }
        let drawnBy = try cjkFamilies.filter { try render("湖", type: $0) == fallback }
        #expect(!drawnBy.isEmpty, "湖 in DejaVu Sans matches none of \(cjkFamilies)")
        let invisible = try render("a\u{200D}b\tc\nd\u{FE0F}", type: "DejaVu Sans")
        #expect(try ink(invisible) > 100)
    }

    /// Font answers are asked once per name and kept, at most `capacity` of them: a name past
    /// that is asked each time it comes (a server asked for ever new names stays bounded).
    @Test func lookupsAreAskedOncePerNameAndBounded() {
        let lookups = FontLookups<String>(capacity: 3)
        var asked: [String] = []
        for name in ["a", "b", "a", "c", "d", "a", "d", "b"] {
            #expect(lookups.value(name) { asked.append($0); return $0.uppercased() } == name.uppercased())
        }
        #expect(asked == ["a", "b", "c", "d", "d"])
        #expect(lookups.count == 3)
    }

    /// How a font draws, which every text output's fingerprint holds, says that missing glyphs
    /// are refused: an output an older engine drew with boxes is stale, not up to date.
    @Test(.enabled(if: InstalledFonts.has("DejaVu Sans"), "DejaVu Sans is not installed (fonts-dejavu-core)"))
    func fingerprintsOfTextSayMissingGlyphsAreRefused() throws {
        #expect(Engine().fontRendering("DejaVu Sans")?.contains("missing-glyphs=refused") == true)
    }
}
