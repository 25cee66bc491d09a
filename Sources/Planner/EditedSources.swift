import Confinement
import Foundation
import Manifest

/// The edited-source path (issue 15): when the witness of a clean build fails only because some
/// source files' bytes changed (`TouchedInputs.changes`: the same listing, manifest files,
/// engine, folders and fonts; every output, the lock, the index and the state as the build left
/// them), only those sources' derivatives, and every source of a rule whose watermark object is
/// among the edited files, are expanded and fingerprinted again. Every other derivative is
/// rebuilt from its record: the clean build recorded exactly what its expansion gives (same
/// recipe, source digest, dependencies and action key), and its output is on disk with the
/// recorded bytes (the witness stat'ed it), so it is up to date.
///
/// The path answers only when the edit changes no output's name or existence: every derivative
/// expanded again must be one a record names, and every record must be produced. A new or
/// dropped output (a source now narrower than a width, another format), a source that now
/// fails, a `{hash}` rule, a pending write, or anything unexpected in a record gives nil: the
/// full plan decides. `IncrementalPlanEquivalenceTests` runs both paths after each edit.
extension Planner {
    /// The plan when only `edited` files' bytes changed since the witness; `stats` are the input
    /// files' stats the witness check took (sources unchanged since are not stat'ed again).
    /// Nil: take the full plan.
    public func plan(edited: PathSet, stats: PathDictionary<FileStat?>, outputFiles: [String]) throws -> Plan? {
        guard !manifest.rules.contains(where: { $0.to.hashLength != nil }), try store.pendingWrites().isEmpty else { return nil }
        let recorded = try store.allOutputs()
        // The state is the one the witness saw: every recorded output's file, and no other.
        guard recorded.count == outputFiles.count, PathSet(recorded.values.map(\.file)) == PathSet(outputFiles) else { return nil }
        let expansion = Expansion(manifest: manifest, disk: disk, digests: digests, identity: identity, knownOutputs: recorded.keys,
                                  nameTaken: narrowedNameTaken)
        guard let found = try expansion.derivatives(editing: edited, recorded: recorded, stats: stats) else { return nil }
        let protected = protectedFiles(sources: found.result.sources)
        let protectedIdentities = WantedIdentities(protected)
        // File → output name, for the derivatives planned again only.
        let again = PathSet(found.again.map(\.outputPath))
        var owners: PathDictionary<String> = [:]
        for record in recorded.values where again.contains(record.file) && owners[record.file] == nil { owners[record.file] = record.path }
        var items: [PlanItem] = []
        items.reserveCapacity(recorded.count)
        for derivative in found.again {
            switch try item(for: derivative, recorded: recorded[derivative.output], owner: owners[derivative.outputPath].flatMap { recorded[$0] },
                            pending: nil, protected: protectedIdentities, stateRecordsOutputs: !recorded.isEmpty) {
            case .success(let item): items.append(item)
            case .failure: return nil   // an error: the full plan says it, with all the others
            }
        }
        for derivative in found.kept {
            guard let record = recorded[derivative.output] else { return nil }
            items.append(PlanItem(kind: .upToDate, output: derivative.output, reasons: [], derivative: derivative, recorded: record,
                                  adopted: nil, replaces: record.outputDigest))
        }
        if let data = try? disk.read(lockPath), !LockFile.isOurs(data, manifest: manifestName, lockPath: lockPath) { return nil }
        items.sort { PathKey.ordered($0.output, $1.output) }
        var plan = Plan(items: items, errors: [], failures: [], wanted: found.result.derivatives)
        plan.protectedFiles = protected
        plan.recorded = recorded
        return plan
    }
}

extension Expansion {
    /// The derivatives planned again (edited sources, rules whose watermark object was edited)
    /// and those rebuilt from their records; nil when the edit reaches further (see `Planner.plan(edited:)`).
    struct Edited {
        var result: Result
        var again: [Derivative]
        var kept: [Derivative]
    }

