import Confinement
import Foundation
import Manifest
import Planner

/// The `left` lines `derive clean` keeps (round 21's N1). `clean` removes the build state and
/// the outputs it may remove, but a file it leaves, or a build left before it (the lock's `left`
/// lines), keeps what serve answered for its key just before `clean`: without its line the next
/// build would write a lock without it, and the key fall to its bucket's ACL (a private rule's
/// old output served 200 and listed). So the lock is written back holding only those lines
/// (`kept`), and removed only when none is left.
struct CleanLeftLines {
    let planner: Planner
    let acls: EffectiveACL
    /// The state's records as clean found them (an old index listed those outputs).
    let recorded: PathDictionary<OutputRecord>
    /// The lines clean adds for the files it leaves now.
    private(set) var added: [LockFile.Left] = []

    init(planner: Planner, recorded: PathDictionary<OutputRecord>) {
        self.planner = planner
        self.acls = EffectiveACL(planner.manifest)
        self.recorded = recorded
    }

    /// A line for the file clean leaves at `path` (`bucket/key`), which serve answered with
    /// `acl` before clean; added only when its key would be answered more publicly without it
    /// (no record, no lock line after clean). A bucket no longer in the manifest: not served,
    /// private should it return (as the build keeps such a lock line).
    mutating func leave(_ path: String, answered acl: BucketACL, why: String) {
        guard let (name, key) = PathKey.split(path), let bucket = planner.manifest.bucket(named: name) else {
            if PathKey.split(path) != nil { added.append(LockFile.Left(path: path, acl: BucketACL.private.rawValue, why: why)) }
            return
        }
        let without = acls.of(bucket, key: key)
        guard acl != without, BucketACL.morePrivate(acl, without) == acl else { return }
        added.append(LockFile.Left(path: path, acl: acl.rawValue, why: why))
    }

    /// A recorded output clean leaves (changed since Derive wrote it, not the file it wrote):
    /// the ACL of its record (with its rule now), when the file is at its key's place (a copy
    /// in an old folder is never served).
    mutating func leaveOutput(_ record: OutputRecord, file: String, message: String) {
        guard let line = Builder.leftLine(record, file: file, message: message, manifest: planner.manifest, acls: acls) else { return }
        leave(line.path, answered: line.aclValue, why: line.why)
    }

    /// A file only the lock names (no state) that clean leaves: what serve gave it while the lock
    /// listed it, whether or not it still holds the line's bytes (round 21's N3).
    mutating func leaveLockOnly(_ path: String, changed: Bool) {
        leave(path, answered: Planner.lockOnlyACL(path, manifest: planner.manifest, acls: acls),
              why: changed ? LockFile.Left.lockOnlyChanged : LockFile.Left.lockOnly)
    }

    /// An old index (not at the index's path now) clean leaves at `file`: as the build's
    /// (`ControlFileTargets.oldIndexLeftLine`), never more public than its key, than the index
    /// now, nor, when any output it may list (recorded, in the lock, left) is private, than private.
    mutating func leaveOldIndex(_ file: String) {
        guard let line = ControlFileTargets.oldIndexLeftLine(file, manifest: planner.manifest, left: planner.lockLeftLines(), listsPrivate: listsPrivate()) else { return }
        leave(line.path, answered: line.aclValue, why: line.why)
    }

    /// Whether any output an old index may list is private: a record of the state, or (no
    /// state) a line of the lock that serve answered privately while the lock listed it.
    private func listsPrivate() -> Bool {
        if recorded.values.contains(where: { !(BucketACL(rawValue: $0.acl)?.isPublic ?? false) }) { return true }
        return (planner.lock?.entries.keys ?? PathSet()).contains { !Planner.lockOnlyACL($0, manifest: planner.manifest, acls: acls).isPublic }
    }

    /// The lines the lock keeps after clean: the lock's own whose file is still there, then those
    /// clean added (the more private ACL wins); `dropped`: the lock's lines let go (file gone).
    func lines() -> (kept: PathDictionary<LockFile.Left>, dropped: [(path: String, why: String)]) {
        planner.keptLeftLines(outputs: [:] as PathDictionary<Bool>, added: added)
    }
}
