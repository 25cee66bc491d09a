import ProcessLanguage

/// What each rule can write, as (key pattern, format) pairs per bucket: the planner's choice of
/// format for every style and matrix value (the style's `format,` action, else the source's own
/// format, read from the extensions the rule's `from:` names). A line of an untrusted lock may
/// authorise deleting its file only when its key and format are such a pair: a JPEG-only rule
/// never vouches for a `.png` in its output folder.
public struct LockableOutputs: Sendable {
    /// One style and matrix value of a rule: the paths it gives with `{ext}` any format (its
    /// shape), and with `{ext}` each format it writes.
    struct Variant: Sendable {
        var shape: [LoosePattern]
        var byFormat: [Format.Kind: [LoosePattern]]
        /// Its template's own text (literals, style and matrix values) starts a name with `.`
        /// (`to: out/.thumbs/{name}.{ext}`): only then may one of its paths hold such a name,
        /// since `{key}`, `{dir}` and `{name}` come from sources, whose names never start so.
        var dotNames: Bool
    }

    /// Whether `template` with `values` (and any source) gives a folder or file name starting with `.`.
    static func givesDotNames(_ template: PathTemplate, values: [String: String]) -> Bool {
        var text = ""
        for part in template.parts {
            switch part {
            case .literal(let literal): text += literal
            // A source's parts never start a name with a dot; a value not known is taken as text that does not either.
            case .variable(let name): text += values[name] ?? "x"
            }
        }
        return text.split(separator: "/").contains { !sourceListingKeeps($0) }
    }

    /// Whether a key holds a name the source listing skips (`.git`, `._a1.jpg`).
    static func hasDotName(_ key: String) -> Bool { key.split(separator: "/").contains { !sourceListingKeeps($0) } }

    let variants: [String: [Variant]]
    /// Outputs named after a source's own width (`sample-290.webp` for w 480).
    let sourceWidths: SourceWidthOutputs
    /// The `to:` and `from:` of each rule whose `to:` has `{hash}`, by target bucket.
    let hashedRules: [String: [(to: PathTemplate, from: Glob)]]

    public init(_ manifest: Manifest) {
        var variants: [String: [Variant]] = [:]
        let anyExtension = Format.Kind.allCases.map(\.fileExtension)
        for rule in manifest.rules {
            let sourceFormats = Self.sourceFormats(of: rule.from)
            var recipes = ((try? rule.variants(catalogue: manifest.catalogue)) ?? []).map { variant -> (values: [String: String], formats: Set<Format.Kind>) in
                var values = variant.values
                if let style = variant.style { values["style"] = style }
                // format,gif on a non-GIF source keeps the source's format: the same set either way.
                if let format = variant.pipeline.outputFormat, format != .gif { return (values, [format]) }
                return (values, sourceFormats)
            }
            // A recipe that does not expand, or too many to list: values unknown, any format.
            if recipes.isEmpty || recipes.count > OutputPatterns.maxRecipes { recipes = [([:], Set(Format.Kind.allCases))] }
            for (values, formats) in recipes {
                var byFormat: [Format.Kind: [LoosePattern]] = [:]
                for format in formats {
                    byFormat[format] = OutputPatterns.of(rule.to, from: rule.from, values: values, extensions: [format.fileExtension])
                }
                let shape = OutputPatterns.of(rule.to, from: rule.from, values: values, extensions: anyExtension)
                variants[rule.targetBucket, default: []].append(Variant(shape: shape, byFormat: byFormat,
                                                                        dotNames: Self.givesDotNames(rule.to, values: values)))
            }
        }
        self.variants = variants
        sourceWidths = SourceWidthOutputs(manifest)
        var hashed: [String: [(to: PathTemplate, from: Glob)]] = [:]
        for rule in manifest.rules where rule.to.hashLength != nil { hashed[rule.targetBucket, default: []].append((rule.to, rule.from)) }
        hashedRules = hashed
    }

