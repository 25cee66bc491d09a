import Foundation
import ProcessLanguage
#if canImport(Glibc)
import Glibc
#endif

/// OSS's XML answers, built as text (every value escaped like error bodies), and the few
/// request bodies OSS sends as XML, read without a general XML parser: only flat elements of
/// known names are needed (`<Key>`, `<PartNumber>`, `<ETag>`, `<Quiet>`).
struct XMLReply {
    private var lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>"]

    init(_ root: String, _ build: (inout XMLReply) -> Void) {
        lines.append("<\(root)>")
        build(&self)
        lines.append("</\(root)>")
    }

    mutating func element(_ name: String, _ value: String) {
        lines.append("<\(name)>\(XMLText.escaped(value))</\(name)>")
    }

    mutating func element(_ name: String, _ value: Int) { element(name, String(value)) }

    mutating func group(_ name: String, _ build: (inout XMLReply) -> Void) {
        lines.append("<\(name)>")
        build(&self)
        lines.append("</\(name)>")
    }

    var data: Data { Data((lines.joined(separator: "\n") + "\n").utf8) }

    /// A 200 answer carrying the document.
    func response(_ exchange: Exchange, extra: [(String, String)] = []) -> ServiceResponse {
        let body = data
        return ServiceResponse(status: 200, headers: [("Content-Type", "application/xml"), ("Content-Length", String(body.count)),
                                                      ("x-oss-request-id", exchange.requestId)] + extra,
                               payload: .data(body))
    }

    /// OSS's time format in XML (`2024-01-02T03:04:05.000Z`).
    static func time(_ nanoseconds: Int64) -> String {
        // gmtime_r, not a Calendar per call: a listing formats a thousand times.
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.000Z", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}

/// The text of flat XML elements in a small request body.
enum XMLFields {
    /// The text of every `<name>…</name>` in order, entities decoded. Nil when the body is not
    /// well-formed for this purpose (an element opened and never closed).
    static func values(_ name: String, in text: String) -> [String]? {
        var values: [String] = []
        var rest = text[...]
        let open = "<\(name)>", close = "</\(name)>"
        while let start = rest.range(of: open) {
            guard let end = rest.range(of: close, range: start.upperBound..<rest.endIndex) else { return nil }
            guard let decoded = decode(String(rest[start.upperBound..<end.lowerBound])) else { return nil }
            values.append(decoded)
            rest = rest[end.upperBound...]
        }
        return values
    }

    /// The blocks `<name>…</name>` (their inner text, not decoded).
    static func blocks(_ name: String, in text: String) -> [String]? {
        var blocks: [String] = []
        var rest = text[...]
        let open = "<\(name)>", close = "</\(name)>"
        while let start = rest.range(of: open) {
            guard let end = rest.range(of: close, range: start.upperBound..<rest.endIndex) else { return nil }
            blocks.append(String(rest[start.upperBound..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        return blocks
    }

    /// XML character data: the five named entities and numeric references; nil for an unknown one.
    static func decode(_ text: String) -> String? {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else { return nil }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let number: UInt32?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") { number = UInt32(entity.dropFirst(2), radix: 16) }
                else if entity.hasPrefix("#") { number = UInt32(entity.dropFirst()) }
                else { number = nil }
                guard let number, let scalar = Unicode.Scalar(number) else { return nil }
                out.unicodeScalars.append(scalar)
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }
}
