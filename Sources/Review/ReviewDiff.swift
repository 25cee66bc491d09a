import Confinement
import Builder
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import Planner
import ProcessLanguage

/// One side of a review: a manifest as it was (or is) and the outputs the planner expands it to.
public struct ReviewSide: Sendable {
    public var manifest: Manifest
    /// Output (`bucket/key`) → the derivative that makes it.
    public var derivatives: PathDictionary<Derivative>
    /// The build state's records (output → record), read-only.
    public var recorded: PathDictionary<OutputRecord>
    /// Sources and outputs the planner already knows the build would fail (subject → why).
    public var failures: [PlanFailure] = []
    /// Outputs whose file is not the one Derive wrote (edited by hand, a user's file): the plan
    /// has an error and the build refuses to start, but the review still judges them (output → why).
    public var planErrors: PathDictionary<String> = [:]

    /// Plans `manifest` with the existing planner, read-only: no state folder is created, nothing
    /// is moved aside, no lock is taken, nothing is written into a bucket.
    public init(manifest: Manifest, manifestPath: String, files: [String], identity: EngineIdentity, fontFiles: [String] = []) throws {
        let session = BuildSession(manifestPath: manifestPath, manifest: manifest, manifestFiles: files, identity: identity, fontFiles: fontFiles)
        let plan = try session.readOnlyPlan()
        self.manifest = manifest
        var derivatives: PathDictionary<Derivative> = [:]
        for item in plan.items { if let derivative = item.derivative { derivatives[derivative.output] = derivative } }
        for (derivative, error) in plan.errored where derivatives[derivative.output] == nil {
            derivatives[derivative.output] = derivative
            planErrors[derivative.output] = error.message
        }
        self.derivatives = derivatives
        self.recorded = plan.recorded
        self.failures = plan.failures
    }

    public init(manifest: Manifest, derivatives: [Derivative], recorded: PathDictionary<OutputRecord> = [:]) {
        self.manifest = manifest
        self.derivatives = PathDictionary(derivatives.map { ($0.output, $0) }, uniquingKeysWith: { a, _ in a })
        self.recorded = recorded
    }
}

