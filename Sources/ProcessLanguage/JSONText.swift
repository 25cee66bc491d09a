/// The one JSON string writer: OSS's answers (Imaging, the server), the lock, the index and the
/// witness all quote with it, so a key is escaped the same way everywhere.
public enum JSONText {
    /// A JSON string literal for `text`, quotes included: `"`, `\\` and control characters
    /// (and DEL) escaped, everything else as UTF-8.
    public static func string(_ text: String) -> String {
        // Most keys need no escape: one pass over the bytes, then a plain copy.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F }) { return "\"" + text + "\"" }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
