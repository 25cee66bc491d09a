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
        return (try? match(family)) != nil
    }

    /// The font file of an exact family match; nil when fontconfig would substitute another.
    static func match(_ family: String) throws -> String? {
        // FcNameParse reads '-', ':', ',' and '\\' as syntax: escape them.
        var pattern = ""
        for character in family {
            if "-:,\\".contains(character) { pattern.append("\\") }
            pattern.append(character)
        }
        var file: UnsafeMutablePointer<CChar>?
        var matched: UnsafeMutablePointer<CChar>?
        let status = dv_font_file(pattern, &file, &matched)
        defer { dv_free(file); dv_free(matched) }
        guard status == 0, let file, let matched,
              String(cString: matched).split(separator: ",").contains(where: { $0.lowercased() == family.lowercased() }) else { return nil }
        return String(cString: file)
    }

    /// The font file fontconfig uses for a `type` name; an error naming the package to install
    /// when the font is missing (fontconfig would otherwise silently substitute another).
    public static func file(for type: String) throws -> String {
        guard let font = fonts[type] else {
            guard let family = family(for: type) else {
                throw ProcessError(.invalidArgument, ec: "0040-00000250", "watermark: unknown font '\(type)'", action: Watermark.name, parameter: "type")
            }
            guard let file = try match(family) else {
                throw ProcessError(.invalidArgument, ec: "0040-00000250",
                                   "watermark: font family '\(family)' is not installed (list the installed families with: fc-list : family)",
                                   action: Watermark.name, parameter: "type")
            }
            return file
        }
        var file: UnsafeMutablePointer<CChar>?
        var matched: UnsafeMutablePointer<CChar>?
        let status = dv_font_file(font.family, &file, &matched)
        defer { dv_free(file); dv_free(matched) }
        guard status == 0, let file, let matched,
              String(cString: matched).split(separator: ",").contains(where: { $0 == font.family }) else {
            throw ProcessError(.watermarkError, "watermark: the font '\(font.family)' for type '\(type)' is not installed (apt-get install \(font.package))",
                               action: Watermark.name, parameter: "type")
        }
        return String(cString: file)
    }
}
