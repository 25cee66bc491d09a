import Foundation
import Manifest
import Planner
import ProcessLanguage

/// The JSON index for site generators: per source, its derivatives (path, size, format, bytes,
/// style or matrix values) and, for matrix rules with a width variable, ready `srcset` strings.
enum IndexWriter {
    static func json(_ outputs: [OutputRecord], manifest: Manifest, indexBucket: String) -> Data {
        var sources: [String: [OutputRecord]] = [:]
        for output in outputs { sources[output.source, default: []].append(output) }
        var lines: [String] = ["{", "  \"version\": 1,", "  \"sources\": {"]
        let sorted = sources.keys.sorted()
        for (index, source) in sorted.enumerated() {
            let records = sources[source]!.sorted { $0.path < $1.path }
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

    static func bucket(_ path: String) -> String { String(path.prefix { $0 != "/" }) }
    static func key(_ path: String) -> String { String(path.drop { $0 != "/" }.dropFirst()) }

    static func matrix(_ text: String) -> [(String, String)] {
        text.split(separator: ",").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
    }

    static func quote(_ text: String) -> String { JSONText.string(text) }
}
