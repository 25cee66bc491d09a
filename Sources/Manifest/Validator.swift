import Confinement
import Foundation
import ProcessLanguage

/// Checks that need the whole manifest and the bucket listings: output collisions, the
/// private-to-public leak guard, rules that match nothing, and folders that do not exist.
struct Validator {

    /// Why a bucket folder cannot be listed, as said to the user: a loop of symbolic links (ELOOP)
    /// is not a missing folder, nor is a link to nothing or a file.
    static func whyNotAFolder(_ path: String) -> String {
        var info = stat()
        if stat(path, &info) == 0 { return (info.st_mode & S_IFMT) == S_IFDIR ? "cannot be read" : "is not a folder" }
        switch errno {
        case ELOOP: return "leads back to itself (a loop of symbolic links)"
        case ENOENT where lstat(path, &info) == 0: return "is a symbolic link to nothing (its target does not exist)"
        default: return "does not exist"
        }
    }
    /// Whether something other than a folder (a file, a FIFO, a link to one) is at `path`.
    static func isThereButNotAFolder(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR
    }
    let manifest: Manifest
    let rules: [RuleSyntax]
    /// Every rule, also those with errors: the leak guard reports alongside them.
    let outlines: [RuleOutline]
    let lister: any ObjectLister

    func validate(into diagnostics: inout Diagnostics) {
        var listings: [String: [String]?] = [:]
        func keys(_ bucketName: String) -> [String]? {
            if let cached = listings[bucketName] { return cached }
            guard let bucket = manifest.bucket(named: bucketName) else { return nil }
            let listed = lister.keys(inFolder: bucket.path, skipping: [manifest.stateFolder])
            listings[bucketName] = listed
            return listed
        }

        for syntax in rules {
            let rule = syntax.rule
            guard let source = manifest.bucket(named: rule.sourceBucket) else { continue }
            guard let sourceKeys = keys(rule.sourceBucket) else {
                diagnostics.error(rule.location, "rule \(rule.label) reads bucket '\(source.name)', whose folder \(source.declaredPath) \(Self.whyNotAFolder(source.path))")
                continue
            }
            // A bucket written into may not exist yet (the build makes it), but what is there must
            // be a folder: a user's file at its path would fail every output (round 28's finding 3).
            if let target = manifest.bucket(named: rule.targetBucket), Self.isThereButNotAFolder(target.path) {
                diagnostics.error(rule.location, "rule \(rule.label) writes into bucket '\(target.name)', whose folder \(target.declaredPath) is not a folder: it is a file; move the file, or give bucket '\(target.name)' a path of its own")
                continue
            }
            if let target = manifest.bucket(named: rule.targetBucket), target.acl == .publicReadWrite {
                diagnostics.warning(rule.location,
                                    "rule \(rule.label) writes into public-read-write bucket '\(target.name)': anyone may write its other keys (derive serve refuses anonymous writes to the rule's output paths)",
                                    hint: "write derivatives into a public-read or private bucket")
            }
            if !sourceKeys.contains(where: rule.includes) {
                // The listing skips names starting with `.` (`sourceListingKeeps`): a pattern that
                // names one matches nothing however many files are there.
                let hidden = "\(rule.from)".split(separator: "/").contains { !sourceListingKeeps($0) }
                diagnostics.warning(rule.location, "rule \(rule.label) matches no objects in bucket '\(source.name)' ('\(rule.from)')",
                                    hint: hidden ? "names starting with '.' are never sources (hidden files and folders are skipped when a bucket is listed); rename the file or folder" : nil)
            }
        }
        for outline in outlines { leakGuard(outline, keys: keys, into: &diagnostics) }
        publicIndexGuard(keys: keys, into: &diagnostics)
        overriddenObjectRules(keys: keys, into: &diagnostics)
        checkCollisions(into: &diagnostics)
        neighbourLockGuard(keys: keys, into: &diagnostics)
    }

