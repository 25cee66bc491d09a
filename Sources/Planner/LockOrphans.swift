import Confinement
import Foundation
import Manifest
import ProcessLanguage

extension Planner {
    /// The lock's lines for outputs the state does not record and the manifest does not produce
    /// today (the manifest changed in a fresh clone, the state was lost, or a line was added by
    /// hand or by a pull request): never deletions. Without a state the lock is the only witness
    /// that Derive wrote a file, and anyone who can edit a pull request can edit it, so Derive
    /// deletes nothing on its word (issue #13's H2: a line stating a user's image's digest, at a
    /// path a rule's `to:` could give, deleted it). Each line is named once, as left in place (or
    /// as dropped, when no file is there), and the rewritten lock drops it; a source or control
    /// file of the manifest is named as ignored (its file is never touched). None while a source could not be read (its outputs are
    /// unknown). Lines for paths the manifest writes today are adopted (`item(for:)`), digest-checked.
    ///
    /// Except a file git proves (`gitProofDeletion`): committed at HEAD exactly as it is, so
    /// `git checkout` gives it back. That is the proof Derive takes to replace a file on a stale
    /// line; such an orphan (a `{hash}` file superseded in a clone: attack 36a's M7) is deleted as
    /// a recorded one is, and the plan lists it as a deletion.
    func lockOrphans(wanted: PathSet, recorded: PathDictionary<OutputRecord>, expansion: Expansion.Result,
                     protected: WantedIdentities) -> (left: [LockLeft], provenByGit: [PlanItem]) {
        guard !store.existed, recorded.isEmpty else { return ([], []) }
        guard let lock, expansion.failedSources.isEmpty, expansion.blockedOutputs.isEmpty,
              let data = try? disk.read(lockPath), LockFile.isOurs(data, manifest: manifestName, lockPath: lockPath) else { return ([], []) }
        var left: [LockLeft] = []
        var provenByGit: [PlanItem] = []
        let lockName = display(lockPath)
        let rules = LockableOutputs(manifest)
        let orphans = lock.entries.values.filter { !wanted.contains($0.path) && recorded[$0.path] == nil }
        // git is asked about every candidate at once.
        gitProof.prefetch(orphans.compactMap { entry in if case .success(let placed?) = LockFile.place(entry.path, in: manifest) { placed.file } else { nil } })
        for entry in orphans {
            switch LockFile.place(entry.path, in: manifest) {
            case .failure(let problem):
                left.append(LockLeft(output: entry.path, message: "ignored: in \(lockName), but \(problem); the build drops the line", present: false))
            case .success(nil):
                left.append(LockLeft(output: entry.path, message: "left: in \(lockName), but its bucket '\(PathKey.bucket(of: entry.path))' is no longer in the manifest; "
                                     + "Derive deletes nothing on the lock's word — remove the file yourself if it is yours to remove", present: true))
            case .success(let placed?):
                if protected.contains(placed.file) {
                    // A source or control file: the manifest's own, never an output. Named as ignored like any
                    // other line it does not produce (attack 36's F5: check failed on it); nothing touches the file.
                    left.append(LockLeft(output: entry.path, message: "ignored: in \(lockName), but it is a source or control file of the manifest, never an output; "
                                         + "Derive leaves the file alone and the build drops the line", present: false))
                    continue
                }
                // A link on the way (never followed) counts as something there: it is left too.
                if let owner = lockOrphanOwner?(placed.file, entry.path) {
                    // Another manifest of the folder records the file (its state, or its lock with
                    // these very bytes): it is that manifest's, not a file this one leaves (attack
                    // 48's F2: after `rm -rf .derive`, derive.yaml's lock-only line for a-800.webp,
                    // the hero's now, made a private `left` line, and serve answered the hero's
                    // public output 403).
                    left.append(LockLeft(output: entry.path, message: "dropped: in \(lockName), but no longer produced by the manifest, and \(owner) "
                                         + "records the file as its output: the file is left to it and the build drops the line", present: false))
                } else if let doubt = neighbourDoubt?(placed.file),
                          disk.exists(placed.file) || SymbolicLinks.first(on: placed.file, below: placed.bucket.path) != nil {
                    // Another manifest of the folder may own it and nothing can say (its lock does
                    // not read, its manifest does not load, or its rule writes this name): left,
                    // private, whatever git proves (attack 49b's F1: git proof deleted hero.yaml's
                    // output while hero.lock held a conflict marker; git proves bytes, not whose).
                    let changed = (try? digests.content(of: placed.file))?.digest != entry.digest
                    left.append(LockLeft(output: entry.path, message: LockLeft.leftMessage(lock: lockName, changed: changed, doubt: doubt), present: true))
                } else if let deletion = gitProofDeletion(entry, placed: placed, rules: rules, lockName: lockName) {
                    provenByGit.append(deletion)
                } else if disk.exists(placed.file) || SymbolicLinks.first(on: placed.file, below: placed.bucket.path) != nil {
                    let changed = (try? digests.content(of: placed.file))?.digest != entry.digest
                    left.append(LockLeft(output: entry.path, message: LockLeft.leftMessage(lock: lockName, changed: changed), present: true))
                } else {
                    left.append(LockLeft(output: entry.path, message: "dropped: in \(lockName), but not produced by the manifest and no file is there; the build drops the line", present: false))
                }
            }
        }
        return (left.sorted { PathKey.ordered($0.output, $1.output) }, provenByGit)
    }

