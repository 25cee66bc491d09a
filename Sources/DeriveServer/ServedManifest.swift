import Access
import Confinement
import Crypto
import Foundation
import Logging
import Manifest
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// What serve answers with: the manifest, the keys it accepts and the builder's records of its
/// outputs. Swapped as one when the manifest changes.
public struct ServedConfiguration: Sendable {
    public let manifest: Manifest
    public let verifier: Verifier
    let authorizer: Authorizer

    public init(manifest: Manifest, verifier: Verifier, recorded: any RecordedOutputs) {
        self.manifest = manifest
        self.verifier = verifier
        self.authorizer = Authorizer(recorded: recorded, manifest: manifest)
    }
}

/// The manifest a running `derive serve` follows (attack 15's static M4: a bucket made private
/// in the manifest kept answering anonymously until a restart).
///
/// Before each request the manifest's files are looked at: the root as given, each include, and
/// every link on the way to each (their identity, size and times, by `lstat` and `stat`: no read),
/// and at most every `digestInterval` seconds their bytes are hashed too (an edit within one
/// timestamp tick that keeps the size; a file over the loader's size limit is not read: its
/// size already says it does not load). Each bucket's path is walked one name at a time, links
/// followed, each link read once (`PathWalk`): where it leads (device and inode), each link met
/// and each folder a name was looked up in. Before each request only those folders are looked at
/// (`lstat`, one per folder however many buckets and links pass through it): a link re-pointed,
/// a folder replaced, moved or removed changes the times of the folder that holds its name, and
/// then every path is walked again (attack 18's P1: every link of every path had been resolved
/// from the path's start, twice, before each request: ~92 ms of CPU with 400 buckets behind 30
/// links). A folder that changed less than `settleMargin` seconds before it was looked at could
/// change again within the same timestamp tick, unseen: while one has, the paths are walked at
/// each request. A folder replaced (`rm -rf site` and a build, `mv site drafts; mkdir site`, a blue/green
/// `ln -sfn v2 site`) loads the manifest again too, so the loader's checks (buckets that share
/// files, control files in a bucket) apply to the folders now there, and `ObjectService` answers
/// from the folder the load saw (`validatedFolder`), never from one it opened earlier. When
/// anything differs the manifest is loaded again and the new buckets, ACLs, websites, styles and
/// keys apply to that very request. A manifest that no longer loads (or now puts a control file
/// in a bucket, or moves the state folder) is never answered from the old copy: every request is
/// refused with 503 (saying only that it does not load: the loader's errors may name private
/// keys and folders) and the log says why, until the manifest loads again.
///
/// The other projects the loader's neighbour check reads (`NeighbourProjects`: a bucket sharing
/// files with another manifest's outputs, public where that manifest makes them private) are
/// followed too (attack 43's N6: a neighbour made its outputs private and rebuilt, and a running
/// serve kept answering them anonymously): before each request their manifests, includes and
/// locks are looked at (`lstat` and `stat`, no read), and at most every `neighbourInterval`
/// seconds the folders they are found in are listed again (a manifest added or removed there).
/// Any change loads the manifest again, its neighbour check included.
public final class ServedManifest: Sendable {
    public typealias Loader = @Sendable () throws -> ServedConfiguration

    /// Why serve refuses requests now.
    public struct Unavailable: Error, Sendable, CustomStringConvertible {
        public var description: String
        /// What changed when it stopped loading, when not the manifest's own files (another
        /// project's manifest or lock, Derive's folder of secrets): the 503 then says so.
        public var cause: String?
        public init(_ description: String, cause: String? = nil) {
            self.description = description
            self.cause = cause
        }
    }

    let rootPath: String
    let load: Loader
    let logger: Logger
    let digestInterval: Double
    /// Seconds between listings of the neighbours' folders (`NeighbourProjects.manifestPaths`).
    let neighbourInterval: Double
    /// Seconds after its last change before a folder's times are trusted to change with the
    /// next change (well over a file system's timestamp tick).
    let settleMargin: Double
    /// More files whose change can change what validate says of the manifest, looked at with the
    /// neighbours' (`derive serve` gives the registered projects' ones, `RegisteredProjects.watchedFiles`:
    /// attack 52b's 1 and 2); what changed is named as another project's file.
    let alsoWatched: @Sendable (Manifest) -> [String]
    /// Start-up values a reload cannot change (the serve lock, caches and databases are there).
    let stateFolder: String
    let cacheFolder: String

