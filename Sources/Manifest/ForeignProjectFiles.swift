import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which other project a file belongs to: another manifest, one of its includes, its lock, its
/// index, something in its build state folder, or a file in one of its source buckets. Asked of a
/// file Derive is about to write over without having written it (a plan refusal, or `--overwrite`
/// taking it): a bucket folder that holds another project (`top: {path: sub}` with
/// `to: top/{name}.yaml`) wrote a JPEG over `sub/derive.yaml` with `--overwrite` (attack 41a's
/// B10). Such a file is never replaced, with or without `--overwrite`: two manifests never touch
/// each other's files.
///
/// The other projects looked at are the manifests in the file's folder and in each folder above it,
/// on its path as given and on its real path (a bucket that is a link into another project's
/// folder), and the projects nearby whose buckets may lie outside their own folder (`path:
/// ../shared`, or a link `photos -> ../shared`: attack 41c's C1): the manifests in each direct
/// sub-folder of this manifest's parent folder and of the one above it, and of the file's real
/// folder and of its parent (`nearbyHeight`), never of `/`, names starting with `.` skipped, and
/// those in the folders below this manifest's own, `belowDepth` levels down. A
/// file is matched with a bucket by real path or by device and inode (`FileSystemPath`). The
/// nearby scan is bounded: `maxNearbyFolders` sub-folders listed and `maxNearbyManifests`
/// manifests read per instance, nearest first; projects beyond are not looked for. Each folder is
/// listed once per instance, so a build asks of many files at the cost of one listing per folder.
///
/// A nearby project's bucket that holds this manifest's own folder claims nothing (a folder that
/// wide holds this project: a project above, which the walk upwards finds, says what is its own).
public final class ForeignProjectFiles: @unchecked Sendable {
    public struct Owner: Sendable, Equatable {
        /// The other manifest, absolute.
        public var manifest: String
        /// What the file is to it (`the manifest`, `the lock`, `a source (bucket 'src')`).
        public var what: String
        /// Its manifest does not load now (its files are taken at its word until it does).
        public var unloaded = false
        /// Its manifest is gone, its lock and state left (`goneLockOwner`).
        public var gone = false

        public init(manifest: String, what: String, unloaded: Bool = false, gone: Bool = false) {
            self.manifest = manifest; self.what = what; self.unloaded = unloaded; self.gone = gone
        }

        /// One of its control files (manifest, include, lock, index, state), not a file that is
        /// merely in one of its source buckets or, while it does not load, in its folder or a bucket
        /// (`what` names those: "a source (bucket 'src')", "in the folder", "in bucket 'out'").
        public var isControlFile: Bool { !what.hasPrefix("a source") && !what.hasPrefix("in ") && !what.hasPrefix("an output") }

        /// The refusal a plan or a build gives (`display` shortens paths as the plan shows them).
        public func refusal(_ path: String, display: (String) -> String, fix: String = "change the rule's 'to:' or the bucket's 'path:'") -> String {
            "\(display(path)) \(reason(display: display, fix: fix))"
        }

        /// The refusal without the path it is about.
        public func reason(display: (String) -> String, fix: String) -> String {
            let whose = what == "the manifest" ? "another project's manifest"
                : "\(what) of \(display(manifest)), another project"
                    + (gone ? " whose manifest is no longer there (its lock and state still claim its outputs)"
                        : unloaded ? " whose manifest does not load (its files are taken as its own until it does)" : "")
            return "is \(whose); Derive never writes over another project's files "
                + "(two manifests never touch each other's files), with or without --overwrite: \(fix)"
        }
    }

    private struct Project {
        var manifest: FileSystemPath
        var manifestPath: String
        var files: [FileSystemPath]
        var lock: FileSystemPath
        var state: FileSystemPath
        var index: FileSystemPath?
        var sourceBuckets: [(name: String, folder: FileSystemPath)]
        /// Every bucket (outputs' too): where its recorded outputs lie (`recorders`).
        var buckets: [(name: String, folder: FileSystemPath)] = []
        var unreadable = false
        /// What its rules may write, when it loads without errors (`Recorder.ruleWrites`).
        var outputs: RuleOutputs?
        /// Its manifest parsed into a model: its buckets are known (one that did not, none is).
        var loaded = false
        var folder: FileSystemPath
    }

    /// A project that may record `path` as one of its outputs: `path` lies in its bucket's folder.
    public struct Recorder: Sendable, Equatable {
        /// The other manifest, as the file system names it (links resolved).
        public var manifest: String
        /// Its lock and its build state folder (absolute).
        public var lock: String
        public var state: String
        /// The output (`bucket/key`) `path` would be to it.
        public var output: String
        /// The real folder of that bucket.
        public var folder: String
        /// A rule of it, loading without errors, writes that very output (its lock and state
        /// aside: a live project that took the file over may have lost both).
        public var ruleWrites = false
    }

    private let manifestPath: String
    /// This manifest's file as the file system names it: resolved on the first question, so a
    /// plan that asks none (every file vouched for, a no-op) pays nothing.
    private var ownPath: FileSystemPath?
    private var own: FileSystemPath {
        lock.lock()
        defer { lock.unlock() }
        if let ownPath { return ownPath }
        let resolved = FileSystemPath(manifest: manifestPath)
        ownPath = resolved
        return resolved
    }
    private let lock = NSLock()
    private var projectsByFolder: [String: [Project]] = [:]
    /// Folders walked above a file at most (a deeper tree is looked at up to this height).
    static let maxHeight = 64
    /// How many folders up, from this manifest's parent folder and from the file's real folder,
    /// have their direct sub-folders scanned for nearby projects.
    public static let nearbyHeight = 2
    /// Sub-folders listed (for manifests) and nearby manifests read, at most, per instance.
    public static let maxNearbyFolders = 1024
    public static let maxNearbyManifests = 64
    /// The nearby projects, found on the first question that needs them (one scan per instance).
    private var nearby: [Project]?
    private var nearbyFolders = Set<String>()
    /// The nearby projects that can own a file of a folder (its real path), by folder.
    private var nearbyByFolder: [String: [Project]] = [:]
    private var scannedFolders = 0
    private let nearbyLock = NSLock()
    /// This manifest's folder, for the nearby rule.
    private var ownFolderPath: FileSystemPath?

    /// Whether the projects nearby are looked at too, or only those in the file's folder and above.
    private let scansNearby: Bool

