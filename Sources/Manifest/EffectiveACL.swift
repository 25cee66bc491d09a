import ProcessLanguage

/// The one definition of an object's effective ACL (the handbook's Authorisation rule: every
/// object a request reads is checked against the requester with the effective ACL from one
/// shared definition). `derive serve` applies it to every object a request reads (GET, HEAD,
/// Range, listings, `x-oss-process` sources, watermark objects, website index and error
/// documents), and the build to the outputs an index may list and to the index itself.
///
/// An object's ACL is never more public than what a rule that may write its key gives (attack
/// 18's F1/F1b: a private rule's old `{hash}` output that a build "left in place", with no record
/// any more, was served with its public bucket's ACL and listed). So:
/// - a built output: the more private of the ACL its build recorded and what its rule gives it
///   now (`Rule.derivativeACL`; a rule gone: the bucket's object ACL for the key), attack 17's N6;
/// - any key a rule's output template can give (`to:` with its styles and matrix values and its
///   format's extension, `{hash}` any run of hex digits, so an output of an earlier recipe or
///   hash length counts, `{name}`, `{dir}` and `{key}` what `from:` can pick): also at most that
///   rule's derivative ACL. For a rule
///   without `acl:` and a source not known (no record), that is the most private ACL its source
///   bucket gives a key `from:` can match;
/// - a key the lock lists but no record holds and no rule's template gives (an output of a rule
///   since renamed or removed): private, since nothing says whose it is;
/// - else the bucket's `objects:` rules (first match), then the bucket's ACL;
/// - and whatever the above: never more public than the ACL a build left a file at that key
///   under (the lock's `left` lines: an old output or old index a build left in place instead of
///   deleting it keeps its ACL until the file is gone, whatever the manifest says now: rounds
///   19's V1 and V2).
///
/// Templates are compiled once per manifest (`init`): serve builds one per manifest load.
public struct EffectiveACL: Sendable {
    public let manifest: Manifest
    /// Per bucket: the rules writing into it (indices into `manifest.rules`) with the patterns of
    /// the keys each may write.
    let writers: [String: [Writer]]
    /// Rules by plan name (the first of a name), buckets by name.
    let rulesByName: [String: Int]
    let buckets: [String: Bucket]

    struct Writer: Sendable {
        var rule: Int
        var patterns: [LoosePattern]
        /// What the rule gives a derivative whose source is not known.
        var acl: BucketACL
        /// The keys of its outputs narrowed to a source's own width (`a-1200.webp` for `w: 9000`,
        /// a 1200 px source: README "Widths are not repeated"): each matrix value that names the
        /// width of a leading `resize,w_N` any value. Only for saying why a key is refused.
        var narrowed: [LoosePattern] = []
    }

    /// What the build recorded of one output: its ACL, and the rule (its plan name, nil in
    /// records that did not keep it) and source (`bucket/key`) it was built by and from.
    public struct Built: Sendable, Hashable {
        public var acl: BucketACL
        public var rule: String?
        public var source: String

        public init(acl: BucketACL, rule: String?, source: String) {
            self.acl = acl; self.rule = rule; self.source = source
        }
    }

