import CVipsShim

/// The characters Pango can draw text in a font with: fontconfig's charsets of the face it
/// picks and of every fallback face Pango walks for a character the face lacks. Any other
/// character would be drawn as a box with its hex digits (attack 36a L3).
final class FontCoverage: @unchecked Sendable {
    // An FcCharSet, never changed after it is made: reading it is safe from any thread.
    private let charset: UnsafeMutableRawPointer

    init?(pattern: String) {
        guard let charset = dv_font_coverage(pattern) else { return nil }
        self.charset = charset
    }

    deinit { dv_font_coverage_free(charset) }

    func has(_ scalar: Unicode.Scalar) -> Bool { dv_font_coverage_has(charset, scalar.value) != 0 }

    /// Characters that need no glyph: Pango lays out tabs and line breaks itself, draws nothing
    /// for default-ignorable ones (zero-width joiner, variation selectors), and HarfBuzz makes a
    /// space the font lacks from its space's width.
    static func needsNoGlyph(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.properties.isDefaultIgnorableCodePoint { return true }
        return [.spaceSeparator, .lineSeparator, .paragraphSeparator].contains(scalar.properties.generalCategory)
    }

    /// The characters of `text` that need a glyph and that no face has, each once, in order.
    func missing(in text: String) -> [Unicode.Scalar] {
        var seen = Set<UInt32>(), missing: [Unicode.Scalar] = []
        for scalar in text.unicodeScalars where !Self.needsNoGlyph(scalar) && !has(scalar) && seen.insert(scalar.value).inserted {
            missing.append(scalar)
        }
        return missing
    }

    /// `U+1F469 '👩'`; only the code point for a character with no visible form of its own
    /// (a control, format, private-use or unassigned one).
    static func named(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        let invisible: [Unicode.GeneralCategory] = [.control, .format, .privateUse, .unassigned, .surrogate]
        return invisible.contains(scalar.properties.generalCategory) ? code : "\(code) '\(Character(scalar))'"
    }
}