    /// `manifest`: this project's manifest, which is never a foreign owner. `nearby: false` looks
    /// only at the manifests in the file's folder and above it (validate's index check: a file
    /// that does not exist yet is another project's control file by path alone only where that
    /// project's folder holds it; the nearby scan, up to `maxNearbyManifests` manifests read,
    /// was paid on every validation of a manifest with an `index:`).
    public init(besides manifest: String, nearby: Bool = true, cachesProjects: Bool = false) {
        manifestPath = URL(literalFilePath: manifest).standardizedFileURL.path
        scansNearby = nearby
        self.cachesProjects = cachesProjects
    }

    /// Projects that load are kept across instances while their files' stamps stay (serve,
    /// which makes an instance a second); a command's own instance reads each one once anyway.
    private let cachesProjects: Bool

    /// The other project whose file `path` is, nil when none is.
    public func owner(of path: String) -> Owner? {
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let file = FileSystemPath(manifest: absolute)
        // A manifest of any project (one this file's folder listing would find) is never written over.
        let name = (absolute as NSString).lastPathComponent
        if ControlFiles.hasManifestExtension(name), !file.sameFile(as: own),
           ControlFiles.isProjectManifest(absolute) {
            return Owner(manifest: absolute, what: "the manifest")
        }
        let own = own
        for folder in Self.above(absolute, real: file.real) {
            for project in projects(in: folder) {
                if let what = Self.what(file, is: project, own: own) { return Owner(manifest: project.manifestPath, what: what, unloaded: project.unreadable) }
            }
        }
        let ownFolder = ownFolder(own)
        for project in nearbyProjects(file: file) {
            if let what = Self.what(file, is: project, own: own, nearby: ownFolder) { return Owner(manifest: project.manifestPath, what: what, unloaded: project.unreadable) }
        }
        return goneLockOwner(of: absolute).map { Owner(manifest: $0, what: "the lock", gone: true) }
    }

    /// The manifest, gone, whose lock the file at `path` is: the lock a project left when its
    /// manifest was removed (`goneProjects`, the one definition of what it left), compared by the
    /// file system. Attack 49a's F5: that lock still claims the project's outputs, yet
    /// `build --overwrite` wrote another manifest's output (or index) over it; its state folder
    /// was refused already. Nil when it is none's.
    public func goneLockOwner(of path: String) -> String? {
        let file = FileSystemPath(manifest: URL(literalFilePath: path).standardizedFileURL.path)
        if let gone = goneProjects(around: path).first(where: { FileSystemPath(manifest: $0.lock).sameFile(as: file) }) {
            return NeighbourProjects.goneManifestName(gone.manifest)
        }
        // A lock moved off its stem's name (`lock: docs/n.md`), which `goneProjects` does not find
        // by name: a Derive lock whose first line names a manifest that is no project's now.
        guard let named = NeighbourProjects.manifestNamed(byLock: file.real), !ControlFiles.isProjectManifest(named),
              !FileSystemPath(manifest: named).sameFile(as: own), !isCopyOfOwnLock(file.real) else { return nil }
        return named
    }

    /// Whether the Derive lock at `path` is a copy of this manifest's own lock (`OwnLockCopy`):
    /// this manifest's record copied (attack 50c's M1), never a gone project's. Read once per
    /// path and instance; the copies found are `ownLockCopies`.
    public func isCopyOfOwnLock(_ path: String) -> Bool {
        let real = Self.realPath(path)
        if let known = lock.withLock({ ownLockCopyByPath[real] }) { return known }
        let copy = OwnLockCopy.isCopy(real, of: ownControlFiles().lock)
        lock.withLock { ownLockCopyByPath[real] = copy }
        return copy
    }
    private var ownLockCopyByPath: [String: Bool] = [:]

    /// The copies of this manifest's own lock the questions asked so far came upon (real paths, sorted).
    public var ownLockCopies: [String] { lock.withLock { ownLockCopyByPath.filter(\.value).keys.sorted() } }

    /// The projects that may record `path` as an output (the ones `owner(of:)` looks at, but the
    /// manifests in this one's folder): one entry for each of their buckets whose folder holds
    /// `path`, with the output it would be there. Whether one does record it (its lock or state
    /// holds these bytes) is the planner's to read (`ForeignRecordedOutputs`).
    public func recorders(of path: String) -> [Recorder] {
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let file = FileSystemPath(manifest: absolute)
        let own = own
        let ownFolder = ownFolder(own)
        var found: [Recorder] = []
        var seen = Set<String>()
        let above = Self.above(absolute, real: file.real).flatMap { projects(in: $0) }.map { ($0, false) }
        // A manifest in this one's folder is a neighbour, whose claims `ForeignClaims` judges (its
        // lock's header, this manifest's own lock).
        for (project, isNearby) in above + nearbyProjects(file: file).map({ ($0, true) })
        where seen.insert(project.manifest.real).inserted && !project.folder.sameFile(as: ownFolder) {
            for bucket in project.buckets {
                guard let key = bucket.folder.key(of: file), !(isNearby && bucket.folder.contains(ownFolder)) else { continue }
                found.append(Recorder(manifest: project.manifest.real, lock: project.lock.real, state: project.state.real,
                                      output: bucket.name + "/" + key, folder: bucket.folder.real,
                                      ruleWrites: project.outputs?.mayProduce(bucket: bucket.name, key: key) ?? false))
            }
        }
        return found
    }

    /// A project looked at for a file whose manifest does not parse (mid-edit, emptied): its
    /// buckets are unknown, but its lock and its build state (at their default places) still
    /// record its outputs (`ForeignRecordedOutputs`).
    public struct Unloaded: Sendable, Equatable {
        /// The manifest, its lock and its build state folder, as the file system names them.
        public var manifest: String
        public var lock: String
        public var state: String
        /// Its folder holds this manifest's folder (a project above, not one beside).
        public var isAbove = false

        public init(manifest: String, lock: String, state: String, isAbove: Bool = false) {
            self.manifest = manifest; self.lock = lock; self.state = state; self.isAbove = isAbove
        }
    }