    struct State {
        var current: Result<ServedConfiguration, Unavailable>
        /// The last configuration that loaded (what requests already admitted run with).
        var lastGood: ServedConfiguration
        var files: [String]
        /// The bucket folders' paths (absolute, each once).
        var folders: [String]
        /// Of `files`, in order.
        var fingerprint: [FileFingerprint]
        /// Of `folders`, in order: where each path led and what it passed through.
        var walks: [PathWalk]
        /// Each folder the walks looked in, once, as last seen, with the names looked up in it;
        /// nil when the walks may not be trusted without walking again (a path no load has
        /// looked at, or one folder seen two ways).
        var lookedIn: [FolderWatch]?
        var digest: [UInt8]
        var digestCheckedAt: Double
        /// The other manifests found beside this one and its buckets, as last listed.
        var neighbours: [String]
        var neighboursListedAt: Double
        /// Their manifests, includes and locks, and their fingerprints, in order.
        var neighbourFiles: [String]
        var neighbourFingerprint: [FileFingerprint]
        /// The locks and state folders of gone projects its public buckets held, as last looked
        /// for (`GoneProjectsInBuckets`, with the neighbours' listing).
        var goneHeld: [String]
        /// Device and inode of Derive's folder of per-user secrets as last seen (`StateHome`).
        var tokenFolder: [Int64]?
        /// File-system looks (`lstat`, `stat`, `readlink`) the checks made so far (a test measures
        /// the work per request with it).
        var lookups = 0
    }
    private let state: NIOLockedValueBox<State>

    /// A folder the walks looked in: as last seen, whether its times were then old enough to
    /// change with its next change, and the names looked up in it as the walks saw them.
    struct FolderWatch {
        var path: String
        var numbers: [Int64]
        var settled: Bool
        var names: [PathWalk.Entry]
    }

    /// A file (or link) as `lstat` sees it and, followed, as `stat` does.
    struct FileFingerprint: Equatable {
        var path: String
        var link: [Int64]?
        var target: [Int64]?

        /// A folder on the way (a link's target folder) counts by identity only: its times change
        /// with every file made in it (a build's lock), which is no change of the manifest.
        static func numbers(_ info: stat) -> [Int64] {
            if (info.st_mode & S_IFMT) == S_IFDIR { return [Int64(bitPattern: UInt64(info.st_dev)), Int64(bitPattern: UInt64(info.st_ino)), Int64(info.st_mode)] }
            return [Int64(bitPattern: UInt64(info.st_dev)), Int64(bitPattern: UInt64(info.st_ino)), Int64(info.st_mode), Int64(info.st_size),
             Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
        }

        static func of(_ path: String) -> FileFingerprint {
            var info = stat()
            let link = lstat(path, &info) == 0 ? numbers(info) : nil
            let target = stat(path, &info) == 0 ? numbers(info) : nil
            return FileFingerprint(path: path, link: link, target: target)
        }
    }

    /// `initial`: the configuration serve starts with, loaded from `rootPath` (as given on the
    /// command line); `load` loads it again (and throws `Unavailable` with the loader's errors).
    public init(initial: ServedConfiguration, rootPath: String, cacheFolder: String, logger: Logger = Logger(label: "derive.serve"),
                digestInterval: Double = 1, settleMargin: Double = 1, neighbourInterval: Double = 1,
                alsoWatched: @escaping @Sendable (Manifest) -> [String] = { _ in [] }, load: @escaping Loader) {
        self.rootPath = rootPath
        self.alsoWatched = alsoWatched
        self.load = load
        self.logger = logger
        self.digestInterval = digestInterval
        self.neighbourInterval = neighbourInterval
        self.settleMargin = settleMargin
        self.stateFolder = initial.manifest.stateFolder
        self.cacheFolder = cacheFolder
        let files = Self.watchedFiles(root: rootPath, manifest: initial.manifest)
        let folders = Self.watchedFolders(initial.manifest)
        let walks = PathWalk.of(folders)
        let neighbours = NeighbourProjects.of(initial.manifest)
        let neighbourFiles = Self.unique(NeighbourProjects.watchedFiles(neighbours) + alsoWatched(initial.manifest))
        state = NIOLockedValueBox(State(current: .success(initial), lastGood: initial, files: files, folders: folders,
                                        fingerprint: files.map(FileFingerprint.of), walks: walks,
                                        lookedIn: Self.lookedIn(walks, margin: settleMargin), digest: Self.digest(files),
                                        digestCheckedAt: Self.now(), neighbours: neighbours.map(\.manifestPath), neighboursListedAt: Self.now(),
                                        neighbourFiles: neighbourFiles, neighbourFingerprint: neighbourFiles.map(FileFingerprint.of),
                                        goneHeld: GoneProjectsInBuckets.held(by: initial.manifest), tokenFolder: StateHome.tokenFolderIdentity()))
    }

