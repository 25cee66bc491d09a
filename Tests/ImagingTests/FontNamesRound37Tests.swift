import Foundation
import Testing
import TestSupport
import ProcessLanguage
@testable import Imaging

/// What `fc-list` says this machine has: each face's family names (its own first, then its
/// second and localized names), and which characters some font has.
enum InstalledFonts {
    /// Every line of `fc-list : family`, split into its names (`\,` `\-` unescaped).
    static let families: [[String]] = {
        guard let fcList = ExternalTool.path("fc-list"), let listing = ExternalTool.run(fcList, [":", "family"]) else { return [] }
        return listing.split(separator: "\n").map { line in
            var names: [String] = [], name = "", escaped = false
            for character in line {
                if escaped { name.append(character); escaped = false }
                else if character == "\\" { escaped = true }
                else if character == "," { names.append(name); name = "" }
                else { name.append(character) }
            }
            return names + [name]
        }
    }()

    static let names = Set(families.joined())
    static func has(_ family: String) -> Bool { names.contains(family) }

    /// Whether any installed font has `scalar` (`fc-list ':charset=HEX'` lists one).
    static func covers(_ scalar: Unicode.Scalar) -> Bool {
        guard ExternalTool.path("fc-list") != nil else { return true }
        return !familiesWith(scalar).isEmpty
    }

    /// The first family name of each installed face that has `scalar` itself.
    static func familiesWith(_ scalar: Unicode.Scalar) -> [String] {
        guard let fcList = ExternalTool.path("fc-list"),
              let listing = ExternalTool.run(fcList, [":charset=" + String(scalar.value, radix: 16), "family"]) else { return [] }
        return listing.split(separator: "\n").compactMap { $0.split(separator: ",").first.map(String.init) }
    }
}

/// Attack 36a M5: every family name `fc-list : family` prints may be a watermark `type` (a
/// face's second names such as "DejaVu Sans Light", and localized ones such as 文泉驿正黑).
@Suite(.ownThreads) struct FontNamesRound37Tests: TextMarkDrawing {
    @Test(.enabled(if: InstalledFonts.families.contains { $0.count > 1 },
                   "fontconfig lists no face with a second or localized family name (fc-list : family)"))
    func everyNameFcListPrintsIsAnInstalledFamily() throws {
        for name in InstalledFonts.names.sorted() {
            #expect(Watermark.isFamilyName(name), "\(name)")
            #expect(FontCatalog.isInstalled(family: name), "\(name)")
        }
    }

    /// Names as fontconfig spells them ("M+ 1p", "Fira Sans (Book)") are family names: when
    /// such a font is missing, the answer is "not installed", pointing to `fc-list : family`.
    @Test func namesWithPlusAmpersandAndParenthesesAreFamilyNames() throws {
        for name in ["M+ 1p", "Foo & Bar", "Fira Sans (Book)", "ลายมือ"] {
            #expect(Watermark.isFamilyName(name), "\(name)")
            #expect(throws: Never.self) { try Pipeline.parse("image/watermark,text_aGk,type_" + Base64URL.encode(name)) }
            guard !InstalledFonts.has(name) else { continue }
            #expect { try FontCatalog.file(for: name) } throws: { error in
                (error as? ProcessError)?.message == "watermark: font family '\(name)' is not installed (list the installed families with: fc-list : family)"
            }
        }
    }

    /// A second name chooses its own face: "DejaVu Sans Light" is DejaVu's ExtraLight file and
    /// draws thinner strokes than "DejaVu Sans".
    @Test(.enabled(if: InstalledFonts.has("DejaVu Sans Light") && InstalledFonts.has("DejaVu Sans"),
                   "DejaVu Sans Light is not installed (fonts-dejavu-extra)"))
    func aStyleSpecificNameDrawsItsOwnFace() throws {
        let light = try FontCatalog.file(for: "DejaVu Sans Light"), regular = try FontCatalog.file(for: "DejaVu Sans")
        #expect(light != regular)
        let lightInk = try ink(try render("Light", type: "DejaVu Sans Light")), regularInk = try ink(try render("Light", type: "DejaVu Sans"))
        #expect(lightInk > 50 && lightInk * 3 < regularInk * 2, "light \(lightInk), regular \(regularInk)")
    }

    /// A localized name is the same face as its English name: the same pixels.
    @Test(.enabled(if: InstalledFonts.has("文泉驿正黑") && InstalledFonts.has("WenQuanYi Zen Hei"),
                   "WenQuanYi Zen Hei is not installed (fonts-wqy-zenhei)"))
    func aLocalizedNameDrawsLikeItsEnglishName() throws {
        #expect(try FontCatalog.file(for: "文泉驿正黑") == FontCatalog.file(for: "wqy-zenhei"))
        let localized = try render("水印 Mark", type: "文泉驿正黑"), english = try render("水印 Mark", type: "WenQuanYi Zen Hei")
        #expect(try ink(localized) > 200)
        #expect(localized == english)
    }
}
