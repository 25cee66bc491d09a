import ProcessLanguage

/// The outputs the planner names after a source's own width: a variant whose chain starts with
/// `resize,w_N` (`Pipeline.sourceWidthResize`) draws a source narrower than N once, at its width
/// W, with W in place of N in every matrix value that named it (`sample-290.webp` for w 480).
/// A lock line may name such an output: W is a positive integer below N; any other number, or
/// any other text in its place, is not a path the planner could have given.
struct SourceWidthOutputs: Sendable {
    struct Variant: Sendable {
        var template: PathTemplate
        var from: Glob
        var values: [String: String]
        /// The matrix variables whose value is N.
        var names: [String]
        var width: Int
        var formats: Set<Format.Kind>
    }

    let variants: [String: [Variant]]

    init(_ manifest: Manifest) {
        var variants: [String: [Variant]] = [:]
        for rule in manifest.rules {
            let all = (try? rule.variants(catalogue: manifest.catalogue)) ?? []
            // Beyond this, LockableOutputs already treats the values as unknown text.
            guard all.count <= OutputPatterns.maxRecipes else { continue }
            let sourceFormats = LockableOutputs.sourceFormats(of: rule.from)
            for variant in all {
                guard let width = variant.pipeline.sourceWidthResize, width > 1 else { continue }
                let names = variant.values.filter { $0.value == String(width) }.map(\.key).sorted()
                guard !names.isEmpty else { continue }   // the name does not say the width: the same path
                var values = variant.values
                if let style = variant.style { values["style"] = style }
                let formats: Set<Format.Kind>
                if let format = variant.pipeline.outputFormat, format != .gif { formats = [format] } else { formats = sourceFormats }
                variants[rule.targetBucket, default: []].append(
                    Variant(template: rule.to, from: rule.from, values: values, names: names, width: width, formats: formats))
            }
        }
        self.variants = variants
    }

    /// The formats such an output under `key` of `bucket` may have (`anyExtension`: whatever the
    /// key's extension says, as `LockableOutputs.formatsOfShape`); empty when none gives it.
    func formats(bucket: String, key: String, anyExtension: Bool, digest: String? = nil) -> Set<Format.Kind> {
        guard let candidates = variants[bucket], !candidates.isEmpty else { return [] }
        let widths = Self.numbers(in: key)
        var result: Set<Format.Kind> = []
        for variant in candidates {
            for width in widths where width < variant.width {
                var values = variant.values
                for name in variant.names { values[name] = String(width) }
                for format in variant.formats where !result.contains(format) {
                    let extensions = anyExtension ? Format.Kind.allCases.map(\.fileExtension) : [format.fileExtension]
                    if OutputPatterns.of(variant.template, from: variant.from, values: values, extensions: extensions)
                        .contains(where: { LockableOutputs.bound($0, digest).matches(key) }) {
                        result.insert(format)
                    }
                }
            }
        }
        return result
    }

    /// The positive integers written in `key` as the planner writes a width (digits, no leading 0).
    static func numbers(in key: String) -> Set<Int> {
        var result: Set<Int> = []
        var run = ""
        for character in key + "/" {
            if character.isASCII, character.isNumber { run.append(character); continue }
            if !run.isEmpty, !run.hasPrefix("0"), run.count <= 9, let value = Int(run) { result.insert(value) }
            run = ""
        }
        return result
    }
}