/// Compares two sides: styles and rules by their canonical recipes, outputs by action key (the
/// same source, recipe and engine give the same key, so a refactor that compiles to the same
/// canonical pipelines changes nothing).
public enum ReviewDiff {
    public static func review(before: ReviewSide, after: ReviewSide, beforeName: String, afterName: String, manifest: String) -> Review {
        let styles = styleChanges(before.manifest, after.manifest)
        let rules = ruleChanges(before.manifest, after.manifest)
        var groups: [String: Review.Group] = [:]
        var totals = Review.Totals()
        func add(_ entry: Review.Entry, _ derivative: Derivative) {
            var entry = entry
            if entry.kind != .deleted, let error = after.planErrors[entry.output] {
                entry.note = "derive build refuses to start until this is resolved: \(error)"
            }
            let style = groupStyle(derivative)
            let key = derivative.rule + "\u{0}" + (style ?? "")
            groups[key, default: Review.Group(rule: derivative.rule, style: style, entries: [])].entries.append(entry)
        }
        // Outputs the new revision cannot make (a missing watermark, an unreadable source): the
        // build fails them and keeps their files, so they are failures, never deletions. Those
        // that failed the same way before are not this change's doing.
        let oldFailures = PathSet(before.failures.map { $0.subject + "\u{0}" + $0.message })
        let newFailures = after.failures.filter { !oldFailures.contains($0.subject + "\u{0}" + $0.message) }
        var failing: PathDictionary<String> = [:]   // old output → why the new revision cannot make it
        var unplaced: [PlanFailure] = []
        var goneBySource: PathDictionary<[Derivative]> = [:]   // old outputs the new side lacks, by source
        for (output, derivative) in before.derivatives where after.derivatives[output] == nil {
            goneBySource[derivative.source, default: []].append(derivative)
        }
        // A `{hash}` output that fails is named with its placeholder (`site/a.thumb.{hash}.jpg`):
        // its old file is the gone output of the same name pattern.
        var goneByLogicalName: PathDictionary<[Derivative]> = [:]
        for derivatives in goneBySource.values {
            for derivative in derivatives {
                guard let hashed = derivative.hashed, let bucket = PathKey.split(derivative.output)?.bucket else { continue }
                goneByLogicalName[bucket + "/" + hashed.logicalKey, default: []].append(derivative)
            }
        }
        for failure in newFailures {
            var outputs = goneBySource[failure.subject] ?? []
            if let derivative = before.derivatives[failure.subject], after.derivatives[failure.subject] == nil { outputs.append(derivative) }
            outputs += goneByLogicalName[failure.subject] ?? []
            if outputs.isEmpty { unplaced.append(failure) }
            // Only an output the new revision still tries to make (its rule, style and matrix
            // values remain) fails; one it no longer makes is deleted, even when the lock of a
            // fresh clone names it (a removed rule's output, a dropped style).
            for derivative in outputs where newRecipe(of: derivative, in: after.manifest) != nil { failing[derivative.output] = failure.message }
        }
        // `{hash}` names change with the bytes: an output that is only old and one that is only
        // new, of the same rule, source, style and matrix values, are one output rebuilt.
        func identity(_ d: Derivative) -> String { [d.rule, d.source, d.style ?? "", d.matrix].joined(separator: "\u{0}") }
        var onlyNew: PathDictionary<Derivative> = [:]
        for (output, derivative) in after.derivatives where before.derivatives[output] == nil {
            onlyNew[identity(derivative)] = derivative
        }
        var renamed: PathDictionary<String> = [:]   // new output → old output
        for (output, derivative) in before.derivatives where after.derivatives[output] == nil && failing[output] == nil {
            if let new = onlyNew[identity(derivative)], new.actionKey != derivative.actionKey, new.hashed != nil || derivative.hashed != nil {
                renamed[new.output] = output
            }
        }
        let renamedOld = PathSet(renamed.values)
        let outputs = before.derivatives.keys.union(after.derivatives.keys).subtracting(renamedOld).sorted()
        for output in outputs {
            let oldName = renamed[output] ?? output
            let old = before.derivatives[oldName], new = after.derivatives[output]
            let bytesBefore = old.flatMap { bytesOnRecord(oldName, derivative: $0, recorded: after.recorded) }
            let sizeBefore = after.recorded[oldName].flatMap { record in old.map { record.actionKey == $0.actionKey } == true
                ? Review.Size(width: record.width, height: record.height) : nil }
            switch (old, new) {
            case (nil, let new?):
                totals.created += 1
                add(Review.Entry(kind: .created, output: output, source: new.source, before: nil, after: new.pipeline.canonical), new)
            case (let old?, nil) where failing[output] != nil:
                totals.failed += 1
                var entry = Review.Entry(kind: .failed, output: output, source: old.source, before: old.pipeline.canonical,
                                         after: newRecipe(of: old, in: after.manifest), bytesBefore: bytesBefore, sizeBefore: sizeBefore)
                entry.failure = failing[output]
                add(entry, old)
            case (let old?, nil):
                totals.deleted += 1
                totals.bytesBefore = bytesBefore.flatMap { bytes in totals.bytesBefore.map { $0 + bytes } }
                add(Review.Entry(kind: .deleted, output: output, source: old.source, before: old.pipeline.canonical, after: nil,
                                 bytesBefore: bytesBefore, sizeBefore: sizeBefore), old)
            case (let old?, let new?) where old.actionKey != new.actionKey:
                totals.rebuilt += 1
                totals.bytesBefore = bytesBefore.flatMap { bytes in totals.bytesBefore.map { $0 + bytes } }
                var entry = Review.Entry(kind: .rebuilt, output: output, source: new.source, before: old.pipeline.canonical,
                                         after: new.pipeline.canonical, bytesBefore: bytesBefore, sizeBefore: sizeBefore)
                if !PathKey.same(oldName, output) { entry.outputBefore = oldName }
                add(entry, new)
            default:
                continue
            }
        }
        for failure in unplaced {
            totals.failed += 1
            var entry = Review.Entry(kind: .failed, output: failure.subject, source: failure.subject, before: nil, after: nil)
            entry.failure = failure.message
            groups["\u{0}", default: Review.Group(rule: "", style: nil, entries: [])].entries.append(entry)
        }
        let ordered = groups.keys.sorted().compactMap { groups[$0] }
        return Review(before: beforeName, after: afterName, manifest: manifest, buckets: bucketChanges(before.manifest, after.manifest),
                      styles: styles, rules: rules, groups: ordered, totals: totals, rendered: false)
    }

    /// The recipe the new revision gives an old output it cannot make (the same rule, style and
    /// matrix values), so a failure shows what it failed to render.
    static func newRecipe(of old: Derivative, in manifest: Manifest) -> String? {
        guard let rule = manifest.rules.first(where: { $0.planName == old.rule }),
              let variants = try? rule.variants(catalogue: manifest.catalogue) else { return nil }
        return variants.first { $0.style == old.style && $0.values == old.values }?.pipeline.canonical
    }

    /// What a group is named by besides its rule: the style, or the matrix values, or nil for a
    /// rule's own `process`.
    static func groupStyle(_ derivative: Derivative) -> String? {
        derivative.style.map { "style '\($0)'" } ?? (derivative.values.isEmpty ? nil : derivative.matrix)
    }

    /// A bucket's settings as lines: where its folder is, who may read it, its object ACLs.
    static func outline(_ bucket: Bucket) -> [String: String] {
        var lines = ["path": bucket.path, "acl": bucket.acl.rawValue]
        if !bucket.objects.isEmpty {
            lines["objects"] = bucket.objects.map { "\($0.match.pattern): \($0.acl.rawValue)" }.joined(separator: ", ")
        }
        if let website = bucket.website { lines["website"] = "index \(website.index)" + (website.error.map { ", error \($0)" } ?? "") }
        if let url = bucket.url { lines["url"] = url }
        return lines
    }

