import Builder
import Confinement
import Foundation
import Manifest
import Planner

/// Outputs a change leaves as they are, of a rule whose budget it changes (a lowered
/// `max_bytes`, a raised `min_ssim`): the next build judges them against the new budget and
/// fails, so the review judges them too, the same way.
public enum UnchangedBudgets {
    /// Outputs with the same name and action key on both sides, of a rule (present on both
    /// sides) whose budget differs and has a per-output limit in the new revision, by name.
    public static func candidates(before: ReviewSide, after: ReviewSide) -> [Derivative] {
        let old = Dictionary(before.manifest.rules.map { ($0.planName, $0.budget) }, uniquingKeysWith: { a, _ in a })
        var changed: [String: RuleBudget] = [:]
        for rule in after.manifest.rules {
            guard let budget = rule.budget, budget.maxBytes != nil || budget.minSSIM != nil,
                  let was = old[rule.planName], was != budget else { continue }
            changed[rule.planName] = budget
        }
        guard !changed.isEmpty else { return [] }
        return after.derivatives.values.filter { derivative in
            changed[derivative.rule] != nil && before.derivatives[derivative.output]?.actionKey == derivative.actionKey
        }.sorted { PathKey.ordered($0.output, $1.output) }
    }

    /// Why `bytes` and `ssim` breach `budget`, worded against the old budget `was`; empty when
    /// they meet it.
    static func breaches(_ budget: RuleBudget, was: RuleBudget?, bytes: Int64, ssim: Double?) -> [String] {
        var reasons: [String] = []
        if let limit = budget.maxBytes, bytes > limit {
            let old = was?.maxBytes
            let verb = old.map { $0 > limit } ?? true ? "lowered" : "changed"
            reasons.append("budget \(verb): \(bytes) B > max_bytes \(limit) (was \(old.map(String.init) ?? "none"))")
        }
        if let limit = budget.minSSIM, let ssim, ssim < limit {
            let old = was?.minSSIM
            let verb = old.map { $0 < limit } ?? true ? "raised" : "changed"
            reasons.append(String(format: "budget %@: SSIM %.4f against the lossless reference < min_ssim %@ (was %@)",
                                  verb, ssim, "\(limit)", old.map { "\($0)" } ?? "none"))
        }
        return reasons
    }
}

extension ReviewRenderer {
    /// Judges an unchanged output against its rule's new budget as the build would: its bytes
    /// are the built file's (digest-checked against the state's record), or, when the file is
    /// gone or not the one recorded, a render of its (unchanged) recipe; its SSIM is taken
    /// against the lossless reference with the build's own code. Returns a `budget` entry when
    /// it breaches, nil when it meets the budget or its recipe fails on both sides (not this
    /// change's doing). The image goes to the report as `NNNN-new`.
    func judgeUnchanged(_ derivative: Derivative, number: Int, before: ReviewSide, after: ReviewSide,
                        engine: EngineRenderer, report: ReportFolder) -> Review.Entry? {
        guard let budget = OutputBudget.budget(of: derivative, in: after.manifest) else { return nil }
        let was = OutputBudget.budget(of: derivative, in: before.manifest)
        var notes: [String] = []
        let output: Rendered
        var source: Data?
        do {
            if let built = try builtOutput(derivative, recorded: after.recorded[derivative.output]) {
                output = built
            } else {
                let bytes = try readSource(derivative, engine)
                source = bytes
                output = try engine.render(bytes, derivative.pipeline, bucketPath: derivative.bucketPath)
            }
        } catch {
            return nil
        }
        var ssim: Double?
        var unjudged: String?
        if budget.minSSIM != nil {
            do {
                if let source {
                    ssim = try OutputBudget.similarity(output.bytes, width: output.width, height: output.height, source: source,
                                                       derivative: derivative, renderer: engine)
                } else {
                    ssim = try OutputBudget.similarity(ofBuilt: output.bytes, width: output.width, height: output.height,
                                                       derivative: derivative, renderer: engine)
                }
            } catch {
                // The build reports a min_ssim it cannot check as a breach: so does the review.
                unjudged = "budget: min_ssim not checked: \(error)"
            }
        }
        var reasons = UnchangedBudgets.breaches(budget, was: was, bytes: Int64(output.bytes.count), ssim: ssim)
        if let unjudged { reasons.append(unjudged) }
        guard !reasons.isEmpty else { return nil }
        let canonical = derivative.pipeline.canonical
        var entry = Review.Entry(kind: .budget, output: derivative.output, source: derivative.source, before: canonical, after: canonical,
                                 bytesBefore: Int64(output.bytes.count), bytesAfter: Int64(output.bytes.count),
                                 sizeBefore: .init(width: output.width, height: output.height),
                                 sizeAfter: .init(width: output.width, height: output.height))
        entry.referenceSSIM = ssim
        entry.failure = reasons.joined(separator: "; ")
        entry.newImage = write(output.bytes, "images/\(String(format: "%04d", number))-new.\(output.format)", report, notes: &notes)
        if !notes.isEmpty { entry.note = notes.joined(separator: "; ") }
        return entry
    }
}