    /// No output is another manifest's lock (attack 40a's A6: `to: top/{name}.lock`, a source
    /// `derive.jpg` and `sub/derive.yaml` in bucket `top` validated, and the build wrote sub's
    /// lock): each rule's outputs for the sources it matches, named as the planner names them,
    /// judged by the plan's own check (`SiblingManifests.lockOwner`, one message). Only a rule
    /// whose `to:` can end in `.lock` is expanded. `{ext}` is the pipeline's format, else the
    /// source's extension (the planner sniffs the bytes, unread here); `{hash}` is not known
    /// before rendering (a hashed name is never a manifest's stem). What this cannot know, the
    /// plan still refuses.
    func neighbourLockGuard(keys: (String) -> [String]?, into diagnostics: inout Diagnostics) {
        guard let root = manifest.files.first else { return }
        let suffix = ".lock"
        var reported: Set<String> = []
        // Made only when an output may end in `.lock`; asked of those alone.
        lazy var goneProjects = ForeignProjectFiles(besides: root, nearby: false)
        for syntax in rules {
            let rule = syntax.rule
            switch rule.to.parts.last {
            case .literal(let last)?:
                let last = last.lowercased()
                guard last.hasSuffix(suffix) || suffix.hasSuffix(last) else { continue }
            case .variable?: break
            case nil: continue
            }
            guard let target = manifest.bucket(named: rule.targetBucket), let sourceKeys = keys(rule.sourceBucket),
                  let variants = try? rule.variants(catalogue: manifest.catalogue) else { continue }
            for key in sourceKeys where rule.includes(key) {
                // Only a name that may end in `.lock` is rendered (issue 15: all of them were).
                for variant in variants where rule.to.mayEndInLock(key: key, variant: variant) {
                    let outputKey = Self.lockGuardOutputKey(rule.to, key: key, variant: variant)
                    guard outputKey.lowercased().hasSuffix(suffix) else { continue }
                    let path = target.path + "/" + outputKey
                    let message: String
                    if let owner = SiblingManifests.lockOwner(of: path, besides: root) {
                        message = SiblingManifests.lockTargetMessage(path: display(path), owner: display(owner), output: rule.targetBucket + "/" + outputKey)
                    } else if let gone = goneProjects.goneLockOwner(of: path) {
                        // A removed project's lock (attack 49a's F5), as the plan refuses it (`ForeignProjectFiles.owner`).
                        message = SiblingManifests.lockTargetMessage(path: display(path), owner: display(gone), output: rule.targetBucket + "/" + outputKey, gone: true)
                    } else {
                        continue
                    }
                    if reported.insert(message).inserted { diagnostics.error(syntax.toLocation, message) }
                }
            }
        }
    }

    /// The output key `neighbourLockGuard` judges for source `key` and `variant`: `template`
    /// rendered as the planner names it, but `{ext}` unsniffed and `{hash}` empty.
    static func lockGuardOutputKey(_ template: PathTemplate, key: String, variant: Rule.Variant) -> String {
        let name = (key as NSString).lastPathComponent
        var values = variant.values
        values["key"] = key
        values["dir"] = PathTemplate.folder(ofKey: key)
        values["name"] = (name as NSString).deletingPathExtension
        values["ext"] = variant.pipeline.templateExtension ?? (name as NSString).pathExtension.lowercased()
        if let style = variant.style { values["style"] = style }
        return template.render(values)
    }

    /// `path` as the plan says it: relative to the manifest's folder when inside it.
    func display(_ path: String) -> String {
        let folder = (manifest.files.first.map { ($0 as NSString).deletingLastPathComponent } ?? "") + "/"
        return path.hasPrefix(folder) ? String(path.dropFirst(folder.count)) : path
    }

    /// The leak guard: nothing private reaches a public bucket by inheritance, neither a source
    /// nor a watermark object stamped into the output; an explicit rule `acl:` says it is meant.
    func leakGuard(_ outline: RuleOutline, keys: (String) -> [String]?, into diagnostics: inout Diagnostics) {
        guard !outline.hasExplicitACL, let sourceName = outline.sourceBucket, let targetName = outline.targetBucket,
              let source = manifest.bucket(named: sourceName), let target = manifest.bucket(named: targetName),
              let publicRule = Self.outputsMayBePublic(outline.outputPatterns, in: target) else { return }
        // Outputs inherit the target's object ACL rules as well as its bucket ACL.
        let destination = publicRule.map { "public objects ('\($0.match)' is \($0.acl.rawValue)) of bucket '\(target.name)'" }
            ?? "public bucket '\(target.name)'"
        let hint = "set 'acl:' on the rule: public-read to publish them on purpose, or private"
        func shown(_ keys: [String]) -> String {
            keys.prefix(3).joined(separator: ", ") + (keys.count > 3 ? " and \(keys.count - 3) more" : "")
        }
        if outline.from != nil, let sourceKeys = keys(sourceName) {
            let leaking = sourceKeys.filter { outline.includes($0) && source.effectiveACL(of: $0) == .private }
            if !leaking.isEmpty {
                diagnostics.error(outline.location,
                                  "rule \(outline.label) writes derivatives of private objects of bucket '\(source.name)' (\(shown(leaking))) into \(destination)",
                                  hint: hint)
            }
        }
        // Watermark images are read from the source's bucket: a private logo stamped into a
        // public output is published as surely as the source.
        let privateMarks = outline.watermarkKeys.filter { source.effectiveACL(of: $0) == .private }
        if !privateMarks.isEmpty {
            diagnostics.error(outline.location,
                              "rule \(outline.label) stamps private watermark objects of bucket '\(source.name)' (\(shown(privateMarks))) into \(destination)",
                              hint: hint)
        }
    }