    /// The identity (device, inode) of the folder at `path` (a bucket's) as the configuration in
    /// force was checked with: nil when nothing was there then or `path` is no bucket folder of it.
    /// A folder opened at that path that is not this one was swapped since: never served.
    public func validatedFolder(_ path: String) -> FileStatus? {
        let path = URL(literalFilePath: path).standardizedFileURL.path
        return state.withLockedValue { state in
            guard let index = state.folders.firstIndex(of: path),
                  let target = state.walks[index].target, target.count >= 2 else { return nil }
            return FileStatus(size: 0, mtime: 0, ctime: 0, inode: UInt64(bitPattern: target[1]), device: UInt64(bitPattern: target[0]))
        }
    }

    /// File-system looks (`lstat`, `stat`, `readlink`) made by the checks so far.
    var lookups: Int { state.withLockedValue { $0.lookups } }

    /// For each bucket folder path (absolute) of the configuration in force, device and inode of
    /// the folder it led to and of each folder above it, as last walked (checked at the start of
    /// each request by `current`); empty for a path that led nowhere, `[[-1, -1]]` for one no
    /// load has looked at.
    public func folderLineages() -> [String: [[Int64]]] {
        state.withLockedValue { state in
            var result: [String: [[Int64]]] = [:]
            for (path, walk) in zip(state.folders, state.walks) { result[path] = walk.target == Self.unseen ? [[-1, -1]] : walk.lineage }
            return result
        }
    }

    /// The configuration last loaded, without looking at the files.
    public var configuration: ServedConfiguration { state.withLockedValue { $0.lastGood } }

    /// The configuration for a request that starts now: loaded again first when the manifest's
    /// files changed; `Unavailable` while the manifest does not load.
    public func current() -> Result<ServedConfiguration, Unavailable> {
        state.withLockedValue { state in
            let fingerprint = state.files.map(FileFingerprint.of)
            state.lookups += 2 * fingerprint.count
            var changed = fingerprint != state.fingerprint
            var walks: [PathWalk]?
            if !changed, !foldersAsBefore(&state) {
                let fresh = PathWalk.of(state.folders)
                state.lookups += fresh.reduce(0) { $0 + $1.calls }
                walks = fresh
                changed = zip(fresh, state.walks).contains { !$0.leadsAsBefore($1) }
                if !changed {
                    // Only times changed (a file made in a folder on the way): the walks as now.
                    state.walks = fresh
                    state.lookedIn = Self.lookedIn(fresh, margin: settleMargin)
                }
            }
            let now = Self.now()
            var digest = state.digest
            if !changed, now - state.digestCheckedAt >= digestInterval {
                digest = Self.digest(state.files)
                state.digestCheckedAt = now
                changed = digest != state.digest
            }
            // What changed, when not the manifest's own files: the log and the 503 name it
            // (attack 51c's 6: a sibling project appearing was told as "its manifest changed").
            var cause: String?
            // Another project's manifest, include or lock changed, or a manifest appeared or went.
            let neighbourFingerprint = state.neighbourFiles.map(FileFingerprint.of)
            state.lookups += 2 * neighbourFingerprint.count
            var registryChanged = false
            if !changed, let moved = zip(state.neighbourFiles, zip(neighbourFingerprint, state.neighbourFingerprint)).first(where: { $0.1.0 != $0.1.1 }) {
                changed = true
                cause = "another project's file \(moved.0) changed"
                // The registry of built projects is rewritten by any project's build: when it is
                // what changed, a manifest that appeared or went beside is looked for too and named
                // instead (the telling cause; s53's full run named the registry a test rewrote).
                registryChanged = StateHome.tokenFolder().map { moved.0 == $0 + "/projects" } ?? false
            }
            let tokenFolder = StateHome.tokenFolderIdentity()
            if !changed, tokenFolder != state.tokenFolder {
                changed = true
                cause = "Derive's folder of per-user secrets \(StateHome.tokenFolder() ?? "") (XDG_STATE_HOME) changed"
            }
            var goneHeld: [String]?
            if !changed || registryChanged, registryChanged || now - state.neighboursListedAt >= neighbourInterval {
                state.neighboursListedAt = now
                let listed = NeighbourProjects.manifestPaths(of: state.lastGood.manifest)
                if listed != state.neighbours {
                    changed = true
                    let appeared = listed.filter { !state.neighbours.contains($0) }, went = state.neighbours.filter { !listed.contains($0) }
                    cause = (appeared.first.map { "another project's manifest \($0) appeared" } ?? went.first.map { "another project's manifest \($0) went" })
                }
                // Another project's lock or state copied into a public bucket (attack 51c's 3):
                // the search validate makes, from the listings serve keeps anyway.
                let held = GoneProjectsInBuckets.held(by: state.lastGood.manifest)
                goneHeld = held
                if !changed, held != state.goneHeld {
                    changed = true
                    cause = held.first(where: { !state.goneHeld.contains($0) }).map { "another project's \($0) appeared in a bucket" } ?? "another project's files left a bucket"
                }
            }
            guard changed else { return state.current }
            state.goneHeld = goneHeld ?? GoneProjectsInBuckets.held(by: state.lastGood.manifest)
            state.tokenFolder = tokenFolder
            // The manifest's files changed: the folders as they are now, before the load.
            let observedWalks = walks ?? PathWalk.of(state.folders)
            if walks == nil { state.lookups += observedWalks.reduce(0) { $0 + $1.calls } }
            reload(&state, now: now, observed: fingerprint, observedWalks: observedWalks, observedNeighbours: neighbourFingerprint, cause: cause)
            return state.current
        }
    }

