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

    /// How long a private left record is kept after a build finds its file gone (round 21's N4),
    /// and how many such records at most (the most recently gone are kept).
    public static let goneKeptSeconds: Int64 = 30 * 24 * 3600
    public static let goneKeptMax = 1000

    /// The files builds left in place as the state records them (sealed rows), by place; empty
    /// when the state has none or cannot be read (the lock is all there is then).
    public func stateLeftLines() -> [String: LockFile.Left] {
        (try? store.leftFiles()) ?? [:]
    }

    /// `LockFile.located` in this manifest.
    public func located(_ line: LockFile.Left) -> LockFile.Left { LockFile.located(line, in: manifest) }

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

    /// The `left` lines the lock keeps after a build whose outputs are `outputs`: the state's
    /// records and the lock's lines on disk, merged by the file's place (the more private ACL
    /// wins: a lock line may narrow a record, never widen it, and a line missing from the lock
    /// comes back from the state: round 21's N2), re-keyed to the bucket holding that place now
    /// (N5), then `added`. A line goes when its path is an output again, when another manifest of
    /// the folder records its file as its output (`neighbourOwner`), when its file is gone
    /// and it was left public, when a private one's file has been gone for `goneKeptSeconds`
    /// (or more than `goneKeptMax` are gone), or when the user releases it (`derive release`).
    /// A private one whose file is gone is kept, marked gone with the time a build first found
    /// it gone (N4): a file put back there is answered privately, whatever its bytes and dates
    /// (round 22's V3: a restore that does not keep dates, another rendition of the private
    /// picture); one whose file holds other bytes than the state recorded is marked `otherBytes`
    /// (named by the build, still private). `dropped`: the lines let go, with why.
    ///
    /// The gone time: the state's row's when it has one for the place (sealed: a lock's date
    /// moved back would drop the line sooner, moved forward keep it longer; neither counts),
    /// else the lock's (a clone, after `clean`), never later than `now`. A lock's date moved
    /// back in a tree without a state drops the line sooner; that is no more than deleting the
    /// line, which the lock alone cannot prevent either, and a file at that place afterwards is
    /// judged by its key as after the 30 days.
    public func keptLeftLines(outputs: PathDictionary<some Any>, added: [LockFile.Left],
                              now: Int64 = Int64(Date().timeIntervalSince1970))
        -> (kept: PathDictionary<LockFile.Left>, dropped: [(path: String, why: String)]) {
        var byPlace: [String: LockFile.Left] = [:]
        var stateHolds = Set<String>()
        func merge(_ line: LockFile.Left, placed: Bool) {
            var line = LockFile.located(line, in: manifest, placed: placed)
            if !placed { line.goneSince = line.isGone ? min(line.goneSince, now) : 0 }
            guard var old = byPlace[line.place] else { byPlace[line.place] = line; return }
            old.acl = BucketACL.morePrivate(old.aclValue, line.aclValue).rawValue
            if old.digest.isEmpty { old.digest = line.digest }
            // The state's date stands; between lines of the lock alone, the earliest.
            if !stateHolds.contains(line.place), old.goneSince == 0 || (line.goneSince != 0 && line.goneSince < old.goneSince) {
                old.goneSince = line.goneSince
            }
            if line.isGone { old.gone = true }
            byPlace[line.place] = old
        }
        for line in stateLeftLines().values { merge(line, placed: true) }
        stateHolds = Set(byPlace.keys)
        for line in lockLeftLines().values { merge(line, placed: false) }
        var kept: PathDictionary<LockFile.Left> = [:]
        var dropped: [(path: String, why: String)] = []
        var gone: [LockFile.Left] = []
        for place in byPlace.keys.sorted() {
            var line = byPlace[place]!
            if outputs[line.path] != nil {
                dropped.append((line.path, "an output of the manifest again (its record says what it is)"))
                continue
            }
            guard let (bucket, key) = LockFile.bucket(holding: place, in: manifest) else {
                // No bucket holds its folder now: nothing serves it; it stays known should one return.
                kept[line.path] = line
                continue
            }
            let file = bucket.path + "/" + key
            var info = stat()
            let linked = SymbolicLinks.first(on: file, below: bucket.path) != nil
            let there = lstat(file, &info) == 0 || linked
            if there, !linked, let owner = neighbourOwner(file: file, bucket: bucket.name, key: key) {
                // Another manifest of the folder records the file (its state, or its lock with these
                // very bytes): the file is its output, which this line would answer no more publicly
                // (attack 48a's F2: written while that manifest's lock could not be read, the line
                // stayed for good and serve answered the other manifest's public output 403).
                dropped.append((line.path, "\(owner) \(Self.leftToNeighbour)"))
                continue
            }
            if there {
                // Put back (a restore, a move back, another rendition) or still there: as private
                // as before whatever its bytes; other bytes than the left file's are named. Read
                // only as a regular file reached through no link (otherwise: not the same bytes).
                if !line.digest.isEmpty {
                    let regular = !linked && info.st_mode & S_IFMT == S_IFREG
                    let digest = regular ? (try? digests.content(of: file))?.digest : nil
                    line.otherBytes = digest != line.digest
                }
                line.gone = nil
                line.goneSince = 0
                kept[line.path] = line
            } else if line.aclValue.isPublic {
                dropped.append((line.path, "the file is gone"))
            } else {
                if line.goneSince == 0 { line.goneSince = now }
                line.gone = true
                if now - line.goneSince > Self.goneKeptSeconds {
                    dropped.append((line.path, "the file is gone (for more than \(Self.goneKeptSeconds / 86400) days)"))
                    continue
                }
                gone.append(line)
            }
        }
        // Bounded: the most recently gone are kept.
        gone.sort { ($0.goneSince, $0.place) > ($1.goneSince, $1.place) }
        for (number, line) in gone.enumerated() {
            if number < Self.goneKeptMax, kept[line.path] == nil {
                kept[line.path] = line
            } else {
                dropped.append((line.path, "the file is gone (more than \(Self.goneKeptMax) left files are gone)"))
            }
        }
        let claimed = Set(dropped.map(\.path))
        for line in added.map(located) where outputs[line.path] == nil && !claimed.contains(line.path) {
            if kept[line.path] == nil, let (bucket, key) = LockFile.bucket(holding: line.place, in: manifest),
               SymbolicLinks.first(on: bucket.path + "/" + key, below: bucket.path) == nil,
               let owner = neighbourOwner(file: bucket.path + "/" + key, bucket: bucket.name, key: key) {
                dropped.append((line.path, "\(owner) \(Self.leftToNeighbour)"))
                continue
            }
            if let old = kept[line.path] {
                var merged = old
                merged.acl = BucketACL.morePrivate(old.aclValue, line.aclValue).rawValue
                merged.gone = nil
                merged.goneSince = 0
                if merged.digest.isEmpty { merged.digest = line.digest }
                kept[line.path] = merged
            } else {
                kept[line.path] = line
            }
        }
        return (kept, dropped)
    }

    /// How a dropped line's reason ends when another manifest of the folder records its file
    /// (`check` fails on such a line: the build rewrites the lock without it).
    public static let leftToNeighbour = "records the file as its output: the file is left to it"

    /// The manifest of the folder that records the file at `file` (`bucket/key` here) as its
    /// output, by the one definition lock orphans use (`lockOrphanOwner`: its state, or its lock
    /// with the file's very bytes); nil when none does or nothing can be asked.
    func neighbourOwner(file: String, bucket: String, key: String) -> String? {
        lockOrphanOwner?(file, bucket + "/" + key)
    }

    /// `line` with the digest of its file when it has none yet and the file is a regular file
    /// there, reached through no link (what the state records: a file at that place with other
    /// bytes is named by the build, round 22's V3; it stays as private either way).
    public func withDigest(_ line: LockFile.Left) -> LockFile.Left {
        guard line.digest.isEmpty, !line.isGone, let (bucket, key) = LockFile.bucket(holding: line.place, in: manifest) else { return line }
        let file = bucket.path + "/" + key
        var info = stat()
        guard SymbolicLinks.first(on: file, below: bucket.path) == nil, lstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return line }
        var line = line
        line.digest = (try? digests.content(of: file))?.digest ?? ""
        return line
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
            // The line's digest stays in the lock (`Left.digest`): the file holds it.
            return LockFile.Left(path: left.output, acl: Self.lockOnlyACL(left.output, manifest: manifest, acls: acls).rawValue, why: why,
                                 digest: why == LockFile.Left.lockOnly ? lock?.entries[left.output]?.digest ?? "" : "")
        }
    }
}
