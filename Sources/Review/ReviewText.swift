import Confinement
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
            case "failed", "budget": return paint("!", "31")
            default: return paint("~", "33")
            }
        }
        var lines = [clean("derive diff \(review.manifest): \(review.before) → \(review.after)")]
        if review.isEmpty {
            lines.append("No changes: the two revisions render the same outputs.")
            return lines.joined(separator: "\n") + "\n"
        }
        if !review.buckets.isEmpty {
            lines.append("Buckets:")
            for bucket in review.buckets {
                lines.append("  \(sign(bucket.kind.rawValue)) bucket '\(clean(bucket.name))' \(bucket.kind.rawValue)")
                for change in bucket.changes { lines.append("      \(clean(change))") }
            }
        }
        if !review.styles.isEmpty {
            lines.append("Styles:")
            for style in review.styles {
                switch style.kind {
                case .added: lines.append("  \(sign("added")) \(clean(style.name)): \(clean(style.after ?? ""))")
                case .removed: lines.append("  \(sign("removed")) \(clean(style.name)): \(clean(style.before ?? ""))")
                case .changed: lines.append("  \(sign("changed")) \(clean(style.name)): \(clean(Planner.pipelineChangeText(style.before ?? "", style.after ?? "")))")
                }
            }
        }
        if !review.rules.isEmpty {
            lines.append("Rules:")
            for rule in review.rules {
                lines.append("  \(sign(rule.kind.rawValue)) rule '\(clean(rule.name))' \(rule.kind.rawValue)")
                for change in rule.changes { lines.append("      \(clean(change))") }
            }
        }
        if !review.groups.isEmpty { lines.append("Outputs:") }
        for group in review.groups {
            let counts = [Review.Entry.Kind.created, .rebuilt, .deleted, .failed, .budget].compactMap { kind -> String? in
                let n = group.entries.filter { $0.kind == kind }.count
                return n == 0 ? nil : "\(n) \(kind == .budget ? "over budget" : kind.rawValue)"
            }
            var counted = group.entries.filter { $0.failure == nil }
            var which = ""
            if review.rendered, review.totals.sampledOutputs != nil,
               counted.contains(where: { $0.kind != .deleted && $0.bytesAfter == nil }) {
                // --sample left some out: the line shows the rendered outputs only, like with like.
                counted = counted.filter { $0.kind != .deleted && $0.bytesAfter != nil }
                which = " of the \(counted.count) rendered"
            }
            let before = counted.reduce(Int64(0)) { $0 + ($1.kind == .created ? 0 : $1.bytesBefore ?? 0) }
            // Without renders an old size nothing records is unknown: so is the group's sum.
            let unknown = !review.rendered && counted.contains { $0.kind != .created && $0.bytesBefore == nil }
            var head = "  \(clean(group.title)): \(counts.joined(separator: ", ")); bytes\(which) \(unknown ? "unknown" : "\(before)")"
            if review.rendered {
                let after = counted.reduce(Int64(0)) { $0 + ($1.kind == .deleted ? 0 : $1.bytesAfter ?? 0) }
                head += " → \(after)\(which.isEmpty ? "" : percent(before, after))"
            }
            lines.append(head)
            for entry in group.entries {
                var line = "    \(sign(entry.kind.rawValue)) \(clean(entry.outputBefore.map { "\($0) → " } ?? ""))\(clean(entry.output))  "
                switch entry.kind {
                case .created: line += clean(entry.after ?? "")
                case .failed where entry.before != nil && entry.after != nil:
                    // What it had, and what the new revision fails to make.
                    line += clean(Planner.pipelineChangeText(entry.before!, entry.after!))
                case .deleted, .failed, .budget: line += clean(entry.before ?? entry.after ?? "")
                case .rebuilt: line += clean(Planner.pipelineChangeText(entry.before ?? "", entry.after ?? ""))
                }
                if let failure = entry.failure, entry.gateFailures.isEmpty {
                    line += "  " + paint(entry.kind == .budget ? clean(failure) : "fails to build: \(clean(failure))", "31")
                }
                line += "  " + bytes(entry, rendered: review.rendered)
                if let size = sizes(entry) { line += "  " + size }
                if let ssim = entry.ssim { line += String(format: "  SSIM %.4f", ssim) }
                if let note = entry.note { line += "  (\(clean(note)))" }
                for failure in entry.gateFailures { line += "  " + paint("FAIL \(clean(failure))", "31") }
                lines.append(line)
            }
        }
        let t = review.totals
        var total = "Total: \(t.created) created, \(t.rebuilt) rebuilt, \(t.deleted) deleted"
        if t.failed > 0 { total += ", \(t.failed) failing" }
        if t.budget > 0 { total += ", \(t.budget) over budget" }
        total += "; "
        if let sampled = t.sampledOutputs {
            total += t.estimated ? "bytes (estimated from the \(sampled) rendered, --sample) " : "bytes (\(sampled) rendered, --sample) "
        } else {
            total += "bytes "
        }
        total += "\(t.bytesBefore.map(String.init) ?? "unknown") → "
        total += t.bytesAfter.map { "\($0)\(percent(t.bytesBefore, $0))" } ?? "not rendered"
        if t.estimated, t.estimateTrusted == false, let before = t.renderedBytesBefore, let after = t.renderedBytesAfter {
            total += "; no estimate can be trusted (an output of unknown size was not rendered): the rendered ones alone \(before) → \(after)\(percent(before, after))"
        }
        lines.append(total + ".")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` with control characters (ESC, BEL, …) shown as `\u{1B}`: a hostile file name
    /// must not retitle or recolour the reviewer's terminal (`TerminalText`, as every command).
    public static func clean(_ text: String) -> String { TerminalText.escaped(text) }

    static func bytes(_ entry: Review.Entry, rendered: Bool) -> String {
        let before = entry.bytesBefore.map(String.init) ?? (entry.kind == .created ? "none" : "unknown")
        let after: String
        switch entry.kind {
        case .deleted, .failed: after = "none"
        case .budget: return "bytes \(entry.bytesAfter.map(String.init) ?? "unknown") (unchanged)"
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
