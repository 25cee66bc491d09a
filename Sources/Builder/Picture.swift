import Confinement
import Foundation
import Manifest
import ImagingCore
import Planner

/// A source's displayed size (EXIF orientation applied), as the planner read it from the header,
/// and whether it is an animation.
public struct SourceSize: Sendable, Hashable {
    /// Nil when the planner takes the size as unknown (a GIF whose frames reach past its screen):
    /// the source is still an animation or not, whatever its size (attack 49b's F4).
    public var width: Int?
    public var height: Int?
    /// An animation (a GIF or WebP of more than one frame): its pictures offer first the formats
    /// that keep the frames (WebP, GIF), not a still AVIF.
    public var animated: Bool
    public init(width: Int?, height: Int?, animated: Bool = false) { self.width = width; self.height = height; self.animated = animated }
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
    /// Modern formats first (AVIF, WebP), then the others; for an animated source, the formats
    /// that keep its frames (WebP, GIF) before all others.
    public var formats: [FormatGroup]
    /// The source is an animation (`SourceSize.animated`).
    public var animated: Bool = false

    /// Formats a browser shows, best first, with their MIME types; other outputs (JSON, HEIC,
    /// TIFF, BMP) are listed as derivatives but take no part in a picture.
    static let webFormats: [(format: String, type: String, modern: Bool)] = [
        ("avif", "image/avif", true), ("webp", "image/webp", true),
        ("jpg", "image/jpeg", false), ("png", "image/png", false), ("gif", "image/gif", false),
    ]

    /// Formats whose outputs keep an animated source's frames (README: other outputs take the first frame).
    static let animationFormats: Set<String> = ["webp", "gif"]

    /// Whether the picture offers only the formats that keep the animation: an animated source
    /// with an output in one of them. A browser takes the first `<source>` whose type it shows,
    /// so a still AVIF offered before an animated WebP shows a still picture (attack 20's A1).
    var keepsAnimation: Bool { animated && formats.contains { Self.animationFormats.contains($0.format) } }

    /// The `<img>` fallback's format: the first legacy format there is (JPEG, PNG, GIF), else the
    /// last modern one (WebP before AVIF, which more browsers show). For an animation, a GIF
    /// when there is one (every browser shows its frames), else the first legacy format, else
    /// the animated WebP.
    public var fallback: FormatGroup {
        let legacy = formats.first { group in Self.webFormats.contains { $0.format == group.format && !$0.modern } }
        guard keepsAnimation else { return legacy ?? formats.last! }
        return formats.first { $0.format == "gif" } ?? legacy ?? formats.first { Self.animationFormats.contains($0.format) }!
    }

