import Confinement
import Foundation
import Manifest
import Planner
import ProcessLanguage

/// The JSON index for site generators. Version 2 (`json`): per source, its displayed size
/// (and `animated` for an animation), its
/// derivatives (path, key, URL, size, format, bytes, ACL, style or matrix values) and one
/// `picture` per rule (and style): a `srcset` per format and ready HTML. Version 1 (`legacyJSON`)
/// is kept only to recognise an index older Derive wrote (adoption from the lock).
enum IndexWriter {
    static let version = 2

    /// A source's placeholder: a data URI and a ThumbHash (base64); either may be empty.
    struct Placeholder: Equatable {
        var image: String
        var thumbhash: String
    }

    /// What an index file says of each source besides its outputs (colour, placeholder): after
    /// the state is lost, an index Derive wrote keeps them (they were adopted with it) instead of
    /// rendering them again.
    static func summaries(_ data: Data?) -> (colours: PathDictionary<String>, placeholders: PathDictionary<Placeholder>) {
        guard let data, let object = IndexJSON.parse(data), object["version"]?.int == version,
              let sources = object["sources"]?.members else { return ([:], [:]) }
        var colours: PathDictionary<String> = [:]
        var placeholders: PathDictionary<Placeholder> = [:]
        for (source, entry) in sources {
            guard entry.members != nil else { continue }
            if let colour = entry["color"]?.string { colours[source] = colour }
            if let placeholder = entry["placeholder"], placeholder.members != nil {
                placeholders[source] = Placeholder(image: placeholder["src"]?.string ?? "", thumbhash: placeholder["thumbhash"]?.string ?? "")
            }
        }
        return (colours, placeholders)
    }