    /// An index anonymous readers may fetch lists no private output (`PublicIndex`, attack 17's
    /// N4): each rule whose outputs are private, by its `acl:` or by the private sources they
    /// inherit theirs from, is an error at the rule.
    func publicIndexGuard(keys: (String) -> [String]?, into diagnostics: inout Diagnostics) {
        guard let indexACL = manifest.indexACL, indexACL.isPublic else { return }
        guard let declared = manifest.index else { return }
        let index = "the index \(declared.bucket)/\(declared.path), which lists every output, is \(PublicIndex.readable(manifest, acl: indexACL))"
        for syntax in rules {
            let rule = syntax.rule
            if let acl = rule.acl {
                guard !acl.isPublic else { continue }
                diagnostics.error(rule.location, "rule \(rule.label) writes private outputs (its acl: \(acl.rawValue)), and \(index): \(PublicIndex.exposed)",
                                  hint: PublicIndex.hint(manifest))
                continue
            }
            guard let source = manifest.bucket(named: rule.sourceBucket), let sourceKeys = keys(rule.sourceBucket) else { continue }
            let hidden = sourceKeys.filter { rule.includes($0) && !rule.derivativeACL(sourceBucket: source, sourceKey: $0).isPublic }
            guard !hidden.isEmpty else { continue }
            let shown = hidden.prefix(3).joined(separator: ", ") + (hidden.count > 3 ? " and \(hidden.count - 3) more" : "")
            diagnostics.error(rule.location,
                              "rule \(rule.label) writes derivatives of private objects of bucket '\(source.name)' (\(shown)), private as their sources are, and \(index): \(PublicIndex.exposed)",
                              hint: PublicIndex.hint(manifest))
        }
    }

    /// A built output's ACL is its rule's `acl:`, else its source's (`Rule.derivativeACL`), never
    /// the target bucket's `objects:` rules: one that matches a rule's outputs and says another
    /// ACL would be silently overridden (attack 17's L2), so it is a warning at that objects
    /// rule. Objects rules apply first match first: one behind a rule that covers the outputs
    /// is not named.
    func overriddenObjectRules(keys: (String) -> [String]?, into diagnostics: inout Diagnostics) {
        var warned: Set<String> = []
        for syntax in rules {
            let rule = syntax.rule
            guard let target = manifest.bucket(named: rule.targetBucket), !target.objects.isEmpty,
                  let outline = outlines.first(where: { $0.location == rule.location }) else { continue }
            // What the outputs get instead, and how to say it.
            let given: Set<BucketACL>
            let wins: String
            if let acl = rule.acl {
                given = [acl]
                wins = "whose acl: \(acl.rawValue) wins"
            } else {
                guard let source = manifest.bucket(named: rule.sourceBucket), let sourceKeys = keys(rule.sourceBucket) else { continue }
                given = Set(sourceKeys.filter(rule.includes).map { rule.derivativeACL(sourceBucket: source, sourceKey: $0) })
                wins = "which take their source's ACL (\(given.map(\.rawValue).sorted().joined(separator: ", "))) in bucket '\(source.name)'"
            }
            let outputs = outline.outputPatterns.isEmpty ? [LoosePattern([.run(.any)])] : outline.outputPatterns
            for output in outputs {
                for objectRule in target.objects where objectRule.match.loose.contains(where: { $0.intersects(output) }) {
                    let said = objectRule.acl.resolved(bucket: target.acl)
                    if given.contains(where: { $0 != said }), warned.insert("\(objectRule.location) \(rule.label)").inserted {
                        diagnostics.warning(objectRule.location,
                                            "objects rule '\(objectRule.match)' (\(said.rawValue)) of bucket '\(target.name)' matches outputs of rule \(rule.label), \(wins): an objects rule never sets a built output's ACL",
                                            hint: "set the rule's acl: instead, or narrow the objects rule's match")
                    }
                    if objectRule.match.loose.contains(where: { output.isCovered(by: $0) }) { break }
                }
            }
        }
    }

