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
/// size already says it does not load). Each bucket's folder is looked at the same way (the
/// folder now at its path, links on the way followed, by device and inode, and each link met):
/// a folder replaced (`rm -rf site` and a build, `mv site drafts; mkdir site`, a blue/green
/// `ln -sfn v2 site`) loads the manifest again too, so the loader's checks (buckets that share
/// files, control files in a bucket) apply to the folders now there, and `ObjectService` answers
/// from the folder the load saw (`validatedFolder`), never from one it opened earlier. When
/// anything differs the manifest is loaded again and the new buckets, ACLs, websites, styles and
/// keys apply to that very request. A manifest that no longer loads (or now puts a control file
/// in a bucket, or moves the state folder) is never answered from the old copy: every request is
/// refused with 503 (saying only that it does not load: the loader's errors may name private
/// keys and folders) and the log says why, until the manifest loads again.
public final class ServedManifest: Sendable {
    public typealias Loader = @Sendable () throws -> ServedConfiguration

    /// Why serve refuses requests now.
    public struct Unavailable: Error, Sendable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    let rootPath: String
    let load: Loader
    let logger: Logger
    let digestInterval: Double
    /// Start-up values a reload cannot change (the serve lock, caches and databases are there).
    let stateFolder: String
    let cacheFolder: String

    struct State {
        var current: Result<ServedConfiguration, Unavailable>
        /// The last configuration that loaded (what requests already admitted run with).
        var lastGood: ServedConfiguration
        var files: [String]
        /// The bucket folders' paths and every link on the way to each (identity only).
        var folders: [String]
        /// Of `files` then `folders`, in order.
        var fingerprint: [FileFingerprint]
        var digest: [UInt8]
        var digestCheckedAt: Double
        /// File-system looks (`lstat`, `stat`, `readlink`) the checks made so far (a test measures
        /// the work per request with it).
        var lookups = 0
    }
    private let state: NIOLockedValueBox<State>

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
                digestInterval: Double = 1, load: @escaping Loader) {
        self.rootPath = rootPath
        self.load = load
        self.logger = logger
        self.digestInterval = digestInterval
        self.stateFolder = initial.manifest.stateFolder
        self.cacheFolder = cacheFolder
        let files = Self.watchedFiles(root: rootPath, manifest: initial.manifest)
        let folders = Self.watchedFolders(initial.manifest)
        state = NIOLockedValueBox(State(current: .success(initial), lastGood: initial, files: files, folders: folders,
                                        fingerprint: (files + folders).map(FileFingerprint.of), digest: Self.digest(files),
                                        digestCheckedAt: Self.now()))
    }

    /// The identity (device, inode) of the folder at `path` (a bucket's) as the configuration in
    /// force was checked with: nil when nothing was there then or `path` is no bucket folder of it.
    /// A folder opened at that path that is not this one was swapped since: never served.
    public func validatedFolder(_ path: String) -> FileStatus? {
        let path = URL(fileURLWithPath: path).standardizedFileURL.path
        return state.withLockedValue { state in
            guard let index = state.folders.firstIndex(of: path),
                  let target = state.fingerprint[state.files.count + index].target, target.count >= 2 else { return nil }
            return FileStatus(size: 0, mtime: 0, ctime: 0, inode: UInt64(bitPattern: target[1]), device: UInt64(bitPattern: target[0]))
        }
    }

    /// File-system looks (`lstat`, `stat`, `readlink`) made by the checks so far.
    var lookups: Int { state.withLockedValue { $0.lookups } }

    /// The configuration last loaded, without looking at the files.
    public var configuration: ServedConfiguration { state.withLockedValue { $0.lastGood } }

    /// The configuration for a request that starts now: loaded again first when the manifest's
    /// files changed; `Unavailable` while the manifest does not load.
    public func current() -> Result<ServedConfiguration, Unavailable> {
        state.withLockedValue { state in
            let fingerprint = (state.files + state.folders).map(FileFingerprint.of)
            state.lookups += 2 * fingerprint.count
            var changed = fingerprint != state.fingerprint
            let now = Self.now()
            var digest = state.digest
            if !changed, now - state.digestCheckedAt >= digestInterval {
                digest = Self.digest(state.files)
                state.digestCheckedAt = now
                changed = digest != state.digest
            }
            guard changed else { return state.current }
            reload(&state, now: now, observed: fingerprint)
            return state.current
        }
    }

    /// `observed`: the fingerprint of `state.files + state.folders` taken before loading. What the
    /// new watch list shares with it keeps the value seen before the load: a change made while
    /// the loader ran then differs at the next request and loads again (the load may not have
    /// seen it).
    private func reload(_ state: inout State, now: Double, observed: [FileFingerprint]) {
        var before: [String: FileFingerprint] = [:]
        for entry in observed where before[entry.path] == nil { before[entry.path] = entry }
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
                let added = (Self.watchedFiles(root: rootPath, manifest: fresh.manifest) + Self.watchedFolders(fresh.manifest))
                    .filter { before[$0] == nil }
                guard !added.isEmpty else { break }
                guard attempt < 2 else {
                    for path in added { before[path] = FileFingerprint(path: path, link: nil, target: Self.unseen) }
                    break
                }
                for path in added { before[path] = FileFingerprint.of(path) }
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
            } else {
                logger.error("the manifest \(rootPath) changed and does not load any more; every request is answered 503 until it does: \(reason)")
            }
            state.current = .failure(Unavailable(reason))
            // Also follow the root as given (an include may be what broke).
            state.files = Array(Set(state.files + [rootPath])).sorted()
        }
        state.fingerprint = (state.files + state.folders).map { before[$0] ?? FileFingerprint.of($0) }
        state.digest = Self.digest(state.files)
        state.digestCheckedAt = now
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
            let absolute = URL(fileURLWithPath: file).standardizedFileURL.path
            paths.append(absolute)
            paths += linkSteps(absolute)
        }
        var seen: Set<String> = []
        return paths.filter { seen.insert($0).inserted }
    }

    /// Each bucket's folder (absolute, as the loader gives it), then each link met on the way to
    /// one and where it leads: a folder replaced or a link pointed elsewhere changes their identity.
    static func watchedFolders(_ manifest: Manifest) -> [String] {
        var paths: [String] = []
        for bucket in manifest.buckets {
            let absolute = URL(fileURLWithPath: bucket.path).standardizedFileURL.path
            paths.append(absolute)
            paths += linkSteps(absolute)
        }
        var seen: Set<String> = []
        return paths.filter { seen.insert($0).inserted }
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
}
