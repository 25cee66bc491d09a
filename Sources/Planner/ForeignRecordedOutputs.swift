import Confinement
import Foundation
import GRDB
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// Another project's recorded output where this manifest would write: a file in a bucket folder
/// of a project `ForeignProjectFiles` finds (beside this one, above it, or inside the bucket)
/// whose lock, or else whose build state, records it there with these very bytes (attack 41c's
/// C4: a sibling's outputs in a shared `../pub` were "not written by Derive"). Named with its
/// owner; `--overwrite` still takes it, as the README lets it take another manifest's outputs.
/// Asked only of a file nothing of this manifest vouches for; each lock and state is read once.
public final class ForeignRecordedOutputs: @unchecked Sendable {
    private let projects: ForeignProjectFiles
    private let lock = NSLock()
    private var locks: [String: PathDictionary<LockFile.Entry>] = [:]
    private var states: [String: [String: (digest: String, folder: String)]] = [:]
    private var stateDigests: [String: [String: [(output: String, folder: String)]]] = [:]
    private var lockDigests: [String: [String: [String]]] = [:]
    private var sources: [String: [String: String]] = [:]
    private var installed: [String: [FileIdentity: [Installed]]] = [:]

    public init(_ projects: ForeignProjectFiles) {
        self.projects = projects
    }

    /// The other manifest that records `path` with `digest`; nil when none does.
    func claim(of path: String, digest: String) -> ForeignClaims.Claim? {
        recordedClaim(of: path, digest: digest) ?? goneClaim(of: path, digest: digest)
    }

    /// A project in another folder that loads without errors and whose rule writes `path`'s very
    /// name (`ForeignProjectFiles.Recorder.ruleWrites`), whatever its lock and state say; nil
    /// when none does. First by manifest name, so all agree.
    func ruleWriter(of path: String) -> ForeignProjectFiles.Recorder? {
        projects.recorders(of: path).filter(\.ruleWrites).min { PathKey.ordered($0.manifest, $1.manifest) }
    }

    /// Whether `manifest`, a project in another folder that may record `path`, has a build state
    /// recording that output with `digest` in the folder that holds it now: it believes it
    /// installed a file there. Asked once `installerClaim` found that file is not the one it
    /// installed (a restored backup: every file a new inode), so its claim is no stronger than
    /// this manifest's own record (attack 51a's 7: each of two manifests named the other).
    func statesRecordAnotherFile(at path: String, manifest: String, digest: String) -> Bool {
        projects.recorders(of: path).contains { recorder in
            guard PathKey.same(recorder.manifest, manifest), let row = stateRows(state: recorder.state, manifest: recorder.manifest)[recorder.output] else { return false }
            return row.digest == digest && (row.folder.isEmpty || PathKey.same(RealFolder.of(row.folder), recorder.folder))
        }
    }

    /// A project that loads, whose bucket's folder holds `path`, and whose lock or state records
    /// it there with `digest` (`claim` without the gone projects).
    private func recordedClaim(of path: String, digest: String) -> ForeignClaims.Claim? {
        for recorder in projects.recorders(of: path) {
            if lockEntries(recorder.lock)[recorder.output]?.digest == digest {
                return ForeignClaims.Claim(manifest: recorder.manifest, recordedOwner: nil, lock: recorder.lock)
            }
            if let row = stateRows(state: recorder.state, manifest: recorder.manifest)[recorder.output], row.digest == digest,
               row.folder.isEmpty || PathKey.same(RealFolder.of(row.folder), recorder.folder) {
                return ForeignClaims.Claim(manifest: recorder.manifest, recordedOwner: nil)
            }
            if let claim = renamedBucketClaim(recorder, digest: digest) { return claim }
        }
        return nil
    }

