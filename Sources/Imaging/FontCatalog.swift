import CVipsShim
import Foundation
import ProcessLanguage

/// The seven `type` names of OSS text watermarks, mapped to fonts Debian ships, found through
/// fontconfig. The four FangZheng fonts are not free; each maps to the closest free face:
///
/// | type | font | Debian package |
/// |---|---|---|
/// | wqy-zenhei | WenQuanYi Zen Hei | fonts-wqy-zenhei |
/// | wqy-microhei | WenQuanYi Micro Hei | fonts-wqy-microhei |
/// | fangzhengshusong | AR PL UMing CN (a Song/Ming serif) | fonts-arphic-uming |
/// | fangzhengkaiti | AR PL UKai CN (a Kai face) | fonts-arphic-ukai |
/// | fangzhengheiti | WenQuanYi Zen Hei Sharp (a Hei sans) | fonts-wqy-zenhei |
/// | fangzhengfangsong | AR PL UMing TW (Debian ships no FangSong; the nearest serif) | fonts-arphic-uming |
/// | droidsansfallback | Droid Sans Fallback | fonts-droid-fallback |
public enum FontCatalog {
    public struct Font: Sendable, Hashable {
        public var family: String
        public var package: String
    }

    public static let fonts: [String: Font] = [
        "wqy-zenhei": Font(family: "WenQuanYi Zen Hei", package: "fonts-wqy-zenhei"),
        "wqy-microhei": Font(family: "WenQuanYi Micro Hei", package: "fonts-wqy-microhei"),
        "fangzhengshusong": Font(family: "AR PL UMing CN", package: "fonts-arphic-uming"),
        "fangzhengkaiti": Font(family: "AR PL UKai CN", package: "fonts-arphic-ukai"),
        "fangzhengheiti": Font(family: "WenQuanYi Zen Hei Sharp", package: "fonts-wqy-zenhei"),
        "fangzhengfangsong": Font(family: "AR PL UMing TW", package: "fonts-arphic-uming"),
        "droidsansfallback": Font(family: "Droid Sans Fallback", package: "fonts-droid-fallback"),
    ]

    /// The fontconfig family of a `type` name: the catalogue's for the seven OSS names, else the
    /// name itself (any installed family may be named); nil for a name that cannot be a family.
    public static func family(for type: String) -> String? {
        if let font = fonts[type] { return font.family }
        return Watermark.isFamilyName(type) ? type : nil
    }

    /// The Pango description of `type` at `size`: a family outside the catalogue ends with a
    /// comma, so words such as "Bold" or "Condensed" in its name stay part of the family.
    public static func description(for type: String, size: Int) -> String? {
        if let font = fonts[type] { return "\(font.family) \(size)" }
        return family(for: type).map { "\($0), \(size)" }
    }

    /// Whether fontconfig has `family` itself (not a substitute), case-insensitively.
    public static func isInstalled(family: String) -> Bool {
        guard let family = self.family(for: family) else { return false }
        return match(family) != nil
    }

    /// A font as fontconfig resolves it: its file and how its glyphs are drawn (antialiasing,
    /// hinting, sub-pixel order, embolden, matrix: what a configuration file may change for the
    /// same file, as `key=value` words).
    public struct Resolved: Sendable, Hashable {
        public var file: String
        public var rendering: String
    }

    /// The exact family match; nil when fontconfig would substitute another.
    static func match(_ family: String) -> Resolved? {
        // FcNameParse reads '-', ':', ',' and '\\' as syntax: escape them.
        var pattern = ""
        for character in family {
            if "-:,\\".contains(character) { pattern.append("\\") }
            pattern.append(character)
        }
        return resolve(pattern, family: family, caseInsensitive: true)
    }

    /// `pattern` as fontconfig matches it, when the match's family list holds `family`.
    private static func resolve(_ pattern: String, family: String, caseInsensitive: Bool) -> Resolved? {
        var file: UnsafeMutablePointer<CChar>?
        var matched: UnsafeMutablePointer<CChar>?
        var rendering: UnsafeMutablePointer<CChar>?
        let status = dv_font_file(pattern, &file, &matched, &rendering)
        defer { dv_free(file); dv_free(matched); dv_free(rendering) }
        guard status == 0, let file, let matched else { return nil }
        let families = String(cString: matched).split(separator: ",")
        guard families.contains(where: { caseInsensitive ? $0.lowercased() == family.lowercased() : $0 == family }) else { return nil }
        return Resolved(file: String(cString: file), rendering: rendering.map { String(cString: $0) } ?? "")
    }

    /// The font file fontconfig uses for a `type` name; an error naming the package to install
    /// when the font is missing (fontconfig would otherwise silently substitute another).
    public static func file(for type: String) throws -> String { try resolved(for: type).file }

    /// The font fontconfig uses for a `type` name, with how it is drawn.
    public static func resolved(for type: String) throws -> Resolved {
        guard let font = fonts[type] else {
            guard let family = family(for: type) else {
                throw ProcessError(.invalidArgument, ec: "0040-00000250", "watermark: unknown font '\(type)'", action: Watermark.name, parameter: "type")
            }
            guard let resolved = match(family) else {
                throw ProcessError(.invalidArgument, ec: "0040-00000250",
                                   "watermark: font family '\(family)' is not installed (list the installed families with: fc-list : family)",
                                   action: Watermark.name, parameter: "type")
            }
            return resolved
        }
        guard let resolved = resolve(font.family, family: font.family, caseInsensitive: false) else {
            throw ProcessError(.watermarkError, "watermark: the font '\(font.family)' for type '\(type)' is not installed (apt-get install \(font.package))",
                               action: Watermark.name, parameter: "type")
        }
        return resolved
    }

    /// Every configuration file fontconfig loaded (`FcConfigGetConfigFiles`): editing one may
    /// change how text is drawn without changing any font file.
    public static func configurationFiles() -> [String] {
        guard let text = dv_font_config_files() else { return [] }
        defer { dv_free(text) }
        return String(cString: text).split(separator: "\n").map(String.init)
    }
}
