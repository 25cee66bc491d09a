import Confinement
import Foundation
import Manifest
import ProcessLanguage

extension Planner {
    /// Outputs the lock vouches for that the state does not record and the manifest no longer
    /// produces (the manifest changed in a fresh clone, or after the state was lost): deletions,
    /// digest-checked against the lock's entry in the folder its bucket names, so they are never
    /// left on disk unrecorded. None while a source could not be read (its outputs are unknown);
    /// an entry whose bucket is gone from the manifest cannot be placed and is reported.
    ///
    /// The lock is untrusted input: it authorises deletions only when no state of this manifest
    /// exists (a fresh clone); each entry must name a valid key (`LockFile.place`) in a bucket of
    /// the manifest, and never a source or a control file of the manifest; and it must be a path
    /// one of the manifest's rules could have written (`lockMayAuthorise`), else it is ignored and
    /// reported: a hostile lock line never reaches a file in a bucket no rule writes to.
    func lockOrphans(wanted: PathSet, recorded: PathDictionary<OutputRecord>, expansion: Expansion.Result,
                     protected: WantedIdentities) -> (items: [PlanItem], failures: [PlanFailure]) {
        guard !store.existed, recorded.isEmpty else { return ([], []) }
        guard let lock, expansion.failedSources.isEmpty, expansion.blockedOutputs.isEmpty,
              let data = try? disk.read(lockPath), LockFile.isOurs(data, manifest: manifestName) else { return ([], []) }
        var items: [PlanItem] = [], failures: [PlanFailure] = []
        let ruleOutputs = LockableOutputs(manifest)
        for entry in lock.entries.values where !wanted.contains(entry.path) && recorded[entry.path] == nil {
            let bucketName = PathKey.bucket(of: entry.path)
            let bucket: Bucket
            switch LockFile.place(entry.path, in: manifest) {
            case .failure(let problem):
                failures.append(PlanFailure(subject: entry.path, message: "in \(display(lockPath)) but \(problem); it is ignored (nothing is deleted) and the build rewrites the lock"))
                continue
            case .success(let placed):
                guard let placed else {
                    failures.append(PlanFailure(subject: entry.path, message: "in \(display(lockPath)) but its bucket '\(bucketName)' is no longer in the manifest, so it cannot be placed; delete the file by hand if it is not wanted"))
                    continue
                }
                bucket = placed.bucket
                if protected.contains(placed.file) { continue }   // a source or control file: never the lock's to delete
                if let refusal = lockMayAuthorise(entry, rules: ruleOutputs) {
                    failures.append(PlanFailure(subject: entry.path, message: "in \(display(lockPath)) but \(refusal); it is ignored (nothing is deleted) and the build rewrites the lock"))
                    continue
                }
            }
            let record = OutputRecord(path: entry.path, rule: "", source: "", style: nil, matrix: "", engine: "", pipeline: "",
                                      sourceDigest: "", dependencies: "", encoder: "", actionKey: entry.actionKey, acl: "",
                                      outputDigest: entry.digest, size: entry.bytes, width: entry.width, height: entry.height,
                                      format: entry.format, builtAt: 0, folder: bucket.path)
            items.append(PlanItem(kind: .delete, output: entry.path,
                                  reasons: ["no longer produced by the manifest (known from \(display(lockPath)))"],
                                  derivative: nil, recorded: record, adopted: nil))
        }
        return (items, failures)
    }
}

extension Planner {
    /// Why a lock entry may not authorise deleting its file, or nil when it may: its bucket is one
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
