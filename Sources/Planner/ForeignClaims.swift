import Confinement
import Foundation
import GRDB
import Manifest

/// Files another manifest's build state records: the state at `state.sqlite` when another
/// manifest owns it (a copied project before its first build: what `plan` and `check` see, and
/// what `build` moves aside) and the states moved aside as "owned by another manifest". A bucket
/// folder outside the project tree (`path: ../shared-out`) is reached by the copy and the original
/// alike; the copy must not adopt, delete or clean the original's outputs or index just because
/// its copied lock vouches for their bytes. One definition for `plan`, `check`, `build` and
/// `clean`, so they agree.
///
/// A claim is evaluated where the files are now, not where they were written: a record says
/// "manifest M wrote `key` in folder F", which fixes where M lies relative to F (`../proj/derive.yaml`).
/// A file with that key in folder G belongs to the manifest at that same place relative to G,
/// when one is there and it is not this manifest. In F itself that is M (the original, still
/// there); after a whole workspace was copied (`cp -a W1 W2`, then `cp -a W2/proj W2/copy`) it is
/// the copy of M beside G (`W2/proj`), whatever its own copied state still names; for the
/// project's own copied outputs (inside its tree) it is this manifest, so they are adopted.
/// Outside F itself, the manifest found at that place claims the file only when G is one of its
/// bucket folders: two manifests side by side (`out/`, `site-out/`) never claim each other's folder.
public enum ForeignClaims {
    /// Who a file belongs to, and why.
    public struct Claim: Sendable, Equatable {
        /// The manifest the file belongs to (absolute real path).
        public var manifest: String
        /// The manifest the claiming state names, when that is not `manifest` (a copy of it).
        public var recordedOwner: String?
        /// The lock that says so, when no state does (a neighbour without its state folder).
        public var lock: String? = nil
        /// The manifest is no longer there (renamed, this manifest perhaps): the settings that
        /// carry on from its records (`'lock: derive.lock' and 'state: .derive/derive'`).
        public var takeOver: String? = nil
        /// The manifest is no longer there and lay in another folder than this manifest's (its
        /// lock and state left: `ForeignProjectFiles.goneProjects`); `state` is its build state
        /// folder when that, not its lock, records the file.
        public var gone = false
        public var state: String? = nil
        /// Nothing can say whose the file is (the registry of built projects cannot be read:
        /// `ProjectRegistry`): why. `manifest` is then the registry's path.
        public var doubt: String? = nil
        /// A live manifest's rule writes the file's name while nothing records who installed the
        /// file there (this manifest's state records another file: a restored copy, or that
        /// manifest took the path over and lost its lock and state): `manifest` is that one,
        /// `doubt` says which rule, and this is this manifest's path, named in the advice.
        public var ruleDoubtBeside: String? = nil
        /// This manifest's own build state records the file, moved away from where its `state:`
        /// names it (its lock moved with it: `movedLock`), as the registry's token finds it
        /// (attack 52a's F10: each of two projects named the other).
        public var movedState: String? = nil
        public var movedLock: String? = nil
        /// With `ruleDoubtBeside`: nothing of this manifest records a file there (its lock and
        /// build state removed by `clean`, or never written), said so rather than "records
        /// another file" (attack 52a's F3).
        public var ownRecordsNothing = false
        /// With `ruleDoubtBeside`: that manifest's lock keeps the file as one its build left in
        /// place (its rule no longer writes the name), so building it with `--overwrite` would
        /// only keep it so again: the advice says what does settle it (attack 53a's F3).
        public var leftByOwner = false
        /// With `ruleDoubtBeside`: this manifest's lock records the file with these bytes too, and
        /// its build state is gone (attack 53a's F4: both states lost).
        public var ownLockOnly = false
        /// With `ownLockOnly`: this manifest's lock line for it holds other bytes than the file
        /// (attack 58a's 5: the refusal said "these very bytes" and advised taking it back as a copy).
        public var ownLockOtherBytes = false
        /// The file is owned by another user (this uid), and this manifest's build state records
        /// another file there: a restored copy of this manifest's would be the user's own.
        public var otherUser: UInt32? = nil

        /// Why: for messages ("… is an output of M (WHY), not of this manifest").
        public var reason: String {
            if let movedState { return "this manifest's own build state, moved to \(movedState), records this very file" }
            if let doubt { return doubt }
            if takeOver != nil, lock == nil, let state { return "which is no longer there, but its build state \(state) records this very file as the one it installed" }
            if let lock, takeOver != nil || gone { return "which is no longer there, but its lock \(lock) records this file with these very bytes" }
            if gone { return "which is no longer there, but its build state \(state ?? "") records this file with these very bytes" }
            if let lock { return "its lock \(lock) records this file with these very bytes" }
            guard let recordedOwner else { return "its build state says so" }
            return "its files were copied from \(recordedOwner), whose build state, copied too, records them at the same place beside that manifest"
        }

