import Foundation
import Manifest

extension Planner {
    /// Outputs the lock vouches for that the state does not record and the manifest no longer
    /// produces (the manifest changed in a fresh clone, or after the state was lost): deletions,
    /// digest-checked against the lock's entry in the folder its bucket names, so they are never
    /// left on disk unrecorded. None while a source could not be read (its outputs are unknown);
    /// an entry whose bucket is gone from the manifest cannot be placed and is reported.
    ///
    /// The lock is untrusted input: it authorises deletions only when no state of this manifest
    /// exists (a fresh clone); each entry must name a valid key (`LockFile.place`) in a bucket of
    /// the manifest, and never a source or a control file of the manifest.
    func lockOrphans(wanted: Set<String>, recorded: [String: OutputRecord], expansion: Expansion.Result,
                     protected: WantedIdentities) -> (items: [PlanItem], failures: [PlanFailure]) {
        guard !store.existed, recorded.isEmpty else { return ([], []) }
        guard let lock, expansion.failedSources.isEmpty, expansion.blockedOutputs.isEmpty,
              let data = try? disk.read(lockPath), LockFile.isOurs(data, manifest: manifestName) else { return ([], []) }
        var items: [PlanItem] = [], failures: [PlanFailure] = []
        for entry in lock.entries.values where !wanted.contains(entry.path) && recorded[entry.path] == nil {
            let bucketName = String(entry.path.prefix { $0 != "/" })
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