    /// A neighbour still there that renamed the bucket (`pub` → `out`, the same folder) and has
    /// not rebuilt: its state records the file in this very folder under the old bucket name, or
    /// its lock records the key under another bucket name, with these bytes. Still its output
    /// (attack 48b's F7: the site's `--verify` took it, its clean deleted it, and the neighbour's
    /// own plan still kept it).
    private func renamedBucketClaim(_ recorder: ForeignProjectFiles.Recorder, digest: String) -> ForeignClaims.Claim? {
        guard let slash = recorder.output.firstIndex(of: "/") else { return nil }
        let key = recorder.output[recorder.output.index(after: slash)...]
        func sameKey(_ output: String) -> Bool {
            guard let slash = output.firstIndex(of: "/") else { return false }
            return PathKey.same(String(output[output.index(after: slash)...]), String(key))
        }
        for (output, folder) in byDigest(state: recorder.state, manifest: recorder.manifest)[digest] ?? []
        where !folder.isEmpty && sameKey(output) && PathKey.same(RealFolder.of(folder), recorder.folder) {
            return ForeignClaims.Claim(manifest: recorder.manifest, recordedOwner: nil)
        }
        if (byDigest(lock: recorder.lock)[digest] ?? []).contains(where: sameKey) {
            return ForeignClaims.Claim(manifest: recorder.manifest, recordedOwner: nil, lock: recorder.lock)
        }
        return nil
    }

    /// The project whose manifest is gone, its lock and state left in a folder looked at for
    /// `path` (`ForeignProjectFiles.goneProjects`, which serve asks too), that records the file
    /// with these bytes, read as one that does not load is (`unloadedClaim`): its state placing
    /// the output in the folder written to, else its lock's line by key and bytes. `--overwrite`
    /// takes the file, as it takes a gone manifest's output beside this one (attack 47b's F1:
    /// `sub/n.yaml` writing `../pub/n`, removed, had its outputs "not written by Derive").
    func goneClaim(of path: String, digest: String) -> ForeignClaims.Claim? {
        let gone = projects.goneProjects(around: path)
        let real = ForeignProjectFiles.realPath(path)
        let own = projects.ownRealFolder
        for project in gone {
            guard let claim = unloadedClaim(project, real: real, digest: digest) else { continue }
            return goneProjectClaim(project, lock: claim.lock, own: own)
        }
        return registeredGoneClaim(real: real, digest: digest, except: Set(gone.map(\.state)))
    }

    /// A gone project the registry of built projects names whose lock (by the bucket folder it
    /// registered) or build state records the file at the real path `real` with these bytes.
    private func registeredGoneClaim(real: String, digest: String, except asked: Set<String>) -> ForeignClaims.Claim? {
        guard case .entries(let entries) = registered() else { return nil }
        let ownManifest = projects.ownRealManifest
        for entry in entries.reversed() where entry.holds(real) && !asked.contains(entry.state) && !PathKey.same(entry.manifest, ownManifest)
            && !NeighbourProjects.isProjectManifest(entry.manifest) && !projects.carriesOn(from: entry.manifest) {
            for (output, folder) in byDigest(state: entry.state, manifest: entry.manifest)[digest] ?? [] where !folder.isEmpty {
                guard let slash = output.firstIndex(of: "/"), let found = ForeignProjectFiles.key(of: real, below: folder),
                      PathKey.same(String(output[output.index(after: slash)...]), found) else { continue }
                return ForeignClaims.Claim(manifest: entry.manifest, recordedOwner: nil, gone: true, state: entry.state)
            }
            for output in byDigest(lock: entry.lock)[digest] ?? [] {
                guard let (bucket, key) = PathKey.split(output), let folder = entry.buckets[bucket],
                      PathKey.same((folder == "/" ? "" : folder) + "/" + key, real) else { continue }
                return ForeignClaims.Claim(manifest: entry.manifest, recordedOwner: nil, lock: entry.lock, gone: true)
            }
        }
        return nil
    }

