import Confinement
import Foundation
import Manifest

/// A file the lock places in the folder a bucket had when the lock was written, which the bucket
/// no longer points at (`LockProvenance.movedBuckets`), with no state recording it: an output (or
/// the index) Derive wrote there, as the lock says. What the build does with it.
public struct OldFolderCopy: Sendable {
    public enum Fate: Sendable {
        /// The lock is this user's Derive's own record and the file holds its line's bytes: the
        /// build deletes it while it still holds them (checked on the open file).
        case delete
        /// Not proven Derive's (another lock, other bytes, a link on the way): left and named.
        case left(String)
    }
    /// The lock line's `bucket/key` (for the index, the lock's index path).
    public var output: String
    /// Where the file is: the old folder + the key.
    public var file: String
    /// The bytes the lock records there.
    public var digest: String
    /// The lock's old index, not an output.
    public var isIndex: Bool
    public var fate: Fate
    /// What the plan says of it (the build says the same).
    public var reason: String
    /// `file` as the plan shows it (relative to the manifest's folder).
    public var displayed: String

    public var deletes: Bool { if case .delete = fate { true } else { false } }
}

extension Planner {
    /// Why a plan deletes an old copy: the with-state build's words ("old copy where the bucket
    /// folder used to be"), and what proves it Derive's without a state.
    static let oldCopyWords = "old copy where the bucket folder used to be"

    /// The files the lock this user's Derive last wrote places in a folder one of its buckets has
    /// left since (re-pointed: `path: outA` → `path: userB`), while no state records what Derive
    /// wrote (deleted, corrupt: attack 40a's A4). With the state, its records delete them as old
    /// copies; without it that lock is the record: its lines are the bytes Derive rendered in the
    /// folder it was written for (`LockProvenance`), so a file there holding its line's bytes is
    /// Derive's and goes, as with the state. Any other (a lock edited or checked out since, other
    /// bytes, a link on the way, that folder replaced) is left and named; a file the build keeps
    /// (a source, an output of the manifest through another path) is not listed. Empty with a
    /// state, and for a fresh clone (no folder was remembered for its lock).
    ///
    /// A state recording no output (what a recovering build killed before it recorded one
    /// leaves: it deletes these first) is no record either, as for `clean`. `names`: every file
    /// that lock places in such a folder, with its line's bytes, while it is Derive's own record
    /// and the folder the one it was written for: where a build killed while deleting one may
    /// have left its temporary (`Builder.sweepTemporaries` removes one holding those bytes).
    func oldFolderCopies(recorded: PathDictionary<OutputRecord>, keeping wanted: WantedIdentities)
        -> (copies: [OldFolderCopy], names: [(file: String, digest: String)]) {
        guard recorded.isEmpty else { return ([], []) }
        let database = store.folder + "/" + StateStore.fileName
        let moved = LockProvenance.movedBuckets(manifest, lockPath: lockPath, forState: database)
        guard !moved.isEmpty, let data = try? disk.read(lockPath), LockFile.isOurs(data, manifest: manifestName, lockPath: lockPath),
              let lock = LockFile.parse(String(decoding: data, as: UTF8.self)) else { return ([], []) }
        let own = lockIsOwnRecord
        let lockName = display(lockPath)
        var copies: [OldFolderCopy] = []
        var names: [(file: String, digest: String)] = []
        // Another manifest may have taken the old folder's files over since (a copied manifest
        // keeping the old path, `build --verify`/`--overwrite`: attack 41c's C0): what its state or
        // lock records there is its own, never an old copy of this one's.
        var claims: ForeignClaimLookup?
        func claimant(_ file: String, output: String) -> ForeignClaims.Claim? {
            if claims == nil { claims = ForeignClaimLookup(stateFolder: manifest.stateFolder, owner: StateOwner.name(manifestPath)) }
            return claims?.claimant(of: file, output: output)
        }
        func judge(_ path: String, digest: String, isIndex: Bool) {
            guard let (bucketName, key) = PathKey.split(path), let old = moved[bucketName], let bucket = manifest.bucket(named: bucketName),
                  (try? ObjectKey(fileName: Array(key.utf8))) != nil else { return }
            let file = old.path + "/" + key
            if own, !FileIdentity.isSymbolicLink(old.path), FileIdentity.ofFolder(old.path) == old.identity, !wanted.contains(file) {
                names.append((file, digest))
            }
            guard FileIdentity.anythingAt(file) || SymbolicLinks.first(on: file, below: old.path) != nil, !wanted.contains(file) else { return }
            let now = display(RealFolder.of(bucket.path))
            let moves = "bucket '\(bucketName)' moved: \(display(old.path)) → \(now)"
            let what = isIndex ? "Derive's old index, now at \(now)/\(manifest.index?.path ?? key)," : "\(display(file))"
            var why: String?
            if FileIdentity.isSymbolicLink(old.path) || FileIdentity.ofFolder(old.path) != old.identity {
                why = "\(display(old.path)) is not the folder \(lockName) was written for any more (replaced since)"
            } else if let link = SymbolicLinks.first(on: file, below: old.path) {
                why = "it leads through a symbolic link (\(display(link))), which Derive does not follow"
            } else if !FileKind.isRegularFile(file) {
                why = "it is \(FileKind.describe(file)), not the file Derive wrote"
            } else if (try? digests.content(of: file))?.digest != digest {
                why = "it holds other bytes than \(lockName) records for it (a file of yours, or changed since Derive wrote it)"
            } else if !own {
                why = "\(lockName) is not the lock this user's Derive last wrote (edited or checked out since), so nothing proves the file Derive's"
            } else if let other = claimant(file, output: path) {
                why = "it is an output of \(other.manifest) (\(other.reason)), not of this manifest"
            }
            if let why {
                let reason = "\(isIndex ? "Derive's old index where the bucket folder used to be" : Self.oldCopyWords) (\(moves)), but \(why); Derive deletes nothing it cannot prove its own — remove it yourself if it is yours to remove"
                copies.append(OldFolderCopy(output: path, file: file, digest: digest, isIndex: isIndex, fate: .left("\(display(file)) is left in place: " + reason),
                                            reason: reason, displayed: display(file)))
            } else {
                let reason = isIndex
                    ? "\(what) is no longer wanted (\(moves); \(lockName), the lock this user's Derive last wrote there, records these bytes)"
                    : "\(Self.oldCopyWords) (\(moves); \(lockName), the lock this user's Derive last wrote there, records these bytes)"
                copies.append(OldFolderCopy(output: path, file: file, digest: digest, isIndex: isIndex, fate: .delete, reason: reason, displayed: display(file)))
            }
        }
        for entry in lock.entries.values.sorted(by: { PathKey.ordered($0.path, $1.path) }) {
            judge(entry.path, digest: entry.digest, isIndex: false)
        }
        if let index = lock.index { judge(index.path, digest: index.digest, isIndex: true) }
        return (copies, names)
    }
}