        /// The plan error for `file` (as shown): another manifest's output, which `--overwrite` takes.
        public func refusal(_ file: String) -> String {
            if let otherUser {
                return "\(file) is owned by another user (uid \(otherUser)), not by you, and this manifest's build state records another file there: "
                    + "Derive did not install this one, and never takes another user's file as a restored copy of its own (another user's build may have taken it over); "
                    + "it is neither adopted nor removed: if it is yours to replace, pass --overwrite"
            }
            if let movedState {
                let lock = movedLock.map { FileIdentity.anythingAt($0) ? " and 'lock: \($0)'" : "" } ?? ""
                return "\(file) was installed by this manifest: its build state, moved to \(movedState) since (not where 'state:' names it now), records this very file; "
                    + "set 'state: \(movedState)'\(lock) in \(manifest) to carry on from its records (or move them back); otherwise pass --overwrite to take the file over anew"
            }
            // Never adopted on a guess, nor removed: whichever of the two built it, the user knows,
            // and either command below makes its owner record it (attack 51a's 5).
            if let doubt, let own = ruleDoubtBeside {
                let ownRecord = ownRecordsNothing ? "nothing of this manifest records a file there (no line of its lock, no record of its build state)"
                    : ownLockOnly && ownLockOtherBytes ? "this manifest's lock records other bytes there, and its build state is gone"
                    : ownLockOnly ? "this manifest's lock records these very bytes there too, but its build state is gone"
                    : "this manifest's build state records another file there"
                let theirs = leftByOwner
                    ? "if \(manifest) built it, it is kept as that project's (its rule no longer writes the name): remove the file yourself if neither needs it, "
                        + "or have a rule of \(manifest) write the name again and run derive build \(manifest) --overwrite (it records the file as its own)"
                    : "if \(manifest) built it, run derive build \(manifest) --overwrite (it records the file as its own)"
                let mine = ownLockOnly && ownLockOtherBytes ? "if this manifest is to write it anew, run derive build \(own) --overwrite"
                    : "if it is this manifest's copy restored, run derive build \(own) --overwrite to take it over"
                return "\(file) may be an output of \(manifest): \(doubt); \(ownRecord), so whose "
                    + "this one is cannot be told, and it is neither adopted nor removed; \(theirs); \(mine); or give one of the two a bucket folder of its own"
            }
            // Never adopted on a guess: the file may be a project's the registry would name.
            if let doubt {
                let fix = doubt.contains(TakeoverNotes.unreadableMarker) ? "for the takeover notes: " + TakeoverNotes.advice(doubt)
                    : doubt.contains(" lies in a bucket of ") ? "set XDG_STATE_HOME to a folder outside every bucket"
                    // The state home this manifest built with is gone: the projects it named record
                    // themselves again when they build (attack 52a's F12).
                    : doubt.contains(WipedStateHome.marker)
                    ? "build the other projects that write into this bucket first (each build records its project in the state home again, and this manifest then names the one that installed the file)"
                    // Followed literally, loses no project: what the registry named is found again
                    // from the build states' tokens in the state home (attack 51a's 2).
                    : "move the registry away (whatever is at that path: a file, a folder, a link) or make it a readable file of yours (the next build writes it anew; the projects it named are found again from their build states' tokens beside it)"
                let cannotTell = doubt.contains(WipedStateHome.marker) || doubt.contains(TakeoverNotes.unreadableMarker) ? "another project" : "a project it lists"
                return "\(file) may be another project's output: \(doubt), so Derive cannot tell whether \(cannotTell) installed this file; "
                    + fix + ", or pass --overwrite to take the file over"
            }
            // A manifest renamed with the default lock and state names (attack 41a's B7): whose the
            // records are, and how this manifest carries on from them if it is that one renamed.
            if let takeOver {
                return "\(file) is an output of \(manifest), \(reason); if this manifest is that one renamed, set \(takeOver) in it "
                    + "to carry on from its records (or give it its old name back); otherwise move its \(lock == nil && state != nil ? "build state" : "lock") away, or pass --overwrite to take the file over"
            }
            // Another folder's project: this manifest cannot carry on from its records; they stay
            // its word until they are moved away (a branch switched back brings the manifest back).
            if gone {
                return "\(file) is an output of \(manifest), \(reason); if that project is gone for good, move its lock and build state away "
                    + "(or put its manifest back and give this manifest a bucket folder of its own); otherwise pass --overwrite to take the file over"
            }
            return "\(file) is an output of \(manifest) (\(reason)), not of this manifest; give this manifest a bucket folder of its own, or pass --overwrite to take the file over"
        }

        /// What `clean` says of a file it recorded that is this project's output now (it took
        /// the file over): whose it is, never "a copy, or a file put there since" (attack 49a's F9).
        public func leftInPlace(_ file: String) -> String {
            if let movedState { return "\(file) is recorded by this manifest's build state moved to \(movedState); left in place" }
            if let doubt, ruleDoubtBeside != nil { return "\(file) may be an output of \(manifest) (\(doubt)); left in place" }
            if let doubt { return "\(file) may be another project's output (\(doubt)); left in place" }
            let whose = takeOver != nil || gone ? "\(manifest), \(reason)," : "\(manifest) (\(reason)),"
            return "\(file) is an output of \(whose) not of this manifest; left in place"
        }
    }

    /// A record of another manifest's state: it wrote a file in `folder`, and `owner` names it.
    struct Written: Sendable, Hashable {
        var folder: String
        var owner: String
    }

    /// A line of a neighbour manifest's lock: `manifest` wrote the file `key` of its bucket's
    /// folder `folder` (real; nil when the manifest does not load: any folder) with these bytes.
    struct Locked: Sendable, Hashable {
        var manifest: String
        var lock: String
        var folder: String?
        var digest: String
        var bytes: Int64
        /// The manifest is gone: `Claim.takeOver`.
        var takeOver: String? = nil
    }

    /// What this manifest's own lock records of an output: its bytes there.
    struct Vouched: Sendable, Hashable {
        var digest: String
        var bytes: Int64
    }

