import Confinement
import Foundation
import ImageSimilarity
import Manifest
import Planner
import ProcessLanguage

/// A rule's `budget:` applied to outputs: by the builder to each render before it is written
/// (a breach fails that output, which is then not written, like a failed render), and by
/// `derive check` / `derive build` to what the state records (`audit`).
public enum OutputBudget {
    public struct Breach: Error, CustomStringConvertible {
        public var description: String
    }

    /// The budget of the rule that makes `derivative` (matched by the name plans use).
    public static func budget(of derivative: Derivative, in manifest: Manifest) -> RuleBudget? {
        manifest.rules.first { $0.planName == derivative.rule }?.budget
    }

    /// Throws a breach when `rendered` is over `max_bytes` or below `min_ssim` against the
    /// lossless reference of the same geometry (rendered by `renderer` from `source`).
    public static func enforce(_ budget: RuleBudget?, derivative: Derivative, rendered: Rendered, source: Data,
                               renderer: any DerivativeRenderer) throws {
        guard let budget else { return }
        let bytes = Int64(rendered.bytes.count)
        if let maxBytes = budget.maxBytes, bytes > maxBytes {
            throw Breach(description: "\(RuleName.described(derivative.rule)): \(derivative.output) is \(bytes) bytes, over its budget max_bytes \(maxBytes); it was not written (lower the quality or the size, or raise the budget)")
        }
        if let minSSIM = budget.minSSIM {
            let ssim = try similarity(rendered.bytes, width: rendered.width, height: rendered.height, source: source,
                                      derivative: derivative, renderer: renderer)
            if ssim < minSSIM {
                throw Breach(description: "\(RuleName.described(derivative.rule)): \(derivative.output) has SSIM \(String(format: "%.4f", ssim)) against a lossless reference, below its budget min_ssim \(minSSIM); it was not written (raise the quality, or lower the budget)")
            }
        }
    }

    /// SSIM of an output against the lossless reference render of its pipeline from `source`.
    public static func similarity(_ output: Data, width: Int, height: Int, source: Data, derivative: Derivative,
                                  renderer: any DerivativeRenderer) throws -> Double {
        let reference: Rendered
        do {
            reference = try renderer.render(source, ImageComparison.referencePipeline(derivative.pipeline), bucketPath: derivative.bucketPath)
        } catch {
            throw Breach(description: "\(RuleName.described(derivative.rule)): \(derivative.output): the reference render for min_ssim failed: \(error)")
        }
        do {
            let (similarity, _) = try ImageComparison.compare(reference.bytes, output, secondWidth: width, secondHeight: height) { bytes, pipeline in
                try renderer.render(bytes, pipeline, bucketPath: derivative.bucketPath).bytes
            }
            return ImageComparison.rounded(similarity.ssim)
        } catch {
            throw Breach(description: "\(RuleName.described(derivative.rule)): \(derivative.output): cannot compare it with its reference for min_ssim: \(error)")
        }
    }

    /// SSIM of an output as built (its file's bytes) against its lossless reference, the
    /// source read inside the renderer's source limit: how `audit` judges an up-to-date output
    /// and how `derive diff` judges one a change leaves alone under a raised `min_ssim`.
    public static func similarity(ofBuilt output: Data, width: Int, height: Int, derivative: Derivative,
                                  renderer: any DerivativeRenderer) throws -> Double {
        let source = try ConfinedFolder.readRegularFile(atPath: derivative.sourcePath, maxBytes: min(renderer.maxSourceBytes, 1 << 30))
        return try similarity(output, width: width, height: height, source: source, derivative: derivative, renderer: renderer)
    }

    /// Every breach among the recorded outputs the plan still wants: up-to-date outputs over
    /// `max_bytes` (built before the budget was lowered), rules whose recorded outputs together
    /// are over `max_total_bytes`, and, with a renderer, up-to-date outputs below `min_ssim`
    /// (the file is read, digest-checked, and compared) except those in `judged` (rendered and
    /// judged by the build that just ran). Stale outputs are the build's to judge.
    public static func audit(_ plan: Plan, manifest: Manifest, renderer: (any DerivativeRenderer)?, judged: PathSet = []) -> [String] {
        var breaches: [String] = []
        var totals: [String: Int64] = [:]
        for item in plan.items where item.kind != .delete {
            guard let derivative = item.derivative, let budget = budget(of: derivative, in: manifest),
                  let record = plan.recorded[item.output] ?? item.recorded else { continue }
            totals[derivative.rule, default: 0] += record.size
            guard item.kind == .upToDate else { continue }
            if let maxBytes = budget.maxBytes, record.size > maxBytes {
                breaches.append("\(item.output): \(record.size) bytes, over the budget max_bytes \(maxBytes) of \(RuleName.described(derivative.rule))")
            }
            if let minSSIM = budget.minSSIM, let renderer, !judged.contains(item.output) {
                do {
                    let output = try ConfinedFolder.readRegularFile(atPath: derivative.outputPath, maxBytes: 1 << 30)
                    guard ContentDigests.digest(output) == record.outputDigest else { continue }   // stale: check reports it already
                    let ssim = try similarity(ofBuilt: output, width: record.width, height: record.height,
                                              derivative: derivative, renderer: renderer)
                    if ssim < minSSIM {
                        breaches.append("\(item.output): SSIM \(String(format: "%.4f", ssim)) against a lossless reference, below the budget min_ssim \(minSSIM) of \(RuleName.described(derivative.rule))")
                    }
                } catch {
                    breaches.append("\(item.output): min_ssim not checked: \(error)")
                }
            }
        }
        for rule in manifest.rules {
            guard let limit = rule.budget?.maxTotalBytes, let total = totals[rule.planName], total > limit else { continue }
            breaches.append("\(RuleName.described(rule.planName)): its outputs take \(total) bytes together, over the budget max_total_bytes \(limit)")
        }
        return breaches
    }
}
