import Confinement
import Foundation
import Manifest
import NIOConcurrencyHelpers
import Planner
#if canImport(Glibc)
import Glibc
#endif

/// Other projects' files as `derive serve` meets them (attack 42a's H1 and H2): the projects
/// `NeighbourProjects` finds for the manifest served (validate refuses a bucket holding their
/// control files, or answering their outputs more publicly than they do; this is the defence
/// behind it, for what appears after the manifest was checked: a hard link to another project's
/// lock, a project copied into a bucket, an output another manifest builds later).
///
/// - A file opened for reading is refused (as a missing key) when its device and inode are
///   another project's manifest, include, lock or a file of its state folder (the projects and
///   their files looked for again at most every `refresh` seconds: a build replaces its state
///   files, a project may be copied into a bucket).
/// - A key is never replaced or deleted when another manifest's lock records the file as its
///   output (the lock read again whenever it changes), nor when `ForeignProjectFiles` names it
///   another project's manifest, include, lock, index or state file (any project above the file,
///   however deep below the bucket's folder).
final class ForeignServedFiles: Sendable {
    let manifest: Manifest
    var manifestFile: String { manifest.file }
    /// This manifest's buckets' folders, links resolved, by name.
    let bucketFolders: [String: String]
    let refresh: Double
    /// Per neighbour lock: the identity of the file read, and its outputs' files (real paths).
    private let outputs = NIOLockedValueBox<[String: (identity: [Int64], files: Set<String>)]>([:])
    private let controls = NIOLockedValueBox<Known?>(nil)
    /// A request is looking for the neighbours again now (`known()`): the others answer from the
    /// last look meanwhile instead of waiting on it.
    private let refreshing = NIOLockedValueBox(false)
    /// Folders below the buckets' folders: whether each holds a manifest, with its stamp then.
    private let folderManifests = NIOLockedValueBox<[String: (stamp: [Int64], holds: Bool)]>([:])
    /// Per folder holding a nested project: the stamps of the folder and of `watched` when its
    /// recorded outputs `files` were read (`recordedOutputs(inProjectFolder:)`).
    private let nestedOutputs = NIOLockedValueBox<[String: (stamp: [[Int64]], watched: [String], outputs: NestedOutputs)]>([:])
    /// Every lock and state each project loaded with (`recordedOutputs`), oldest first, kept for
    /// the life of the process: a neighbour appearing or going makes serve load the manifest
    /// again, with a new instance of this type (attack 46b's N1: what was learned went with it).
    /// All of them count, whether or not it loads now: a manifest caught half-saved may load
    /// with a `lock:` half-typed (`lock: meta/he`), and its records stay where it last said
    /// (attack 50b's H6: the one it loaded with last replaced them, and its output went public).
    private static let learnedControlFiles = NIOLockedValueBox<[String: [(lock: String, state: String)]]>([:])
    /// Places learned per project at most (the oldest forgotten first).
    static let maxLearnedPlaces = 8
    /// The neighbours' doubt (`NeighbourDoubt`, the builds' one definition), as last made, and when.
    private let doubt = NIOLockedValueBox<(doubt: NeighbourDoubt, at: Double)?>(nil)
    /// Files hashed to compare with a lock line (`fileDigest`).
    private let fileDigests = NIOLockedValueBox<[String: (stamp: [Int64], digest: String)]>([:])

    /// A nested project folder's recorded outputs: files placed (real path → most public ACL), and
    /// the keys of lock lines of a project whose manifest does not load (its buckets unknown).
    private struct NestedOutputs {
        var files: [String: BucketACL] = [:]
        /// The files its builds left in place (its lock's `left` lines), kept apart from `files`:
        /// they do not cap a file the manifest served records with the bytes it holds.
        var leftFiles: [String: BucketACL] = [:]
        /// Lock keys of a project whose manifest does not load, with the digests its lines give.
        var unplacedKeys: [String: Set<String>] = [:]
        /// Of those, the lines its own folder holds the very copy of (`bucket/key` below it, with
        /// the line's bytes: a clone, whose `out: {path: out}` lies there), key → digest → that
        /// copy's real path: such a line is that file's record, not one of any other file
        /// ending so (attack 50b's L5: a clone in a sibling folder was named the owner of the
        /// served manifest's own file, by its name and bytes alone).
        var ownCopies: [String: [String: String]] = [:]
        /// Every project read loaded (else the result is read again after `refresh`), and when.
        var allLoaded = true
        var readAt: Double = 0

        /// The ACL for `file` (in `folder`): a placed record's, or private when the file's path
        /// ends with an unplaced key (as builds take a project mid-edit's lock at its word): in a
        /// project's own folder by key alone; elsewhere (`folder` ""), only while the file holds
        /// the bytes a line with that key records (`digest`), as builds judge it (attack 46a's
        /// M1: by key alone, every `landscape.jpg` of the served bucket was taken).
        func acl(of file: String, in folder: String, digest: (String) -> String?, byKey: Bool = true, leftLinesCount: Bool = true) -> BucketACL? {
            let left = leftLinesCount ? leftFiles[file] : nil
            if let acl = files[file] { return left.map { .morePrivate(acl, $0) } ?? acl }
            if let left { return left }
            guard byKey, !unplacedKeys.isEmpty, file.hasPrefix(folder + "/") else { return nil }
            let parts = file.dropFirst(folder.count + 1).split(separator: "/", omittingEmptySubsequences: false)
            for start in parts.indices {
                guard let digests = unplacedKeys[parts[start...].joined(separator: "/")] else { continue }
                if !folder.isEmpty { return .private }
                if let found = digest(file), digests.contains(found) {
                    if let copy = ownCopies[parts[start...].joined(separator: "/")]?[found], copy != file { continue }
                    return .private
                }
            }
            return nil
        }
    }