    public init(_ manifest: Manifest) {
        self.manifest = manifest
        var writers: [String: [Writer]] = [:]
        let anyExtension = Format.Kind.allCases.map(\.fileExtension)
        let catalogue = manifest.catalogue
        for (index, rule) in manifest.rules.enumerated() {
            let keys = OutputPatterns.keyAlternatives(rule.from)
            // Styles and matrix values as the rule has them now (a recipe that does not expand, or
            // too many: any text within a folder), `{ext}` its format (gif: any), `{hash}` any run.
            var recipes = ((try? rule.variants(catalogue: catalogue)) ?? []).map { variant -> (values: [String: String], pipeline: Pipeline?, widthNames: Set<String>?) in
                var values = variant.values
                if let style = variant.style { values["style"] = style }
                return (values, variant.pipeline, variant.widthNames)
            }
            // `json` is an `{ext}` only of recipes answering with JSON (`info`, `average-hue`).
            let answersJSON = recipes.contains { $0.pipeline?.answersJSON == true }
            if recipes.isEmpty || recipes.count > OutputPatterns.maxRecipes { recipes = [([:], nil, nil)] }
            var patterns: [LoosePattern] = [], narrowed: [LoosePattern] = []
            for (values, pipeline, widthNames) in recipes {
                var extensions = anyExtension + (pipeline == nil && answersJSON ? ["json"] : [])
                if pipeline?.answersJSON == true { extensions = ["json"] }
                else if let format = pipeline?.outputFormat, format != .gif { extensions = [format.fileExtension] }
                for pattern in OutputPatterns.of(rule.to, keyAlternatives: keys, values: values, extensions: extensions, hash: .anyLength)
                where !patterns.contains(pattern) {
                    patterns.append(pattern)
                }
                if let widthNames, !widthNames.isEmpty {
                    let open = values.filter { !widthNames.contains($0.key) }
                    for pattern in OutputPatterns.of(rule.to, keyAlternatives: keys, values: open, extensions: extensions, hash: .anyLength, anyValues: true)
                    where !narrowed.contains(pattern) {
                        narrowed.append(pattern)
                    }
                }
            }
            writers[rule.targetBucket, default: []].append(Writer(rule: index, patterns: patterns, acl: Self.unknownSourceACL(rule, manifest),
                                                                  narrowed: narrowed))
        }
        self.writers = writers
        var rulesByName: [String: Int] = [:]
        for (index, rule) in manifest.rules.enumerated() where rulesByName[rule.planName] == nil { rulesByName[rule.planName] = index }
        self.rulesByName = rulesByName
        self.buckets = Dictionary(manifest.buckets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The ACL `rule` gives a derivative of a source not known: its `acl:`, else the most private
    /// its source bucket gives any key its `from:` may match (the `objects:` rules that may
    /// match such a key, first match winning, then the bucket's ACL for keys none of them
    /// surely takes). A source bucket not in the manifest: private.
    static func unknownSourceACL(_ rule: Rule, _ manifest: Manifest) -> BucketACL {
        if let acl = rule.acl { return acl }
        guard let source = manifest.bucket(named: rule.sourceBucket) else { return .private }
        var result: BucketACL = .publicReadWrite
        for from in rule.from.loose {
            var covered = false
            for object in source.objects where object.match.loose.contains(where: { $0.intersects(from) }) {
                result = .morePrivate(result, object.acl.resolved(bucket: source.acl))
                // Every key of this alternative meets this rule first: later ones and the bucket's ACL never apply.
                if object.match.loose.contains(where: { from.isCovered(by: $0) }) { covered = true; break }
            }
            if !covered { result = .morePrivate(result, source.acl) }
        }
        return rule.from.loose.isEmpty ? source.acl : result
    }

    /// The rules whose output template can give `key` of `bucket`.
    public func writingRules(bucket: String, key: String) -> [Rule] {
        matchingWriters(bucket: bucket, key: key) { _ in true }.map { manifest.rules[$0.rule] }
    }

    /// The writers of `bucket` that `include` keeps and whose templates give `key` (the key is
    /// made a pattern only when some writer is left to match).
    func matchingWriters(bucket: String, key: String, _ include: (Writer) -> Bool) -> [Writer] {
        let candidates = (writers[bucket] ?? []).filter(include)
        guard !candidates.isEmpty else { return [] }
        let literal = LoosePattern(LoosePattern.literal(key))
        return candidates.filter { writer in writer.patterns.contains { $0.intersects(literal) } }
    }

    /// The effective ACL of `key` of `bucket`: `built` is the build's record of it (nil when
    /// none), `lockListed` whether the lock names it (asked only without a record), `left` the
    /// ACL a build left a file there under (the lock's `left` line): never more public than that.
    public func of(_ bucket: Bucket, key: String, built: Built? = nil, lockListed: Bool = false, left: BucketACL? = nil) -> BucketACL {
        let acl = withoutLeft(bucket, key: key, built: built, lockListed: lockListed)
        return left.map { .morePrivate(acl, $0) } ?? acl
    }

    func withoutLeft(_ bucket: Bucket, key: String, built: Built?, lockListed: Bool) -> BucketACL {
        var acl: BucketACL
        var exactRule: Int?
        if let built {
            acl = built.acl
            if let name = built.rule {
                let (rule, now) = derivativeACL(rule: name, source: built.source)
                acl = .morePrivate(acl, now ?? bucket.effectiveACL(of: key))
                // That rule's ACL for this very source is known: its unknown-source bound does not apply.
                if now != nil { exactRule = rule }
            }
        } else {
            acl = bucket.effectiveACL(of: key)
        }
        if built == nil, lockListed {
            // The lock's line is some rule's output: that rule's ACL; no rule's: private.
            let matching = matchingWriters(bucket: bucket.name, key: key) { _ in true }
            guard !matching.isEmpty else { return .private }
            return matching.reduce(acl) { .morePrivate($0, $1.acl) }
        }
        // Only writers that would make it more private are matched (most keys meet none).
        let current = acl
        for writer in matchingWriters(bucket: bucket.name, key: key, { $0.rule != exactRule && $0.acl.openness < current.openness }) {
            acl = .morePrivate(acl, writer.acl)
        }
        return acl
    }

    /// For a key the lock lists that no rule's template gives: the ACL it would have as the output
    /// of a rule narrowed to its source's width (`Writer.narrowed`), as a record of it would make
    /// it; nil when no rule's narrowed outputs can have that key. Only to say why a key is
    /// refused without a build state (attack 42b's L-e: such outputs of a public rule were said
    /// private "because of bucket acl"): the effective ACL without a record stays private.
    public func narrowedOutputACL(_ bucket: Bucket, key: String) -> BucketACL? {
        let literal = LoosePattern(LoosePattern.literal(key))
        let matching = (writers[bucket.name] ?? []).filter { writer in writer.narrowed.contains { $0.intersects(literal) } }
        guard !matching.isEmpty else { return nil }
        return matching.reduce(bucket.effectiveACL(of: key)) { .morePrivate($0, $1.acl) }
    }

    /// `Manifest.derivativeACL(rule:source:)` with the rule found by its plan name in a table:
    /// the rule's index and the ACL, nil when no rule has that name or the source's bucket is gone.
    func derivativeACL(rule name: String, source: String) -> (Int?, BucketACL?) {
        guard let index = rulesByName[name] else { return (nil, nil) }
        let rule = manifest.rules[index]
        guard let slash = source.firstIndex(of: "/"), let bucket = buckets[String(source[..<slash])] else { return (index, nil) }
        return (index, rule.derivativeACL(sourceBucket: bucket, sourceKey: String(source[source.index(after: slash)...])))
    }

    /// The ACL of the output `outputKey` that `rule` writes from `sourceKey` of `sourceBucket`:
    /// `Rule.derivativeACL`, at most what every other rule that may write the same key gives.
    /// What the build records and the index lists.
    /// `ruleACL`: `Rule.derivativeACL` of that source when the caller has it already.
    public func derivative(_ rule: Rule, sourceBucket: Bucket, sourceKey: String, outputKey: String, ruleACL: BucketACL? = nil) -> BucketACL {
        let own = ruleACL ?? rule.derivativeACL(sourceBucket: sourceBucket, sourceKey: sourceKey)
        // Most buckets have one writer, or none more private: nothing to match then (the no-op
        // build asks per output).
        let index = rulesByName[rule.planName]
        return matchingWriters(bucket: rule.targetBucket, key: outputKey) { $0.rule != index && $0.acl.openness < own.openness }
            .reduce(own) { .morePrivate($0, $1.acl) }
    }

    /// The index's effective ACL (nil without an index or with an unknown bucket).
    public var indexACL: BucketACL? { indexACL(left: nil) }

    /// The index's effective ACL with `left`, the ACL of a file a build left at its key (a lock's
    /// `left` line), if any.
    public func indexACL(left: BucketACL?) -> BucketACL? {
        guard let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) else { return nil }
        return of(bucket, key: index.path, left: left)
    }
}
