import Foundation
import Planner

/// The review as text for a terminal (colours only when asked) and as JSON.
public enum ReviewText {
    public static func text(_ review: Review, colour: Bool) -> String {
        func paint(_ text: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
        func sign(_ kind: String) -> String {
            switch kind {
            case "added", "created": return paint("+", "32")
            case "removed", "deleted": return paint("-", "31")
            default: return paint("~", "33")
            }
        }
        var lines = ["derive diff \(review.manifest): \(review.before) → \(review.after)"]
        if review.isEmpty {
            lines.append("No changes: the two revisions render the same outputs.")
            return lines.joined(separator: "\n") + "\n"
        }
        if !review.styles.isEmpty {
            lines.append("Styles:")
            for style in review.styles {
                switch style.kind {
                case .added: lines.append("  \(sign("added")) \(style.name): \(style.after ?? "")")
                case .removed: lines.append("  \(sign("removed")) \(style.name): \(style.before ?? "")")
                case .changed: lines.append("  \(sign("changed")) \(style.name): \(Planner.pipelineChangeText(style.before ?? "", style.after ?? ""))")
                }
            }
        }
        if !review.rules.isEmpty {
            lines.append("Rules:")
            for rule in review.rules {
                lines.append("  \(sign(rule.kind.rawValue)) rule '\(rule.name)' \(rule.kind.rawValue)")
                for change in rule.changes { lines.append("      \(change)") }
            }
        }
        if !review.groups.isEmpty { lines.append("Outputs:") }
        for group in review.groups {
            let counts = [Review.Entry.Kind.created, .rebuilt, .deleted].compactMap { kind -> String? in
                let n = group.entries.filter { $0.kind == kind }.count
                return n == 0 ? nil : "\(n) \(kind.rawValue)"
            }
            let before = group.entries.reduce(Int64(0)) { $0 + ($1.bytesBefore ?? 0) }
            var head = "  \(group.title): \(counts.joined(separator: ", ")); bytes \(before)"
            if review.rendered { head += " → \(group.entries.reduce(Int64(0)) { $0 + ($1.bytesAfter ?? 0) })" }
            lines.append(head)
            for entry in group.entries {
                var line = "    \(sign(entry.kind.rawValue)) \(entry.output)  "
                switch entry.kind {
                case .created: line += "\(entry.after ?? "")"
                case .deleted: line += "\(entry.before ?? "")"
                case .rebuilt: line += Planner.pipelineChangeText(entry.before ?? "", entry.after ?? "")
                }
                line += "  " + bytes(entry, rendered: review.rendered)
                if let size = sizes(entry) { line += "  " + size }
                if let ssim = entry.ssim { line += String(format: "  SSIM %.4f", ssim) }
                if let note = entry.note { line += "  (\(note))" }
                for failure in entry.gateFailures { line += "  " + paint("FAIL \(failure)", "31") }
                lines.append(line)
            }
        }
        let t = review.totals
        var total = "Total: \(t.created) created, \(t.rebuilt) rebuilt, \(t.deleted) deleted; "
        total += t.sampledOutputs.map { "bytes of the \($0) rendered (--sample) " } ?? "bytes "
        total += "\(t.bytesBefore) → "
        total += t.bytesAfter.map { "\($0)\(percent(t.bytesBefore, $0))" } ?? "not rendered"
        lines.append(total + ".")
        return lines.joined(separator: "\n") + "\n"
    }

    static func bytes(_ entry: Review.Entry, rendered: Bool) -> String {
        let before = entry.bytesBefore.map(String.init) ?? (entry.kind == .created ? "none" : "unknown")
        let after: String
        switch entry.kind {
        case .deleted: after = "none"
        default: after = entry.bytesAfter.map { "\($0)" + percent(entry.bytesBefore, $0) } ?? "not rendered"
        }
        return "bytes \(before) → \(after)"
    }

    static func sizes(_ entry: Review.Entry) -> String? {
        switch (entry.sizeBefore, entry.sizeAfter) {
        case (nil, nil): return nil
        case (let a?, let b?): return a == b ? "\(a)" : "\(a) → \(b)"
        case (let a?, nil): return "\(a)"
        case (nil, let b?): return "\(b)"
        }
    }

    /// ` (+12.5%)` when both sides are known and the old one is not empty.
    static func percent(_ before: Int64?, _ after: Int64) -> String {
        guard let before, before > 0 else { return "" }
        let change = (Double(after) - Double(before)) / Double(before) * 100
        return String(format: " (%@%.1f%%)", change >= 0 ? "+" : "", change)
    }

    public static func json(_ review: Review) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(review)
    }
}
