import Confinement
import Foundation
import Manifest

extension Planner {
    /// Why `output` (`bucket/key`), a name a rule's `to:` gives a variant as written, is not in
    /// `plan`: the source is narrower than the width the variant asks for, and the variant is
    /// built at the source's own width under another name (`site/p-960.webp` of an 800 px
    /// `images/p.jpg` is `site/p-800.webp`: attack 46's low "upw", where explain called it "not an
    /// output" and said no more). Nil when no variant of a planned source is written so.
    public func narrowedAway(_ output: String, plan: Plan) -> String? {
        let catalogue = manifest.catalogue
        var looked: Set<String> = []
        for item in plan.items where item.kind != .delete {
            guard let derivative = item.derivative, derivative.hashed == nil,
                  looked.insert(derivative.rule + "\u{0}" + derivative.source).inserted,
                  PathKey.same(PathKey.bucket(of: derivative.output), PathKey.bucket(of: output)),
                  let rule = manifest.rules.first(where: { $0.planName == derivative.rule }), rule.to.hashLength == nil,
                  let variants = try? rule.variants(catalogue: catalogue), let (_, key) = PathKey.split(derivative.source),
                  let content = try? digests.content(of: derivative.sourcePath), content.width > 0 else { continue }
            let bucket = PathKey.bucket(of: derivative.output)
            for variant in variants {
                let written = bucket + "/" + rule.to.render(Expansion.templateValues(key: key, variant: variant, format: content.format))
                guard PathKey.same(written, output),
                      let width = Expansion.coveredWidth(variant, sourceWidth: content.width),
                      let values = Expansion.narrowedValues(variant, sourceWidth: content.width) else { continue }
                guard let standing = plan.items.first(where: { other in
                    guard other.kind != .delete, let built = other.derivative else { return false }
                    return built.rule == derivative.rule && PathKey.same(built.source, derivative.source) && built.values == values && built.style == variant.style
                }) else { continue }
                var parts: [String] = []
                if let style = variant.style { parts.append("style '\(style)'") }
                if !variant.values.isEmpty { parts.append(variant.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")) }
                let named = parts.isEmpty ? "rule \(derivative.rule)" : "the variant \(parts.joined(separator: ", ")) of rule \(derivative.rule)"
                return "its source \(derivative.source) is \(content.width) px wide, narrower than the \(width) px \(named) asks for, "
                    + "so that variant is drawn at the source's own width and built as \(standing.output) (the index lists it at that width)"
            }
        }
        return nil
    }

    /// Why `derivative`, a variant a narrower source would rename, is planned under its name as
    /// written (`site/a-960.webp` of an 800 px source, drawn at 800 px): the name narrowing gives
    /// (`site/a-800.webp`) is another derivative's in `plan` (named by its recipe), or another
    /// manifest's. Nil when narrowing does not rename it.
    public func keptAsWritten(_ derivative: Derivative, plan: Plan) -> String? {
        guard derivative.hashed == nil, let rule = manifest.rules.first(where: { $0.planName == derivative.rule }),
              let variants = try? rule.variants(catalogue: manifest.catalogue), let (_, key) = PathKey.split(derivative.source),
              let content = try? digests.content(of: derivative.sourcePath), content.width > 0,
              let index = variants.firstIndex(where: { $0.values == derivative.values && $0.style == derivative.style && $0.pipeline.canonical == derivative.components.pipeline })
        else { return nil }
        let narrowing = Expansion.narrowing(variants, canonicals: variants.map(\.pipeline.canonical), sourceWidth: content.width)
        guard let standing = narrowing.renamed.first(where: { $0.value.contains(index) })?.key, let (variant, _) = narrowing.planned[standing],
              let width = Expansion.coveredWidth(variants[index], sourceWidth: content.width) else { return nil }
        let name = PathKey.bucket(of: derivative.output) + "/" + rule.to.render(Expansion.templateValues(key: key, variant: variant, format: content.format))
        let owner = plan.items.first { $0.kind != .delete && PathKey.same($0.output, name) }?.derivative.map { "\($0.recipe)'s output" }
            ?? unreadableNeighbour?().map { "taken while a manifest beside this one cannot be read, so what it writes is unknown (\($0)); fix it and build again" }
            ?? "another manifest's output"
        return "its source \(derivative.source) is \(content.width) px wide, narrower than \(width) px: drawn at \(content.width) px, "
            + "under its name as written, since \(name), the name that width would give it, is \(owner)"
    }
}