    /// The projects `owner(of:)` looks at for `path` (its folder and those above it, and nearby,
    /// every one scanned: with no bucket known, none is left out for lying elsewhere) whose
    /// manifest does not load (does not parse, is empty, or loads with errors), those in this
    /// manifest's folder too (attack 44b's F3). Attack 43b's finding 2: a sibling mid-edit had no
    /// buckets, so `--verify` took its recorded outputs in a shared `../pub` and clean deleted them.
    public func unloadedProjects(around path: String) -> [Unloaded] {
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let file = FileSystemPath(manifest: absolute)
        let ownFolder = ownFolder(own)
        _ = nearbyProjects(file: file)
        let scanned = nearbyLock.withLock { nearby ?? [] }
        // A neighbour in this manifest's folder too (attack 44b's F3: one mid-edit lost its
        // outputs, sources and index to `--overwrite`): taken at its word like any other.
        let neighbours = projects(in: ownFolder.real)
        var seen = Set<String>()
        return (neighbours + Self.above(absolute, real: file.real).flatMap { projects(in: $0) } + scanned)
            .filter { $0.unreadable && seen.insert($0.manifest.real).inserted }
            .map { Unloaded(manifest: $0.manifest.real, lock: $0.lock.real, state: $0.state.real,
                            isAbove: !$0.folder.sameFile(as: ownFolder) && $0.folder.contains(ownFolder)) }
    }

    /// Every other project looked at for `path`, each with the build state folder that may record
    /// the file there as the one it installed: the manifests in this manifest's folder, in the
    /// file's folder and above it, and every one found nearby, whatever their buckets say now
    /// (loaded, not loading, or re-pointed elsewhere: a state's record of where it wrote counts,
    /// attack 49a's F4); then the gone ones (`goneProjects`), with `gone` set.
    public func statesAround(_ path: String) -> [(project: Unloaded, gone: Bool)] {
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let file = FileSystemPath(manifest: absolute)
        let ownFolder = ownFolder(own)
        _ = nearbyProjects(file: file)
        let scanned = nearbyLock.withLock { nearby ?? [] }
        var seen = Set<String>()
        let live: [(project: Unloaded, gone: Bool)] = (projects(in: ownFolder.real) + Self.above(absolute, real: file.real).flatMap { projects(in: $0) } + scanned)
            .filter { seen.insert($0.manifest.real).inserted }
            .map { (project: Unloaded(manifest: $0.manifest.real, lock: $0.lock.real, state: $0.state.real,
                                      isAbove: !$0.folder.sameFile(as: ownFolder) && $0.folder.contains(ownFolder)), gone: false) }
        return live + goneProjects(around: path).filter { seen.insert($0.manifest).inserted }.map { (project: $0, gone: true) }
    }

    /// The manifests of the projects `unloadedProjects` looks at that load but declare no bucket
    /// (`version: 1` alone, a manifest cut back to its header): `recorders` never names them,
    /// yet their lock and state still record outputs (attack 46b's N3).
    public func projectsWithoutBuckets(around path: String) -> [String] {
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let file = FileSystemPath(manifest: absolute)
        _ = nearbyProjects(file: file)
        let scanned = nearbyLock.withLock { nearby ?? [] }
        let ownFolder = ownFolder(own)
        var seen = Set<String>()
        return (projects(in: ownFolder.real) + Self.above(absolute, real: file.real).flatMap { projects(in: $0) } + scanned)
            .filter { $0.loaded && !$0.unreadable && $0.buckets.isEmpty && seen.insert($0.manifest.real).inserted }
            .map(\.manifest.real)
    }

    /// The manifests, gone, of the projects whose lock or state folder is left in a folder builds
    /// look at for `path` (`NeighbourProjects.manifestsGone`: `STEM.lock` or `.derive/STEM` with no
    /// manifest of that stem beside them): this manifest's folder, the file's folder and those
    /// above it, and the folders the nearby scan and the walk below this manifest's folder listed.
    /// Their lock and state still record their outputs (attack 46b's M2: a neighbour beside or
    /// below the site with its manifest removed had its outputs taken for nobody's by serve).
    /// Never one whose default lock or state is this manifest's own.
    public func goneManifests(around path: String) -> [String] {
        var found: [String] = []
        for folder in goneLookedAtFolders(around: path) {
            found += goneCandidates(in: folder)
        }
        guard !found.isEmpty else { return [] }
        return found.filter { !sharesMyControlFiles(ControlFiles.controlFiles(ofSibling: $0)) }
    }

    /// The folders `goneManifests` looks in for `path`: this manifest's folder, the file's folder
    /// and those above it, and the folders the nearby scan and the walk below this manifest's
    /// folder listed, each once.
    private func goneLookedAtFolders(around path: String) -> [String] { lookedAt(around: path).folders }

    /// `goneLookedAtFolders` and what identifies it: the file's folder (as written and real) and
    /// how many folders' projects are known then. Every file of one folder is looked at from the
    /// same folders until another question lists more: kept by that key, the listing is not
    /// sorted again, nor every folder asked again, per file (restored copies in bulk, after a
    /// `git checkout`, asked it of each file: 200 copies in a folder beside 3 400 others
    /// planned in 1.2 s of CPU instead of 0.14 s).
    private func lookedAt(around path: String) -> (key: String, folders: [String]) {
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let file = FileSystemPath(manifest: absolute)
        _ = nearbyProjects(file: file)
        let (known, count) = lock.withLock { (projectsByFolder.keys, projectsByFolder.count) }
        let key = (absolute as NSString).deletingLastPathComponent + "\0" + (file.real as NSString).deletingLastPathComponent + "\0\(count)"
        if let kept = lock.withLock({ lookedAtByKey[key] }) { return (key, kept) }
        var folders = [ownFolder(own).real] + Self.above(absolute, real: file.real)
        folders += known.sorted()
        var seen = Set<String>()
        folders = folders.filter { seen.insert($0).inserted }
        lock.withLock { lookedAtByKey[key] = folders }
        return (key, folders)
    }
    private var lookedAtByKey: [String: [String]] = [:]
    private var goneProjectsByKey: [String: [Unloaded]] = [:]

    /// Whether a lock or state of `theirs` is this manifest's own (never a gone project's).
    private func sharesMyControlFiles(_ theirs: (lock: String, state: String)) -> Bool {
        let mine = ownControlFiles()
        let shared = ControlFiles.shared(theirs, lock: mine.lock, state: mine.state)
        return shared.lock || shared.state
    }