    /// The `<source>` elements: each modern format other than the fallback's; for an animation,
    /// only those that keep its frames (never a still AVIF a browser would take first).
    public var modernSources: [FormatGroup] {
        formats.filter { group in
            group.format != fallback.format && Self.webFormats.contains { $0.format == group.format && $0.modern }
                && (!keepsAnimation || Self.animationFormats.contains(group.format))
        }
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

    /// Whether an output's extension does not name another web format than the bytes it holds
    /// (its recorded format). `format,gif` keeps a non-GIF source's format (README), so with
    /// `f: [webp, jpg, gif]` a `-320.gif` holds JPEG or WebP bytes; serve sends it by its name, as
    /// `image/gif` (OSS's Content-Type is the key's), so it is never a candidate: the real `.jpg`
    /// or `.webp` of that width is (attack 13b's finding 3). It stays listed as a derivative.
    static func namesItsFormat(_ record: OutputRecord) -> Bool {
        var named = (record.path as NSString).pathExtension.lowercased()
        if named == "jpeg" { named = "jpg" }
        return named == record.format || !webFormats.contains { $0.format == named }
    }

    /// Where an output's matrix values stand in its rule's `matrix:`: each variable's value's
    /// position, the variables in manifest order. Of several outputs of one format and width (a
    /// second variable: `q: [90, 50]`, a crop), the picture takes the lowest: the other variables'
    /// first values in manifest order (attack 13b's finding 7: it took the name sorting first). A
    /// value the manifest does not list (a width narrowed to the source's) comes after the others.
    static func matrixRank(_ record: OutputRecord, rule: Rule?) -> [Int] {
        guard let rule, !rule.matrix.isEmpty else { return [] }
        var values: [Substring: Substring] = [:]
        for pair in record.matrix.split(separator: ",") {
            if let equals = pair.firstIndex(of: "=") { values[pair[..<equals]] = pair[pair.index(after: equals)...] }
        }
        return rule.matrix.map { variable in
            values[Substring(variable.name)].flatMap { value in variable.values.firstIndex { $0 == value } } ?? Int.max
        }
    }

    /// Whether two outputs have one aspect ratio, each side rounded to a pixel: the narrower's
    /// height, scaled to the other's width, is within one pixel of it.
    static func sameShape(_ a: OutputRecord, _ b: OutputRecord) -> Bool {
        let difference = abs(Int64(a.height) * Int64(b.width) - Int64(b.height) * Int64(a.width))
        return difference <= Int64(max(a.width, b.width))
    }

    /// The pictures of one source's outputs, by name.
    /// `animated`: the source is an animation; its pictures put the formats that keep the
    /// frames first.
    static func sets(_ records: [OutputRecord], manifest: Manifest, animated: Bool = false) -> [Picture] {
        var groups: [String: [OutputRecord]] = [:]
        for record in records where webFormats.contains(where: { $0.format == record.format }) && record.width > 0 && namesItsFormat(record) {
            groups[record.rule + (record.style.map { "/" + $0 } ?? ""), default: []].append(record)
        }
        return groups.keys.sorted().map { name in
            let all = groups[name]!
            let rule = manifest.rules.first { $0.planName == all[0].rule }
            let ranks = Dictionary(all.map { ($0.path, matrixRank($0, rule: rule)) }) { first, _ in first }
            // One shape per picture (attack 41b's L7: `m_fill,w_{w},h_{w}` wrote a 480×480 crop and,
            // not enlarged, the 1200×800 source, and one srcset offered both as one image): the
            // narrowest output's; the others stay listed as derivatives.
            let narrowest = all.min { a, b in
                if a.width != b.width { return a.width < b.width }
                let (rankA, rankB) = (ranks[a.path] ?? [], ranks[b.path] ?? [])
                return rankA != rankB ? rankA.lexicographicallyPrecedes(rankB) : PathKey.ordered(a.path, b.path)
            }!
            let members = all.filter { sameShape($0, narrowest) }
            var formats = webFormats.compactMap { web -> FormatGroup? in
                var seen: Set<Int> = []
                let candidates = members.filter { $0.format == web.format }
                    .sorted { a, b in
                        if a.width != b.width { return a.width < b.width }
                        let (rankA, rankB) = (ranks[a.path] ?? [], ranks[b.path] ?? [])
                        return rankA != rankB ? rankA.lexicographicallyPrecedes(rankB) : PathKey.ordered(a.path, b.path)
                    }
                    .filter { seen.insert($0.width).inserted }
                    .map { Candidate(url: IndexWriter.url($0.path, manifest: manifest), width: $0.width, height: $0.height, bytes: $0.size) }
                return candidates.isEmpty ? nil : FormatGroup(format: web.format, type: web.type, candidates: candidates)
            }
            if animated, formats.contains(where: { animationFormats.contains($0.format) }) {
                formats = formats.filter { animationFormats.contains($0.format) } + formats.filter { !animationFormats.contains($0.format) }
            }
            return Picture(name: name, source: members[0].source, rule: members[0].rule, style: members[0].style, formats: formats,
                           animated: animated)
        }
    }
}

extension String {
    func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}

/// Whether a source is an animation (more than one frame, as the engine reads its pages): only a
/// GIF or a WebP can be. Read when the index is made (never on a no-op, which the witness
/// answers): a WebP's first 30 bytes (VP8X's animation flag), and only when that flag is set or
/// the source is a GIF, the file itself to count its frames, up to `readLimit` bytes.
enum SourceAnimation {
    /// A larger GIF or flagged WebP is taken as a still: a source that large renders only under a
    /// raised `--max-bytes`.
    static let readLimit = 64 << 20

    static func isAnimated(_ path: String, format: String, disk: any Disk) -> Bool {
        switch format {
        case "webp":
            guard let head = try? disk.head(path, bytes: 30), head.count == 30,
                  head.prefix(4).elementsEqual("RIFF".utf8), head.dropFirst(8).prefix(8).elementsEqual("WEBPVP8X".utf8),
                  head[head.startIndex + 20] & 0x02 != 0 else { return false }
        case "gif":
            break
        default:
            return false
        }
        guard let data = try? disk.read(path, maxBytes: readLimit) else { return false }
        return (SourceHeader.read(data)?.frames ?? 1) > 1
    }
}
