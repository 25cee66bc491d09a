import Foundation
import Manifest

/// An output a source that failed before anything was rendered would have given (not an image,
/// cut short, not readable): the failure line named the source and a count, never its outputs,
/// and `explain` called them "not an output" (attack 53c's F4). Named as the rule writes them:
/// the source's width is not known, so narrowing is not applied; a `{hash}` name is its logical
/// name (`out/a.{hash}.webp`).
public struct FailedOutput: Sendable, Hashable {
    /// `bucket/key`.
    public var output: String
    /// What would have made it, as a derivative's `recipe` says it: `thumbs (w=100)`.
    public var recipe: String
}

extension Expansion {
    /// Each output `context`'s rule gives the source `key`, one per variant, in the rule's order.
    static func failedOutputs(_ context: RuleContext, key: String) -> [FailedOutput] {
        let to = context.rule.to
        return context.variants.map { variant in
            var values = templateValues(key: key, variant: variant, format: "")
            let outputKey: String
            if let length = to.hashLength {
                values["hash"] = "\u{0}"
                let marked = to.render(values)
                let cut = marked.firstIndex(of: "\u{0}") ?? marked.endIndex
                outputKey = HashedName(prefix: String(marked[..<cut]), suffix: String(marked[cut...].dropFirst()),
                                       length: length, placeholder: to.hashPlaceholder).logicalKey
            } else {
                outputKey = to.render(values)
            }
            var parts: [String] = []
            if let style = variant.style { parts.append("style '\(style)'") }
            if !variant.values.isEmpty { parts.append(variant.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")) }
            return FailedOutput(output: "\(context.targetBucket.name)/\(outputKey)",
                                recipe: parts.isEmpty ? context.ruleName : "\(context.ruleName) (\(parts.joined(separator: ", ")))")
        }
    }
}
