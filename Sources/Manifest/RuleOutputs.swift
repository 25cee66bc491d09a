import ProcessLanguage

/// The object keys the manifest's rules may write, per bucket: a superset computed from each
/// rule's output template (styles, matrix values and formats substituted). The server treats
/// such keys as derivatives even when no build state says so, so a lost state never publishes
/// or hands out a private derivative.
public struct RuleOutputs: Sendable {
    let patterns: [String: [LoosePattern]]

    public init(_ manifest: Manifest) {
        var patterns: [String: [LoosePattern]] = [:]
        for rule in manifest.rules {
            // A recipe that does not expand leaves its values unknown: the patterns only widen.
            let variants = (try? rule.variants(catalogue: manifest.catalogue)) ?? []
            let recipes = variants.map { variant -> (values: [String: String], pipeline: Pipeline?) in
                var values = variant.values
                if let style = variant.style { values["style"] = style }
                return (values, variant.pipeline)
            }
            patterns[rule.targetBucket, default: []] += OutputPatterns.of(rule.to, from: rule.from, recipes: recipes)
        }
        self.patterns = patterns
    }

    /// Buckets some rule writes into.
    public var buckets: Set<String> { Set(patterns.keys) }

    /// Whether a rule of the manifest may write `key` of `bucket`.
    public func mayProduce(bucket: String, key: String) -> Bool {
        patterns[bucket]?.contains { $0.matches(key) } ?? false
    }
}
