/// Names as a terminal shows them: one escaping for every human-readable line Derive prints
/// (build, plan, check, clean, diff, catalog), so a hostile file name cannot retitle or recolour
/// the terminal (or a CI log's viewer), nor reorder what it shows. JSON output is JSON-escaped.
public enum TerminalText {
    /// `text` with control characters (ESC, BEL, …) shown as `\u{1B}`.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar) { result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}" } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }

    /// C0 and C1 controls, and the bidirectional controls (U+202E and its kin reorder what
    /// the reader sees) and line separators.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
