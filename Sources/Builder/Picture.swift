import Confinement
import Foundation
import Manifest
import Planner

/// A source's displayed size (EXIF orientation applied), as the planner read it from the header.
public struct SourceSize: Sendable, Hashable {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) { self.width = width; self.height = height }
}

/// One responsive image: a source's outputs under one rule (and one style), grouped by format
/// with one `srcset` per format, each width once, and the `<picture>` HTML that uses them.
public struct Picture: Sendable, Hashable {
    public struct Candidate: Sendable, Hashable {
        public var url: String
        public var width: Int
        public var height: Int
        public var bytes: Int64
    }

    public struct FormatGroup: Sendable, Hashable {
        public var format: String
        /// The MIME type for `<source type>`.
        public var type: String
        /// By width, each width once.
        public var candidates: [Candidate]
        public var srcset: String { candidates.map { "\($0.url) \($0.width)w" }.joined(separator: ", ") }
    }

    /// The key in the index: the rule, or `rule/style` for a styles rule.
    public var name: String
    public var source: String
    public var rule: String
    public var style: String?
    /// Modern formats first (AVIF, WebP), then the others.
    public var formats: [FormatGroup]

    /// Formats a browser shows, best first, with their MIME types; other outputs (JSON, HEIC,
    /// TIFF, BMP) are listed as derivatives but take no part in a picture.
    static let webFormats: [(format: String, type: String, modern: Bool)] = [
        ("avif", "image/avif", true), ("webp", "image/webp", true),
        ("jpg", "image/jpeg", false), ("png", "image/png", false), ("gif", "image/gif", false),
    ]

    /// The `<img>` fallback's format: the first legacy format there is (JPEG, PNG, GIF), else the
    /// last modern one (WebP before AVIF, which more browsers show).
    public var fallback: FormatGroup {
        formats.first { group in Self.webFormats.contains { $0.format == group.format && !$0.modern } } ?? formats.last!
    }

    /// The `<source>` elements: each modern format other than the fallback's.
    public var modernSources: [FormatGroup] {
        formats.filter { group in group.format != fallback.format && Self.webFormats.contains { $0.format == group.format && $0.modern } }
    }

    /// The `<img src>`: the fallback's widest candidate (its width and height reserve the layout).
    public var img: Candidate { fallback.candidates.last! }

    /// Full width up to the widest candidate, that width beyond.
    public var defaultSizes: String {
        let widest = formats.flatMap(\.candidates).map(\.width).max() ?? 0
        return "(max-width: \(widest)px) 100vw, \(widest)px"
    }

    /// `<picture>` with a `<source type srcset sizes>` per modern format and an `<img>` fallback;
    /// every attribute value escaped.
    public func html(sizes: String? = nil, alt: String = "") -> String {
        let sizes = Self.escape(sizes ?? defaultSizes)
        var parts = ["<picture>"]
        for group in modernSources {
            parts.append("<source type=\"\(group.type)\" srcset=\"\(Self.escape(group.srcset))\" sizes=\"\(sizes)\">")
        }
        let img = self.img
        parts.append("<img src=\"\(Self.escape(img.url))\" srcset=\"\(Self.escape(fallback.srcset))\" sizes=\"\(sizes)\" "
                     + "width=\"\(img.width)\" height=\"\(img.height)\" alt=\"\(Self.escape(alt))\" loading=\"lazy\" decoding=\"async\">")
        parts.append("</picture>")
        return parts.joined()
    }

    /// HTML attribute escaping (`&`, `<`, `>`, `"`, `'`).
    public static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    /// The pictures of one source's outputs, by name.
    static func sets(_ records: [OutputRecord], manifest: Manifest) -> [Picture] {
        var groups: [String: [OutputRecord]] = [:]
        for record in records where webFormats.contains(where: { $0.format == record.format }) && record.width > 0 {
            groups[record.rule + (record.style.map { "/" + $0 } ?? ""), default: []].append(record)
        }
        return groups.keys.sorted().map { name in
            let members = groups[name]!
            let formats = webFormats.compactMap { web -> FormatGroup? in
                var seen: Set<Int> = []
                let candidates = members.filter { $0.format == web.format }
                    .sorted { $0.width != $1.width ? $0.width < $1.width : PathKey.ordered($0.path, $1.path) }
                    .filter { seen.insert($0.width).inserted }
                    .map { Candidate(url: IndexWriter.url($0.path, manifest: manifest), width: $0.width, height: $0.height, bytes: $0.size) }
                return candidates.isEmpty ? nil : FormatGroup(format: web.format, type: web.type, candidates: candidates)
            }
            return Picture(name: name, source: members[0].source, rule: members[0].rule, style: members[0].style, formats: formats)
        }
    }
}

extension String {
    func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}
