/// The one XML text writer: OSS's XML answers (the server) and the JUnit report (`derive diff
/// --junit`) escape with it, so both stay well-formed whatever a key or a message holds.
public enum XMLText {
    /// `text` as XML character data or a double-quoted attribute value: `&`, `<`, `>` and `"`
    /// escaped, and every character XML 1.0 does not allow (C0 control characters such as NUL and
    /// ESC, U+FFFE, U+FFFF) replaced by U+FFFD. Tab, LF and CR are kept: XML allows them, and a
    /// StringToSign is lines. DEL and the C1 controls (U+007F–U+009F) are kept too: XML 1.0 allows
    /// them, and a key may hold one (a source named `p\u{9B}.jpg`), so a listing that replaced it
    /// named a key no GET finds (attack 43's M-a).
    public static func escaped(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out.append(contentsOf: "&amp;".unicodeScalars)
            case "<": out.append(contentsOf: "&lt;".unicodeScalars)
            case ">": out.append(contentsOf: "&gt;".unicodeScalars)
            case "\"": out.append(contentsOf: "&quot;".unicodeScalars)
            default:
                let value = scalar.value
                let allowed = !((value < 0x20 && value != 0x09 && value != 0x0A && value != 0x0D) || value == 0xFFFE || value == 0xFFFF)
                out.append(allowed ? scalar : "\u{FFFD}")
            }
        }
        return String(out)
    }
}
