import Confinement
import Foundation
import Manifest

/// Files a build leaves in place instead of deleting them (rounds 19's V1 and V2): an old output
/// known only from the lock (a fresh clone), an old output changed or re-created since Derive
/// wrote it, an old index it cannot prove it wrote. They are not outputs, yet they may hold what a
/// private rule made; each stays known, in the lock (which travels with the tree, so serve finds
/// it in a clone too), with the ACL it was left under, until a build finds it gone.
extension Planner {
    /// The lock's `left` lines as the lock on disk holds them (read before this build rewrites
    /// it). The lock is parsed only when its first line says it holds some (`derive.lock/3`):
    /// a plan of a large tree pays nothing for a lock without them.
    public func lockLeftLines() -> PathDictionary<LockFile.Left> {
        guard let head = try? disk.read(lockPath, maxBytes: 4096),
              head.range(of: Data(#""format":"\#(LockFile.leftFormatName)""#.utf8)) != nil else { return [:] }
        return lock?.left ?? [:]
    }

    /// Whether anything is at the place of `path` (`bucket/key`): a file, a link (never followed),
    /// or a link on the folders leading to it. True for a bucket no longer in the manifest (its
    /// file cannot be looked at: it stays known) and false for a path that is not bucket/key.
    public func leftFileIsThere(_ path: String) -> Bool {
        switch LockFile.place(path, in: manifest) {
        case .failure: return false
        case .success(nil): return true
        case .success(let placed?):
            var info = stat()
            return lstat(placed.file, &info) == 0 || SymbolicLinks.first(on: placed.file, below: placed.bucket.path) != nil
        }
    }

    /// The `left` lines the lock keeps after a build whose outputs are `outputs`: those of the
    /// lock on disk whose file is still there and that are no output now, then `added` (the more
    /// private ACL wins when a path is in both). `dropped`: the lines let go, with why.
    public func keptLeftLines(outputs: PathDictionary<some Any>, added: [LockFile.Left])
        -> (kept: PathDictionary<LockFile.Left>, dropped: [(path: String, why: String)]) {
        var kept: PathDictionary<LockFile.Left> = [:]
        var dropped: [(path: String, why: String)] = []
        for (path, line) in lockLeftLines().sortedByKey() {
            if outputs[path] != nil {
                dropped.append((path, "an output of the manifest again (its record says what it is)"))
            } else if !leftFileIsThere(path) {
                dropped.append((path, "the file is gone"))
            } else {
                kept[path] = line
            }
        }
        for line in added where outputs[line.path] == nil {
            if let old = kept[line.path] {
                let acl = BucketACL.morePrivate(BucketACL(rawValue: old.acl) ?? .private, BucketACL(rawValue: line.acl) ?? .private)
                kept[line.path] = LockFile.Left(path: line.path, acl: acl.rawValue, why: old.why)
            } else {
                kept[line.path] = line
            }
        }
        return (kept, dropped)
    }

    /// The ACL a file only the lock names (no state, no rule gives its key today, or one does)
    /// had before the build that leaves it: what serve gave it while the lock listed it
    /// (`EffectiveACL`'s lock-only rule: the rules whose template gives its key, else private).
    /// The lock does not say which rule wrote a line, so nothing more public can be proved.
    public static func lockOnlyACL(_ path: String, manifest: Manifest, acls: EffectiveACL) -> BucketACL {
        guard let (name, key) = PathKey.split(path), let bucket = manifest.bucket(named: name) else { return .private }
        return acls.of(bucket, key: key, lockListed: true)
    }

    /// The `left` lines for the files `plan` leaves because only the lock names them, with the
    /// ACL serve gave each while the lock listed it (`lockOnlyACL`), whether or not the file still
    /// holds its line's bytes: one changed since (an optimiser recompressed a private output)
    /// is no more public after the build than before it (round 21's N3; its line says
    /// `changed since`). Those of a bucket no longer in the manifest too (not served; private
    /// should it return).
    public func lockOnlyLeft(_ plan: Plan, acls: EffectiveACL) -> [LockFile.Left] {
        plan.lockLeft.filter(\.present).map { left in
            var why = LockFile.Left.lockOnly
            if case .success(let placed?) = LockFile.place(left.output, in: manifest),
               (try? digests.content(of: placed.file))?.digest != lock?.entries[left.output]?.digest {
                why = LockFile.Left.lockOnlyChanged
            }
            return LockFile.Left(path: left.output, acl: Self.lockOnlyACL(left.output, manifest: manifest, acls: acls).rawValue, why: why)
        }
    }
}