    func derivatives(editing edited: PathSet, recorded: PathDictionary<OutputRecord>, stats: PathDictionary<FileStat?>) throws -> Edited? {
        // Each source's records under each rule: what its derivatives were.
        var bySource: PathDictionary<[OutputRecord]> = [:]
        for record in recorded.values { bySource[record.rule + "\u{0}" + record.source, default: []].append(record) }
        var tasks: [Task] = []
        var kept: [Derivative] = []
        // Outputs narrowing renamed (`-800` for `w=960`), and the names it would have given
        // variants their records plan as written (another derivative writes that name).
        var renamed: [NarrowedName] = []
        var displaced: [NarrowedName] = []
        var asWritten: PathSet = []
        var sources: PathSet = []
        var scopes = RuleScopes(self)
        for rule in manifest.rules {
            guard let (listing, context) = try scopes.scope(of: rule) else { continue }
            let sourceBucket = context.sourceBucket
            // An entry the rule names that is not a regular file fails: the full plan says so.
            guard !listing.others.contains(where: { other in
                rule.takes(other.key, kind: other.kind) || (DiskObjectLister.hidesFiles(other.kind) && rule.descends(into: other.key, kind: other.kind))
            }) else { return nil }
            // A rule drawing an edited watermark object is planned again whole.
            let objects = context.variants.flatMap { variant in
                variant.pipeline.dependencies.compactMap { dependency -> String? in
                    if case .object(let key) = dependency { return sourceBucket.path + "/" + key }
                    return nil
                }
            }
            let whole = objects.contains { edited.contains($0) }
            for key in listing.keys where rule.includes(key) && !knownOutputs.contains("\(sourceBucket.name)/\(key)") {
                let task = Task(context: context, key: key, path: sourceBucket.path + "/" + key)
                sources.insert(task.path)
                if whole || edited.contains(task.path) {
                    tasks.append(task)
                } else {
                    guard let stat = stats[task.path] ?? nil,
                          let found = rebuilt(task, records: bySource[context.ruleName + "\u{0}\(sourceBucket.name)/\(key)"] ?? [], stat: stat)
                    else { return nil }
                    kept += found.derivatives
                    renamed += found.renamed
                    displaced += found.displaced
                    asWritten.formUnion(found.asWritten)
                }
            }
        }
        // Planned again exactly as the full plan does; they must name outputs the records name.
        var again: [Derivative] = []
        for expanded in try parallelMap(tasks, { task in try self.expanding(task) }) {
            guard expanded.failures.isEmpty else { return nil }
            again += expanded.derivatives
            renamed += expanded.renamed.map(\.name)
        }
        var seen: PathSet = []
        for derivative in kept + again {
            // Written twice, or an output no record names (a create): the full plan says why.
            guard seen.insert(derivative.output).inserted, recorded[derivative.output] != nil else { return nil }
        }
        // A variant planned as written only while a derivative that narrowing does not name (nor
        // undo) writes the name narrowing would give it, or another manifest records it, as
        // `settleNarrowedNames` decides: anything else, the full plan.
        // A renamed output another manifest records is planned as written by the full plan.
        if renamed.contains(where: { nameTaken?($0) == true }) { return nil }
        let renamedNames = PathSet(renamed.map(\.output))
        for name in displaced {
            let writtenByAnother = seen.contains(name.output) && !renamedNames.contains(name.output) && !asWritten.contains(name.output)
            guard writtenByAnother || nameTaken?(name) == true else { return nil }
        }
        // Every record produced again: nothing is deleted.
        guard seen.count == recorded.count else { return nil }
        let all = (kept + again).sorted { PathKey.ordered($0.output, $1.output) }
        let result = Result(derivatives: all, errors: [], failures: [], failedSources: [], blockedOutputs: [], sources: sources)
        return Edited(result: result, again: again, kept: kept)
    }

    /// The derivatives of an unchanged source, from the records its clean build left: the
    /// variants as `expanding` narrows them for the source's recorded width, each matched to the one
    /// record of the same style, matrix and pipeline, whose source digest, engine, encoder, rule
    /// and ACL are what expanding would give. Nil when any does not match (the full plan). When
    /// the records are of the variants narrowing renames planned as written (another derivative
    /// writes the new name: `settleNarrowedNames`), they are matched so, and the names narrowing
    /// would have given are returned (`displaced`) for the caller to check that they still are taken.
    struct Rebuilt {
        var derivatives: [Derivative]
        /// Outputs narrowing renamed.
        var renamed: [NarrowedName] = []
        /// The names narrowing would give the variants planned as written, and those variants' outputs.
        var displaced: [NarrowedName] = []
        var asWritten: [String] = []
    }