    /// The deletion of a file only the lock names, when everything proves it the line's: no link
    /// on its way, a path some rule's `to:` gives those bytes (`lockMayAuthorise`), the line's
    /// digest and header, and git holding it at HEAD as it is (`GitProof.proves`). The build's
    /// removal checks the digest again at the moment it deletes; nil: the file is left.
    func gitProofDeletion(_ entry: LockFile.Entry, placed: LockFile.PlacedEntry, rules: LockableOutputs, lockName: String) -> PlanItem? {
        guard SymbolicLinks.first(on: placed.file, below: placed.bucket.path) == nil, disk.exists(placed.file),
              lockMayAuthorise(entry, rules: rules) == nil,
              let content = try? digests.content(of: placed.file), content.digest == entry.digest,
              Self.headerAgrees(entry, content: content, imagesOnly: identity.refusesNonImages),
              gitProof.proves(placed.file, digest: entry.digest) else { return nil }
        let record = OutputRecord(path: entry.path, rule: "", source: "", style: nil, matrix: "", engine: "", pipeline: "", sourceDigest: "",
                                  dependencies: "", encoder: "", actionKey: entry.actionKey, acl: BucketACL.private.rawValue,
                                  outputDigest: entry.digest, size: entry.bytes, width: entry.width, height: entry.height,
                                  format: entry.format, builtAt: 0, folder: placed.bucket.path)
        let reason = "no longer produced by the manifest; known only from \(lockName) (no build state), and committed to git as it is at HEAD "
            + "(proven Derive's by git: git checkout gives it back)"
        return PlanItem(kind: .delete, output: entry.path, reasons: [reason], derivative: nil, recorded: record, adopted: nil)
    }
}

