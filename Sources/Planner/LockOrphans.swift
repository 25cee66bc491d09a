import Foundation
import Manifest

extension Planner {
    /// Outputs the lock vouches for that the state does not record and the manifest no longer
    /// produces (the manifest changed in a fresh clone, or after the state was lost): deletions,
    /// digest-checked against the lock's entry in the folder its bucket names, so they are never
    /// left on disk unrecorded. None while a source could not be read (its outputs are unknown);
    /// an entry whose bucket is gone from the manifest cannot be placed and is reported.
    func lockOrphans(wanted: Set<String>, recorded: [String: OutputRecord],
                     expansion: Expansion.Result) -> (items: [PlanItem], failures: [PlanFailure]) {
        guard let lock, expansion.failedSources.isEmpty, expansion.blockedOutputs.isEmpty,
              let data = try? disk.read(lockPath), LockFile.isOurs(data, manifest: manifestName) else { return ([], []) }
        var items: [PlanItem] = [], failures: [PlanFailure] = []
        for entry in lock.entries.values where !wanted.contains(entry.path) && recorded[entry.path] == nil {
            let bucketName = String(entry.path.prefix { $0 != "/" })
            guard let bucket = manifest.bucket(named: bucketName) else {
                failures.append(PlanFailure(subject: entry.path, message: "in \(display(lockPath)) but its bucket '\(bucketName)' is no longer in the manifest, so it cannot be placed; delete the file by hand if it is not wanted"))
                continue
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