    /// Whether every folder the walks looked in is as they saw it (one `lstat` each), and the
    /// walks may be trusted for that: each path then leads where it did.
    ///
    /// A folder whose times changed (a file made in the project's folder, `/tmp` busy) or are too
    /// recent to be trusted has the names the walks looked up in it looked at again, one `lstat`
    /// each: the same (a link by its inode and times, anything else by identity) means the walks
    /// still hold. Only then are its new times kept.
    private func foldersAsBefore(_ state: inout State) -> Bool {
        guard var folders = state.lookedIn else { return false }
        let limit = PathWalk.now() - Int64(settleMargin * 1_000_000_000)
        var info = stat()
        for index in folders.indices {
            state.lookups += 1
            guard lstat(folders[index].path, &info) == 0 else { return false }
            let now = PathWalk.folderNumbers(info)
            guard now.prefix(3) == folders[index].numbers.prefix(3) else { return false }
            if now == folders[index].numbers, folders[index].settled { continue }
            for name in folders[index].names {
                state.lookups += 1
                let seen = lstat(name.path, &info) == 0 ? PathWalk.entryNumbers(info) : []
                guard seen == name.numbers else { return false }
            }
            folders[index].numbers = now
            folders[index].settled = PathWalk.Folder(path: "", numbers: now).changed < limit
        }
        state.lookedIn = folders
        return true
    }

    /// The folders the walks looked in, each once; nil when they may not be trusted (see `State.lookedIn`).
    static func lookedIn(_ walks: [PathWalk], margin: Double) -> [FolderWatch]? {
        var position: [String: Int] = [:]
        var folders: [FolderWatch] = []
        var named: Set<String> = []
        for walk in walks {
            guard walk.target != unseen else { return nil }
            let limit = walk.started - Int64(margin * 1_000_000_000)
            for folder in walk.folders {
                if let known = position[folder.path] {
                    guard folders[known].numbers == folder.numbers else { return nil }
                    continue
                }
                position[folder.path] = folders.count
                folders.append(FolderWatch(path: folder.path, numbers: folder.numbers, settled: folder.changed < limit, names: []))
            }
            for name in walk.names where named.insert(name.path).inserted {
                let parent = (name.path as NSString).deletingLastPathComponent
                guard let index = position[parent.isEmpty ? "/" : parent] else { return nil }
                folders[index].names.append(name)
            }
        }
        return folders
    }