    /// Whether `key` of `bucket` is a name a `{hash}` rule of the manifest gives with some style
    /// and matrix values and some hash length, not only today's: an earlier shape of the manifest
    /// (a width or a style since dropped, `{hash}` since `{hash:8}`), known in a fresh clone only
    /// from its lock line. Its hash slot must hold the first digits of `digest` (the file's own
    /// SHA-256, which the deletion checks again) and its extension must name `format`: a name no
    /// file of a user has by chance, the one Derive gives those bytes.
    public func givesHashedName(bucket: String, key: String, digest: String, format: Format.Kind) -> Bool {
        guard let rules = hashedRules[bucket], !rules.isEmpty else { return false }
        let name = key.split(separator: "/").last.map(String.init) ?? key
        guard let dot = name.lastIndex(of: "."), Self.fileExtensions(of: format).contains(name[name.index(after: dot)...].lowercased()) else { return false }
        let extensions = Array(Self.fileExtensions(of: format))
        for length in PathTemplate.hashLengths where digest.count >= length && key.contains(digest.prefix(length)) {
            for rule in rules {
                let patterns = OutputPatterns.of(rule.to, keyAlternatives: OutputPatterns.keyAlternatives(rule.from), values: [:],
                                                 extensions: extensions, hashLength: length)
                if patterns.contains(where: { $0.binding(hash: digest).matches(key) }) { return true }
            }
        }
        return false
    }

    /// The extensions a file of `format` may have (a lock line's and a `{hash}` name's).
    public static func fileExtensions(of format: Format.Kind) -> Set<String> {
        switch format {
        case .jpg: return ["jpg", "jpeg"]
        case .tiff: return ["tiff", "tif"]
        case .heic: return ["heic", "heif"]
        default: return [format.fileExtension]
        }
    }

    /// Buckets some rule writes into.
    public var buckets: Set<String> { Set(variants.keys) }

    /// The formats the manifest's rules may write under `key` of `bucket` (empty: none) for an
    /// output whose SHA-256 is `digest` (a `{hash:N}` slot must hold its first N digits).
    public func formats(bucket: String, key: String, digest: String? = nil) -> Set<Format.Kind> {
        var result: Set<Format.Kind> = []
        let dotted = Self.hasDotName(key)
        for variant in variants[bucket] ?? [] where !dotted || variant.dotNames {
            for (format, patterns) in variant.byFormat where patterns.contains(where: { Self.bound($0, digest).matches(key) }) { result.insert(format) }
        }
        return result.union(sourceWidths.formats(bucket: bucket, key: key, anyExtension: false, digest: digest))
    }

    /// The formats written by the rules whose `to:` gives `key`'s shape whatever its extension
    /// (empty: no rule's template gives that path at all), for an output whose SHA-256 is
    /// `digest` when one is given.
    public func formatsOfShape(bucket: String, key: String, digest: String? = nil) -> Set<Format.Kind> {
        var result: Set<Format.Kind> = []
        let dotted = Self.hasDotName(key)
        for variant in variants[bucket] ?? [] where (!dotted || variant.dotNames) && variant.shape.contains(where: { Self.bound($0, digest).matches(key) }) {
            result.formUnion(variant.byFormat.keys)
        }
        return result.isEmpty ? sourceWidths.formats(bucket: bucket, key: key, anyExtension: true, digest: digest) : result
    }

    static func bound(_ pattern: LoosePattern, _ digest: String?) -> LoosePattern {
        digest.map { pattern.binding(hash: $0) } ?? pattern
    }

    /// The source formats a `from:` glob can pick, from the extension each alternative ends
    /// with; an alternative whose extension is not literal (`*`, `**`, `*.[jJ]pg`) or names no
    /// image format leaves every format possible (sources are recognised by content).
    public static func sourceFormats(of glob: Glob) -> Set<Format.Kind> {
        var result: Set<Format.Kind> = []
        for alternative in glob.alternatives {
            let name = alternative.split(separator: "/", omittingEmptySubsequences: false).last ?? []
            guard let dot = name.lastIndex(of: "."), dot + 1 < name.endIndex,
                  !name[(dot + 1)...].contains(where: { "*?[]{}".unicodeScalars.contains($0) }) else { return Set(Format.Kind.allCases) }
            var ext = ""
            ext.unicodeScalars.append(contentsOf: name[(dot + 1)...])
            guard let formats = byExtension[ext.lowercased()] else { return Set(Format.Kind.allCases) }
            result.formUnion(formats)
        }
        return result
    }

    static let byExtension: [String: Set<Format.Kind>] = [
        "jpg": [.jpg], "jpeg": [.jpg], "jpe": [.jpg], "jfif": [.jpg],
        "png": [.png], "gif": [.gif], "webp": [.webp], "bmp": [.bmp], "dib": [.bmp],
        "tif": [.tiff], "tiff": [.tiff],
        // One container: the brand inside, not the name, says HEVC or AV1.
        "heic": [.heic, .avif], "heif": [.heic, .avif], "hif": [.heic, .avif], "avif": [.heic, .avif],
    ]
}
