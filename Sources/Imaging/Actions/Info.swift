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
        result["FileSize"] = String(byteCount)
        result["Format"] = format.outputFormat.rawValue
        result["FrameCount"] = String(frames)
        let pageHeight = frames > 1 ? (header.int("page-height") ?? header.height) : header.height
        result["ImageHeight"] = String(pageHeight)
        result["ImageWidth"] = String(header.width)
        return result
    }

    /// libvips renders EXIF entries as `raw (text, type, n components, n bytes)`; keep `raw`.
    static func rawValue(_ text: String) -> String {
        guard text.hasSuffix("bytes)"), let open = text.range(of: " (", options: .backwards) else { return text }
        var candidate = text[..<open.lowerBound]
        // Values that themselves contain " (" keep everything up to the annotation.
        let annotation = text[open.upperBound...]
        if annotation.split(separator: ",").count < 4, let earlier = candidate.range(of: " (", options: .backwards) {
            candidate = text[..<earlier.lowerBound]
        }
        return String(candidate)
    }

    func output() throws -> RenderOutput {
        let body = "{" + fields.sorted { $0.key < $1.key }
            .map { "\(JSONText.string($0.key)): {\"value\": \(JSONText.string($0.value))}" }
            .joined(separator: ", ") + "}"
        return RenderOutput(kind: .json, bytes: Data(body.utf8), width: 0, height: 0, frames: 0)
    }
}