    func rebuilt(_ task: Task, records: [OutputRecord], stat: FileStat) -> Rebuilt? {
        // What `content(of:)` answers without reading: the file is the one the cache describes.
        guard let content = digests.cached(task.path, stat: stat), !(identity.refusesNonImages && content.format.isEmpty) else { return nil }
        let narrowing = Self.narrowing(task.variants, canonicals: task.canonicals, sourceWidth: content.width)
        func name(_ output: String, key: String) -> NarrowedName {
            NarrowedName(output: output, file: task.targetBucket.path + "/" + key, folder: task.targetBucket.path, key: key,
                         sourcePath: task.path, sourceFormat: content.format)
        }
        if let found = rebuilt(task, records: records, content: content, narrowing: narrowing) {
            return Rebuilt(derivatives: found.map(\.derivative), renamed: narrowing.renamed.keys.compactMap { index in
                found.first { $0.index == index }.map { name($0.derivative.output, key: PathKey.split($0.derivative.output)?.key ?? "") }
            })
        }
        guard !narrowing.renamed.isEmpty, task.rule.to.hashLength == nil else { return nil }
        let written = Set(narrowing.renamed.values.joined())
        let asWritten = Self.narrowing(task.variants, canonicals: task.canonicals, sourceWidth: content.width, asWritten: written)
        guard asWritten.renamed.isEmpty, let found = rebuilt(task, records: records, content: content, narrowing: asWritten) else { return nil }
        var result = Rebuilt(derivatives: found.map(\.derivative))
        for (index, group) in narrowing.renamed {
            guard let (variant, _) = narrowing.planned[index] else { return nil }
            let key = task.rule.to.render(Self.templateValues(key: task.key, variant: variant, format: content.format))
            result.displaced.append(name("\(task.targetBucket.name)/\(key)", key: key))
            for member in group {
                guard let derivative = found.first(where: { $0.index == member })?.derivative else { return nil }
                result.asWritten.append(derivative.output)
            }
        }
        return result
    }

    func rebuilt(_ task: Task, records: [OutputRecord], content: ContentDigests.Content, narrowing: Narrowing) -> [(index: Int, derivative: Derivative)]? {
        let source = "\(task.sourceBucket.name)/\(task.key)"
        let origin = Derivative.Origin(source: source, sourcePath: task.path, format: content.format, digest: content.digest)
        let ruleACL = task.rule.derivativeACL(sourceBucket: task.sourceBucket, sourceKey: task.key)
        var derivatives: [(index: Int, derivative: Derivative)] = []
        for index in task.variants.indices {
            guard let (variant, canonical) = narrowing.planned[index] else { continue }
            let matrix = variant.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            let matches = records.filter { $0.style == variant.style && $0.matrix == matrix && $0.pipeline == canonical }
            guard matches.count == 1, let record = matches.first, record.sourceDigest == content.digest, record.engine == task.engine,
                  record.encoder == identity.encoder, record.acl == task.context.acls.derivative(task.rule, sourceBucket: task.sourceBucket, sourceKey: task.key, outputKey: record.key, ruleACL: ruleACL).rawValue,
                  let acl = BucketACL(rawValue: record.acl), PathKey.same(record.source, source), record.rule == task.ruleName,
                  record.bucket == task.targetBucket.name
            else { return nil }
            let key = record.key
            // A name serve refuses fails in the full plan (an older Derive built it).
            guard Self.controlCharacter(in: key) == nil else { return nil }
            derivatives.append((index, Derivative(output: record.path, outputPath: task.targetBucket.path + "/" + key,
                                                  recipe: task.context.recipe(index, variant: variant, canonical: canonical), origin: origin,
                                                  acl: acl, dependencies: record.dependencies, hashed: nil, actionKey: record.actionKey)))
        }
        // Every record of this source under this rule is one of its variants'.
        guard derivatives.count == records.count else { return nil }
        return derivatives
    }
}