    /// Output files other manifests' states record, by key (the path inside its bucket folder).
    public struct Files: Sendable {
        var written: PathDictionary<Set<Written>> = [:]
        /// The lines of the neighbour manifests' locks (`SiblingManifests.neighbourLocks`), by key.
        var locked: PathDictionary<[Locked]> = [:]
        /// This manifest's own lock's lines, by output (`bucket/key`), when the lock is its own
        /// (`LockFile.isOurs`): a file it vouches for is this manifest's, whatever a neighbour's
        /// line says (attack 41c's C3: a copy of derive.lock beside it as site.lock, in a fresh
        /// clone, made derive.yaml refuse its own outputs as site.yaml's).
        var ownLines: PathDictionary<Vouched> = [:]
        /// This manifest (its absolute real path): never a claimant.
        var owner = ""
        /// The bucket folders of the manifests found, read once.
        var folders = BucketFolders()
        public var isEmpty: Bool { written.isEmpty && locked.isEmpty }

        /// The manifest claiming `file`, the output `bucket/key` of this manifest; nil when none
        /// does. A state's record first; else a neighbour's lock line naming the file with its
        /// very bytes (that neighbour has no state, or it records nothing of the file).
        /// `ownWins` false: this manifest's own lock line is no tie-breaker (for a file it no
        /// longer produces, an orphan: attack 48's F2; for a file its own state says it did not
        /// install: `ForeignClaimLookup.claimant`).
        ///
        /// Looked up by where the file is, not by this manifest's key: a record is placed where
        /// it is now (its folder and key make a real file path), so each tail of the file's path
        /// is a key another manifest may have written it under, in the folder the rest names
        /// (attack 48c's F1: a neighbour with a bucket at `pub/n` records `a.jpg` there, which is
        /// `n/a.jpg` of this manifest's bucket `pub`; looked up by `n/a.jpg`, its record was never
        /// found). Each record verifies the folder as it always did (`claimant(in:)`,
        /// `lockClaimant`); a lock line whose bucket's folder is unknown matches any tail.
        public func claimant(of file: String, output: String, ownWins: Bool = true) -> Claim? {
            let own = ownWins ? ownLines[output] : nil
            let places = Self.places(of: file)
            for place in places {
                if let records = written[place.key], let claim = ForeignClaims.claimant(in: place.folder, among: records, owner: owner, folders: folders) { return claim }
            }
            for place in places {
                if let lines = locked[place.key], let claim = ForeignClaims.lockClaimant(of: file, in: place.folder, among: lines, own: own) { return claim }
            }
            return nil
        }

        /// Each way to split `file` into a folder and a key below it, the deepest folder first
        /// (`/w/pub/n/a.jpg`: `/w/pub/n` + `a.jpg`, `/w/pub` + `n/a.jpg`, `/w` + `pub/n/a.jpg`).
        static func places(of file: String) -> [(folder: String, key: String)] {
            let bytes = Array(file.utf8)
            var places: [(folder: String, key: String)] = []
            for index in bytes.indices.reversed() where bytes[index] == UInt8(ascii: "/") && index > 0 && index < bytes.count - 1 {
                places.append((String(decoding: bytes[..<index], as: UTF8.self), String(decoding: bytes[(index + 1)...], as: UTF8.self)))
            }
            return places
        }
    }

    /// The neighbour whose lock line names `file` (in `folder`, one of its buckets' folders, or
    /// any when it does not load) with the file's bytes: first by manifest name, so all agree.
    /// None when this manifest's own lock (`own`, its line for this output) records these very
    /// bytes: its own record wins a tie with a neighbour's.
    static func lockClaimant(of file: String, in folder: String, among lines: [Locked], own: Vouched? = nil) -> Claim? {
        let here = RealFolder.of(folder)
        var info = stat()
        guard lstat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let candidates = lines.filter { line in line.bytes == Int64(info.st_size) && (line.folder.map { PathKey.same($0, here) } ?? true) }
        guard !candidates.isEmpty, let digest = fileDigest(file) else { return nil }
        if let own, own.digest == digest, own.bytes == Int64(info.st_size) { return nil }
        return candidates.filter { $0.digest == digest }
            .min { PathKey.ordered($0.manifest, $1.manifest) }
            .map { Claim(manifest: realPath($0.manifest), recordedOwner: nil, lock: $0.lock, takeOver: $0.takeOver) }
    }

    /// The SHA-256 of the regular file at `path` (no link followed), streamed in 64 KiB pieces: a
    /// file asked about may be any user's file of any size (a 400 MiB file a lock names as the old
    /// index was read whole, BuildSafetyRound13's B1); nil when it cannot be read.
    static func fileDigest(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return RealDisk.digestAndHead(of: fd, headBytes: 0)?.digest
    }