    /// The claim of the gone `project` whose lock (`lock`) or else build state records a file.
    private func goneProjectClaim(_ project: ForeignProjectFiles.Unloaded, lock: String?, own: String) -> ForeignClaims.Claim {
        let folder = (project.manifest as NSString).deletingLastPathComponent
        guard PathKey.same(folder, own) else {
            // Named as its lock's first line names it (a lock moved to `locks/` is no project there).
            return ForeignClaims.Claim(manifest: NeighbourProjects.goneManifestName(project.manifest), recordedOwner: nil, lock: lock, gone: true,
                                       state: lock == nil ? project.state : nil)
        }
        // Beside this manifest: it may be this one renamed, which carries on from its records
        // with its lock and state named (`ForeignClaims.goneManifestLocks` says the same).
        // Named where that manifest kept them (`lock: locks/n.lock`, `state: var/n`: attack 49a's
        // F11 advised the default names, which the next plan refused again).
        var info = stat()
        let hasState = stat(project.state, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        func setting(_ path: String) -> String {
            let prefix = Array((folder + "/").utf8), bytes = Array(path.utf8)
            return bytes.starts(with: prefix) ? String(decoding: bytes[prefix.count...], as: UTF8.self) : path
        }
        // A lock that is not there is never named as the evidence (attack 52a's F6: its lock
        // moved away, the state recording the file was the word, and the message named the lock).
        let hasLock = stat(project.lock, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        return ForeignClaims.Claim(manifest: project.manifest, recordedOwner: nil, lock: hasLock || !hasState ? project.lock : nil,
                                   takeOver: "'lock: \(setting(project.lock))'" + (hasState ? " and 'state: \(setting(project.state))'" : ""),
                                   state: hasLock || !hasState ? nil : project.state)
    }

    /// The other project whose build state records the very file at `path` (its device, inode
    /// and birth, at the place it wrote it: the folder its record keeps, whatever its buckets
    /// say now) as the one it installed; nil when none does. A file is one project's: the state
    /// that installed it knows so, and that outweighs any lock line's bytes or a "restored copy"
    /// (attack 49a: a neighbour that took the file over with `--overwrite` lost it to the
    /// original's adopt-then-clean when the original's state was gone (F1), when the
    /// neighbour's manifest did not parse (F2), or when it had re-pointed its bucket (F4)).
    /// Whether that project is live, does not load or is gone; each state is read once.
    /// `doubting`: when the registry of built projects cannot be read, a claim of doubt (nothing
    /// is adopted on a guess); a deletion of a file this manifest installed does not ask so.
    func installerClaim(of path: String, doubting: Bool = false) -> ForeignClaims.Claim? {
        guard let now = FileIdentity.ofRegularFile(path) else { return nil }
        let real = ForeignProjectFiles.realPath(path)
        // The very file, still holding the bytes it recorded: a file it installed and a user
        // rewrote in place (same inode) holds the user's bytes, which no state vouches for
        // (RenamedManifestIndexRound45's "mine" is then "not written by Derive", not "its lock
        // records these very bytes"). Hashed once, only when an identity matches.
        var current: String??
        func installed(_ project: ForeignProjectFiles.Unloaded) -> Bool {
            // Judged by the file's identity, as this manifest's own records are: a folder renamed
            // since (`mv pub pub2`) or the whole project moved keeps every inode, so the very file
            // under the same key is the one it installed (attack 51a's 1b).
            for record in installedFiles(state: project.state, manifest: project.manifest)[now] ?? []
            where record.identity.isFile(at: path) && (record.isPlaced(at: real) || record.hasKey(of: real)) {
                if current == nil { current = .some(ForeignClaims.fileDigest(path)) }
                if case .some(.some(let digest)) = current, digest == record.digest { return true }
            }
            return false
        }
        var asked = Set<String>()
        for (project, gone) in projects.statesAround(path) where !(gone && projects.carriesOn(from: project.manifest)) {
            asked.insert(project.state)
            if installed(project), !isCopyOfOwnState(project.state) {
                return gone ? goneProjectClaim(project, lock: nil, own: projects.ownRealFolder) : ForeignClaims.Claim(manifest: project.manifest, recordedOwner: nil)
            }
        }
        // Then the projects the registry names with a bucket holding the file, wherever their
        // lock and state lie (attack 50a's F1: behind a symlinked folder, or far away).
        switch registered() {
        case .unreadable(let why):
            return doubting ? ForeignClaims.Claim(manifest: ProjectRegistry.path ?? "", recordedOwner: nil, doubt: why) : nil
        case .entries(let entries):
            let ownState = ProjectRegistry.realName(projects.ownStateFolder), ownManifest = projects.ownRealManifest
            for entry in entries.reversed() where entry.holds(real) && !asked.contains(entry.state)
                && !PathKey.same(entry.manifest, ownManifest) && !PathKey.same(entry.state, ownState) {
                asked.insert(entry.state)
                let gone = !NeighbourProjects.isProjectManifest(entry.manifest)
                if gone && projects.carriesOn(from: entry.manifest) { continue }
                let project = ForeignProjectFiles.Unloaded(manifest: entry.manifest, lock: entry.lock, state: entry.state)
                guard installed(project) else { continue }
                return gone ? ForeignClaims.Claim(manifest: entry.manifest, recordedOwner: nil, gone: true, state: entry.state)
                    : ForeignClaims.Claim(manifest: entry.manifest, recordedOwner: nil)
            }
            // Then by the file's identity alone, from every registered state where it lies now
            // (attack 52a's F1, F7, F8, F10: a bucket path or a state path changed since).
            if let claim = identityClaim(of: path, real: real) { return claim }
            // A registered state gone from its path and not yet searched for where it moved (the
            // search's budget) may record the file: doubt, never adopted on a guess.
            if doubting, let why = registeredFiles().searchDoubt {
                return ForeignClaims.Claim(manifest: ProjectRegistry.path ?? "", recordedOwner: nil, doubt: why)
            }
            // A state home inside a bucket (attack 51a's 1): the registry is never written there
            // and a rule may write over its tokens, so what it does not name is doubt, never adopted.
            if doubting, let registry = ProjectRegistry.path {
                let home = ProjectRegistry.realName((registry as NSString).deletingLastPathComponent)
                let ownBuckets = projects.ownBucketFolders.map(ProjectRegistry.realName)
                if let entry = entries.first(where: { $0.holds(home) || $0.buckets.values.contains(home) })?.manifest
                    ?? ownBuckets.first(where: { home == $0 || home.utf8.starts(with: (($0 == "/" ? "" : $0) + "/").utf8) }).map({ _ in projects.ownRealManifest }) {
                    return ForeignClaims.Claim(manifest: registry, recordedOwner: nil,
                                               doubt: "the registry of built projects \(registry) lies in a bucket of \(entry), where it is never written (a rule could write over it)")
                }
            }
            return nil
        }
    }

    /// The registered project whose state, wherever it lies now (`RegisteredInstalledFiles`), records
    /// the very file at `path` (device, inode, birth, under the key it lies at; `real` its real
    /// path) with the bytes it holds: its output, whatever bucket or state path changed since
    /// (attack 52a's F1: the taker's folder renamed; F8: this project's bucket renamed or the
    /// whole project moved; F7: the bucket left out of its registry line). This manifest's own
    /// state moved away from where its `state:` names it is named so (F10), never another's.
    func identityClaim(of path: String, real: String) -> ForeignClaims.Claim? {
        let records = registeredFiles().installers(of: path, real: real)
        // A gone manifest this one carries on from (renamed: it takes that lock and state over) is
        // no other project, as in the lookups above (s53's full run: RenamedManifestRound31Tests).
        guard !records.isEmpty, let digest = ForeignClaims.fileDigest(path),
              let record = records.first(where: { $0.digest == digest && ($0.manifestThere || !projects.carriesOn(from: $0.manifest)) }) else { return nil }
        if PathKey.same(record.manifest, projects.ownRealManifest) {
            return ForeignClaims.Claim(manifest: record.manifest, recordedOwner: nil, movedState: record.state, movedLock: record.lock)
        }
        return record.manifestThere ? ForeignClaims.Claim(manifest: record.manifest, recordedOwner: nil)
            : ForeignClaims.Claim(manifest: record.manifest, recordedOwner: nil, gone: true, state: record.state)
    }

    /// Every registered state's installed files by identity, read once per instance (one load).
    private func registeredFiles() -> RegisteredInstalledFiles {
        lock.withLock {
            if let identities { return identities }
            let made = RegisteredInstalledFiles(ownManifest: projects.ownRealManifest, ownState: projects.ownStateFolder)
            identities = made
            return made
        }
    }
    private var identities: RegisteredInstalledFiles?

    /// The registry of built projects, read once per instance.
    private func registered() -> ProjectRegistry.Contents {
        if let known = lock.withLock({ registry }) { return known }
        let read = ProjectRegistry.read()
        lock.withLock { registry = read }
        return read
    }
    private var registry: ProjectRegistry.Contents?

    /// A file a state records as one it installed: its output's key, the folder it wrote it in,
    /// and the file's device, inode and birth then.
    struct Installed: Sendable {
        var key: String
        var folder: String
        var identity: FileIdentity
        /// The bytes it recorded writing there (`outputs.outputDigest`).
        var digest: String

        /// Whether the real path `real` ends with this record's key (its folder renamed or moved since).
        func hasKey(of real: String) -> Bool {
            let tail = Array(("/" + key).utf8)
            return real.utf8.count > tail.count && real.utf8.suffix(tail.count).elementsEqual(tail)
        }

        /// Whether the file at the real path `real` is where this record placed it.
        func isPlaced(at real: String) -> Bool {
            ForeignProjectFiles.key(of: real, below: folder).map { PathKey.same($0, key) } ?? false
        }
    }

    /// The files the state records as installed (`outputFiles`, with the folder of `outputs`), by
    /// device and inode; none from a state that is not `manifest`'s, or from before they were kept.
    /// Whether the state folder `state` (another manifest's, beside this one) is a copy of this
    /// manifest's own build state: it names this manifest as its owner, and is not the folder
    /// Derive made for this manifest's state (the state home's note of that folder's identity:
    /// `StateFolderMade`), so `cp -a proj proj.bak` made it. Its records say what this manifest
    /// installed, so they claim nothing from it (attack 53a's F6: after `rm -rf proj/.derive`,
    /// proj's plan named proj.bak/derive.yaml as the owner of proj's own file). A folder moved
    /// (`mv proj proj2`) is the very folder made, and stays the moved project's record; with no
    /// note (a state home wiped) it is taken as another's, as before.
    private func isCopyOfOwnState(_ state: String) -> Bool {
        let ownState = ProjectRegistry.realName(projects.ownStateFolder)
        guard !PathKey.same(ProjectRegistry.realName(state), ownState),
              let made = StateFolderMade.madeBefore(ownState, stateFolder: ownState),
              let here = FileIdentity.ofFolder(state), here != made.identity else { return false }
        let database = state + "/" + StateFiles.database
        var configuration = Configuration()
        configuration.readonly = true
        guard (try? StateFolderTrust.checkDatabaseFiles(database)) != nil,
              let owner = try? StateOwner.recordedOwner(database: database, configuration: configuration) else { return false }
        return PathKey.same(owner.manifest, projects.ownRealManifest)
    }

    private func installedFiles(state: String, manifest: String) -> [FileIdentity: [Installed]] {
        if let known = lock.withLock({ installed[state] }) { return known }
        // A state moved with its project (`mv proj proj-moved`) names its manifest where it was:
        // the same place beside it is the same project (attack 51a's 1b b).
        let rows = Self.readState(state, manifest: manifest, movedWithIt: true, sql: "SELECT f.path, o.folder, f.device, f.inode, f.birth, o.outputDigest FROM outputFiles f JOIN outputs o ON o.path = f.path") {
            (row: Row) in (row[0] as String, row[1] as String, FileIdentity(stored: row[2], row[3], birth: row[4]), row[5] as String)
        }
        var found: [FileIdentity: [Installed]] = [:]
        for (output, folder, identity, digest) in rows where !folder.isEmpty && !(identity.device == 0 && identity.inode == 0) {
            guard let slash = output.firstIndex(of: "/") else { continue }
            found[identity, default: []].append(Installed(key: String(output[output.index(after: slash)...]), folder: folder, identity: identity, digest: digest))
        }
        lock.withLock { installed[state] = found }
        return found
    }

    /// A project whose manifest does not load has no buckets to place `path` in: its build
    /// state's record of these bytes in the bucket folder that holds the file, or else its lock's
    /// line with these bytes under a key the file's path ends with, says the file is its output;
    /// its state's record of the file as a source with these bytes says it is its source. Such a
    /// project is taken at its word until it loads, as its buckets are once they are known (a
    /// parse-OK error): the owner returned is refused with or without `--overwrite` (attack 42d's
    /// N3 and 43b's finding 2: `--overwrite`, then `--verify`, took a sibling's files mid-edit).
    func unloadedOwner(of path: String, digest: String) -> ForeignProjectFiles.Owner? {
        let candidates = projects.unloadedProjects(around: path)
        guard !candidates.isEmpty else { return nil }
        let absolute = URL(literalFilePath: path).standardizedFileURL.path
        let real = ForeignProjectFiles.realPath(path)
        // A claim by a lock's bytes alone (its state places nothing) never outranks a project
        // that records the very file: its installer's state, or a loading project's record of it
        // in its bucket's folder (attack 50a's F4: an unrelated copy beside the site, its
        // manifest renamed, claimed the site's file by bytes and blocked a takeover's --overwrite).
        var placed: Bool?
        func placedElsewhere() -> Bool {
            if let placed { return placed }
            let found = installerClaim(of: path) != nil || recordedClaim(of: path, digest: digest) != nil
            placed = found
            return found
        }
        for project in candidates {
            if let claim = unloadedClaim(project, real: real, digest: digest) {
                if claim.lock != nil, placedElsewhere() { continue }
                return ForeignProjectFiles.Owner(manifest: project.manifest, what: "an output (\(claim.reason))", unloaded: true)
            }
            // The digest cache holds sources (and outputs read back): either way the project's.
            let files = fileDigests(state: project.state, manifest: project.manifest)
            if let recorded = files[absolute] ?? files[real], recorded == digest {
                return ForeignProjectFiles.Owner(manifest: project.manifest, what: "a source or output (its build state records this file with these bytes)", unloaded: true)
            }
        }
        return nil
    }

    /// The project that does not load whose lock names the file at `path` as its index with these
    /// bytes (its first line's `index` and `indexDigest`, the key placed as a lock line's is):
    /// taken at its word too (attack 44b's F5: a sibling mid-edit lost its index to another
    /// project's `index:` under `--overwrite`, and that project's clean deleted it).
    public func unloadedIndexOwner(of path: String, digest: String) -> ForeignProjectFiles.Owner? {
        let real = ForeignProjectFiles.realPath(path)
        for project in projects.unloadedProjects(around: path) {
            // Within the lock's limits, as every lock read is: a file of any size may be there.
            var info = stat()
            guard stat(project.lock, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= LockFile.maxBytes,
                  let data = FileManager.default.contents(atPath: project.lock),
                  let firstLine = data.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first,
                  let index = LockFile.index(Data(firstLine)), index.digest == digest,
                  let slash = index.path.firstIndex(of: "/") else { continue }
            let tail = Array(("/" + index.path[index.path.index(after: slash)...]).utf8)
            guard real.utf8.count > tail.count, real.utf8.suffix(tail.count).elementsEqual(tail) else { continue }
            return ForeignProjectFiles.Owner(manifest: project.manifest, what: "the index (its lock \(project.lock) names this file with these very bytes)", unloaded: true)
        }
        return nil
    }

    private func unloadedClaim(_ project: ForeignProjectFiles.Unloaded, real: String, digest: String) -> ForeignClaims.Claim? {
        /// The output's key in its bucket (`bucket/key` → `key`).
        func key(_ output: String) -> Substring? {
            guard let slash = output.firstIndex(of: "/") else { return nil }
            return output[output.index(after: slash)...]
        }
        // With no folder recorded, the bucket's folder is where the key puts it: the project's
        // own folder or one below it, or a folder beside it (`../pub`), never farther (two
        // unrelated projects in one crowded folder, such as /tmp, hold the same sample's bytes
        // under the same key).
        let projectFolder = (project.manifest as NSString).deletingLastPathComponent
        func endsWith(_ output: String) -> Bool {
            guard let key = key(output) else { return false }
            let tail = Array(("/" + key).utf8)
            guard real.utf8.count > tail.count, real.utf8.suffix(tail.count).elementsEqual(tail) else { return false }
            let folder = String(decoding: real.utf8.dropLast(tail.count), as: UTF8.self)
            // Not a folder that holds this manifest (its own folder, say): that would take this
            // project's files, as a nearby project's bucket holding it claims nothing.
            let own = projects.ownRealFolder
            if PathKey.same(folder, own) || own.utf8.starts(with: (folder + "/").utf8) { return false }
            // Its own folder or below, or anywhere below the folder that holds it (`../pub`, and
            // `../www/gallery`: attack 46a's H7, a lock-only gallery mid-edit lost its outputs in
            // the site's bucket to `--overwrite`); the bytes must be the line's too.
            let parent = (projectFolder as NSString).deletingLastPathComponent
            return PathKey.same(folder, projectFolder) || folder.utf8.starts(with: (projectFolder + "/").utf8)
                || PathKey.same((folder as NSString).deletingLastPathComponent, parent)
                || (parent != "/" && folder.utf8.starts(with: (parent + "/").utf8))
        }
        for (output, folder) in byDigest(state: project.state, manifest: project.manifest)[digest] ?? [] {
            let placed = folder.isEmpty ? endsWith(output)
                : ForeignProjectFiles.key(of: real, below: folder).map { found in key(output).map { PathKey.same(String($0), found) } ?? false } ?? false
            if placed {
                return ForeignClaims.Claim(manifest: project.manifest, recordedOwner: nil)
            }
        }
        // The lock's word by key alone only when its state cannot say where it wrote (attack 44b's
        // F1: a parent mid-edit whose state says it wrote R/out claimed R/C/out by key), and never
        // for a file in this manifest's folder from a project above it (its buckets are unknown;
        // a nested project's own folder is its own, as `owner(of:)` judges).
        guard stateRows(state: project.state, manifest: project.manifest).isEmpty else { return nil }
        if project.isAbove, real.utf8.starts(with: (projects.ownRealFolder + "/").utf8) { return nil }
        if (byDigest(lock: project.lock)[digest] ?? []).contains(where: endsWith) {
            return ForeignClaims.Claim(manifest: project.manifest, recordedOwner: nil, lock: project.lock)
        }
        return nil
    }

    /// The files the state's digest cache records (absolute path → digest): its sources, and
    /// outputs it read back; none when it cannot be read or is another manifest's.
    private func fileDigests(state: String, manifest: String) -> [String: String] {
        if let known = lock.withLock({ sources[state] }) { return known }
        let rows = Self.readState(state, manifest: manifest, sql: "SELECT path, digest FROM files") { row in (row[0] as String, row[1] as String) }
        let found = Dictionary(rows, uniquingKeysWith: { a, _ in a })
        lock.withLock { sources[state] = found }
        return found
    }

    /// The rows `sql` selects from the build state in `state`, read-only, when it is one Derive
    /// trusts and it names `manifest` as its owner (a copied project's state is another's); none
    /// otherwise. The one reading of another project's state (its outputs, its digest cache).
    /// `movedWithIt`: also a state whose owner record names another path for its manifest at the
    /// same place beside the state folder (the project moved with its state).
    private static func readState<T>(_ state: String, manifest: String, movedWithIt: Bool = false, sql: String, _ decode: (Row) -> T) -> [T] {
        let database = state + "/" + StateFiles.database
        var configuration = Configuration()
        configuration.readonly = true
        guard FileManager.default.fileExists(atPath: database), (try? StateFolderTrust.checkDatabaseFiles(database)) != nil,
              let queue = try? DatabaseQueue(path: database, configuration: configuration) else { return [] }
        defer { try? queue.close() }
        return (try? queue.read { db -> [T] in
            guard let owner = try StateOwner.recordedOwner(db) else { return [] }
            let same = StateOwner.isSame(recorded: owner.manifest, owner: manifest)
                || (movedWithIt && !owner.place.isEmpty && owner.place == StateOwner.place(owner: StateOwner.name(manifest), stateFolder: state))
            guard same else { return [] }
            return try Row.fetchAll(db, sql: sql).map(decode)
        }) ?? []
    }

    /// The outputs another project's own build state records (`bucket/key` → the folder it was
    /// written in, "" when the record keeps none), read as builds read it (trusted, owner-checked:
    /// none from a state that is not `manifest`'s). Serve asks it of a project nested in a public
    /// bucket, whose recorded outputs it answers no more publicly than their builder gives them.
    /// The outputs a state records (`bucket/key` → the folder it was written to and its ACL).
    public static func stateOutputRows(state: String, manifest: String) -> [String: (folder: String, acl: String)] {
        Dictionary(readState(state, manifest: manifest, sql: "SELECT path, folder, acl FROM outputs") { (row: Row) in (row[0] as String, (row[1] as String, row[2] as String)) },
                   uniquingKeysWith: { a, _ in a })
    }

    public static func stateOutputs(state: String, manifest: String) -> [String: String] {
        Dictionary(readState(state, manifest: manifest, sql: "SELECT path, folder FROM outputs") { (row: Row) in (row[0] as String, row[1] as String) },
                   uniquingKeysWith: { a, _ in a })
    }

    /// The state's rows by output digest (output, folder): each file asked costs a lookup, not
    /// a pass over every row (a shared folder may hold thousands of files nothing vouches for).
    private func byDigest(state: String, manifest: String) -> [String: [(output: String, folder: String)]] {
        if let known = lock.withLock({ stateDigests[state] }) { return known }
        var index: [String: [(output: String, folder: String)]] = [:]
        for (output, row) in stateRows(state: state, manifest: manifest) { index[row.digest, default: []].append((output, row.folder)) }
        lock.withLock { stateDigests[state] = index }
        return index
    }

    /// The lock's outputs by digest.
    private func byDigest(lock path: String) -> [String: [String]] {
        if let known = lock.withLock({ lockDigests[path] }) { return known }
        var index: [String: [String]] = [:]
        for entry in lockEntries(path).values { index[entry.digest, default: []].append(entry.path) }
        lock.withLock { lockDigests[path] = index }
        return index
    }

    private func lockEntries(_ path: String) -> PathDictionary<LockFile.Entry> {
        if let known = lock.withLock({ locks[path] }) { return known }
        var entries: PathDictionary<LockFile.Entry> = [:]
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= LockFile.maxBytes,
           let data = FileManager.default.contents(atPath: path) {
            for entry in LockFile.salvagedEntries(data) { entries[entry.path] = entry }
        }
        lock.withLock { locks[path] = entries }
        return entries
    }

    /// The outputs the project's own state (`state.sqlite` in its state folder, naming it as
    /// owner) records: output → digest and the folder written in. None when it cannot be read.
    private func stateRows(state: String, manifest: String) -> [String: (digest: String, folder: String)] {
        if let known = lock.withLock({ states[state] }) { return known }
        var rows: [String: (digest: String, folder: String)] = [:]
        for (path, digest, folder) in Self.readState(state, manifest: manifest, sql: "SELECT path, outputDigest, folder FROM outputs", {
            (row: Row) in (row[0] as String, row[1] as String, row[2] as String)
        }) { rows[path] = (digest, folder) }
        lock.withLock { states[state] = rows }
        return rows
    }
}