    /// The projects whose manifest is gone, each with the lock and build state it left, as the
    /// file system names them: the one definition builds (plan, build, clean) and serve ask of a
    /// file (attack 47b's F1: builds looked only in the manifest's own folder, serve further).
    /// Found by what is left, wherever its `lock:` and `state:` had moved them in the folders
    /// looked at (attack 48b's F1: `lock: locks/n.lock` and `state: var/st` left alone were
    /// "not written by Derive" to builds, taken by `--verify` and deleted by clean):
    /// - a Derive lock (`STEM.lock`) or state (`.derive/STEM`) with no manifest of that stem
    ///   beside it (`goneManifests`); the project is the manifest the lock's first line names
    ///   (`../n.yaml` from `locks/`), else the one its state's owner record names, else `STEM.yaml`;
    /// - a folder holding this user's Derive build state (`state.sqlite`, `state: var/st`) whose
    ///   owner record names a manifest that is not a project's manifest now.
    /// A lock and a state of one manifest make one project; one not found stands at its default.
    public func goneProjects(around path: String) -> [Unloaded] {
        // What is left is read once per folder and instance (`goneByFolder`, `goneStateByFolder`),
        // so files looked at from the same folders have the same answer (`lookedAt`).
        let (key, lookedAt) = self.lookedAt(around: path)
        if let kept = lock.withLock({ goneProjectsByKey[key] }) { return kept }
        let gone = goneProjects(lookedAt: lookedAt, around: path)
        lock.withLock { goneProjectsByKey[key] = gone }
        return gone
    }

    private func goneProjects(lookedAt: [String], around path: String) -> [Unloaded] {
        var order: [String] = []
        var found: [String: (lock: String?, state: String?)] = [:]
        func add(_ manifest: String, lock: String?, state: String?) {
            let folder = Self.realPath((manifest as NSString).deletingLastPathComponent)
            let real = (folder == "/" ? "" : folder) + "/" + (manifest as NSString).lastPathComponent
            if found[real] == nil { order.append(real); found[real] = (nil, nil) }
            if found[real]?.lock == nil, let lock { found[real]?.lock = lock }
            if found[real]?.state == nil, let state { found[real]?.state = state }
        }
        // `reach`: only a project whose manifest's folder is one looked at (attack 48c's F2, below).
        func consider(_ candidate: String, reach: Set<String>? = nil) {
            let control = ControlFiles.controlFiles(ofSibling: candidate)
            // A copy of this manifest's own lock (attack 50c's M1) is no gone project's lock.
            let isLock = NeighbourProjects.isDeriveLock(control.lock), copy = isLock && isCopyOfOwnLock(control.lock)
            let lock = isLock && !copy ? Self.realPath(control.lock) : nil
            let state = Self.isFolder(control.state) ? Self.realPath(control.state) : nil
            guard !copy || state != nil else { return }
            var manifest = NeighbourProjects.goneManifestName(candidate)
            if lock == nil, let state, case .owned(let owner) = ControlFiles.stateDatabase(in: state) { manifest = owner }
            guard !ControlFiles.isProjectManifest(manifest) || manifest == candidate else { return }
            if let reach, !isInReach(manifest, lookedAt: reach) { return }
            add(manifest, lock: lock, state: state)
        }
        func considerState(in folder: String, reach: Set<String>? = nil) {
            let gone: (manifest: String, state: String)?
            if let known = lock.withLock({ goneStateByFolder[folder] }) {
                gone = known
            } else {
                var found: (manifest: String, state: String)?
                if case .owned(let owner) = ControlFiles.stateDatabase(in: folder), !ControlFiles.isProjectManifest(owner),
                   !sharesMyControlFiles((lock: ControlFiles.controlFiles(ofSibling: owner).lock, state: folder)) {
                    found = (owner, Self.realPath(folder))
                }
                lock.withLock { goneStateByFolder[folder] = .some(found) }
                gone = found
            }
            guard let gone else { return }
            if let reach, !isInReach(gone.manifest, lookedAt: reach) { return }
            add(gone.manifest, lock: nil, state: gone.state)
        }
        // A Derive lock at any name (`lock: docs/readme.md`): known by its first line, which
        // names its manifest (attack 49a's F3: only names ending in `.lock` were looked at).
        func considerLocks(in folder: String, reach: Set<String>? = nil) {
            for left in leftListing(folder).locks where !ControlFiles.isProjectManifest(left.manifest)
                && !sharesMyControlFiles((lock: left.lock, state: ControlFiles.controlFiles(ofSibling: left.manifest).state))
                && !isCopyOfOwnLock(left.lock) {
                if let reach, !isInReach(left.manifest, lookedAt: reach) { continue }
                add(left.manifest, lock: Self.realPath(left.lock), state: nil)
            }
        }
        for candidate in goneManifests(around: path) { consider(candidate) }
        for folder in lookedAt { considerState(in: folder) }
        for folder in lookedAt { considerLocks(in: folder) }
        // Attack 48c's F2: a gone project in reach (`www/g`, its manifest's folder two levels
        // down) whose `lock: x/y/z/g.lock` and `state: p/q/st` lie past the four-level walk left
        // nothing in any folder looked at: builds called its outputs "not written by Derive",
        // `--verify` took them and clean deleted them. Its lock and state are read where they lie
        // up to `goneLeftDepth` levels below the deepest folder a manifest is looked for in, and
        // count only for a manifest (the one its lock's first line or its state's owner record
        // names) whose folder is one a live project is looked for in: gone or not, a project is
        // found by its manifest's folder, within the same bounds.
        let reach = Set(lookedAt)
        // Attack 49a's F6: folders whose names start with `.` were never looked through, so the
        // most ordinary layout (`lock: .locks/n.lock`, `state: .cache/st`) left nothing found.
        // They are now, below each folder looked at (`dotFoldersBelow`), for a manifest in reach.
        let deep = deepFoldersBelow().filter { !reach.contains($0) }
        for folder in deep + dotFoldersBelow(lookedAt + deep) where !reach.contains(folder) {
            for candidate in goneCandidates(in: folder) where !sharesMyControlFiles(ControlFiles.controlFiles(ofSibling: candidate)) {
                consider(candidate, reach: reach)
            }
            considerState(in: folder, reach: reach)
            considerLocks(in: folder, reach: reach)
        }
        let ownFolder = ownRealFolder
        return order.compactMap { manifest in
            guard let left = found[manifest] else { return nil }
            let defaults = ControlFiles.controlFiles(ofSibling: manifest)
            let folder = (manifest as NSString).deletingLastPathComponent
            return Unloaded(manifest: manifest, lock: left.lock ?? defaults.lock, state: left.state ?? defaults.state,
                            isAbove: folder != ownFolder && ownFolder.utf8.starts(with: (folder == "/" ? "/" : folder + "/").utf8))
        }
    }

    /// How many levels below the deepest folder a project's manifest is looked for in
    /// (`belowDepth` below this manifest's folder) a gone project's lock and state are still read
    /// (`goneProjects`): a project at `www/g` whose `lock:` is `x/y/z/g.lock` is found.
    public static let goneLeftDepth = 4
    private var deepBelow: [String]?

