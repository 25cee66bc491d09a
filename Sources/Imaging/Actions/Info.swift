import Foundation
import ProcessLanguage

/// The `info` answer (spec §3.1): sorted keys, every value an object with a string `value`.
/// EXIF tags are reported under their EXIF names with libvips' raw value text (`7` for
/// Orientation, `72/1` for XResolution); the maker-note blob and thumbnails are left out.
struct ImageInfo {
    let header: VImage
    let format: SourceFormat
    let byteCount: Int
    let frames: Int

    var fields: [String: String] {
        var result: [String: String] = [:]
        for name in header.fieldNames where name.hasPrefix("exif-ifd") {
            // exif-ifd0-Orientation → Orientation
            guard let dash = name.dropFirst("exif-ifd".count).firstIndex(of: "-") else { continue }
            let tag = String(name[name.index(after: dash)...])
            guard !tag.isEmpty, let text = header.text(name) else { continue }
            result[tag] = Self.rawValue(text)
        }
        // A TIFF's orientation is a tag of its own, not EXIF: shown as the render applies it.
        if result["Orientation"] == nil, let orientation = header.int("orientation"), (2...8).contains(orientation) {
            result["Orientation"] = String(orientation)
        }
        result["FileSize"] = String(byteCount)
        result["Format"] = format.outputFormat.rawValue
        result["FrameCount"] = String(frames)
        let pageHeight = frames > 1 ? (header.int("page-height") ?? header.height) : header.height
        result["ImageHeight"] = String(pageHeight)
        result["ImageWidth"] = String(header.width)
        return result
    }

    /// libvips renders EXIF entries as `raw (text, type, n components, n bytes)`; keep `raw`.
    /// The text may hold parentheses of its own (`252/100 (2.52 EV (f/2.4), Rational, ...)`),
    /// and so may an ASCII raw value, so the split is the first ` (` after which the text's
    /// parentheses balance.
    static func rawValue(_ text: String) -> String {
        guard let annotation = text.range(of: #", [A-Za-z]+, [0-9]+ components?, [0-9]+ bytes?\)$"#,
                                          options: .regularExpression) else { return text }
        let head = text[..<annotation.lowerBound]   // "raw (text"
        var search = head.startIndex
        while let open = head.range(of: " (", range: search..<head.endIndex) {
            var depth = 0, balanced = true
            for character in head[open.upperBound...] {
                if character == "(" { depth += 1 } else if character == ")" {
                    depth -= 1
                    if depth < 0 { balanced = false; break }
                }
            }
            if balanced, depth == 0 { return String(head[..<open.lowerBound]) }
            search = open.upperBound
        }
        return text
    }

    func output() throws -> RenderOutput {
        let body = "{" + fields.sorted { $0.key < $1.key }
            .map { "\(JSONText.string($0.key)): {\"value\": \(JSONText.string($0.value))}" }
            .joined(separator: ", ") + "}"
        return RenderOutput(kind: .json, bytes: Data(body.utf8), width: 0, height: 0, frames: 0)
    }
}
