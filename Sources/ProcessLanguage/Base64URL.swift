import Foundation

/// Base64 as OSS clients send it: the URL-safe alphabet (`-`, `_`) or the standard one (`+`, `/`),
/// with or without `=` padding.
public enum Base64URL {
    public static func decode(_ text: String) -> Data? {
        guard !text.isEmpty else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+")
            .replacingOccurrences(of: "_", with: "/")
        while standard.hasSuffix("=") { standard.removeLast() }
        guard standard.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "/") }) else {
            return nil
        }
        if standard.count % 4 == 1 { return nil }
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard)
    }

    public static func decodeString(_ text: String) -> String? {
        guard let data = decode(text), String(data: data, encoding: .utf8) != nil else { return nil }
        // Foundation's decoding drops a leading U+FEFF; the text is what the bytes say.
        return String(decoding: data, as: UTF8.self)
    }

    /// The canonical spelling: URL-safe alphabet, no padding.
    public static func encode(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func encode(_ text: String) -> String { encode(Data(text.utf8)) }
}
