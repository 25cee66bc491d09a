import ProcessLanguage

/// The paths the manifest's rules can write, for judging a line of an untrusted lock in a fresh
/// clone: a line may authorise deleting its file only when one rule's `to:` template can give its
/// path. The template is read as any earlier manifest with the same `to:` could have filled it:
/// `{style}` and each matrix variable stand for any value the manifest's syntax allows for them
/// (a width, a format or a style since dropped), `{hash}` for any hash length holding the first
/// digits of the file's own SHA-256, `{name}`, `{dir}` and `{key}` for what the rule's `from:` can
/// pick (`OutputPatterns`). The key's extension must name the line's format (`{ext}` is the format's
/// extension). One rule for `{hash}` names and plain ones; the bytes are checked again at deletion.
public struct LockableOutputs: Sendable {
    /// One rule's `to:`, with the keys its `from:` can give.
    struct Template: Sendable {
        var to: PathTemplate
        var keys: [[LoosePattern.Item]]
        /// Its template's own text (literals, style and matrix values) starts a name with `.`
        /// (`to: out/.thumbs/{name}.{ext}`): only then may one of its paths hold such a name,
        /// since `{key}`, `{dir}` and `{name}` come from sources, whose names never start so.
        var dotNames: Bool
    }

    /// Why a lock line's path is not one Derive can have written, or that it is.
    public enum Verdict: Equatable, Sendable {
        case written
        /// No rule's `to:` gives that path, whatever the values and the extension; `skipped` is
        /// a name in it the source listing skips (`._a1.jpg`), when one is.
        case noTemplate(skipped: String?)
        /// The key's extension does not name the line's format.
        case extensionNotFormat
        /// A `{hash}` template gives its shape, but not with the first digits of its own SHA-256.
        case notItsHash
        /// A template gives its shape, but not for a file of that format (`x.tif` from `{ext}`).
        case notForFormat
    }

    let templates: [String: [Template]]

    public init(_ manifest: Manifest) {
        var templates: [String: [Template]] = [:]
        for rule in manifest.rules {
            var valueSets = ((try? rule.variants(catalogue: manifest.catalogue)) ?? []).map { variant -> [String: String] in
                var values = variant.values
                if let style = variant.style { values["style"] = style }
                return values
            }
            if valueSets.isEmpty { valueSets = [[:]] }
            templates[rule.targetBucket, default: []].append(
                Template(to: rule.to, keys: OutputPatterns.keyAlternatives(rule.from),
                         dotNames: valueSets.contains { Self.givesDotNames(rule.to, values: $0) }))
        }
        self.templates = templates
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

    /// Buckets some rule writes into.
    public var buckets: Set<String> { Set(templates.keys) }

    /// Whether `key` of `bucket`, holding a file of `format` whose SHA-256 is `digest`, is a path
    /// one of the rules could have written, and if not, why.
    public func verdict(bucket: String, key: String, digest: String, format: Format.Kind) -> Verdict {
        let dotted = key.split(separator: "/").first { !sourceListingKeeps($0) }
        let candidates = (templates[bucket] ?? []).filter { dotted == nil || $0.dotNames }
        let anyExtension = Format.Kind.allCases.map(\.fileExtension)
        let shaped = candidates.filter { template in
            OutputPatterns.of(template.to, keyAlternatives: template.keys, values: [:], extensions: anyExtension, hash: .anyLength, anyValues: true)
                .contains { $0.matches(key) }
        }
        let name = key.split(separator: "/").last.map(String.init) ?? key
        let fileExtension = name.lastIndex(of: ".").map { name[name.index(after: $0)...].lowercased() } ?? ""
        guard !shaped.isEmpty else { return .noTemplate(skipped: dotted.map(String.init)) }
        guard Self.fileExtensions(of: format).contains(fileExtension) else { return .extensionNotFormat }
        let extensions = [format.fileExtension]
        for template in shaped {
            guard template.to.hashLength != nil else {
                if OutputPatterns.of(template.to, keyAlternatives: template.keys, values: [:], extensions: extensions, anyValues: true)
                    .contains(where: { $0.matches(key) }) { return .written }
                continue
            }
            // Only the name Derive gives those bytes: the hash slot holds their digest's first digits.
            for length in PathTemplate.hashLengths where digest.count >= length && key.contains(digest.prefix(length)) {
                if OutputPatterns.of(template.to, keyAlternatives: template.keys, values: [:], extensions: extensions, hash: .length(length), anyValues: true)
                    .contains(where: { $0.binding(hash: digest).matches(key) }) { return .written }
            }
        }
        return shaped.contains { $0.to.hashLength != nil } ? .notItsHash : .notForFormat
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
}
