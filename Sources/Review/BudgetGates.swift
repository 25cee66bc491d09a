import Builder
import Confinement
import Foundation
import Manifest

/// The rules' `budget:` as gates of `derive diff --fail-on`: a change that makes an output
/// cross its rule's budget (in the new revision) fails the review as a crossed condition does.
public enum BudgetGates {
    /// Adds budget failures to the entries (after `Gates.apply`); returns the outputs newly
    /// failed, those over budget, and the rules whose totals are over `max_total_bytes`.
    /// A `budget` entry (unchanged, judged when rendered) already carries its breach.
    public static func apply(to review: inout Review, after: ReviewSide) -> Gates.Outcome {
        var outcome = Gates.Outcome()
        var changedBytes: PathDictionary<Int64> = [:]   // output → bytes after, for the totals
        for g in review.groups.indices {
            for e in review.groups[g].entries.indices {
                var entry = review.groups[g].entries[e]
                if let bytes = entry.bytesAfter { changedBytes[entry.output] = bytes }
                guard entry.kind != .deleted, entry.kind != .failed, entry.kind != .budget, let derivative = after.derivatives[entry.output],
                      let budget = OutputBudget.budget(of: derivative, in: after.manifest) else { continue }
                let before = entry.gateFailures.count
                if let maxBytes = budget.maxBytes, let bytes = entry.bytesAfter, bytes > maxBytes {
                    entry.gateFailures.append("budget: bytes \(bytes) > max_bytes \(maxBytes)")
                }
                if let minSSIM = budget.minSSIM, let ssim = entry.referenceSSIM, ssim < minSSIM {
                    entry.gateFailures.append(String(format: "budget: SSIM %.4f against the lossless reference < min_ssim %@", ssim, "\(minSSIM)"))
                }
                if entry.gateFailures.count > before { outcome.overBudget += 1 }
                if before == 0, !entry.gateFailures.isEmpty { outcome.outputs += 1 }
                review.groups[g].entries[e] = entry
            }
        }
        // With --sample, a changed output left unrendered counts at its estimate, as the Total
        // counts it: never at 0 (a sample must not pass a budget the whole change breaks).
        var estimated: Set<String> = []
        for (output, bytes) in sampleEstimates(review) where changedBytes[output] == nil {
            changedBytes[output] = bytes
            estimated.insert(output)
        }
        // A rule's total after the change: the new renders, and the recorded sizes of the
        // outputs the change leaves alone. Unknown sizes (no render, no record) are not counted.
        var totals: [String: Int64] = [:]
        var estimatedRules: Set<String> = []
        for (output, derivative) in after.derivatives {
            let bytes = changedBytes[output] ?? after.recorded[output].flatMap { $0.actionKey == derivative.actionKey ? $0.size : nil }
            totals[derivative.rule, default: 0] += bytes ?? 0
            if estimated.contains(output) { estimatedRules.insert(derivative.rule) }
        }
        var total: [String] = []
        for rule in after.manifest.rules {
            guard let limit = rule.budget?.maxTotalBytes, let bytes = totals[rule.planName], bytes > limit else { continue }
            let how = estimatedRules.contains(rule.planName) ? " (estimated from a sample)" : ""
            total.append("budget: \(RuleName.described(rule.planName)) takes \(bytes) bytes, over max_total_bytes \(limit)\(how)")
        }
        outcome.budgetTotal = total
        return outcome
    }

    /// Bytes after of the created and rebuilt outputs `--sample` left unrendered: a rebuilt one
    /// at its own bytes before times its group's rendered after/before ratio, else (created, or
    /// no ratio) at the group's mean rendered size, else at its bytes before.
    static func sampleEstimates(_ review: Review) -> [String: Int64] {
        guard review.rendered else { return [:] }
        var estimates: [String: Int64] = [:]
        for group in review.groups {
            let live = group.entries.filter { $0.failure == nil && ($0.kind == .created || $0.kind == .rebuilt) }
            let pairs = live.filter { $0.kind == .rebuilt && $0.bytesAfter != nil && ($0.bytesBefore ?? 0) > 0 }
            let before = pairs.reduce(Int64(0)) { $0 + $1.bytesBefore! }, after = pairs.reduce(Int64(0)) { $0 + $1.bytesAfter! }
            let ratio = before > 0 ? Double(after) / Double(before) : nil
            let sizes = live.compactMap(\.bytesAfter)
            let mean = sizes.isEmpty ? nil : sizes.reduce(0, +) / Int64(sizes.count)
            for entry in live where entry.bytesAfter == nil {
                let scaled = ratio.flatMap { ratio in entry.bytesBefore.map { Int64((Double($0) * ratio).rounded()) } }
                if let bytes = scaled ?? mean ?? entry.bytesBefore { estimates[entry.output] = bytes }
            }
        }
        return estimates
    }
}
