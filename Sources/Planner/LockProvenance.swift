import Confinement
import Foundation
import Manifest
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
///
/// The token also names the folder each bucket had when the lock was written (its real path,
/// device and inode: `bucket DEVICE INODE ["out","/p/outA"]`): a lock line says what Derive wrote
/// at a key of a bucket, and a bucket re-pointed since at another folder (attack 37b's F6: the
/// state lost, `out` moved from outA to a folder of the user's copies) holds no file it wrote.
public enum LockProvenance {
    /// The token file's name for the state database at `database`.
    static func name(forState database: String) -> String { StateBinding.key(forState: database).key + ".lock" }

    /// `lock DIGEST` for a lock that is Derive's own record, `not DIGEST` for one that is not
    /// (so it is not judged again), then the lock's path, then the bucket folders' lines.
    static func text(digest: String, lockPath: String, ownRecord: Bool = true, buckets: String = "") -> String {
        "\(ownRecord ? "lock" : "not") \(digest)\n\(pathLine(lockPath))" + buckets
    }

    static func pathLine(_ lockPath: String) -> String {
        "path \(JSONText.string(RealFolder.of((lockPath as NSString).deletingLastPathComponent) + "/" + (lockPath as NSString).lastPathComponent))\n"
    }

    /// One line per bucket of `manifest` whose folder is there: its name, device, inode and real path.
    public static func bucketLines(_ manifest: Manifest) -> String {
        manifest.buckets.compactMap { bucket in
            let real = RealFolder.of(bucket.path)
            return FileIdentity.ofFolder(real).map { "bucket \($0.device) \($0.inode) [\(JSONText.string(bucket.name)),\(JSONText.string(real))]\n" }
        }.joined()
    }

    /// Whether the lock at `lockPath`, whose bytes hash to `digest`, is the one this user's Derive
    /// last wrote for the state at `database` with every line its own record.
    public static func vouches(lockDigest digest: String, lockPath: String, forState database: String) -> Bool {
        guard let data = StateFolderTrust.readToken(name: name(forState: database)) else { return false }
        return String(decoding: data, as: UTF8.self).hasPrefix(text(digest: digest, lockPath: lockPath))
    }

    /// Whether the lock whose bytes hash to `digest` was judged already (Derive's own record or
    /// not) with the bucket folders `buckets` (`bucketLines`).
    public static func isJudged(lockDigest digest: String, lockPath: String, buckets: String = "", forState database: String) -> Bool {
        guard let data = StateFolderTrust.readToken(name: name(forState: database)) else { return false }
        let held = String(decoding: data, as: UTF8.self)
        return [true, false].contains { held == text(digest: digest, lockPath: lockPath, ownRecord: $0, buckets: buckets) }
    }

    /// Remembers the lock just written (`digest`): Derive's own record when `ownRecord`, else
    /// not (which forgets any lock remembered for this state), and the bucket folders it was written for.
    public static func remember(lockDigest digest: String, lockPath: String, ownRecord: Bool, buckets: String = "", forState database: String) throws {
        try StateFolderTrust.writeToken(text(digest: digest, lockPath: lockPath, ownRecord: ownRecord, buckets: buckets), name: name(forState: database))
    }

    /// The folder (real path) the bucket `bucket` had when this user's Derive last wrote the lock
    /// at `lockPath` for the state at `database`, when the bucket's folder `folder` is another
    /// now (neither that path nor, renamed, that folder by device and inode); nil when it is the
    /// same, or nothing was remembered for it (a fresh clone: the lock's lines are judged as before).
    public static func movedFrom(bucket: String, folder: String, lockPath: String, forState database: String) -> String? {
        guard let written = writtenFolders(lockPath: lockPath, forState: database)[bucket] else { return nil }
        let real = RealFolder.of(folder)
        if real == written.path || FileIdentity.ofFolder(real) == written.identity { return nil }
        return written.path
    }

    /// The bucket folders remembered for the lock at `lockPath` (name → real path and identity);
    /// empty when the token is for another lock path, or from before folders were remembered.
    static func writtenFolders(lockPath: String, forState database: String) -> [String: (path: String, identity: FileIdentity)] {
        guard let data = StateFolderTrust.readToken(name: name(forState: database)) else { return [:] }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > 1, lines[1] + "\n" == pathLine(lockPath) else { return [:] }
        var folders: [String: (path: String, identity: FileIdentity)] = [:]
        for line in lines.dropFirst(2) {
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4, fields[0] == "bucket", let device = UInt64(fields[1]), let inode = UInt64(fields[2]),
                  let pair = (try? JSONSerialization.jsonObject(with: Data(fields[3].utf8))) as? [String], pair.count == 2 else { continue }
            folders[pair[0]] = (pair[1], FileIdentity(device: device, inode: inode))
        }
        return folders
    }

    /// `lock` without the lines of buckets whose folder is another now than the one it was
    /// written for (`movedFrom`): they say nothing of the files there (attack 37b's F6).
    public static func forFoldersNow(_ lock: LockFile, manifest: Manifest, lockPath: String, forState database: String) -> LockFile {
        let moved = Set(movedBuckets(manifest, lockPath: lockPath, forState: database).keys)
        guard !moved.isEmpty else { return lock }
        var kept = lock
        kept.entries = lock.entries.filter { !moved.contains(PathKey.bucket(of: $0.key)) }
        return kept
    }

    /// The buckets of `manifest` whose folder is another now than the one the lock at `lockPath`
    /// was written for (`movedFrom`), by name: that folder (its real path) and its device and inode
    /// then. Their lock lines place Derive's files in that folder, not in the bucket's folder now
    /// (`Planner.oldFolderCopies`, attack 40a's A4). Empty for a fresh clone (nothing remembered).
    public static func movedBuckets(_ manifest: Manifest, lockPath: String, forState database: String) -> [String: (path: String, identity: FileIdentity)] {
        let written = writtenFolders(lockPath: lockPath, forState: database)
        guard !written.isEmpty else { return [:] }
        var moved: [String: (path: String, identity: FileIdentity)] = [:]
        for bucket in manifest.buckets {
            guard let old = written[bucket.name] else { continue }
            let real = RealFolder.of(bucket.path)
            if real != old.path && FileIdentity.ofFolder(real) != old.identity { moved[bucket.name] = old }
        }
        return moved
    }

    /// Whether every line of `lock` mirrors a record Derive rendered: the same digest and action
    /// key, not adopted from a lock unverified.
    public static func isOwnRecord(_ lock: LockFile, records: PathDictionary<OutputRecord>) -> Bool {
        lock.entries.allSatisfy { line in
            records[line.key].map { !$0.adopted && $0.outputDigest == line.value.digest && $0.actionKey == line.value.actionKey } ?? false
        }
    }
}