    /// Whether some output may be public in `target`: nil when none may; `.some(nil)` when the
    /// bucket ACL makes them public; `.some(rule)` when an object ACL rule does. Object rules
    /// apply first match first, so a private rule that covers an output pattern decides it.
    /// Without known patterns, any public object rule counts.
    static func outputsMayBePublic(_ patterns: [LoosePattern], in target: Bucket) -> ObjectACLRule?? {
        let outputs = patterns.isEmpty ? [LoosePattern([.run(.any)])] : patterns
        var bucketDecides = false
        for output in outputs {
            var decided = false
            for rule in target.objects where rule.match.loose.contains(where: { $0.intersects(output) }) {
                if rule.acl.resolved(bucket: target.acl).isPublic { return .some(rule) }
                if rule.match.loose.contains(where: { output.isCovered(by: $0) }) { decided = true; break }
            }
            if !decided { bucketDecides = true }
        }
        return bucketDecides && target.acl.isPublic ? .some(nil) : nil
    }

    /// Two recipes collide when they write the same bucket through templates that give the same
    /// path for the same source (styles, matrix values and known formats substituted), and their
    /// sources can overlap. Collisions between different sources are found when planning.
    func checkCollisions(into diagnostics: inout Diagnostics) {
        struct Output { let syntax: RuleSyntax; let label: String; let tokens: [PathTemplate.Part] }
        var outputs: PathDictionary<[Output]> = [:]
        let catalogue = manifest.catalogue
        for syntax in rules {
            let rule = syntax.rule
            guard let variants = try? rule.variants(catalogue: catalogue) else { continue }
            for variant in variants {
                var values = variant.values
                if let style = variant.style { values["style"] = style }
                if let ext = variant.pipeline.templateExtension { values["ext"] = ext }
                let tokens = rule.to.tokens(substituting: values)
                let label = [variant.style.map { "style '\($0)'" }, variant.values.isEmpty ? nil :
                             variant.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")]
                    .compactMap { $0 }.joined(separator: " ")
                let key = rule.targetBucket + "\u{0}" + tokens.map { part -> String in
                    switch part {
                    case .literal(let text): return "L" + text
                    case .variable(let name): return "V" + name
                    }
                }.joined(separator: "\u{1}")
                outputs[key, default: []].append(Output(syntax: syntax, label: label, tokens: tokens))
            }
        }
        var reported: Set<String> = []
        for (_, group) in outputs.sortedByKey() where group.count > 1 {
            for i in 0..<group.count {
                for j in (i + 1)..<group.count {
                    let a = group[i], b = group[j]
                    let ruleA = a.syntax.rule, ruleB = b.syntax.rule
                    let sameRule = ruleA == ruleB && a.syntax.toLocation == b.syntax.toLocation
                    guard sameRule || ruleA.from.mayOverlap(ruleB.from) else { continue }
                    let path = ruleA.targetBucket + "/" + a.tokens.map { part -> String in
                        if case .literal(let text) = part { return text }
                        if case .variable(let name) = part { return "{\(name)}" }
                        return ""
                    }.joined()
                    let message: String
                    if sameRule {
                        message = "rule \(ruleA.label): \(a.label.isEmpty ? "two recipes" : a.label) and \(b.label) would both write \(path)"
                    } else {
                        message = "rules \(ruleA.label) and \(ruleB.label) can write the same path \(path) for the same source"
                    }
                    guard reported.insert(message).inserted else { continue }
                    diagnostics.error(b.syntax.toLocation, message,
                                      hint: sameRule ? "put {style} or the matrix variables in 'to'" : "give the rules different output paths")
                }
            }
        }
    }
}

extension Pipeline {
    /// The format the pipeline writes, when it says (`format,webp`); nil means the source's.
    public var outputFormat: Format.Kind? {
        var format: Format.Kind?
        for case .format(let f) in actions { format = f.kind }
        return format
    }

    /// Whether the pipeline answers with JSON (`info`, `average-hue`) instead of an image: its
    /// `{ext}` is `json`, as the lock's `"format"` says (attack round 25: it was the source's).
    public var answersJSON: Bool {
        actions.contains { action in
            switch action {
            case .info, .averageHue: return true
            default: return false
            }
        }
    }

    /// What `{ext}` names for this pipeline, nil when it is the source's (kept format, or a gif).
    public var templateExtension: String? {
        if answersJSON { return "json" }
        return outputFormat.map(\.fileExtension)
    }
}