    /// `observed`, `observedWalks`: the fingerprint of `state.files` and the walks of
    /// `state.folders` taken before loading. What the new watch list shares with them keeps the
    /// value seen before the load: a change made while the loader ran then differs at the next
    /// request and loads again (the load may not have seen it).
    /// `observedNeighbours`: the fingerprint of `state.neighbourFiles` taken before loading, kept
    /// for those the new list shares (a neighbour's change during the load loads again).
    /// `cause`: what changed when not the manifest's own files (the log and the 503 say so).
    private func reload(_ state: inout State, now: Double, observed: [FileFingerprint], observedWalks: [PathWalk],
                        observedNeighbours: [FileFingerprint], cause: String? = nil) {
        var before: [String: FileFingerprint] = [:]
        for entry in observed where before[entry.path] == nil { before[entry.path] = entry }
        var walked: [String: PathWalk] = [:]
        for walk in observedWalks where walked[walk.path] == nil { walked[walk.path] = walk }
        let wasBroken: Bool
        if case .failure = state.current { wasBroken = true } else { wasBroken = false }
        do {
            var fresh = try load()
            try accept(fresh)
            // Paths the fresh manifest adds (a bucket added in the same edit as a folder swap, a
            // new include) were not looked at before this load: their fingerprint taken now might
            // be of a folder swapped in after the loader checked the one it saw, and would be
            // taken for checked until the next change. So they are looked at now and the manifest
            // loaded again, its checks seeing at least what was looked at (at most twice more; a
            // list still growing then is marked unseen, so the next request loads again).
            for attempt in 0...2 {
                let added = Self.watchedFiles(root: rootPath, manifest: fresh.manifest).filter { before[$0] == nil }
                let addedFolders = Self.watchedFolders(fresh.manifest).filter { walked[$0] == nil }
                guard !added.isEmpty || !addedFolders.isEmpty else { break }
                guard attempt < 2 else {
                    for path in added { before[path] = FileFingerprint(path: path, link: nil, target: Self.unseen) }
                    for path in addedFolders { walked[path] = PathWalk(path: path, target: Self.unseen) }
                    break
                }
                for path in added { before[path] = FileFingerprint.of(path) }
                for path in addedFolders { walked[path] = PathWalk.of(path) }
                fresh = try load()
                try accept(fresh)
            }
            state.current = .success(fresh)
            state.lastGood = fresh
            state.files = Self.watchedFiles(root: rootPath, manifest: fresh.manifest)
            state.folders = Self.watchedFolders(fresh.manifest)
            logger.notice("the manifest \(rootPath) changed: reloaded (buckets \(fresh.manifest.buckets.map(\.name).joined(separator: ", ")))\(wasBroken ? "; serving again" : "")")
        } catch {
            let reason = "\(error)"
            if case .failure(let old) = state.current, old.description == reason {
                // Still the same fault: no new log line for every edit that keeps it.
            } else if let cause {
                logger.error("the manifest \(rootPath) does not load any more, though it did not change: \(cause); every request is answered 503 until it loads: \(reason)")
            } else {
                logger.error("the manifest \(rootPath) changed and does not load any more; every request is answered 503 until it does: \(reason)")
            }
            let kept: String?
            if case .failure(let old) = state.current, old.description == reason { kept = old.cause } else { kept = cause }
            state.current = .failure(Unavailable(reason, cause: kept))
            // Also follow the root as given (an include may be what broke).
            state.files = Array(Set(state.files + [rootPath])).sorted()
        }
        state.fingerprint = state.files.map { before[$0] ?? FileFingerprint.of($0) }
        state.walks = state.folders.map { walked[$0] ?? PathWalk.of($0) }
        state.lookedIn = Self.lookedIn(state.walks, margin: settleMargin)
        state.digest = Self.digest(state.files)
        state.digestCheckedAt = now
        // The neighbours of the manifest in force (the last that loaded, while none does).
        var seenNeighbour: [String: FileFingerprint] = [:]
        for entry in observedNeighbours where seenNeighbour[entry.path] == nil { seenNeighbour[entry.path] = entry }
        let neighbours = NeighbourProjects.of(state.lastGood.manifest)
        state.neighbours = neighbours.map(\.manifestPath)
        state.neighboursListedAt = now
        state.neighbourFiles = Self.unique(NeighbourProjects.watchedFiles(neighbours) + alsoWatched(state.lastGood.manifest))
        // One the load may not have seen (found after it listed) is taken as unseen: the next
        // request loads again, and that load has looked at it.
        state.neighbourFingerprint = state.neighbourFiles.map { seenNeighbour[$0] ?? FileFingerprint(path: $0, link: nil, target: Self.unseen) }
    }