    static func json(_ outputs: [OutputRecord], manifest: Manifest, sourceSizes: PathDictionary<SourceSize>, sourceColours: PathDictionary<String> = [:],
                     dominants: PathDictionary<String> = [:], placeholders: PathDictionary<Placeholder> = [:], logicals: PathDictionary<String>? = nil) -> Data {
        var sources: PathDictionary<[OutputRecord]> = [:]
        for output in outputs { sources[output.source, default: []].append(output) }
        // Rules whose `to:` has `{hash}`, by the name their records carry.
        var templates: [String: PathTemplate] = [:]
        for rule in manifest.rules where rule.to.hashLength != nil { templates[rule.planName] = rule.to }
        var lines: [String] = ["{", "  \"version\": \(version),", "  \"sources\": {"]
        let sorted = sources.keys.sorted()
        for (index, source) in sorted.enumerated() {
            let records = sources[source]!.sorted { PathKey.ordered($0.path, $1.path) }
            lines.append("    \(quote(source)): {")
            if let size = sourceSizes[source] {
                if let width = size.width, let height = size.height {
                    lines.append("      \"width\": \(width), \"height\": \(height),")
                }
                // Only for an animation: every other index keeps its bytes.
                if size.animated { lines.append("      \"animated\": true,") }
            }
            if let colour = sourceColours[source] { lines.append("      \"color\": \(quote(colour)),") }
            if let dominant = dominants[source] { lines.append("      \"dominant\": \(quote(dominant)),") }
            if let placeholder = placeholders[source] {
                var fields: [String] = []
                if !placeholder.image.isEmpty { fields.append("\"src\": \(quote(placeholder.image))") }
                if !placeholder.thumbhash.isEmpty { fields.append("\"thumbhash\": \(quote(placeholder.thumbhash))") }
                lines.append("      \"placeholder\": {\(fields.joined(separator: ", "))},")
            }
            lines.append("      \"derivatives\": [")
            for (position, record) in records.enumerated() {
                var fields = ["\"path\": \(quote(record.path))", "\"key\": \(quote(key(record.path)))",
                              "\"bucket\": \(quote(bucket(record.path)))", "\"url\": \(quote(url(record.path, manifest: manifest)))",
                              "\"rule\": \(quote(record.rule))"]
                // `logicals`: an index read back says its own (written under an earlier `to:`).
                if let logical = logicals.map({ $0[record.path] }) ?? logicalKey(record, templates: templates) {
                    fields.append("\"logical\": \(quote(logical))")
                }
                if let style = record.style { fields.append("\"style\": \(quote(style))") }
                if !record.matrix.isEmpty {
                    let values = matrix(record.matrix).map { "\(quote($0.0)): \(quote($0.1))" }.joined(separator: ", ")
                    fields.append("\"matrix\": {\(values)}")
                }
                fields += ["\"width\": \(record.width)", "\"height\": \(record.height)",
                           "\"format\": \(quote(record.format))", "\"bytes\": \(record.size)", "\"acl\": \(quote(record.acl))"]
                lines.append("        {" + fields.joined(separator: ", ") + "}" + (position < records.count - 1 ? "," : ""))
            }
            lines.append("      ],")
            let pictures = Picture.sets(records, manifest: manifest, animated: sourceSizes[source]?.animated ?? false)
            lines.append("      \"pictures\": {" + (pictures.isEmpty ? "}" : ""))
            for (position, picture) in pictures.enumerated() {
                lines.append("        \(quote(picture.name)): {")
                var head = ["\"rule\": \(quote(picture.rule))"]
                if let style = picture.style { head.append("\"style\": \(quote(style))") }
                lines.append("          " + head.joined(separator: ", ") + ",")
                lines.append("          \"formats\": [")
                for (at, group) in picture.formats.enumerated() {
                    let candidates = group.candidates.map {
                        "{\"url\": \(quote($0.url)), \"width\": \($0.width), \"height\": \($0.height), \"bytes\": \($0.bytes)}"
                    }.joined(separator: ", ")
                    lines.append("            {\"format\": \(quote(group.format)), \"type\": \(quote(group.type)), \"srcset\": \(quote(group.srcset)), "
                                 + "\"candidates\": [\(candidates)]}" + (at < picture.formats.count - 1 ? "," : ""))
                }
                lines.append("          ],")
                let img = picture.img
                lines.append("          \"img\": {\"src\": \(quote(img.url)), \"width\": \(img.width), \"height\": \(img.height), \"format\": \(quote(picture.fallback.format)), \"srcset\": \(quote(picture.fallback.srcset))},")
                lines.append("          \"sizes\": \(quote(picture.defaultSizes)),")
                lines.append("          \"html\": \(quote(picture.html()))")
                lines.append("        }" + (position < pictures.count - 1 ? "," : ""))
            }
            if !pictures.isEmpty { lines.append("      }") }
            lines.append("    }" + (index < sorted.count - 1 ? "," : ""))
        }
        lines.append("  }")
        lines.append("}")
        return Data((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// A `{hash}` output's key with its hash shown as the placeholder (`img/lake.{hash}.webp`):
    /// the logical name a page looks the output up by; nil for other outputs.
    static func logicalKey(_ record: OutputRecord, templates: [String: PathTemplate]) -> String? {
        guard let template = templates[record.rule], let length = template.hashLength, record.outputDigest.count >= length else { return nil }
        let key = key(record.path)
        guard let found = key.range(of: String(record.outputDigest.prefix(length)), options: .backwards) else { return nil }
        return key.replacingCharacters(in: found, with: template.hashPlaceholder)
    }

    /// The output's address: the bucket's `url:` plus `/` and the key, else `/` and the key (the
    /// bucket's folder served as the site's root); the key percent-encoded so it is one `srcset`
    /// word and a safe attribute value.
    static func url(_ path: String, manifest: Manifest) -> String {
        let base = manifest.bucket(named: bucket(path))?.url ?? ""
        return (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/" + encode(key(path))
    }

    static let plain = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/!$()*+;=:@".utf8)

    static func encode(_ key: String) -> String {
        var result = ""
        for byte in key.utf8 {
            if plain.contains(byte) { result.unicodeScalars.append(Unicode.Scalar(byte)) } else { result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2) }
        }
        return result
    }

    static func legacyJSON(_ outputs: [OutputRecord], manifest: Manifest, indexBucket: String) -> Data {
        var sources: PathDictionary<[OutputRecord]> = [:]
        for output in outputs { sources[output.source, default: []].append(output) }
        var lines: [String] = ["{", "  \"version\": 1,", "  \"sources\": {"]
        let sorted = sources.keys.sorted()
        for (index, source) in sorted.enumerated() {
            let records = sources[source]!.sorted { PathKey.ordered($0.path, $1.path) }
            lines.append("    \(quote(source)): {")
            lines.append("      \"derivatives\": [")
            for (position, record) in records.enumerated() {
                var fields = ["\"path\": \(quote(record.path))", "\"key\": \(quote(key(record.path)))",
                              "\"bucket\": \(quote(bucket(record.path)))", "\"rule\": \(quote(record.rule))",
                              "\"width\": \(record.width)", "\"height\": \(record.height)",
                              "\"format\": \(quote(record.format))", "\"bytes\": \(record.size)", "\"acl\": \(quote(record.acl))"]
                if let style = record.style { fields.append("\"style\": \(quote(style))") }
                if !record.matrix.isEmpty {
                    let values = matrix(record.matrix).map { "\(quote($0.0)): \(quote($0.1))" }.joined(separator: ", ")
                    fields.append("\"matrix\": {\(values)}")
                }
                lines.append("        {" + fields.joined(separator: ", ") + "}" + (position < records.count - 1 ? "," : ""))
            }
            lines.append("      ],")
            // srcset: outputs of one rule in the index's bucket, by width, when the rule has a matrix.
            var groups: [String: [OutputRecord]] = [:]
            for record in records where !record.matrix.isEmpty && bucket(record.path) == indexBucket {
                groups[record.rule, default: []].append(record)
            }
            let srcsets = groups.keys.sorted().map { rule -> String in
                let entries = groups[rule]!.sorted { $0.width < $1.width }.map { "\(key($0.path)) \($0.width)w" }
                return "        \(quote(rule)): \(quote(entries.joined(separator: ", ")))"
            }
            lines.append("      \"srcset\": {" + (srcsets.isEmpty ? "}" : "\n" + srcsets.joined(separator: ",\n") + "\n      }"))
            lines.append("    }" + (index < sorted.count - 1 ? "," : ""))
        }
        lines.append("  }")
        lines.append("}")
        return Data((lines.joined(separator: "\n") + "\n").utf8)
    }

    static func bucket(_ path: String) -> String { PathKey.bucket(of: path) }
    static func key(_ path: String) -> String { PathKey.key(of: path) }

    static func matrix(_ text: String) -> [(String, String)] {
        text.split(separator: ",").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
    }

    static func quote(_ text: String) -> String { JSONText.string(text) }
}
