import Confinement
import Foundation
import ProcessLanguage

/// Whether `derive.lock` is this user's Derive's own record: the very bytes a build of this user
/// last wrote there for the state at that path, while every line mirrored an output record it had
/// rendered (none adopted from a lock unverified). Kept beside the user's state secret
/// (`StateBinding`), outside the project: `<key>.lock`, holding the lock's digest and path.
///
/// A state lost mid-build (its folder moved away or deleted: attack 36c's M4) left a lock whose
/// lines are of the old recipe; the next build, with no records, took them for a fresh clone's
/// untrusted lines and refused every output (`lists it under another recipe, and nothing proves
/// it Derive's`). A lock this user's Derive wrote is not the lock's word alone: each line is the
/// digest of bytes Derive rendered at that path, so a file holding them may be rendered over.
/// A fresh clone (another path), a lock edited or checked out since (other bytes), or one that
/// carried a line only adopted from a clone's lock is not vouched for: git must prove it, as before.
public enum LockProvenance {
    /// The token file's name for the state database at `database`.
    static func name(forState database: String) -> String { StateBinding.key(forState: database).key + ".lock" }

    /// `lock DIGEST` for a lock that is Derive's own record, `not DIGEST` for one that is not
    /// (so it is not judged again), then the lock's path.
    static func text(digest: String, lockPath: String, ownRecord: Bool = true) -> String {
        "\(ownRecord ? "lock" : "not") \(digest)\npath \(JSONText.string(RealFolder.of((lockPath as NSString).deletingLastPathComponent) + "/" + (lockPath as NSString).lastPathComponent))\n"
    }

    /// Whether the lock at `lockPath`, whose bytes hash to `digest`, is the one this user's Derive
    /// last wrote for the state at `database` with every line its own record.
    public static func vouches(lockDigest digest: String, lockPath: String, forState database: String) -> Bool {
        guard let data = StateFolderTrust.readToken(name: name(forState: database)) else { return false }
        return String(decoding: data, as: UTF8.self) == text(digest: digest, lockPath: lockPath)
    }

    /// Whether the lock whose bytes hash to `digest` was judged already (Derive's own record or not).
    public static func isJudged(lockDigest digest: String, lockPath: String, forState database: String) -> Bool {
        guard let data = StateFolderTrust.readToken(name: name(forState: database)) else { return false }
        let held = String(decoding: data, as: UTF8.self)
        return [true, false].contains { held == text(digest: digest, lockPath: lockPath, ownRecord: $0) }
    }

    /// Remembers the lock just written (`digest`): Derive's own record when `ownRecord`, else
    /// not (which forgets any lock remembered for this state).
    public static func remember(lockDigest digest: String, lockPath: String, ownRecord: Bool, forState database: String) throws {
        try StateFolderTrust.writeToken(text(digest: digest, lockPath: lockPath, ownRecord: ownRecord), name: name(forState: database))
    }

    /// Whether every line of `lock` mirrors a record Derive rendered: the same digest and action
    /// key, not adopted from a lock unverified.
    public static func isOwnRecord(_ lock: LockFile, records: PathDictionary<OutputRecord>) -> Bool {
        lock.entries.allSatisfy { line in
            records[line.key].map { !$0.adopted && $0.outputDigest == line.value.digest && $0.actionKey == line.value.actionKey } ?? false
        }
    }
}
