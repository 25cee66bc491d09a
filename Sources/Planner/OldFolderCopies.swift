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
    /// The very file Derive installed there (device, inode, birth), when the state recorded it
    /// (`Planner.movedFolderCopies`): deleted only while it is that file.
    public var identity: FileIdentity? = nil
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
            return claims?.files.claimant(of: file, output: output)
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

extension Planner {
    /// With a state: the files Derive wrote through a bucket's path into a folder that is no longer
    /// at that path. The bucket re-pointed at a bind mount of its old folder (`mount --bind outA
    /// userB`, `path: userB`), restyled and built (the renders went into outA), then unmounted: its
    /// records say userB, where another folder is now, and the renders stayed in outA unnamed
    /// (attack 41a's B2). The state recorded the folder Derive wrote into by device and inode; when
    /// it also recorded that very folder for the bucket at another path where it still is (outA,
    /// used before), a file there that is the very file Derive installed for a record (device,
    /// inode, birth) holding its bytes is an old copy, which the build deletes (its bytes and
    /// identity checked on the open file). Only while the bucket still names the path, another
    /// folder is there, and the one found is no bucket's folder now (two buckets' folders swapped
    /// are judged by their records). A folder renamed by hand (`mv out out.bak`) was never
    /// recorded at its new path: not searched.
    func movedFolderCopies(recorded: PathDictionary<OutputRecord>, keeping wanted: WantedIdentities) -> [OldFolderCopy] {
        guard !recorded.isEmpty, let folders = try? store.queue.read({ try store.bucketFolderIdentities($0) }), folders.count > 1 else { return [] }
        let places = folders.map { place, identity in
            let parts = place.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return (folder: parts[0], bucket: parts.count == 2 ? parts[1] : "", identity: identity)
        }
        let bucketFolders = manifest.buckets.map { RealFolder.of($0.path) }
        var moved: [String: String] = [:]
        for place in places {
            guard let bucket = manifest.bucket(named: place.bucket), PathKey.same(RealFolder.of(bucket.path), place.folder),
                  let now = FileIdentity.ofFolder(place.folder), now != place.identity,
                  let there = places.first(where: { other in
                      other.bucket == place.bucket && !PathKey.same(other.folder, place.folder) && other.identity == place.identity
                          && FileIdentity.ofFolder(other.folder) == place.identity
                          && !bucketFolders.contains(where: { PathKey.same($0, other.folder) || FileIdentity.sameFolder($0, other.folder) })
                  })?.folder else { continue }
            moved[place.folder + "\u{0}" + place.bucket] = there
        }
        guard !moved.isEmpty, let identities = try? store.outputIdentities() else { return [] }
        var copies: [OldFolderCopy] = []
        for record in recorded.values.sorted(by: { PathKey.ordered($0.path, $1.path) }) {
            guard let there = moved[record.folder + "\u{0}" + record.bucket], record.file.utf8.starts(with: (record.folder + "/").utf8) else { continue }
            let file = there + String(decoding: record.file.utf8.dropFirst(record.folder.utf8.count), as: UTF8.self)
            guard !wanted.contains(file), SymbolicLinks.first(on: file, below: there) == nil,
                  case .some(.some(let identity)) = identities[record.path], identity.isFile(at: file),
                  FileIdentity.ofRegularFile(file, holding: record.outputDigest) != nil else { continue }
            let reason = "\(Self.oldCopyWords) (the folder Derive wrote bucket '\(record.bucket)' into through \(display(record.folder)) is \(display(there)) now, "
                + "by device and inode: a bind mount taken away; the very file Derive installed there, with its recorded bytes)"
            copies.append(OldFolderCopy(output: record.path, file: file, digest: record.outputDigest, isIndex: false, identity: identity,
                                        fate: .delete, reason: reason, displayed: display(file)))
        }
        return copies
    }
}