    /// The folders below this manifest's folder deeper than `belowDepth`, down to `belowDepth +
    /// goneLeftDepth` levels, within the same bounds as the walk for manifests (names starting
    /// with `.` skipped, no links followed, `maxNearbyFolders` listed, breadth-first); listed once
    /// per instance, from the kept listings.
    private func deepFoldersBelow() -> [String] {
        if let known = lock.withLock({ deepBelow }) { return known }
        let start = ownRealFolder
        let base = start == "/" ? 0 : start.split(separator: "/").count
        var found: [String] = []
        Self.walkBelow(start, listings: Self.listings, depth: Self.belowDepth + Self.goneLeftDepth) { child in
            if child.split(separator: "/").count - base > Self.belowDepth { found.append(child) }
            return true
        }
        lock.withLock { deepBelow = found }
        return found
    }

    /// Whether the folder of `manifest` is one a project's manifest is looked for in: this
    /// manifest's folder or one below it within `belowDepth` levels, or one of `lookedAt` (the
    /// file's folder and those above it, the folders the nearby scan listed).
    private func isInReach(_ manifest: String, lookedAt: Set<String>) -> Bool {
        let folder = Self.realPath((manifest as NSString).deletingLastPathComponent)
        if lookedAt.contains(folder) { return true }
        let own = ownRealFolder
        guard folder == own || folder.hasPrefix(own == "/" ? "/" : own + "/") else { return false }
        let depth = folder.split(separator: "/").count - (own == "/" ? 0 : own.split(separator: "/").count)
        return depth <= Self.belowDepth
    }