    /// The lock at `path` parsed, when it is a regular file within the lock's limits.
    static func readLock(_ path: String) -> (data: Data, lock: LockFile)? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= LockFile.maxBytes,
              let data = FileManager.default.contents(atPath: path),
              let lock = LockFile.parse(String(decoding: data, as: UTF8.self)) else { return nil }
        return (data, lock)
    }

    /// This manifest's own lock's lines (`Files.ownLines`): only when its header makes it this
    /// manifest's (a copy of a neighbour's lock vouches for nothing).
    static func ownLines(owner: String) -> PathDictionary<Vouched> {
        let path = SiblingManifests.ownLock(of: owner)
        guard let (data, lock) = readLock(path),
              LockFile.isOurs(data, manifest: LockFile.ownerName(manifestPath: owner, lockPath: path), lockPath: path) else { return [:] }
        return lock.entries.mapValues { Vouched(digest: $0.digest, bytes: $0.bytes) }
    }

    /// A lock in this manifest's folder whose header names a manifest of that folder that is no
    /// longer there, nor any manifest's lock now (attack 41a's B7: `mv derive.yaml site.yaml`
    /// with the default names left derive.lock and .derive/derive recording every output, and
    /// site.yaml called them "not written by Derive"). Its manifest was renamed, perhaps to this
    /// one; a manifest of another name does not take its records over unasked (two new manifests
    /// would both take them): its lines claim the files, with the settings that carry on.
    public struct GoneManifestLock: Sendable, Equatable {
        /// The lock, absolute.
        public var lock: String
        /// The manifest its header names, absolute (not there).
        public var manifest: String
        /// `'lock: derive.lock' and 'state: .derive/derive'` (the state only when that folder is there).
        public var takeOver: String
    }

    public static func goneManifestLocks(owner: String) -> [GoneManifestLock] {
        let folder = (owner as NSString).deletingLastPathComponent
        let own = SiblingManifests.ownLock(of: owner)
        let taken = [own] + SiblingManifests.neighbourLocks(of: owner).map(\.lock)
        // A lock at any name too, known by its first line (`lock: n-lock.txt`, attack 49a's F3).
        let named = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter(ProjectMarkers.isLockName)
        let names = Set(named + LeftLockFiles.listing(of: folder).locks.map { ($0.lock as NSString).lastPathComponent })
        var gone: [GoneManifestLock] = []
        for name in names.sorted() {
            let path = folder + "/" + name
            guard !taken.contains(where: { PathKey.same($0, path) }), let (data, _) = readLock(path), let recorded = LockFile.owner(data),
                  !recorded.contains("/"), recorded != (owner as NSString).lastPathComponent,
                  LockFile.succeeds(owner: recorded, manifest: (owner as NSString).lastPathComponent, lockPath: path) else { continue }
            let state = ".derive/" + (recorded as NSString).deletingPathExtension
            var info = stat()
            let hasState = stat(folder + "/" + state, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
            gone.append(GoneManifestLock(lock: path, manifest: folder + "/" + recorded,
                                         takeOver: "'lock: \(name)'" + (hasState ? " and 'state: \(state)'" : "")))
        }
        return gone
    }

    /// The lines of the neighbour manifests' locks, placed in their buckets' folders; and of the
    /// locks of manifests gone from this folder (`goneManifestLocks`), in any folder.
    static func lockedFiles(owner: String) -> PathDictionary<[Locked]> {
        var locked: PathDictionary<[Locked]> = [:]
        for gone in goneManifestLocks(owner: owner) {
            guard let (_, lock) = readLock(gone.lock) else { continue }
            for entry in lock.entries.values {
                guard let (_, key) = PathKey.split(entry.path) else { continue }
                locked[key, default: []].append(Locked(manifest: gone.manifest, lock: gone.lock, folder: nil, digest: entry.digest,
                                                       bytes: entry.bytes, takeOver: gone.takeOver))
            }
        }
        for neighbour in SiblingManifests.neighbourLocks(of: owner) {
            guard let (data, lock) = readLock(neighbour.lock), !lock.entries.isEmpty else { continue }
            // A lock whose header names another manifest than this neighbour is not its record
            // (a copy of this manifest's lock: `cp derive.lock site.lock`, attack 41c's C3), and
            // claims nothing for it: `LockFile.isOurs` as the neighbour's own build reads it.
            guard LockFile.isOurs(data, manifest: LockFile.ownerName(manifestPath: neighbour.manifest, lockPath: neighbour.lock),
                                  lockPath: neighbour.lock) else { continue }
            // Its buckets' folders when it loads; a neighbour that does not claims a line's key in
            // any folder (refused rather than taken over).
            var folders: [String: String]?
            if neighbour.parses {
                var loader = ManifestLoader()
                loader.crossChecks = false
                loader.neighbourChecks = false
                if let manifest = loader.load(neighbour.manifest).manifest {
                    folders = Dictionary(manifest.buckets.map { ($0.name, RealFolder.of($0.path)) }, uniquingKeysWith: { a, _ in a })
                }
            }
            for entry in lock.entries.values {
                guard let (bucket, key) = PathKey.split(entry.path) else { continue }
                let folder: String?
                if let folders {
                    guard let known = folders[bucket] else { continue }
                    folder = known
                } else {
                    folder = nil
                }
                locked[key, default: []].append(Locked(manifest: neighbour.manifest, lock: neighbour.lock, folder: folder, digest: entry.digest, bytes: entry.bytes))
            }
        }
        return locked
    }

    public static func files(stateFolder: String, owner: String) -> Files {
        var files = Files(owner: owner)
        files.folders = BucketFolders()
        forEachForeignState(in: stateFolder, owner: owner) { other, db in
            for row in try Row.fetchAll(db, sql: "SELECT path, folder FROM outputs WHERE folder != ''") {
                let path: String = row[0], folder: String = row[1]
                files.written[PathKey.key(of: path), default: []].insert(Written(folder: folder, owner: other))
            }
            return false
        }
        files.locked = lockedFiles(owner: owner)
        if !files.locked.isEmpty { files.ownLines = ownLines(owner: owner) }
        return files
    }

    /// The manifest whose state records a file of `path`'s name, written besides outputs (its
    /// index), at the place that makes it `path` now; nil when none does.
    public static func controlFile(_ path: String, stateFolder: String, owner: String) -> Claim? {
        let name = (path as NSString).lastPathComponent
        var records = Set<Written>()
        forEachForeignState(in: stateFolder, owner: owner) { other, db in
            for written in try String.fetchAll(db, sql: "SELECT path FROM controlFiles") where PathKey.same((written as NSString).lastPathComponent, name) {
                records.insert(Written(folder: RealFolder.of((written as NSString).deletingLastPathComponent), owner: other))
            }
            return false
        }
        return claimant(in: (path as NSString).deletingLastPathComponent, among: records, owner: owner, folders: BucketFolders())
    }

    /// The one rule: a file in `folder` that `records` say their owner wrote belongs to the
    /// manifest at the owner's place relative to the folder written to, taken from `folder`, when
    /// that manifest exists and is not `owner` (this manifest). First by name, so all agree.
    static func claimant(in folder: String, among records: Set<Written>, owner: String, folders: BucketFolders) -> Claim? {
        let here = RealFolder.of(folder)
        var claims: [Claim] = []
        for record in records {
            let place = (here as NSString).appendingPathComponent(relativePath(from: record.folder, to: record.owner))
            var info = stat()
            guard stat(place, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            let manifest = realPath(URL.literalStandardPath(place))
            guard !PathKey.same(manifest, owner), !PathKey.same(manifest, realPath(owner)) else { continue }
            // Not the folder the record was written in: the manifest found must have it as a bucket.
            guard PathKey.same(here, record.folder) || folders.of(manifest).contains(here) else { continue }
            claims.append(Claim(manifest: manifest, recordedOwner: PathKey.same(manifest, record.owner) ? nil : record.owner))
        }
        return claims.min { a, b in
            PathKey.same(a.manifest, b.manifest) ? PathKey.ordered(a.recordedOwner ?? "", b.recordedOwner ?? "") : PathKey.ordered(a.manifest, b.manifest)
        }
    }

    /// `file` relative to `folder`, both absolute (`/w/shared`, `/w/proj/derive.yaml` →
    /// `../proj/derive.yaml`), by their components: no file system involved.
    static func relativePath(from folder: String, to file: String) -> String {
        let from = URL(literalFilePath: folder).standardizedFileURL.pathComponents
        let to = URL(literalFilePath: file).standardizedFileURL.pathComponents
        var common = 0
        while common < min(from.count, to.count - 1), from[common] == to[common] { common += 1 }
        return (Array(repeating: "..", count: from.count - common) + to[common...]).joined(separator: "/")
    }

    /// Opens the state and each moved-aside foreign state read-only, in name order, and gives
    /// `body` its owner when that is another manifest (which may have moved or gone: its records
    /// are placed where they are now), and a database; `body` returns true to stop. States that
    /// cannot be read claim nothing.
    /// The states of the other manifests in this manifest's folder (`site.yaml` beside
    /// `derive.yaml`) are read the same way after this manifest's own state folder: what they
    /// record is theirs (attack 40a's A3).
    static func forEachForeignState(in stateFolder: String, owner: String, _ body: (String, Database) throws -> Bool) {
        var stop = false
        for folder in [stateFolder] + SiblingManifests.neighbourStateFolders(of: owner, ownState: stateFolder) where !stop {
            stop = forEachForeignState(inOne: folder, owner: owner, body)
        }
    }

    /// One state folder's states, as above; true when `body` stopped.
    static func forEachForeignState(inOne stateFolder: String, owner: String, _ body: (String, Database) throws -> Bool) -> Bool {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: stateFolder) else { return false }
        let prefix = StateFiles.movedAsidePrefixes.first { $0.hasSuffix("foreign-") }!
        func foreign(_ name: String) -> Bool {
            name == StateFiles.database || (name.hasPrefix(prefix) && name.dropFirst(prefix.count).allSatisfy({ $0.isNumber || $0 == "-" }))
        }
        for name in names.sorted() where foreign(name) {
            // SQLite would replay or delete a side file there, or wait on a FIFO: such a state claims nothing.
            guard (try? StateFolderTrust.checkDatabaseFiles(stateFolder + "/" + name)) != nil else { continue }
            var configuration = Configuration()
            configuration.readonly = true
            guard let queue = try? DatabaseQueue(path: stateFolder + "/" + name, configuration: configuration) else { continue }
            defer { try? queue.close() }
            let stop = try? queue.read { db -> Bool in
                guard let other = try String.fetchOne(db, sql: "SELECT manifest FROM owner"), !StateOwner.isSame(recorded: other, owner: owner) else { return false }
                return try body(other, db)
            }
            if stop == true { return true }
        }
        return false
    }

    /// The real folders of a manifest's buckets, loaded once per manifest (no cross checks:
    /// nothing is listed); none when it does not load.
    final class BucketFolders: @unchecked Sendable {
        private let lock = NSLock()
        private var loaded: PathDictionary<PathSet> = [:]

        func of(_ manifest: String) -> PathSet {
            lock.withLock {
                if let known = loaded[manifest] { return known }
                var loader = ManifestLoader()
                loader.crossChecks = false
                loader.neighbourChecks = false
                let folders = PathSet((loader.load(manifest).manifest?.buckets ?? []).map { RealFolder.of($0.path) })
                loaded[manifest] = folders
                return folders
            }
        }
    }

    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// Other manifests' claims as one command needs them: read on first use, then kept, so a plan
/// opens the states moved aside once however many outputs and indexes it asks about.
public final class ForeignClaimLookup: @unchecked Sendable {
    public let stateFolder: String
    public let owner: String
    /// This manifest's own state's record of one output's file (`StateStore.outputIdentity`: nil
    /// when none is known, `FileIdentity.unproven` when its row is unsealed or gone), read by key
    /// when that output is first asked about, then kept. Nil: not known (no state given).
    /// (Issue 15: the whole table was read, every seal checked, to answer for the two outputs an
    /// edited source rebuilds: 71 M of a 2 000-output plan's 635 M instructions.)
    private let ownIdentitySource: (@Sendable (_ output: String) -> FileIdentity?)?
    private let lock = NSLock()
    private var loadedFiles: ForeignClaims.Files?
    private var loadedOwnIdentities: PathDictionary<FileIdentity?> = [:]
    private var loadedOwnLines: PathDictionary<ForeignClaims.Vouched>?
    private var loadedElsewhere: ForeignRecordedOutputs?
    private var indexes: PathDictionary<ForeignClaims.Claim?> = [:]


    public init(stateFolder: String, owner: String, ownIdentity: (@Sendable (_ output: String) -> FileIdentity?)? = nil) {
        self.stateFolder = stateFolder
        self.owner = owner
        self.ownIdentitySource = ownIdentity
    }

    /// Output files other manifests' states record.
    public var files: ForeignClaims.Files {
        lock.withLock {
            if let loadedFiles { return loadedFiles }
            let files = ForeignClaims.files(stateFolder: stateFolder, owner: owner)
            loadedFiles = files
            return files
        }
    }

    /// The manifest whose records claim `file`, this manifest's output `output`; nil when none
    /// does. The one question "does another project record this file" for plan, check, build
    /// and clean: the manifests of this folder (`Files.claimant`, by where the file is), and the
    /// projects in other folders, still there or gone (`ForeignRecordedOutputs.claim`: a
    /// neighbour's bucket, one renamed since, a gone project's lock and state).
    ///
    /// The tie between this manifest's own record and another's holding the same bytes goes to
    /// the installer: the record whose file (device, inode, birth: this manifest's state keeps
    /// them) is the file there now wrote it last.
    /// - This manifest's state records the very file there: its own, whatever another's records
    ///   say (they are older: the file was installed after them). Nothing else is asked.
    /// - Its state records another file there (a neighbour took the path over with
    ///   `--overwrite`, its identical bytes in a new file: attack 48c's F1; or a copy restored by
    ///   hand): its own lock line for those bytes is no longer its word, so another manifest's
    ///   record of them, beside it or in another folder, claims the file. A copy restored by hand
    ///   that no other manifest records stays this manifest's (adopted).
    /// - Nothing says who installed it (no state: a fresh clone; an old state): this manifest's
    ///   own lock line with the file's bytes wins a tie with a neighbour's line (attack 41c's
    ///   C3), a neighbour's state still claims it, and other folders are asked only when its own
    ///   lock has no line for the output (a line with other bytes vouches for nothing: the plan
    ///   asks other projects of such a file itself; a fresh clone's adoptions are not hashed twice).
    /// - Before any of these: another project's build state records the very file there
    ///   (device, inode, birth, in the folder it wrote it) as the one it installed (`installer`):
    ///   it is that project's, whether it is live, does not load or is gone, and wherever its
    ///   buckets point now. Its state knows who installed the file; this manifest's lock line
    ///   only knows the bytes, and a "restored copy" is only a guess (attack 49a's F1, F2, F4).
    /// `ownWins` false: this manifest's own lock line never wins (an orphan: attack 48's F2).
    public func claimant(of file: String, output: String, ownWins: Bool = true) -> ForeignClaims.Claim? {
        let now = FileIdentity.ofRegularFile(file)
        var installed: Bool?
        if now != nil, let recorded = ownIdentity(output), recorded != .unproven {
            installed = recorded.isFile(at: file)
        }
        if installed == true { return nil }
        if now != nil, let claim = elsewhere().installerClaim(of: file, doubting: true) { return claim }
        // This manifest's own state, no longer bound (its token gone with the state home), records
        // another file there: the project that installed this one is no longer named anywhere.
        if now != nil, installed == nil, let doubt = WipedStateHome.doubt(file: file, output: output, stateFolder: stateFolder, owner: owner) {
            return ForeignClaims.Claim(manifest: ProjectRegistry.path ?? "", recordedOwner: nil, doubt: doubt)
        }
        // No build state of this manifest (lost: `rm -rf .derive`) while its lock vouches for the
        // file, and a live manifest the registry names (lost its state too) records it in its lock,
        // where it lies, with these very bytes: doubt from both sides, never each "Up to date" over
        // one file and the first build taking it (attack 53a's F4).
        // Unless this manifest's own build took this very file over and installed it, as the
        // state home notes: its lock line is its word then (attack 56b's M3: the taker, its state
        // lost, was refused its own file and advised to build the other with --overwrite).
        if now != nil, installed == nil, ownWins, ownLines()[output] != nil, !ownStateThere() {
            if TakeoverNotes.tookOver(file, by: owner, in: notes()) { return nil }
            // Another build's note of this very file outranks the lock lines (written before it
            // took the file): the doubt names that taker (attack 56c's L1: a copy of the original
            // was told the original may own the file and advised to build it with --overwrite).
            if var doubt = takenOverDoubt(of: file) ?? bothLocksDoubt(of: file) {
                doubt.ownLockOnly = true
                doubt.ownLockOtherBytes = ownLines()[output]?.digest != ForeignClaims.fileDigest(file)
                return doubt
            }
        }
        if let claim = files.claimant(of: file, output: output, ownWins: ownWins && installed == nil) { return claim }
        if now != nil, !(installed == nil && ownWins && ownLines()[output] != nil),
           let digest = ForeignClaims.fileDigest(file), let claim = elsewhere().claim(of: file, digest: digest) {
            // Neither this manifest's state nor the claimant's records the file there now as the
            // one it installed, and both record these bytes (a whole project restored from a
            // backup): the same doubt from both sides, never each naming the other.
            if installed == false, claim.doubt == nil, !claim.gone, claim.takeOver == nil,
               elsewhere().statesRecordAnotherFile(at: file, manifest: claim.manifest, digest: digest) {
                // Unless this manifest's build took the file at this path over and installed these
                // very bytes, as the state home notes (the other state's record is older): a copy
                // of its own (attack 58a's 4: the taker was refused its file restored from a backup).
                if TakeoverNotes.tookOver(file, by: owner, in: notes()) { return nil }
                return ForeignClaims.Claim(manifest: claim.manifest, recordedOwner: nil,
                                           doubt: "the build states of \(claim.manifest) and of this manifest both record these very bytes there, but neither records this file "
                                            + "as the one it installed (restored from a backup: tar, cp -a, rsync)", ruleDoubtBeside: owner)
            }
            return claim
        }
        if installed == false {
            // The bytes this manifest's build installed at this path after taking it over, the file
            // restored since (58b's 4: refused as "a rule of the original writes that name").
            if TakeoverNotes.tookOver(file, by: owner, in: notes()) { return nil }
            return ruleDoubt(of: file) ?? otherUserDoubt(of: file)
        }
        // Nothing of this manifest records a file there (its `clean` removed its lock and state,
        // or it never built): a live manifest whose rule writes the name may have installed it,
        // and `build --verify` must not take it on its bytes (attack 52a's F3).
        if now != nil, installed == nil, ownLines()[output] == nil, var doubt = ruleDoubt(of: file) {
            doubt.ownRecordsNothing = true
            return doubt
        }
        // Nothing else claims it, and another build of this user's took this very file over and
        // installed it (the state home's note): that outranks this manifest's lock line, written
        // before (attack 56b's H2: its state lost, its lock adopted the file and `clean` deleted it).
        // Nor does a lock line outweigh another user's ownership of the file: that user's build
        // (its own state home) may have taken it over, and this manifest's lock only knows the
        // bytes (attack 56c's H2: adopted from the lock, cleaned, deleted as an old copy,
        // replaced by a restyle, all with this manifest's state lost).
        if now != nil, installed == nil, let doubt = takenOverDoubt(of: file) ?? otherUserDoubt(of: file) { return doubt }
        return nil
    }

    /// Doubt, for a file this manifest's state says it did not install and no record claims: a
    /// live manifest (beside this one, or in another folder) whose rule writes that very name
    /// may have installed it (taken over with `--overwrite`, then its lock and state lost), so it
    /// is not "a restored copy" of this manifest's (attack 51a's 5: adopted, then deleted by
    /// `clean`). The same rule `NeighbourDoubt.ruleWriting` gives serve and narrowing.
    private func ruleDoubt(of file: String) -> ForeignClaims.Claim? {
        if let writer = NeighbourDoubt(besides: owner).ruleWriter(file: file) {
            return ForeignClaims.Claim(manifest: writer.manifest, recordedOwner: nil,
                                       doubt: "\(writer.name)'s rule '\(writer.rule)' writes that name, so the file may be its output", ruleDoubtBeside: owner)
        }
        if let writer = elsewhere().ruleWriter(of: file) {
            return ForeignClaims.Claim(manifest: writer.manifest, recordedOwner: nil,
                                       doubt: "a rule of \(writer.manifest) writes that name (\(writer.output)), so the file may be its output", ruleDoubtBeside: owner)
        }
        return registeredDoubt(of: file) ?? takenOverDoubt(of: file)
    }

    /// Doubt for a file owned by another user where this manifest's state records another file:
    /// another user's build may have taken it over (its state home, registry and notes are not
    /// this user's to read), and a restored copy of this user's would be this user's own file
    /// (attack 56a's F2: adopted as a "restored copy", then deleted by `clean`).
    private func otherUserDoubt(of file: String) -> ForeignClaims.Claim? {
        var info = stat()
        guard lstat(file, &info) == 0, info.st_uid != geteuid() else { return nil }
        var claim = ForeignClaims.Claim(manifest: "", recordedOwner: nil,
                                        doubt: "it is owned by another user (uid \(info.st_uid)), whose build may have installed it", ruleDoubtBeside: owner)
        claim.otherUser = info.st_uid
        return claim
    }

    /// Doubt for a file another build of this user's took over with `--overwrite` and installed
    /// (the state home's note of that very file: `TakeoverNotes`), when nothing else found says
    /// so: that project moved beyond the search, or lost its records (attack 56a's F3).
    private func takenOverDoubt(of file: String) -> ForeignClaims.Claim? {
        let answer = lock.withLock { () -> TakeoverNotes.Answer?? in takeoverAnswers[file] } ?? {
            let found = TakeoverNotes.taker(of: file, besides: owner, in: notes())
            lock.withLock { takeoverAnswers[file] = .some(found) }
            return found
        }()
        guard let answer else { return nil }
        let taker: String, how: String
        switch answer {
        // Unreadable notes are doubt, as an unreadable registry is (attack 56b's M1).
        case .unreadable(let why):
            return ForeignClaims.Claim(manifest: TakeoverNotes.path ?? "", recordedOwner: nil, doubt: why + " (" + TakeoverNotes.unreadableMarker + ")")
        case .taker(let manifest):
            taker = manifest
            how = "its build took this very file over (derive build --overwrite) and installed it, as this user's state home notes"
        case .taking(let manifest):
            taker = manifest
            how = "its build was taking the file at this path over (derive build --overwrite) and did not note its end (killed, or the note not written), as this user's state home notes"
        case .copy(let manifest):
            taker = manifest
            how = "the file here is a copy of the file its build took over (derive build --overwrite) and installed at this path: its very bytes, the file itself gone (restored from a backup, or copied back), as this user's state home notes"
        }
        // Its path is this manifest's own, its file another (57b's 6: a manifest saved by an
        // editor as a new file, or another project moved here): said so, not as another project.
        let gone = PathKey.same(taker, owner) ? " (by a manifest file at this manifest's path that is not this one: saved since as a new file, or another project moved here; if this manifest built it, pass --overwrite)"
            : NeighbourProjects.isProjectManifest(taker) ? "" : " (no longer there: moved, or removed)"
        return ForeignClaims.Claim(manifest: taker, recordedOwner: nil,
                                   doubt: "\(how)\(gone), so the file may be its output (no build state found records it now)", ruleDoubtBeside: owner)
    }

    /// Why `file` (not the file this manifest installed there) may be the output of a live
    /// manifest whose rule writes its name, or whose lock records it: `ruleDoubt`'s reason; nil when none.
    public func ruleDoubtReason(of file: String) -> String? {
        ruleDoubt(of: file)?.doubt
    }

    /// `ruleDoubt` for a live project the registry of built projects names beyond the neighbour
    /// search (a far taker that lost its build state: attack 52a's F2): its rule writes the name,
    /// or its lock records the file with these very bytes.
    private func registeredDoubt(of file: String) -> ForeignClaims.Claim? {
        let writers = registeredWriters
        // Then its lock's lines by where the file lies (its manifest not loading, a bucket folder
        // renamed or its link gone, a `left` line: attack 53a's F1, F2, F3).
        guard let writer = writers.writer(of: file) ?? writers.lockKeeper(of: file) else { return nil }
        let why = writer.left ? "its lock \(writer.lock) records this file (\(writer.output)) as one its build left in place, with these very bytes"
            : writer.locked ? "its lock \(writer.lock) records this file (\(writer.output)) with these very bytes"
            : "a rule of \(writer.manifest) writes that name (\(writer.output))"
        var claim = ForeignClaims.Claim(manifest: writer.manifest, recordedOwner: nil,
                                        doubt: why + ", so the file may be its output (no build state of it records this very file)", ruleDoubtBeside: owner)
        claim.leftByOwner = writer.left
        return claim
    }
    private var loadedWriters: RegisteredWriters?
    private var takeoverAnswers: [String: TakeoverNotes.Answer?] = [:]

    /// The state home's takeover notes, read once.
    private func notes() -> TakeoverNotes.Notes {
        if let known = lock.withLock({ loadedNotes }) { return known }
        let read = TakeoverNotes.Notes.read()
        lock.withLock { loadedNotes = read }
        return read
    }
    private var loadedNotes: TakeoverNotes.Notes?

    /// The registry's live projects that write or keep files, read once (on first need).
    private var registeredWriters: RegisteredWriters {
        lock.withLock {
            if let loadedWriters { return loadedWriters }
            let found = RegisteredWriters(ownManifest: owner, ownState: stateFolder)
            loadedWriters = found
            return found
        }
    }

    /// `claimant`'s doubt when neither this manifest nor a registered live one has a build state
    /// saying which installed the file, and both locks record it with these very bytes.
    private func bothLocksDoubt(of file: String) -> ForeignClaims.Claim? {
        let writers = registeredWriters
        guard let writer = writers.lockKeeper(of: file) else { return nil }
        var claim = ForeignClaims.Claim(manifest: writer.manifest, recordedOwner: nil,
                                        doubt: "its lock \(writer.lock) records this file (\(writer.output)) \(writer.left ? "as one its build left in place, " : "")with these very bytes, "
                                            + "so the file may be its output (no build state of it records this very file)", ruleDoubtBeside: owner)
        claim.leftByOwner = writer.left
        claim.ownLockOnly = true
        return claim
    }

    /// Whether this manifest's build state database is there (a state lost says nothing of who installed a file).
    /// A state this command made (a build opens its state before it plans) is one lost: it says
    /// nothing of who installed a file (attack 54a: plan refused, build adopted and clean
    /// deleted; 56b's H1: a build deleted an old copy its plan left).
    private func ownStateThere() -> Bool {
        var info = stat()
        let database = stateFolder + "/" + StateFiles.database
        return lstat(database, &info) == 0 && !StateStore.madeByThisProcess(database)
    }

    /// The other project whose build state records the very file at `file` (device, inode,
    /// birth, at the place it wrote it) as the one it installed; nil when none does
    /// (`ForeignRecordedOutputs.installerClaim`). One file is never two states' own: a deletion
    /// of a file another state records so is refused (`Planner.installedElsewhere`).
    public func installer(of file: String) -> ForeignClaims.Claim? {
        elsewhere().installerClaim(of: file)
    }

    private func ownIdentity(_ output: String) -> FileIdentity? {
        guard let ownIdentitySource else { return nil }
        return lock.withLock {
            if let known = loadedOwnIdentities[output] { return known }
            let identity = ownIdentitySource(output)
            loadedOwnIdentities[output] = .some(identity)
            return identity
        }
    }

    private func ownLines() -> PathDictionary<ForeignClaims.Vouched> {
        lock.withLock {
            if let loadedOwnLines { return loadedOwnLines }
            let lines = ForeignClaims.ownLines(owner: owner)
            loadedOwnLines = lines
            return lines
        }
    }

    /// Projects in other folders, asked only of a file this manifest did not install (restored
    /// copies in bulk after a `git checkout` ask it of each file): their manifests are loaded
    /// once and kept while their files' stamps stay (`cachesProjects`), not once per file.
    private func elsewhere() -> ForeignRecordedOutputs {
        lock.withLock {
            if let loadedElsewhere { return loadedElsewhere }
            let found = ForeignRecordedOutputs(ForeignProjectFiles(besides: owner, cachesProjects: true))
            loadedElsewhere = found
            return found
        }
    }

    /// The manifest whose state records `path` as its index; nil when none does.
    public func index(_ path: String) -> ForeignClaims.Claim? {
        lock.withLock {
            if let known = indexes[path] { return known }
            let other = ForeignClaims.controlFile(path, stateFolder: stateFolder, owner: owner)
            indexes[path] = other
            return other
        }
    }
}