    /// Buckets added, removed or changed (a moved folder moves every output; a bucket made
    /// public-read publishes them), as rule changes are listed.
    static func bucketChanges(_ before: Manifest, _ after: Manifest) -> [Review.RuleChange] {
        let old = Dictionary(before.buckets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(after.buckets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var changes: [Review.RuleChange] = []
        for name in Set(old.keys).union(new.keys).sorted() {
            switch (old[name], new[name]) {
            case (nil, let bucket?), (let bucket?, nil):
                let lines = outline(bucket)
                changes.append(.init(kind: new[name] == nil ? .removed : .added, name: name,
                                     changes: lines.keys.sorted().map { "\($0): \(lines[$0]!)" }))
            case (let a?, let b?):
                let x = outline(a), y = outline(b)
                let lines = Set(x.keys).union(y.keys).sorted().filter { x[$0] != y[$0] }.map { "\($0): \(x[$0] ?? "(none)") → \(y[$0] ?? "(none)")" }
                if !lines.isEmpty { changes.append(.init(kind: .changed, name: name, changes: lines)) }
            default: break
            }
        }
        return changes
    }

    /// The old output's size: the state's record when it was made by the old recipe; the file's
    /// size when the state has no record of it; nil otherwise. A record under another action
    /// key means the file on disk is not the old recipe's (built with the new one, to look),
    /// so its size says nothing of "before": the old render tells it.
    static func bytesOnRecord(_ output: String, derivative: Derivative, recorded: PathDictionary<OutputRecord>) -> Int64? {
        if let record = recorded[output] { return record.actionKey == derivative.actionKey ? record.size : nil }
        var info = stat()
        guard lstat(derivative.outputPath, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    static func styleChanges(_ before: Manifest, _ after: Manifest) -> [Review.StyleChange] {
        let old = Dictionary(before.styles.map { ($0.name, $0.pipeline.canonical) }, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(after.styles.map { ($0.name, $0.pipeline.canonical) }, uniquingKeysWith: { a, _ in a })
        var changes: [Review.StyleChange] = []
        for name in Set(old.keys).union(new.keys).sorted() {
            switch (old[name], new[name]) {
            case (nil, let added?): changes.append(.init(kind: .added, name: name, before: nil, after: added))
            case (let removed?, nil): changes.append(.init(kind: .removed, name: name, before: removed, after: nil))
            case (let a?, let b?) where a != b: changes.append(.init(kind: .changed, name: name, before: a, after: b))
            default: break
            }
        }
        return changes
    }

    /// A rule's recipe as canonical lines: where it reads, where it writes, what it renders.
    static func outline(_ rule: Rule, _ manifest: Manifest) -> [String: String] {
        var lines: [String: String] = [:]
        lines["from"] = rule.sourceBucket + "/" + rule.from.pattern + (rule.exclude.isEmpty ? "" : " (exclude " + rule.exclude.map(\.pattern).joined(separator: ", ") + ")")
        lines["to"] = rule.targetBucket + "/" + rule.to.text
        lines["acl"] = rule.acl?.rawValue ?? "inherited"
        switch rule.recipe {
        case .styles(let names):
            // A style's own change is listed under styles; here only which styles the rule uses.
            lines["styles"] = names.joined(separator: ", ")
        case .process:
            for variant in (try? rule.variants(catalogue: manifest.catalogue)) ?? [] {
                var label = "process"
                if !variant.values.isEmpty {
                    label += " (" + variant.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + ")"
                }
                lines[label] = variant.pipeline.canonical
            }
        }
        if let budget = rule.budget { lines["budget"] = budget.description }
        if !rule.matrix.isEmpty {
            lines["matrix"] = rule.matrix.map { "\($0.name): [\($0.values.joined(separator: ", "))]" }.joined(separator: "; ")
        }
        return lines
    }

    static func ruleChanges(_ before: Manifest, _ after: Manifest) -> [Review.RuleChange] {
        let old = Dictionary(before.rules.map { ($0.planName, $0) }, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(after.rules.map { ($0.planName, $0) }, uniquingKeysWith: { a, _ in a })
        var changes: [Review.RuleChange] = []
        for name in Set(old.keys).union(new.keys).sorted() {
            switch (old[name], new[name]) {
            case (nil, let rule?):
                let lines = outline(rule, after)
                changes.append(.init(kind: .added, name: name, changes: lines.keys.sorted().map { "\($0): \(lines[$0]!)" }))
            case (let rule?, nil):
                let lines = outline(rule, before)
                changes.append(.init(kind: .removed, name: name, changes: lines.keys.sorted().map { "\($0): \(lines[$0]!)" }))
            case (let a?, let b?):
                let x = outline(a, before), y = outline(b, after)
                var lines: [String] = []
                for key in Set(x.keys).union(y.keys).sorted() where x[key] != y[key] {
                    lines.append("\(key): \(x[key] ?? "(none)") → \(y[key] ?? "(none)")")
                }
                if !lines.isEmpty { changes.append(.init(kind: .changed, name: name, changes: lines)) }
            default: break
            }
        }
        return changes
    }
}