    private static func isFolder(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Per folder looked at: the gone project whose build state it holds, if any.
    private var goneStateByFolder: [String: (manifest: String, state: String)?] = [:]
    private var goneByFolder: [String: [String]] = [:]
    private var ownControls: (lock: String, state: String)?

    /// This manifest's lock and state folder, read once per instance.
    /// Whether this manifest carries on from the gone manifest `manifest` (as the file system
    /// names it): its own lock's first line still names that one, which it takes over renamed
    /// (`LockFile.succeeds`, said once by the note "… takes it over (the manifest was
    /// renamed)"). That project's records are this manifest's own history, never another's claim
    /// (RenamedManifestRound31: `lock: my.lock` kept through a rename, the old default state
    /// `.derive/derive` left beside, claimed the renamed manifest's own output for the old name).
    public func carriesOn(from manifest: String) -> Bool {
        let lockPath = ownControlFiles().lock
        guard let owner = ControlFiles.lockOwnerLine(lockPath) else { return false }
        let folder = URL(literalFilePath: (lockPath as NSString).deletingLastPathComponent + "/")
        let named = URL(literalFilePath: owner, relativeTo: folder).standardizedFileURL.path
        let real = Self.realPath((named as NSString).deletingLastPathComponent)
        return PathKey.same((real == "/" ? "" : real) + "/" + (named as NSString).lastPathComponent, manifest)
    }

    private func ownControlFiles() -> (lock: String, state: String) {
        if let known = lock.withLock({ ownControls }) { return known }
        let found = ControlFiles.controlFiles(ofSibling: manifestPath)
        lock.withLock { ownControls = found }
        return found
    }

    /// What `folder` holds of gone projects (`LeftLockFiles`: one listing, its Derive locks at any
    /// name read by their first line), listed once per instance.
    private func leftListing(_ folder: String) -> LeftLockFiles.Listing {
        if let known = lock.withLock({ leftByFolder[folder] }) { return known }
        // Kept across instances too when they are (serve makes one a second): read again only
        // when the folder or a file it read changed (`LeftLockFiles.keptListing`).
        let listing = cachesProjects ? LeftLockFiles.keptListing(of: folder) : LeftLockFiles.listing(of: folder)
        lock.withLock { leftByFolder[folder] = listing }
        return listing
    }
    private var leftByFolder: [String: LeftLockFiles.Listing] = [:]

    /// The gone manifests named after a lock's or state's stem in `folder`
    /// (`NeighbourProjects.manifestsGone`), asked only of a folder holding an entry named
    /// `.derive` or a name ending in `.lock`; once per folder and instance.
    private func goneCandidates(in folder: String) -> [String] {
        if let known = lock.withLock({ goneByFolder[folder] }) { return known }
        let gone = leftListing(folder).marked ? NeighbourProjects.manifestsGone(in: folder) : []
        lock.withLock { goneByFolder[folder] = gone }
        return gone
    }

    /// The folders whose names start with `.` (VCS folders and `.derive` aside) below each of
    /// `folders`, and every folder below them, down to `goneLeftDepth` levels: a gone project's
    /// `.locks/n.lock` and `.cache/st` (attack 49a's F6). Not below `/` nor a folder above this
    /// manifest's (a home folder's `.cache` holds no project of this tree), no links followed,
    /// breadth-first, at most `maxNearbyFolders` listed per question.
    private func dotFoldersBelow(_ folders: [String]) -> [String] {
        let own = ownRealFolder
        var found: [String] = []
        var seen = Set(folders)
        var level: [String] = []
        for folder in folders where folder != "/" && !(folder != own && own.hasPrefix(folder + "/")) {
            level += leftListing(folder).dotFolders.filter { seen.insert($0).inserted }
        }
        var depth = 1
        while !level.isEmpty, found.count < Self.maxNearbyFolders {
            var next: [String] = []
            for folder in level where found.count < Self.maxNearbyFolders {
                found.append(folder)
                guard depth < Self.goneLeftDepth else { continue }
                let below = Self.listings.listing(of: folder).subFolders + leftListing(folder).dotFolders
                next += below.filter { seen.insert($0).inserted }
            }
            level = next
            depth += 1
        }
        return found
    }

    /// The key of the file at `path` below the folder `folder` (both absolute), by real path or,
    /// with the same real path prefix, as `FileSystemPath` compares; nil when it is not below it.
    public static func key(of path: String, below folder: String) -> String? {
        FileSystemPath(manifest: URL(literalFilePath: folder).standardizedFileURL.path)
            .key(of: FileSystemPath(manifest: URL(literalFilePath: path).standardizedFileURL.path))
    }

    /// This manifest's folder as the file system names it.
    public var ownRealFolder: String { ownFolder(own).real }

    /// This manifest and its build state folder, as the file system names them.
    public var ownRealManifest: String { own.real }
    public var ownStateFolder: String { ownControlFiles().state }

    /// This manifest's bucket folders (real paths), read once per instance, on the first question.
    public var ownBucketFolders: [String] {
        if let known = lock.withLock({ ownBuckets }) { return known }
        let found = Self.load(manifestPath).buckets.map(\.folder.real)
        lock.withLock { ownBuckets = found }
        return found
    }
    private var ownBuckets: [String]?

    /// The file's path as the file system names it (links on the way resolved).
    public static func realPath(_ path: String) -> String {
        FileSystemPath(manifest: URL(literalFilePath: path).standardizedFileURL.path).real
    }

    /// Whether the folder at `path` is the folder of a bucket of another project this one can see:
    /// a manifest in this manifest's folder, in the folder's or one above it, or nearby (the
    /// sub-folders `owner(of:)` scans: a sibling project's `src: {path: ../B/out/t}`). Derive
    /// never removes such a folder, even one it made (attack 42a's nestb2, 43's N5). A manifest
    /// that does not parse has unknown buckets: one in this manifest's folder, or in the folder's
    /// or above it, keeps every folder meanwhile; one nearby is not known to use it (a broken
    /// manifest in any sibling folder would keep every made folder). Matched by real path or
    /// device and inode (`FileSystemPath`). Asked only of a made folder about to be removed: the
    /// scan (once per instance) is never paid by a build removing none.
    public func isBucketFolder(_ path: String) -> Bool {
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let folder = FileSystemPath(manifest: absolute)
        let declares = { (project: Project) in project.buckets.contains { $0.folder.sameFile(as: folder) } }
        let ownFolder = ownFolder(own)
        let close = (Self.above(absolute, real: folder.real) + [ownFolder.real]).flatMap { projects(in: $0) }
        return close.contains { !$0.loaded || ($0.unreadable && $0.buckets.isEmpty) || declares($0) } || nearbyProjects(file: folder).contains(where: declares)
            || projectsBelowOwnFolder().contains(where: declares)
    }

    /// How many folders down from this manifest's folder `isBucketFolder` looks for projects.
    public static let belowDepth = 4
    private var below: [Project]?

    /// The projects in the folders below this manifest's own, down to `belowDepth` (names
    /// starting with `.` skipped, no links followed), breadth-first within the nearby bounds
    /// (`maxNearbyFolders` listed, `maxNearbyManifests` read): a project nested in this one's tree
    /// (`x/y/derive.yaml` reading `../../out/t`) is in plain sight, as its files are to the
    /// walk upwards from a file (attack 43b's finding 4). Scanned once per instance.
    private func projectsBelowOwnFolder() -> [Project] {
        let start = ownFolder(own).real
        nearbyLock.lock()
        defer { nearbyLock.unlock() }
        return projectsBelow(start)
    }

    /// `projectsBelowOwnFolder` with `nearbyLock` held.
    private func projectsBelow(_ start: String) -> [Project] {
        if let below { return below }
        var found: [Project] = []
        Self.walkBelow(start) { child in
            found += projects(in: child).prefix(Self.maxNearbyManifests - found.count)
            return found.count < Self.maxNearbyManifests
        }
        below = found
        return found
    }

    /// The manifests of the projects in the folders below `folder` (not in `folder` itself), found
    /// as `isBucketFolder` and the nearby scan find them (`belowDepth` levels down, breadth-first,
    /// names starting with `.` skipped, no links followed, `maxNearbyFolders` listed,
    /// `maxNearbyManifests` kept), in discovery's one definition (`ControlFiles.isProjectManifest`:
    /// a manifest mid-edit, or emptied beside its state, counts). `NeighbourProjects` asks it too
    /// (round 45's N4: `gallery/derive.yaml` writing `../www/gallery` was not looked at by validate).
    public static func manifestsBelow(_ folder: String) -> [String] {
        manifestsBelow(folder, later: []).manifests
    }

    /// `manifestsBelow`, the folders in or below `later` (this manifest's buckets' folders) walked
    /// only once every other folder was (attack 45b's F3: a bucket of 2 000 folders used up the
    /// 1 024 listed before `zz/gallery` was reached, and validate said valid); `capped`: a bound
    /// stopped the walk before every folder outside `later` within `belowDepth` levels was
    /// listed (a project deeper in a bucket is serve's to find, on the way to each key).
    public static func manifestsBelow(_ folder: String, later: [String]) -> (manifests: [String], capped: Bool) {
        var found: [String] = []
        let capped = walkBelow(folder, listings: listings, later: later) { child in
            let names = listings.listing(of: child).manifestNames
            for path in names.map({ child + "/" + $0 }) where found.count < maxNearbyManifests && ControlFiles.isProjectManifest(path) {
                found.append(path)
            }
            return found.count < maxNearbyManifests
        }
        return (found, capped)
    }

    /// Calls `visit` with each folder below `start`, breadth-first within the bounds above, until
    /// it returns false; the folders in or below `later` only after all others. With `listings`,
    /// each folder's sub-folders come from it (kept while the folder's identity and times stay),
    /// else from a listing made now. True when a bound (or `visit`) stopped it before every folder
    /// outside `later` was visited.
    @discardableResult
    private static func walkBelow(_ start: String, listings: FolderListings? = nil, later: [String] = [], depth maxDepth: Int = belowDepth,
                                  _ visit: (String) -> Bool) -> Bool {
        var listed = 0
        func deferred(_ folder: String) -> Bool { later.contains { folder == $0 || folder.hasPrefix($0 == "/" ? "/" : $0 + "/") } }
        var postponed: [(folder: String, depth: Int)] = []
        var level = [(folder: start, depth: 0)]
        for pass in 0..<2 {
            if pass == 1 { level = postponed }
            while !level.isEmpty {
                var next: [(folder: String, depth: Int)] = []
                for (folder, depth) in level {
                    guard listed < maxNearbyFolders else { return pass == 0 }
                    let limit = maxNearbyFolders - listed
                    let children = listings.map { Array($0.listing(of: folder).subFolders.prefix(limit)) } ?? subFolders(of: folder, limit: limit)
                    listed += children.count
                    for child in children {
                        if pass == 0, deferred(child) { postponed.append((child, depth + 1)); continue }
                        if !visit(child) { return pass == 0 }
                        if depth + 1 < maxDepth { next.append((child, depth + 1)) }
                    }
                    if listed >= maxNearbyFolders, children.count == limit { return pass == 0 }
                }
                level = next
            }
            // The postponed folders are visited in the second pass, as they are reached.
            if pass == 0 {
                for (index, item) in postponed.enumerated() {
                    if !visit(item.folder) { return false }
                    if item.depth >= maxDepth { postponed[index].depth = -1 }
                }
                postponed = postponed.filter { $0.depth > 0 }
            }
        }
        return false
    }

    /// The listings `manifestsBelow` keeps across questions (validate and a running serve ask it
    /// again at most every second: the walk below a site's folder, up to 1 024 folders listed,
    /// made one request a second wait tens of milliseconds): a folder's sub-folders and its names
    /// with a manifest's extension, kept while its device, inode and times stay (an entry added,
    /// removed or renamed changes its times; a folder modified under two seconds ago is listed
    /// again), so a walk over an unchanged tree pays one `stat` per folder; whether each name is a project's manifest is judged again every time (its bytes can
    /// change without the folder's times). At most 8 192 folders kept. `ForeignProjectFilesTests`
    /// compares it with a walk that lists every folder.
    static let listings = FolderListings()

    final class FolderListings: @unchecked Sendable {
        struct Listing { var subFolders: [String]; var manifestNames: [String] }
        private let lock = NSLock()
        private var kept: [String: (stamp: [Int64], listing: Listing)] = [:]

        /// How many folders' listings are kept (tests).
        var keptCount: Int { lock.withLock { kept.count } }

        /// Inside a `ReadSnapshot`, once per snapshot.
        func listing(of folder: String) -> Listing {
            ReadSnapshot.answer("folder listing \(ObjectIdentifier(self))", folder) { listingNow(of: folder) }
        }

        private func listingNow(of folder: String) -> Listing {
            var info = stat()
            guard stat(folder, &info) == 0 else { return Listing(subFolders: [], manifestNames: []) }
            let stamp = [Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
                         Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
            if let known = lock.withLock({ kept[folder] }), known.stamp == stamp { return known.listing }
            let listing = Listing(subFolders: ForeignProjectFiles.subFolders(of: folder, limit: ForeignProjectFiles.maxNearbyFolders),
                                  manifestNames: ControlFiles.manifestNames(in: folder).sorted())
            // Not kept while the folder's modification time is under two seconds old: a change
            // within the same clock tick as the listing would leave it as it was (git's "racily
            // clean"); an entry added, removed or renamed sets it to now.
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            guard Int64(now.tv_sec) - Int64(info.st_mtim.tv_sec) >= 2 else { return listing }
            lock.withLock {
                if kept.count >= 8192 { kept.removeAll() }
                kept[folder] = (stamp, listing)
            }
            return listing
        }
    }

    /// `manifestsBelow` with every folder listed now (the slow path the kept listings must equal).
    static func manifestsBelowListingEveryFolder(_ folder: String) -> [String] {
        var found: [String] = []
        walkBelow(folder) { child in
            for path in ControlFiles.manifestNames(in: child).sorted().map({ child + "/" + $0 })
            where found.count < maxNearbyManifests && ControlFiles.isProjectManifest(path) {
                found.append(path)
            }
            return found.count < maxNearbyManifests
        }
        return found
    }

    /// The folders of `absolute` and each above it, then those of its real path not among them.
    private static func above(_ absolute: String, real: String) -> [String] {
        var folders: [String] = []
        for start in [absolute, real] {
            var folder = (start as NSString).deletingLastPathComponent
            for _ in 0..<maxHeight {
                if folder.isEmpty { folder = "/" }
                if !folders.contains(folder) { folders.append(folder) }
                guard folder != "/" else { break }
                folder = (folder as NSString).deletingLastPathComponent
            }
        }
        return folders
    }

    private func ownFolder(_ own: FileSystemPath) -> FileSystemPath {
        lock.lock()
        defer { lock.unlock() }
        if let ownFolderPath { return ownFolderPath }
        let folder = FileSystemPath(manifest: (own.real as NSString).deletingLastPathComponent)
        ownFolderPath = folder
        return folder
    }

    /// The projects in the direct sub-folders of this manifest's parent folder and of the file's
    /// real folder, and of the folders above each up to `nearbyHeight` (never `/`), nearest
    /// first, within the bounds; scanned once per instance, extended by each new file's folders.
    private func nearbyProjects(file: FileSystemPath) -> [Project] {
        guard scansNearby else { return [] }
        let own = own
        var bases: [String] = []
        for start in [(own.real as NSString).deletingLastPathComponent, file.real] {
            var folder = (start as NSString).deletingLastPathComponent
            for _ in 0..<Self.nearbyHeight {
                guard !folder.isEmpty, folder != "/" else { break }
                if !bases.contains(folder) { bases.append(folder) }
                folder = (folder as NSString).deletingLastPathComponent
            }
        }
        let fileFolder = (file.real as NSString).deletingLastPathComponent
        nearbyLock.lock()
        defer { nearbyLock.unlock() }
        // Every file of one folder has the same bases, and the same projects that can own it.
        if let known = nearbyByFolder[fileFolder] { return known }
        var found = nearby ?? []
        var manifests = found.count
        var seen = Set(found.map(\.manifest.real))
        // The projects below this manifest's own folder too (`gallery/derive.yaml` writing
        // `../www/gallery`: attack 42d's N8 called its outputs "not written by Derive").
        if nearby == nil {
            for project in projectsBelow((own.real as NSString).deletingLastPathComponent) where seen.insert(project.manifest.real).inserted {
                found.append(project)
            }
        }
        for base in bases where !nearbyFolders.contains(base) {
            nearbyFolders.insert(base)
            for folder in Self.subFolders(of: base, limit: Self.maxNearbyFolders - scannedFolders) where manifests < Self.maxNearbyManifests {
                scannedFolders += 1
                for project in projects(in: folder) where seen.insert(project.manifest.real).inserted {
                    found.append(project)
                    manifests += 1
                }
            }
        }
        nearby = found
        // Only the projects with a path at, in or around the file's folder can own the file: the
        // others are not asked of each file (a refusal per file among 64 projects nearby).
        let here = FileSystemPath(manifest: fileFolder)
        let relevant = found.filter { Self.touches($0, here) }
        nearbyByFolder[fileFolder] = relevant
        return relevant
    }

    /// Whether one of `project`'s files or folders holds `folder` or lies in it.
    private static func touches(_ project: Project, _ folder: FileSystemPath) -> Bool {
        let paths = [project.manifest, project.lock, project.state, project.folder] + project.files + (project.index.map { [$0] } ?? [])
            + project.buckets.map(\.folder) + project.sourceBuckets.map(\.folder)
        return paths.contains { $0.contains(folder) || folder.contains($0) }
    }

    /// The direct sub-folders of `folder` (no links followed, names starting with `.` skipped),
    /// sorted, at most `limit`.
    private static func subFolders(of folder: String, limit: Int) -> [String] {
        guard limit > 0, let directory = opendir(folder) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while names.count < limit, let entry = readdir(directory) {
            let type = entry.pointee.d_type
            let name = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) { String(cString: $0) }
            }
            guard !name.hasPrefix(".") else { continue }
            let path = folder == "/" ? "/" + name : folder + "/" + name
            if type == UInt8(DT_DIR) {
                names.append(path)
            } else if type == UInt8(DT_UNKNOWN) {
                var info = stat()
                if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { names.append(path) }
            }
        }
        return names.sorted()
    }