    /// The fingerprint of a path no load has looked at: no folder has it, so `validatedFolder`
    /// matches nothing (503 for that bucket) and the next request loads again.
    static let unseen: [Int64] = [-1, -1, -1]

    /// What a reload may not change while serve runs.
    private func accept(_ fresh: ServedConfiguration) throws {
        let manifest = fresh.manifest
        guard manifest.stateFolder == stateFolder else {
            throw Unavailable("the manifest now names the state folder \(manifest.stateFolder), not \(stateFolder) as when derive serve started; restart derive serve to use it")
        }
        let controls = [("the manifest", manifest.file), ("the state folder", manifest.stateFolder), ("the serve cache folder", cacheFolder)]
            + (StateHome.tokenFolder().map { [("Derive's folder of per-user secrets (XDG_STATE_HOME)", $0)] } ?? [])
        for bucket in manifest.buckets {
            for (what, path) in controls where ObjectService.isInside(path, bucket.path) {
                throw Unavailable("\(what) \(path) is inside the folder of bucket '\(bucket.name)' (\(bucket.path)), where requests could write it; move the bucket's path or the file")
            }
        }
    }

    /// The manifest's files (the root as given, then the loader's), each with every link and
    /// link target met on the way to it.
    static func watchedFiles(root: String, manifest: Manifest) -> [String] {
        var paths: [String] = []
        for file in [root] + manifest.files {
            let absolute = URL(literalFilePath: file).standardizedFileURL.path
            paths.append(absolute)
            paths += linkSteps(absolute)
        }
        var seen: Set<String> = []
        return paths.filter { seen.insert($0).inserted }
    }

    /// Each bucket's folder (absolute, as the loader gives it), each once: walked (`PathWalk`),
    /// a folder replaced or a link on the way pointed elsewhere is seen.
    static func watchedFolders(_ manifest: Manifest) -> [String] {
        var seen: Set<String> = []
        return manifest.buckets.map { URL(literalFilePath: $0.path).standardizedFileURL.path }.filter { seen.insert($0).inserted }
    }

    /// Each link met resolving `path` component by component, and where each leads (at most 40 links).
    static func linkSteps(_ path: String) -> [String] {
        var pending = path.split(separator: "/").map(String.init)
        var current = ""
        var steps: [String] = []
        var hops = 0
        while !pending.isEmpty {
            let name = pending.removeFirst()
            if name.isEmpty || name == "." { continue }
            if name == ".." { current = (current as NSString).deletingLastPathComponent; if current == "/" { current = "" }; continue }
            let next = current + "/" + name
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = readlink(next, &buffer, buffer.count - 1)
            if hops > 0 || length > 0 { steps.append(next) }
            guard length > 0 else { current = next; continue }
            hops += 1
            if hops > 40 { break }
            let target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            pending = target.split(separator: "/").map(String.init) + pending
            if target.hasPrefix("/") { current = "" }
        }
        return steps
    }

    /// SHA-256 of the files' bytes in order (a missing or unreadable file, a folder or a FIFO
    /// counts as a marker). A file over the loader's size limit (`YAMLBudget.maxBytes`) is not
    /// read (attack 17's N7: 202 MB hashed at each request): it cannot load whatever it holds,
    /// and its size and times are in the fingerprint.
    static func digest(_ files: [String], maxBytes: Int = YAMLBudget().maxBytes) -> [UInt8] {
        var hash = SHA256()
        for file in files {
            do {
                let data = try ConfinedFolder.readRegularFile(atPath: file, maxBytes: maxBytes)
                hash.update(data: Data("\(data.count):".utf8))
                hash.update(data: data)
            } catch .tooLarge(_, size: let size, limit: _) {
                hash.update(data: Data("over-limit \(size):".utf8))
            } catch {
                hash.update(data: Data("-:".utf8))
            }
        }
        return Array(hash.finalize())
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    /// `paths` with each kept once, in order.
    static func unique(_ paths: [String]) -> [String] {
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }
}
