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

    /// The family fontconfig draws for `type` instead of its own, when that family is installed
    /// but the configuration replaces it (a strong alias, a rule editing the family): nil for the
    /// seven OSS names, a family that matches itself, or one that is not installed at all.
    public static func substitute(for type: String) -> String? {
        guard fonts[type] == nil, let family = family(for: type), match(family) == nil, dv_font_listed(pattern(family)) != 0 else { return nil }
        var file: UnsafeMutablePointer<CChar>?, matched: UnsafeMutablePointer<CChar>?, rendering: UnsafeMutablePointer<CChar>?
        let status = dv_font_file(pattern(family), &file, &matched, &rendering)
        defer { dv_free(file); dv_free(matched); dv_free(rendering) }
        guard status == 0, let matched else { return nil }
        return String(cString: matched).split(separator: "\n").first.map(String.init)
    }

    /// What to say of an installed `family` the configuration draws as `drawn` (Derive never
    /// draws a substitute): what happens and the two ways out.
    public static func substitutionAdvice(family: String, drawn: String) -> String {
        "the fontconfig configuration substitutes '\(drawn)' for it (a strong alias or a rule in a fonts.conf; fc-match '\(family)' family shows it), "
            + "and Derive draws only the family named: remove that alias or rule, or name '\(drawn)'"
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
        resolve(pattern(family), family: family, caseInsensitive: true)
    }

    /// `family` as a fontconfig pattern: FcNameParse reads '-', ':', ',' and '\\' as syntax.
    static func pattern(_ family: String) -> String {
        var pattern = ""
        for character in family {
            if "-:,\\".contains(character) { pattern.append("\\") }
            pattern.append(character)
        }
        return pattern
    }

    /// `pattern` as fontconfig matches it, when the match's family list holds `family`.
    private static func resolve(_ pattern: String, family: String, caseInsensitive: Bool) -> Resolved? {
        var file: UnsafeMutablePointer<CChar>?
        var matched: UnsafeMutablePointer<CChar>?
        var rendering: UnsafeMutablePointer<CChar>?
        let status = dv_font_file(pattern, &file, &matched, &rendering)
        defer { dv_free(file); dv_free(matched); dv_free(rendering) }
        guard status == 0, let file, let matched else { return nil }
        // All the face's names count: a second name ("DejaVu Sans Light") or a localized one
        // (文泉驿正黑) is as much its family as the first (attack 36a M5).
        let families = String(cString: matched).split(separator: "\n")
        guard families.contains(where: { caseInsensitive ? $0.lowercased() == family.lowercased() : $0 == family }) else { return nil }
        let drawn = rendering.map { String(cString: $0) } ?? ""
        return Resolved(file: String(cString: file), rendering: drawn.isEmpty ? missingGlyphs : drawn + " " + missingGlyphs)
    }

    /// Part of how text is drawn, so in every text output's fingerprint: a character no font
    /// has is refused (`checkDrawable`). Outputs built before drew it as a box; this word makes
    /// them stale (rebuilt, or refused naming the character), never up to date.
    static let missingGlyphs = "missing-glyphs=refused"

    /// The font file fontconfig uses for a `type` name; an error naming the package to install
    /// when the font is missing (fontconfig would otherwise silently substitute another).
    public static func file(for type: String) throws -> String { try resolved(for: type).file }

    /// What fontconfig answered this process, by `type` name and by family (`FontLookups`).
    static let resolvedTypes = FontLookups<Result<Resolved, ProcessError>>(capacity: 256)
    static let coverages = FontLookups<FontCoverage?>(capacity: 64)

    /// The font fontconfig uses for a `type` name, with how it is drawn.
    public static func resolved(for type: String) throws -> Resolved {
        try resolvedTypes.value(type) { type in
            do { return .success(try lookUp(type)) } catch let error as ProcessError { return .failure(error) } catch {
                return .failure(ProcessError(.internalError, "watermark: font '\(type)': \(error)", action: Watermark.name, parameter: "type"))
            }
        }.get()
    }

    /// Refuses `text` when characters in it are in neither the font of `type` nor any fallback
    /// face Pango would take them from: each would be drawn as a box with its hex digits (attack
    /// 36a L3). Names them all and how to find a font that has them.
    public static func checkDrawable(_ text: String, type: String) throws {
        guard let family = family(for: type),
              let coverage = coverages.value(family, lookUp: { FontCoverage(pattern: pattern($0)) }) else { return }
        let missing = coverage.missing(in: text)
        guard !missing.isEmpty else { return }
        let named = missing.map(FontCoverage.named)
        let list = named.count == 1 ? named[0] : named.dropLast().joined(separator: ", ") + " and " + named[named.count - 1]
        let (it, them) = missing.count == 1 ? ("it", "it") : ("each", "them")
        // Control characters (U+0000, ESC…) are in no font: installing one is no way out (attack 42b's M1).
        if missing.allSatisfy({ $0.properties.generalCategory == .control }) {
            throw ProcessError(.invalidArgument, ec: "0040-00000257",
                               "watermark: the text has \(list), \(missing.count == 1 ? "a control character" : "control characters"), which no font draws (\(it) would be drawn as a box); remove \(them)",
                               action: Watermark.name, parameter: "text")
        }
        throw ProcessError(.invalidArgument, ec: "0040-00000257",
                           "watermark: the text has \(list), which neither the font '\(family)' nor any fallback font fontconfig offers can draw (\(it) would be drawn as a box); remove \(them), or install a font that has \(them) (fc-list ':charset=\(missing.map { String($0.value, radix: 16) }.joined(separator: " "))' family lists the installed ones)",
                           action: Watermark.name, parameter: "text")
    }

    private static func lookUp(_ type: String) throws -> Resolved {
        guard let font = fonts[type] else {
            guard let family = family(for: type) else {
                throw ProcessError(.invalidArgument, ec: "0040-00000250", "watermark: unknown font '\(type)'", action: Watermark.name, parameter: "type")
            }
            guard let resolved = match(family) else {
                if let drawn = substitute(for: type) {
                    throw ProcessError(.invalidArgument, ec: "0040-00000250",
                                       "watermark: font family '\(family)' is installed, but " + substitutionAdvice(family: family, drawn: drawn),
                                       action: Watermark.name, parameter: "type")
                }
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

    /// Every file and folder fontconfig's answers depend on, present or not: each configuration
    /// file it loaded (`FcConfigGetConfigFiles`); each place an `<include>` in those files names
    /// (an `ignore_missing` one created later changes the configuration); and each font,
    /// configuration and cache folder it reads, every subfolder it scanned included
    /// (`FcConfigGetFontDirs`: a font added in `~/.local/share/fonts/sub`, or in a folder a
    /// user's `<dir>` names, changes the folder). Creating, editing or removing any of them may
    /// change which font a type uses or how its text is drawn (attack 30's finding 1).
    public static func configurationPaths(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        let files = lines(dv_font_config_files())
        var paths = files
        for file in files { paths += includedPlaces(in: file, environment: environment) }
        paths += lines(dv_font_folders())
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    private static func lines(_ text: UnsafeMutablePointer<CChar>?) -> [String] {
        guard let text else { return [] }
        defer { dv_free(text) }
        return String(cString: text).split(separator: "\n").map(String.init)
    }

    /// Every place fontconfig looks for a file that an `<include>` of the configuration file
    /// `file` names, whether it is there or not (fontconfig records only those it found).
    static func includedPlaces(in file: String, environment: [String: String]) -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isFolder), !isFolder.boolValue,
              let data = FileManager.default.contents(atPath: file) else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        guard text.contains("<include"), let element = try? Regex(#"<include(\s[^>]*)?>([^<]*)</include\s*>"#) else { return [] }
        var places: [String] = []
        for match in text.matches(of: element) {
            let attributes = match.output[1].substring.map(String.init) ?? ""
            let xdg = attributes.contains(#"prefix="xdg""#) || attributes.contains("prefix='xdg'")
            places += includePlaces(String(match.output[2].substring ?? ""), xdg: xdg, from: file, environment: environment)
        }
        return places
    }

    /// Where fontconfig looks for the include `name`: under `$XDG_CONFIG_HOME` (`prefix="xdg"`),
    /// under `$HOME` (`~`), as it is (absolute), or in each configuration folder and beside the
    /// including file (relative); with `FONTCONFIG_SYSROOT` under it too. When in doubt, one more
    /// place is stamped.
    static func includePlaces(_ raw: String, xdg: Bool, from file: String, environment: [String: String]) -> [String] {
        let name = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
        guard !name.isEmpty else { return [] }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
        var places: [String] = []
        if xdg {
            if let config = environment["XDG_CONFIG_HOME"].flatMap({ $0.isEmpty ? nil : $0 }) ?? home.map({ $0 + "/.config" }) {
                places.append(config + "/" + name)
            }
        } else if name.hasPrefix("~") {
            if let home { places.append(home + name.dropFirst()) }
        } else if name.hasPrefix("/") {
            places.append(name)
        } else {
            let folders = (environment["FONTCONFIG_PATH"] ?? "").split(separator: ":").map(String.init)
                + ["/etc/fonts", (file as NSString).deletingLastPathComponent]
            places += folders.filter { !$0.isEmpty }.map { $0 + "/" + name }
        }
        if let root = environment["FONTCONFIG_SYSROOT"], !root.isEmpty { places += places.map { root + $0 } }
        return places
    }
}