    /// `nearby`: this manifest's folder, when `project` was found nearby (not in a folder at or
    /// above the file): its buckets holding that folder claim nothing.
    private static func what(_ file: FileSystemPath, is project: Project, own: FileSystemPath, nearby: FileSystemPath? = nil) -> String? {
        if file.sameFile(as: project.manifest) { return "the manifest" }
        // Its control files first, also while its manifest does not load (its default lock and
        // state then): named as what they are, never merely "in the folder" (attack 43b's finding
        // 1: serve answered a broken nested project's lock and state database to anyone).
        if project.files.contains(where: { file.sameFile(as: $0) }) { return "an include of the manifest" }
        if file.sameFile(as: project.lock) { return "the lock" }
        if let index = project.index, file.sameFile(as: index) { return "the index" }
        if project.state.contains(file) { return "inside the build state folder" }
        // A manifest that does not load (mid-edit): its buckets are unknown, so everything in
        // its folder and below is taken as its own (attack 41c's C2, 42a's H3).
        // Not one whose folder holds this manifest too (a neighbour, or a project above): that
        // would take this project's own files; its lock lines say what is its (`neighbourLocks`).
        if project.unreadable, project.folder.contains(file), !project.folder.contains(own) { return "in the folder" }
        if let bucket = project.sourceBuckets.first(where: { $0.folder.contains(file) && !(nearby.map($0.folder.contains) ?? false) }) {
            return "a source (bucket '\(bucket.name)')"
        }
        // Not a bucket that holds this manifest too: that would take this project's own files.
        if project.unreadable, let bucket = project.buckets.first(where: { $0.folder.contains(file) && !$0.folder.contains(own) && !(nearby.map($0.folder.contains) ?? false) }) {
            return "in bucket '\(bucket.name)'"
        }
        return nil
    }