    /// The SHA-256 of the file at `path` (what a lock line's `digest` is), kept while its
    /// identity, size and times stay; nil when it cannot be read.
    private func fileDigest(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let stamp = Self.stamp(info)
        if let known = fileDigests.withLockedValue({ $0[path] }), known.stamp == stamp { return known.digest }
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let digest = ContentDigests.digest(data)
        fileDigests.withLockedValue { cache in
            if cache.count >= 4096 { cache.removeAll() }
            cache[path] = (stamp, digest)
        }
        return digest
    }

    /// Called as each look for the neighbours starts (tests hold a look there while other
    /// requests arrive).
    let lookStarts: @Sendable () -> Void

    init(manifest: Manifest, refresh: Double = 1, lookStarts: @escaping @Sendable () -> Void = {}) {
        self.manifest = manifest
        self.lookStarts = lookStarts
        bucketFolders = Dictionary(manifest.buckets.map { ($0.name, RealFolder.of($0.path)) }, uniquingKeysWith: { a, _ in a })
        self.refresh = refresh
    }

    /// `RecordedOutputs.foreignOwner`.
    func owner(bucket: String, key: String) -> String? {
        guard let folder = bucketFolders[bucket] else { return nil }
        let file = (folder == "/" ? "" : folder) + "/" + key
        for neighbour in known().neighbours where recordedOutputs(neighbour).contains(file) {
            return "is an output of \(neighbour.manifestPath), another manifest (its lock \(neighbour.lockFile) records it)"
        }
        // Recorded by a project around it, in its lock or its state, whether or not its manifest
        // loads (round 45's F1 and F2: a neighbour mid-edit, or one validate does not look at).
        if let recorder = outsideRecorders(of: file).first {
            // Named as its lock's first line names it when its manifest is gone (a lock moved to `locks/`).
            return "is an output of \(NeighbourProjects.goneManifestName(recorder.manifest)), another manifest (its lock or its build state records it)"
        }
        var info = stat()
        if lstat(file, &info) == 0, isControlFile(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), orIndex: true) {
            return "is a control file (manifest, include, lock, index or build state) of another project"
        }
        // Derive's own per-user records (a state home's secret, hard-linked or copied into the
        // bucket: attack 52b's 4) are never replaced by a writer, as they are never answered.
        if isStateHomeRecord(bucket: bucket, key: key) {
            return "is one of Derive's per-user records (a build state's secret, a lock's provenance or the registry of built projects), never an object"
        }
        // A lock or build state no project's folder marks (its manifest gone, `lock:` and `state:`
        // moved into `locks/`): attack 47b's F1 family, anonymous writers replaced and deleted them.
        if Self.isStrayControlFile(bucket: folder, key: key) {
            return "is a Derive lock or lies in a Derive build state folder, another project's (whether or not its manifest is there)"
        }
        // One that is not there yet, by its path (attack 44's finding 5: the lock of the project
        // that is a private bucket's folder, before its first build): the projects whose folder
        // holds the file, as `ForeignProjectFiles` finds them (no nearby scan on every write).
        if let foreign = known().near.owner(of: file), foreign.isControlFile {
            return "is \(foreign.what) of \(foreign.manifest), another project (by its path, whether or not it exists yet)"
        }
        // A project deeper in the bucket: everything in its folder is its own (its outputs, which
        // its lock may not name yet, too: attack 42d's N1 and N2, anonymous writers to a
        // public-read-write bucket and signed writers to a private one replaced and deleted them).
        if let nested = nestedManifestFolder(bucket: bucket, key: key) {
            return "lies in \(nested), the folder of another project (it holds a manifest or Derive's state)"
        }
        return nil
    }

    /// The first folder below the bucket's folder, on the way to `key`, that holds a manifest
    /// (another project's: validate refuses a bucket holding this one's), nil when none does. Each
    /// folder's listing is kept while its identity and times stay: one `stat` per folder a request.
    func nestedManifestFolder(bucket: String, key: String) -> String? {
        nestedManifestFolders(bucket: bucket, key: key, all: false).first
    }

    /// The folders below the bucket's folder, on the way to `key`, that hold a project, shallowest
    /// first (only the first unless `all`).
    private func nestedManifestFolders(bucket: String, key: String, all: Bool) -> [String] {
        guard let base = bucketFolders[bucket] else { return [] }
        var folder = base == "/" ? "" : base
        var info = stat()
        var found: [String] = []
        for part in key.split(separator: "/", omittingEmptySubsequences: false).dropLast() {
            folder += "/" + part
            guard stat(folder, &info) == 0 else { return found }
            let stamp = Self.stamp(info)
            let path = folder
            let has = folderManifests.withLockedValue { cache -> Bool in
                if let known = cache[path], known.stamp == stamp { return known.holds }
                let holds = NeighbourProjects.holdsProject(path)
                if cache.count > 4096 { cache.removeAll() }
                cache[path] = (stamp, holds)
                return holds
            }
            if has {
                found.append(path)
                if !all { return found }
            }
        }
        return found
    }

    private static func stamp(_ info: stat) -> [Int64] {
        [Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
         Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
    }

    /// The stamps of `paths` (identity, size, times; a missing one as [-1]).
    private static func stamps(_ paths: [String]) -> [[Int64]] {
        var info = stat()
        return paths.map { stat($0, &info) == 0 ? stamp(info) : [-1] }
    }

    /// The most public a reader may be answered `key` of `bucket` when the file is an output that a
    /// project nested in the bucket (its manifest in a folder on the way to the key, however deep:
    /// deeper than validate looks) records, in its lock or its build state: the most private ACL
    /// that project gives its outputs in that bucket (`NeighbourProject.mostPrivateOutputACL`), and
    /// private when it cannot say (its manifest does not load, no rule of it writes there now).
    /// Nil when no such project records the file. Round 45: "writes refused, reads not hidden", a
    /// public bucket answered such a project's private outputs to anyone. Keys outside a project's
    /// folder pay what `nestedManifestFolder` pays (one cached `stat` per folder); inside one, the
    /// `stat` of its manifests, includes, locks and states, its outputs read again only when one
    /// changed (`nestedOutputs`, at most 256 projects' folders kept).
    /// `leftLinesCount` false: those projects' `left` lines do not count (the manifest served
    /// records the file with the bytes it holds).
    /// A file found another project's recorded output keeps the ACL found while it holds what it
    /// held then (`knownForeignOutputs`), unless this manifest verifies it its own (`byKey` and
    /// `leftLinesCount` false).
    func nestedOutputACL(bucket: String, key: String, byKey: Bool = true, leftLinesCount: Bool = true) -> BucketACL? {
        let found = nestedOutputRecords(bucket: bucket, key: key, byKey: byKey, leftLinesCount: leftLinesCount).map { $0.acl }
            .reduce(nil) { acl, given in acl.map { .morePrivate($0, given) } ?? given }
        guard byKey, leftLinesCount, let base = bucketFolders[bucket] else { return found }
        let file = (base == "/" ? "" : base) + "/" + key
        var info = stat()
        guard stat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return found }
        let stamp = Self.stamp(info)
        return Self.knownForeignOutputs.withLockedValue { known in
            if let found {
                if known[file] != nil || known.count < Self.maxKnownForeignOutputs { known[file] = (stamp, found) }
                return found
            }
            guard let kept = known[file], kept.stamp == stamp else { return nil }
            return kept.acl
        }
    }

    /// The files this serve found another project's recorded outputs (real path → the file's
    /// identity, size and times then, and the ACL found), kept for the life of the process: when
    /// that project's records go (its lock and state removed or moved away, its manifest emptied)
    /// the file, unchanged since, stays answered no more publicly than it was (attack 52b's 1: b's
    /// lock and state removed, b's private output in a public bucket was answered to anyone).
    /// Proven otherwise when the file changes (replaced, rewritten) or this manifest's own
    /// records vouch for its bytes.
    private static let knownForeignOutputs = NIOLockedValueBox<[String: (stamp: [Int64], acl: BucketACL)]>([:])
    /// Files kept at most (more are not learned: forgetting one would publish it).
    static let maxKnownForeignOutputs = 65_536

    /// The folder of the nested project whose recorded output `key` of `bucket` is (`nestedOutputACL`).
    /// Named by its manifest (attack 47b's F6: a project whose manifest is gone, its lock moved
    /// to `locks/`, was named as the folder `…/locks`): those in the nested project's folder, or,
    /// gone, the one its lock's first line names (`NeighbourProjects.goneManifestName`).
    /// `gone`: that manifest is no longer there (attack 48b's F3: the note never said so).
    func nestedOutputOwner(bucket: String, key: String) -> (manifest: String, nested: Bool, gone: Bool)? {
        guard let record = nestedOutputRecords(bucket: bucket, key: key).first else { return nil }
        guard record.nested else {
            let named = NeighbourProjects.goneManifestName(record.manifest)
            return (named, false, !NeighbourProjects.manifests(in: (named as NSString).deletingLastPathComponent).contains(named))
        }
        let present = NeighbourProjects.manifests(in: record.folder)
        let named = (present.isEmpty ? NeighbourProjects.manifestsGone(in: record.folder).map(NeighbourProjects.goneManifestName) : present)
        return (named.isEmpty ? record.folder : named.joined(separator: " and "), true, present.isEmpty && !named.isEmpty)
    }

    /// Why the file at `key` of `bucket` may be a neighbour's output, as builds judge it
    /// (`NeighbourDoubt`, looked at again after `refresh`): a manifest beside this one whose lock
    /// is there but does not read, or which does not load, records what nothing can say; or,
    /// when no project's lock or state records the file (`recordedElsewhere` false), a loading
    /// neighbour's rule writes its very name (attack 50b's H1: b's lock and state gone, b.yaml
    /// loading, its private output was answered under a's public record while a's build called
    /// it in doubt). Nil when neither holds.
    func neighbourDoubt(bucket: String, key: String, recordedElsewhere: Bool) -> String? {
        guard let folder = bucketFolders[bucket] else { return nil }
        let now = ProcessInfo.processInfo.systemUptime
        let current = doubt.withLockedValue { kept -> NeighbourDoubt in
            if let kept, now - kept.at < refresh { return kept.doubt }
            let fresh = NeighbourDoubt(besides: manifestFile)
            kept = (fresh, now)
            return fresh
        }
        if let unreadable = current.unreadable { return unreadable }
        return recordedElsewhere ? nil : current.ruleWriting(file: (folder == "/" ? "" : folder) + "/" + key)
    }

    /// Notes that the project `manifest` loaded with `place` (its lock and state).
    static func learn(_ manifest: String, _ place: (lock: String, state: String)) {
        learnedControlFiles.withLockedValue { learned in
            var places = learned[manifest] ?? []
            guard !places.contains(where: { $0 == place }) else { return }
            places.append(place)
            if places.count > maxLearnedPlaces { places.removeFirst(places.count - maxLearnedPlaces) }
            learned[manifest] = places
        }
    }

    /// Every lock and state `manifest` loaded with while this serve ran, oldest first.
    static func learned(_ manifest: String) -> [(lock: String, state: String)] {
        learnedControlFiles.withLockedValue { $0[manifest] ?? [] }
    }

    /// Whether the file at `key` of `bucket` is a regular file holding `digest`.
    func holds(bucket: String, key: String, digest: String) -> Bool {
        guard let folder = bucketFolders[bucket] else { return false }
        return fileDigest((folder == "/" ? "" : folder) + "/" + key) == digest
    }

    private func nestedOutputRecords(bucket: String, key: String, byKey: Bool = true,
                                     leftLinesCount: Bool = true) -> [(folder: String, manifest: String, acl: BucketACL, nested: Bool)] {
        guard let base = bucketFolders[bucket] else { return [] }
        let file = (base == "/" ? "" : base) + "/" + key
        return nestedManifestFolders(bucket: bucket, key: key, all: true).compactMap { folder in
            recordedOutputs(inProjectFolder: folder).acl(of: file, in: folder, digest: fileDigest, byKey: byKey, leftLinesCount: leftLinesCount)
                .map { (folder, "", $0, true) }
        } + outsideRecorders(of: file, byKey: byKey, leftLinesCount: leftLinesCount).map { ($0.folder, $0.manifest, $0.acl, false) }
    }

    /// The projects outside the key's path that record `file` (its real path under a bucket's
    /// folder) as their output, each with the most public ACL it gives it: the neighbours
    /// validate reads (`NeighbourProjects`: beside this manifest, around its buckets, below its
    /// folder), loaded or not, and the projects a build asks of a file it did not write
    /// (`ForeignProjectFiles.recorders`: above the file and nearby; and, whose manifest does not
    /// load, `unloadedProjects`). Round 45's F1: `gallery/derive.yaml` mid-edit (a half-typed
    /// line) had its private outputs in this manifest's public bucket answered to anyone, and
    /// replaced by anonymous writers; F2: a sibling project (`../gallery` writing
    /// `../site/www/gallery`), one validate does not look for, alike. A project whose manifest
    /// does not load gives its recorded outputs private: its state keeps each output's folder; its
    /// lock alone (no state rows) names keys only, matched at the end of the file's path.
    private func outsideRecorders(of file: String, byKey: Bool = true, leftLinesCount: Bool = true) -> [(manifest: String, folder: String, acl: BucketACL)] {
        let known = known()
        var manifests: [String] = known.neighbours.map(\.manifestPath)
        manifests += known.foreign.recorders(of: file).map(\.manifest)
        manifests += known.foreign.unloadedProjects(around: file).map(\.manifest)
        manifests += known.foreign.projectsWithoutBuckets(around: file)
        // Those whose manifest is gone, their lock and state left, in the folders builds look at
        // for the file (attack 46b's M2: beside or below the site, taken for nobody's), each with
        // the lock and state the builds' one definition found for it (`goneProjects`: a moved
        // `lock:`/`state:` too, attack 48b's F1).
        let gone = known.foreign.goneProjects(around: file)
        var goneLeft: [String: [(lock: String, state: String)]] = [:]
        for project in gone { goneLeft[project.manifest, default: []].append((project.lock, project.state)) }
        manifests += gone.map(\.manifest)
        // The projects the registry of built projects names with a bucket folder holding the
        // file, with the lock and state it built with: far away (attack 51a's 3b), or beside this
        // one with its manifest half-saved before its `lock:`/`state:` lines (attack 51b's H1).
        for entry in known.registered where entry.holds(file) {
            manifests.append(entry.manifest)
            if !(goneLeft[entry.manifest] ?? []).contains(where: { $0 == (entry.lock, entry.state) }) {
                goneLeft[entry.manifest, default: []].append((entry.lock, entry.state))
            }
        }
        // The projects this serve saw load (their `lock:` and `state:` learned), even once their
        // manifest is emptied or removed and discovery no longer finds them (attack 46b's N1).
        manifests += Self.learnedControlFiles.withLockedValue { Array($0.keys) }
        var seen = Set<String>()
        var found: [(manifest: String, folder: String, acl: BucketACL)] = []
        var byKeyOnly: [(manifest: String, folder: String, acl: BucketACL)] = []
        for manifest in manifests where seen.insert(RealFolder.of(manifest)).inserted {
            let outputs = recordedOutputs(ofProject: manifest, left: goneLeft[manifest] ?? [])
            if let acl = outputs.acl(of: file, in: "", digest: fileDigest, byKey: false, leftLinesCount: leftLinesCount) {
                found.append((manifest, (manifest as NSString).deletingLastPathComponent, acl))
            } else if byKey, let acl = outputs.acl(of: file, in: "", digest: fileDigest, byKey: true, leftLinesCount: leftLinesCount) {
                byKeyOnly.append((manifest, (manifest as NSString).deletingLastPathComponent, acl))
            }
        }
        // A registered project's state, wherever it lies now, that records the very file (device,
        // inode, birth, under its key): its output, whatever paths changed since; the builds' one
        // definition (attack 52a's F9, 52b's 3: a far taker renamed or moved had its private
        // output answered, listed and deleted anonymously until it built again).
        if found.isEmpty, byKeyOnly.isEmpty,
           let record = known.installed.installers(of: file, real: file).min(by: { $0.acl.openness < $1.acl.openness }) {
            return [(record.manifest, (record.manifest as NSString).deletingLastPathComponent, record.acl)]
        }
        // A lock line matched by key and bytes alone (its project's buckets unknown) never
        // outranks a project that records the very file where it lies, as builds judge it
        // (`ForeignRecordedOutputs.unloadedOwner`): attack 51b's M2, a backup `old/p.lock` made
        // p's public output private here while validate and p's own serve said public.
        return found.isEmpty ? byKeyOnly : found
    }

    /// The recorded outputs (real paths) of the projects whose manifest lies in `folder`, each with
    /// the most public ACL its project gives it; read again when the folder, a manifest, an
    /// include, a lock or a state database of them changed.
    private func recordedOutputs(inProjectFolder folder: String) -> NestedOutputs {
        let manifests = NeighbourProjects.manifests(in: folder)
        // A project whose manifest is gone (a branch switched) keeps its state and lock: their
        // records count at their default names (attack 46a's H10: a public bucket answered them).
        return recordedOutputs(of: manifests.isEmpty ? NeighbourProjects.manifestsGone(in: folder) : manifests,
                               key: folder, stamped: [folder, folder + "/" + ProjectMarkers.stateFolderName], lockKeysAlways: true)
    }

    /// The recorded outputs of the project whose manifest is `path` (`outsideRecorders`), read
    /// again when its manifest, an include, its lock or its state database changed. Unplaced lock
    /// keys count only when its state records no output (they match any file ending so).
    /// `left`: the lock and state a gone project left where its `lock:`/`state:` had moved them.
    private func recordedOutputs(ofProject path: String, left: [(lock: String, state: String)] = []) -> NestedOutputs {
        recordedOutputs(of: [path], key: "manifest:" + path + left.map { "\0" + $0.lock + "\0" + $0.state }.joined(), stamped: [path],
                        lockKeysAlways: false, left: left)
    }

    /// The recorded outputs of the projects of `manifests`, kept under `key` with the stamps of
    /// `stamped` and of the files they read. `lockKeysAlways`: a lock's keys of a project whose
    /// manifest does not load count even when its state records outputs.
    private func recordedOutputs(of manifests: [String], key cacheKey: String, stamped: [String], lockKeysAlways: Bool,
                                 left: [(lock: String, state: String)] = []) -> NestedOutputs {
        let folderStamp = Self.stamps(stamped)
        let now = ProcessInfo.processInfo.systemUptime
        if let cached = nestedOutputs.withLockedValue({ $0[cacheKey] }), cached.stamp == folderStamp + Self.stamps(cached.watched),
           cached.outputs.allLoaded || now - cached.outputs.readAt < refresh {
            return cached.outputs
        }
        var outputs = NestedOutputs()
        outputs.readAt = now
        var watched: [String] = []
        func record(_ path: String, _ acl: BucketACL) { outputs.files[path] = outputs.files[path].map { .morePrivate($0, acl) } ?? acl }
        for path in manifests {
            var lockKeys: [String: Set<String>] = [:]
            var copies: [String: [String: String]] = [:]
            var stateRecords = 0
            let project = NeighbourProjects.project(path)
            // One that parses but loads with errors (emptied: no buckets; a rule half-typed) is
            // taken at its word like one that does not parse (attack 46a's H1 and M3: its partial
            // reading placed nothing, or gave the ACL of a rule mid-edit).
            let loaded = project.manifest != nil && !project.loadErrors
            // The files it will load with again are not all known while it does not load (an
            // include gone and put back: attack 46a's M5): read again after `refresh`.
            if !loaded { outputs.allLoaded = false }
            // Its lock and state where it last loaded with them (`lock:`, `state:` moved: its
            // defaults then name nothing; attack 46a's H2), and at its defaults.
            var places = [(project.lockFile, project.stateFolder)]
            if loaded { Self.learn(path, (project.lockFile, project.stateFolder)) }
            // And every other it loaded with while this serve ran, loading now or not (H6).
            for learned in Self.learned(path) where !places.contains(where: { $0 == learned }) { places.append(learned) }
            if !loaded {
                // Its `lock:` and `state:` as its lines say them (`controlFiles(ofSibling:)`), and its defaults.
                let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
                let folder = (path as NSString).deletingLastPathComponent
                let defaults = (folder + "/" + stem + ".lock", folder + "/" + ProjectMarkers.stateFolderName + "/" + stem)
                if !places.contains(where: { $0 == defaults }) { places.append(defaults) }
            }
            // Where builds found what it left (`goneProjects`), whether or not it loads: a manifest
            // cut back to `version: 1` and a half-typed `lock:` loads, is no project to discovery,
            // and its lock and state lie where it last said (attack 50b's H6, a serve started then).
            for place in left where !places.contains(where: { $0 == place }) { places.append(place) }
            let buckets = loaded ? project.manifest?.buckets ?? [] : []
            let folders = Dictionary(buckets.map { ($0.name, RealFolder.of($0.path)) }, uniquingKeysWith: { a, _ in a })
            func acl(_ bucket: String) -> BucketACL {
                buckets.first { $0.name == bucket }.flatMap(project.mostPrivateOutputACL) ?? .private
            }
            func place(_ output: String, folder recorded: String = "") -> String? {
                guard let (bucket, key) = PathKey.split(output) else { return nil }
                guard let base = recorded.isEmpty ? folders[bucket] : RealFolder.of(recorded) else { return nil }
                return (base == "/" ? "" : base) + "/" + key
            }
            // Its lock's placed lines, given an ACL once every state is read (`lostState`).
            var lockPlaced: [(file: String, bucket: String)] = []
            var stateRead = false, stateLost = false
            for (lockFile, stateFolder) in places {
                watched += [lockFile, stateFolder + "/" + StateFiles.database]
                // The files its builds left in place under an ACL (its lock's `left` lines, placed
                // as its own serve places them): no more public here (attack 46a's H8).
                let lockFolder = (lockFile as NSString).deletingLastPathComponent
                for left in Self.leftLines(lockFile) {
                    let placed = left.file.map { $0.hasPrefix("/") ? $0 : lockFolder + "/" + $0 } ?? place(left.path)
                    if let placed {
                        let file = RealFolder.of((placed as NSString).deletingLastPathComponent) + "/" + (placed as NSString).lastPathComponent
                        let acl = BucketACL(rawValue: left.acl) ?? .private
                        outputs.leftFiles[file] = outputs.leftFiles[file].map { .morePrivate($0, acl) } ?? acl
                    }
                }
                // A lock that does not parse (a merge conflict, cut short) keeps its whole lines
                // (attack 46a's H3: a conflict in it published every output it recorded).
                for entry in Self.lockEntries(lockFile) {
                    if let file = place(entry.path) {
                        lockPlaced.append((file, PathKey.split(entry.path)?.0 ?? ""))
                    } else if let key = PathKey.split(entry.path)?.key {
                        // Its buckets unknown, or no longer declared (`version: 1` alone: attack
                        // 46b's N3): by key and bytes, as for one that does not load.
                        lockKeys[key, default: []].insert(entry.digest)
                        // Asked of projects around the file only (one nested in the key's path is its own folder).
                        guard !lockKeysAlways else { continue }
                        let copy = (path as NSString).deletingLastPathComponent + "/" + entry.path
                        watched.append(copy)
                        if let real = ownCopy(copy, bytes: entry.bytes, digest: entry.digest) { copies[key, default: [:]][entry.digest] = real }
                    }
                }
                // The ACL its build recorded counts too: a rule made public, not rebuilt, is not
                // published by this serve before its own (attack 46a's M4).
                // Read where it lies now: moved with its project, or found by its identity (attack
                // 53b's 1: `mv g g2` or `mv g/.derive g/.derive-old` left the lock's lines the rule's ACL).
                let state = StateWhereItLies.read(state: stateFolder, manifest: RealFolder.of(path))
                if let readAt = state.readAt {
                    stateRead = true
                    if !PathKey.same(readAt, ProjectRegistry.realName(stateFolder)) { watched.append(readAt + "/" + StateFiles.database) }
                } else if state.lost {
                    stateLost = true
                }
                for (output, row) in state.rows {
                    stateRecords += 1
                    if let file = place(output, folder: row.folder) {
                        let recordedACL = BucketACL(rawValue: row.acl) ?? .private
                        record(file, .morePrivate(acl(PathKey.split(output)?.0 ?? ""), recordedACL))
                    }
                }
            }
            // A state Derive made for it, gone and not found moved (`rm -rf g/.derive`): its lock
            // says no ACL, so its lines are private until it builds again, as this manifest's own
            // outputs are while its state is missing (never its rules' ACL, which may be newer).
            let lostState = stateLost && !stateRead
            for (file, bucket) in lockPlaced { record(file, lostState ? .private : acl(bucket)) }
            watched += project.controlFiles.filter { $0.what != "the index" && $0.what != "the lock" }.map(\.path)
            if lockKeysAlways || stateRecords == 0 {
                for (key, digests) in lockKeys { outputs.unplacedKeys[key, default: []].formUnion(digests) }
                for (key, byDigest) in copies { outputs.ownCopies[key, default: [:]].merge(byDigest) { a, _ in a } }
            }
        }
        let stamp = folderStamp + Self.stamps(watched)
        nestedOutputs.withLockedValue { cache in
            if cache.count >= 256 { cache.removeAll() }
            cache[cacheKey] = (stamp, watched, outputs)
        }
        return outputs
    }

    /// The real path of the regular file at `path` when it holds `bytes` bytes with `digest`; nil otherwise.
    private func ownCopy(_ path: String, bytes: Int64, digest: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int64(info.st_size) == bytes, fileDigest(path) == digest else { return nil }
        return RealFolder.of((path as NSString).deletingLastPathComponent) + "/" + (path as NSString).lastPathComponent
    }

    /// The `left` lines of the lock at `lockFile` (none when it does not parse).
    static func leftLines(_ lockFile: String) -> [LockFile.Left] {
        var info = stat()
        guard stat(lockFile, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= LockFile.maxBytes,
              let data = FileManager.default.contents(atPath: lockFile), LockFile.isDeriveLock(data),
              let lock = LockFile.parse(String(decoding: data, as: UTF8.self)) else { return [] }
        return Array(lock.left.values)
    }

    /// The entry lines of the lock at `lockFile`: all of them when it parses, else every whole
    /// line that is an entry (a merge conflict's markers, a last line cut short, skipped).
    static func lockEntries(_ lockFile: String) -> [LockFile.Entry] {
        var info = stat()
        guard stat(lockFile, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= LockFile.maxBytes,
              let data = FileManager.default.contents(atPath: lockFile) else { return [] }
        return LockFile.salvagedEntries(data)
    }

    /// Whether `key` of `bucket` is a control file of a project whose manifest lies in a folder
    /// below the bucket's folder, on the way to the key (deeper than `NeighbourProjects` looks):
    /// each folder's listing is kept while its identity and times stay, so a read pays one
    /// `stat` per folder on the way, and `ForeignProjectFiles` is asked only below a manifest.
    func isNestedControlFile(bucket: String, key: String) -> Bool {
        guard let base = bucketFolders[bucket] else { return false }
        if Self.isStrayControlFile(bucket: base, key: key) { return true }
        guard let nested = nestedManifestFolder(bucket: bucket, key: key) else { return false }
        let file = (base == "/" ? "" : base) + "/" + key
        // A project folder's state (anything in its `.derive`) and its Derive locks, with or
        // without a manifest beside them (attack 46a's H10: its manifest gone, they were answered).
        let inner = String(file.dropFirst(nested.count + 1))
        if inner.hasPrefix(ProjectMarkers.stateFolderName + "/") || (!inner.contains("/") && LockFirstLine.isDerivesLock(file)) { return true }
        guard let owner = known().foreign.owner(of: file) else { return false }
        // A file merely in the folder or a bucket of a project whose manifest does not load now
        // is refused to writers (`owner`), not hidden from readers: no control file of it.
        return owner.isControlFile
    }

    /// Whether `key` of `bucket` is one of Derive's per-user records (`StateHomeRecord`: a
    /// current token's file, or one starting as a token does), whatever its name and wherever it
    /// lies: asked of the key a request names or a listing returns alone, its verdict kept.
    func isStateHomeRecord(bucket: String, key: String) -> Bool {
        guard let base = bucketFolders[bucket] else { return false }
        return StateHomeRecord.isRecord((base == "/" ? "" : base) + "/" + key)
    }

    /// A lock or build state anywhere in a bucket, whether or not a project's folder holds it (a
    /// manifest gone, its `lock:` and `state:` moved to `locks/`: attack 47b's F1 family, the
    /// lock and `state.sqlite` were answered to anyone): a Derive lock (its marker), or a file in
    /// a folder of the bucket holding a Derive build state, or one or two folders below it (its
    /// cache folders). This manifest's own lock and state never lie in a bucket (validate).
    /// A Derive lock is one whose first line is the header Derive writes, as discovery reads a
    /// gone project's lock (`LockFirstLine.derivesLockManifest`): a user's file that merely starts
    /// like one is the user's, answered as any other (attack 50c's L2: NoSuchKey even signed).
    static func isStrayControlFile(bucket base: String, key: String) -> Bool {
        let file = (base == "/" ? "" : base) + "/" + key
        if LockFirstLine.isDerivesLock(file) { return true }
        var folder = (file as NSString).deletingLastPathComponent
        let inside = base == "/" ? "/" : base + "/"
        for _ in 0..<3 {
            guard folder == base || folder.hasPrefix(inside) else { break }
            if NeighbourProjects.holdsDeriveState(folder) { return true }
            guard folder != base else { break }
            folder = (folder as NSString).deletingLastPathComponent
        }
        return false
    }

    /// `RecordedOutputs.isForeignControlFile`. `orIndex`: another manifest's index counts too
    /// (never replaced; read, it is published where it lies, under its owner's ACL at most).
    func isControlFile(device: UInt64, inode: UInt64, orIndex: Bool = false) -> Bool {
        let known = known()
        return (orIndex ? known.withIndex : known.identities).contains([device, inode])
    }

    /// Whether the search for the projects beside this manifest stopped at a bound (validate warns):
    /// a project beyond it is not weighed, so a file in a public bucket that this manifest does not
    /// verify its own may be its private output (attack 52b's 5 and 5b: decoy manifests hid a
    /// private writer, and serve answered its output to anyone). As of the last refresh. So too
    /// while a registered state gone from its path was not yet searched for where it moved (the
    /// search's budget: `MovedStateIndex`): it may record the file privately.
    func boundReached() -> Bool {
        let known = known()
        return known.boundReached || known.installed.searchDoubt != nil
    }

    /// The neighbours and their control files' identities, looked for again at most every
    /// `refresh` seconds (a project copied into a bucket while serve runs is found then). The
    /// request that finds the last look due makes the new one; requests arriving while it does
    /// answer from the last look rather than wait (attack 53b's 4: with two 2 000-file buckets
    /// every request stalled behind the look, about 1.2 s each second). A request alone, as each
    /// of a sequence is, always sees a look at most `refresh` seconds old.
    private func known() -> Known {
        let now = ProcessInfo.processInfo.systemUptime
        if let last = controls.withLockedValue({ $0 }) {
            if now - last.checkedAt < refresh { return last }
            // Another request is looking now: its look replaces this one when done.
            guard refreshing.withLockedValue({ busy in defer { busy = true }; return !busy }) else { return last }
            defer { refreshing.withLockedValue { $0 = false } }
            let fresh = look(now: now)
            controls.withLockedValue { $0 = fresh }
            return fresh
        }
        return controls.withLockedValue { known in
            if let known { return known }
            let fresh = look(now: now)
            known = fresh
            return fresh
        }
    }

    /// The neighbours and their control files looked for now (`known()`).
    private func look(now: Double) -> Known {
        lookStarts()
        let (neighbours, belowCapped, aroundCapped) = NeighbourProjects.ofReportingCap(manifest)
        // What each neighbour that loads uses, learned now: a serve asked nothing of it
        // before it was emptied or removed still knows its moved lock and state (46b's N1).
        for neighbour in neighbours where neighbour.manifest != nil && !neighbour.loadErrors {
            Self.learn(neighbour.manifestPath, (neighbour.lockFile, neighbour.stateFolder))
        }
        let fresh = Known(checkedAt: now, neighbours: neighbours, boundReached: belowCapped || aroundCapped, identities: Self.identities(of: neighbours, orIndex: false),
                          withIndex: Self.identities(of: neighbours, orIndex: true),
                          foreign: ForeignProjectFiles(besides: manifestFile, cachesProjects: true),
                          near: ForeignProjectFiles(besides: manifestFile, nearby: false, cachesProjects: true),
                          registered: RegisteredProjects.others(than: URL(literalFilePath: manifest.files.first ?? manifestFile).standardizedFileURL.path,
                                                                state: manifest.stateFolder),
                          installed: RegisteredInstalledFiles(ownManifest: ProjectRegistry.realName(URL(literalFilePath: manifest.files.first ?? manifestFile).standardizedFileURL.path),
                                                              ownState: manifest.stateFolder))
        return fresh
    }

    private struct Known {
        var checkedAt: Double
        var neighbours: [NeighbourProject]
        /// A bound of the neighbour search was reached (`boundReached()`).
        var boundReached: Bool
        var identities: Set<[UInt64]>
        var withIndex: Set<[UInt64]>
        /// One per refresh, not one per request: its folder listings and nearby scan (up to
        /// 1 024 folders) are cached in it (a new one per write made every append scan them).
        var foreign: ForeignProjectFiles
        /// The same for the projects in a file's folder and above it only (asked of every write).
        var near: ForeignProjectFiles
        /// The registry of built projects' other projects, read once per refresh.
        var registered: [ProjectRegistry.Entry]
        /// Every registered state's installed files by identity, read when first asked this refresh.
        var installed: RegisteredInstalledFiles
    }

    /// Device and inode of each neighbour's manifest, includes, lock, (`orIndex`) index and the
    /// files directly in its state folder.
    static func identities(of neighbours: [NeighbourProject], orIndex: Bool) -> Set<[UInt64]> {
        var found: Set<[UInt64]> = []
        var info = stat()
        for neighbour in neighbours {
            var paths = neighbour.controlFiles.filter { orIndex || $0.what != "the index" }.map(\.path)
            if let names = try? FileManager.default.contentsOfDirectory(atPath: neighbour.stateFolder) {
                paths += names.map { neighbour.stateFolder + "/" + $0 }
            }
            for path in paths where stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG {
                found.insert([UInt64(info.st_dev), UInt64(info.st_ino)])
            }
        }
        return found
    }

    /// The files a neighbour's lock records as its outputs (real paths), read again when the
    /// lock's identity, size or times changed; none when it has no lock or does not load.
    func recordedOutputs(_ neighbour: NeighbourProject) -> Set<String> {
        guard let manifest = neighbour.manifest else { return [] }
        var info = stat()
        guard stat(neighbour.lockFile, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= LockFile.maxBytes else { return [] }
        let identity = [Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
                        Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
        return outputs.withLockedValue { cache in
            if let known = cache[neighbour.lockFile], known.identity == identity { return known.files }
            var files: Set<String> = []
            if let data = FileManager.default.contents(atPath: neighbour.lockFile), LockFile.isDeriveLock(data),
               let lock = LockFile.parse(String(decoding: data, as: UTF8.self)) {
                let folders = Dictionary(manifest.buckets.map { ($0.name, RealFolder.of($0.path)) }, uniquingKeysWith: { a, _ in a })
                for path in lock.entries.keys {
                    guard let (bucket, key) = PathKey.split(path), let folder = folders[bucket] else { continue }
                    files.insert((folder == "/" ? "" : folder) + "/" + key)
                }
            }
            cache[neighbour.lockFile] = (identity, files)
            return files
        }
    }
}