extension Planner {
    /// The lock's lines kept as they are while a source could not be read: lines for outputs the
    /// state does not record and the manifest does not produce now, which an output of a source
    /// below an unreadable folder (a link, mode 000) may be. With no state (a fresh clone whose
    /// source folder is a link at its first build) such a line is the only record that Derive
    /// wrote the file; dropping it made the folder's return refuse the kept output as "not
    /// written by Derive". Kept, the return adopts the file when it is the line's (digest and
    /// action key) and replaces it when its digest and header are (a stale line), as for any
    /// fresh clone; any other file is refused. Only lines `lockMayAuthorise` accepts (a rule's
    /// `to:` gives that path), in a bucket of the manifest, not naming a source or control file.
    func heldLockLines(wanted: PathSet, recorded: PathDictionary<OutputRecord>, held: PathDictionary<String>,
                       expansion: Expansion.Result, protected: WantedIdentities) -> PathDictionary<LockFile.Entry> {
        guard !expansion.failedSources.isEmpty || !expansion.failedFolders.isEmpty || !expansion.blockedOutputs.isEmpty,
              let lock, let data = try? disk.read(lockPath), LockFile.isOurs(data, manifest: manifestName, lockPath: lockPath) else { return [:] }
        let rules = LockableOutputs(manifest)
        var kept: PathDictionary<LockFile.Entry> = [:]
        for entry in lock.entries.values where !wanted.contains(entry.path) && recorded[entry.path] == nil && held[entry.path] == nil {
            guard case .success(let placed?) = LockFile.place(entry.path, in: manifest), !protected.contains(placed.file),
                  lockMayAuthorise(entry, rules: rules) == nil else { continue }
            kept[entry.path] = entry
        }
        return kept
    }
}

extension Planner {
    /// Why a lock entry cannot stand for an output Derive wrote, or nil when it may (it authorises
    /// no deletion: without a state nothing is deleted on the lock's word; `presentVouchedLines`
    /// counts the lines that pass, to bound the index a fresh clone reads): its bucket is one
    /// some rule writes to and one rule's `to:` template gives its path, with `{style}` and the
    /// matrix variables standing for any value the manifest's syntax allows (a width, a format
    /// or a style since dropped), a `{hash}` slot of any length holding the first digits of its
    /// own SHA-256, and the key's extension naming its format (`LockableOutputs`). One rule for
    /// `{hash}` names and plain ones; the digest check at deletion stays: the bytes must be those.
    public func lockMayAuthorise(_ entry: LockFile.Entry, rules: LockableOutputs) -> String? {
        guard let (bucket, key) = PathKey.split(entry.path) else { return "its path '\(entry.path)' is not bucket/key" }
        guard rules.buckets.contains(bucket) else { return "no rule writes into bucket '\(bucket)', so Derive cannot have written it" }
        guard let format = Format.Kind(rawValue: entry.format) else { return "its format '\(entry.format)' is not an output format" }
        switch rules.verdict(bucket: bucket, key: key, digest: entry.digest, format: format) {
        case .written:
            return nil
        case .noTemplate(let skipped):
            // A name no source gives: the listing skips it, so no {name} or {key} is one.
            return "no rule's to: template gives that path" + (skipped.map { " (no source's name is like '\($0)': the planner skips names starting with '.')" } ?? "")
                + ", so Derive cannot have written it"
        case .extensionNotFormat:
            return "its extension does not name its format '\(entry.format)', so Derive cannot have written it"
        case .notItsHash:
            return "its {hash} part is not the start of its own SHA-256 (\(entry.digest.prefix(12))…), the only name Derive gives those bytes, so Derive cannot have written it"
        case .notForFormat:
            return "no rule's to: template gives that path to a \(entry.format) file, so Derive cannot have written it"
        }
    }
}

extension Planner {
    /// How many of `lock`'s lines stand for an output that is there: a line `lockMayAuthorise`
    /// accepts (Derive may have written that file) whose file holds the line's digest. Only these
    /// raise the size an index of the lock's outputs can have (attack 15's F2: 12 000 lines the
    /// plan itself rejects, naming no file, raised the read cap past a 600 MB file).
    public func presentVouchedLines(_ lock: LockFile?) -> Int {
        guard let lock, !lock.entries.isEmpty else { return 0 }
        let rules = LockableOutputs(manifest)
        var count = 0
        for entry in lock.entries.values {
            guard case .success(let placed?) = LockFile.place(entry.path, in: manifest), lockMayAuthorise(entry, rules: rules) == nil,
                  (try? digests.content(of: placed.file))?.digest == entry.digest else { continue }
            count += 1
        }
        return count
    }
}