    private func projects(in folder: String) -> [Project] {
        lock.lock()
        if let known = projectsByFolder[folder] { lock.unlock(); return known }
        lock.unlock()
        let found = ControlFiles.manifestNames(in: folder).sorted().map { folder == "/" ? "/" + $0 : folder + "/" + $0 }
            .filter(ControlFiles.isProjectManifest)
            .filter { !FileSystemPath(manifest: $0).sameFile(as: own) }
            .map { Self.project($0, cachesProjects: cachesProjects) }
        lock.lock()
        projectsByFolder[folder] = found
        lock.unlock()
        return found
    }

    /// What another manifest uses, read as the loader reads it (its includes too) without listing
    /// its buckets; one that does not load keeps its file, its lock and its state folder.
    private static func project(_ path: String, cachesProjects: Bool = false) -> Project {
        // Once per `ReadSnapshot`, whichever instance asks (each neighbour's own search asked again).
        ReadSnapshot.answer("foreign project", path) { projectNow(path, cachesProjects: cachesProjects) }
    }

    private static func projectNow(_ path: String, cachesProjects: Bool) -> Project {
        // Kept across instances (serve makes one a second) while the manifest and its includes
        // keep their identity, size and times: loading up to 64 manifests in line with a request
        // each second stalled that request for 0.5-0.8 s (attack 46b's N5). A project that does
        // not load is read again each time (an include put back changes no stamp of it).
        func watched(_ project: Project) -> [String] {
            // Its bucket folders too: their identities are taken when it is read (one made since
            // is read again).
            [path] + project.files.map(\.real) + project.buckets.map(\.folder.real) + [project.lock.real, project.state.real]
        }
        if cachesProjects, let kept = loadedProjects.withLock({ $0[path] }), kept.stamps == stamps(watched(kept.project)) {
            return kept.project
        }
        let project = load(path)
        if cachesProjects, project.loaded, !project.unreadable {
            let kept = (stamps(watched(project)), project)
            loadedProjects.withLock { cache in
                if cache.count >= 1024 { cache.removeAll() }
                cache[path] = kept
            }
        }
        return project
    }

    private static let loadedProjects = LockedBox<[String: (stamps: [[Int64]], project: Project)]>([:])

    private static func stamps(_ paths: [String]) -> [[Int64]] {
        var info = stat()
        return paths.map { path in
            guard stat(path, &info) == 0 else { return [-1] }
            return [Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
                    Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
        }
    }

    private static func load(_ path: String) -> Project {
        // Its own neighbours are not looked for (`neighbourLoad`): what it declares is all that is
        // asked of it (each of up to `maxNearbyManifests` projects listed and read up to 32 more of
        // its own), and an error about its buckets exposing a third project drops none of its rules.
        let control = ControlFiles.controlFiles(ofSibling: path)
        var project = Project(manifest: FileSystemPath(manifest: path), manifestPath: path, files: [],
                              lock: FileSystemPath(manifest: control.lock), state: FileSystemPath(manifest: control.state),
                              index: nil, sourceBuckets: [],
                              folder: FileSystemPath(manifest: (path as NSString).deletingLastPathComponent))
        let loaded = ManifestLoader.neighbourLoad(path)
        guard let manifest = loaded.manifest else { project.unreadable = true; return project }
        project.loaded = true
        // One that parses but loads with errors (an include gone, a process cut short): the rules
        // an error dropped are unknown, and so are their sources and outputs; it is taken at its
        // word like one that does not parse, every bucket of it too (attack 42a's H3).
        project.unreadable = loaded.diagnostics.hasErrors
        project.files = manifest.files.map { FileSystemPath(manifest: $0) }
        project.lock = FileSystemPath(manifest: manifest.lockFile)
        project.state = FileSystemPath(manifest: manifest.stateFolder)
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) {
            project.index = FileSystemPath(manifest: URL(literalFilePath: bucket.path + "/" + index.path).standardizedFileURL.path)
        }
        let sources = Set(manifest.rules.map(\.sourceBucket))
        project.buckets = manifest.buckets.map { ($0.name, FileSystemPath(manifest: $0.path)) }
        project.sourceBuckets = project.buckets.filter { sources.contains($0.name) }
        if !project.unreadable { project.outputs = RuleOutputs(manifest) }
        return project
    }
}

/// A value behind a lock (the module has no other such box).
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
