import Confinement
import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// The live projects the registry of built projects names, wherever they lie, that may have
/// installed a file: one whose loading manifest has a rule writing the file's very name, or whose
/// lock records the file (its key in a bucket folder of that manifest) with these very bytes.
/// Why: the neighbour search is bounded, so a far taker (`x/y/far/n.yaml`, bucket `/…/proj/pub/n`)
/// that took a file over with `--overwrite` and then lost its build state (`rm -rf .derive`, its
/// lock and manifest kept) was never asked: the original adopted the file as a restored copy and
/// `clean` deleted it, while the taker adopted it from its lock (attack 52a's F2). No record of it
/// is needed: its live rule keeps the file in doubt. Read on first use: the registry once, each
/// manifest once.
public final class RegisteredWriters: @unchecked Sendable {
    /// A registered project that may have installed the file: its manifest, the output the file
    /// would be for it (`bucket/key`), and whether its lock records the file (else its rule writes the name).
    public struct Writer: Sendable, Equatable {
        public var manifest: String
        public var output: String
        public var locked: Bool
        public var lock: String
        /// The lock records it as a file its build left in place (a `left` line with these bytes).
        public var left = false
    }

    private let ownManifest: String
    private let ownState: String
    private let lock = NSLock()
    private var entries: [ProjectRegistry.Entry]?
    private var loaded: [String: Project?] = [:]
    private var lockFiles: [String: LockFile?] = [:]
    private var liveEntries: [ProjectRegistry.Entry]?

    /// `ownManifest`, `ownState`: this project (never a writer), as real paths.
    public init(ownManifest: String, ownState: String) {
        self.ownManifest = ProjectRegistry.realName(ownManifest)
        self.ownState = ProjectRegistry.realName(ownState)
    }

    /// The registered live project (first by manifest path, so every command names the same one)
    /// whose rule writes `path`'s name in one of its bucket folders, or whose lock records the file
    /// there with the bytes it holds; nil when none does or the registry cannot be read (that
    /// doubt is the registry's own: `ForeignRecordedOutputs.installerClaim`).
    public func writer(of path: String) -> Writer? {
        let real = ForeignProjectFiles.realPath(path)
        var digest: String??
        var found: [Writer] = []
        for entry in registered() where !PathKey.same(entry.manifest, ownManifest) && !PathKey.same(entry.state, ownState)
            && NeighbourProjects.isProjectManifest(entry.manifest) {
            // Its buckets as its manifest says now (re-pointed since it registered: the registry's
            // folders are only where to look).
            guard let project = project(entry.manifest) else { continue }
            for bucket in project.buckets {
                guard let key = ForeignProjectFiles.key(of: real, below: bucket.folder) else { continue }
                let output = bucket.name + "/" + key
                if project.outputs.mayProduce(bucket: bucket.name, key: key) {
                    found.append(Writer(manifest: entry.manifest, output: output, locked: false, lock: entry.lock))
                    break
                }
                guard let line = Self.lockLine(entry.lock, output: output) else { continue }
                if digest == nil { digest = .some(ForeignClaims.fileDigest(path)) }
                if case .some(.some(let bytes)) = digest, bytes == line {
                    found.append(Writer(manifest: entry.manifest, output: output, locked: true, lock: entry.lock))
                    break
                }
            }
        }
        return found.min { PathKey.ordered($0.manifest, $1.manifest) }
    }

    /// The registry's lines whose manifest is there, read once.
    private func registered() -> [ProjectRegistry.Entry] {
        lock.withLock {
            if let entries { return entries }
            guard case .entries(let read) = ProjectRegistry.read() else { entries = []; return [] }
            // One line per manifest: the last one written.
            var seen = Set<String>()
            let live = read.reversed().filter { seen.insert($0.manifest).inserted }
            entries = live
            return live
        }
    }

    /// A registered manifest as it loads now: its buckets (real folders, and each as it names it:
    /// `ProjectRegistry.declaredName`) and the keys its rules may write.
    private struct Project {
        var buckets: [(name: String, folder: String)]
        var declared: [String: String]
        var outputs: RuleOutputs
    }

    /// The manifest as it loads now; nil when it does not load without errors (its doubt is the
    /// neighbour search's, not this one's).
    private func project(_ manifest: String) -> Project? {
        if let known = lock.withLock({ loaded[manifest] }) { return known }
        var loader = ManifestLoader()
        loader.crossChecks = false
        loader.neighbourChecks = false
        let result = loader.load(manifest)
        var project: Project?
        if let other = result.manifest, !result.diagnostics.hasErrors {
            project = Project(buckets: other.buckets.map { ($0.name, RealFolder.of($0.path)) }.sorted { $0.name < $1.name },
                              declared: Dictionary(other.buckets.map { ($0.name, ProjectRegistry.declaredName($0.path)) }, uniquingKeysWith: { a, _ in a }),
                              outputs: RuleOutputs(other))
        }
        lock.withLock { loaded[manifest] = .some(project) }
        return project
    }

    /// The digest the lock at `lock` records for `output`, within the lock's limits; nil when none.
    private static func lockLine(_ lock: String, output: String) -> String? {
        var info = stat()
        guard stat(lock, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= LockFile.maxBytes,
              let data = FileManager.default.contents(atPath: lock) else { return nil }
        return LockFile.salvagedEntries(data).first { PathKey.same($0.path, output) }?.digest
    }
}

extension RegisteredWriters {
    /// The registered live project (first by manifest path) whose lock records the file at `path`
    /// with the bytes it holds, matched by where the file lies rather than only through the bucket
    /// folders its manifest names now; nil when none does. Asked once `writer(of:)` found none.
    /// Why: a taker that lost its build state kept its file only through its lock, read through its
    /// current bucket path, so the original adopted the file as a "restored copy" and `clean`
    /// deleted it when the taker's manifest did not load (attack 53a's F1: no buckets known), when
    /// the original renamed its bucket folder (F2: `mv pub pub2`, the taker's `../pub/n` gone) or the
    /// taker's bucket link was removed, or when the taker, following the advice to build with
    /// `--overwrite`, kept the file as a `left` line (F3). Its folders are those its manifest names
    /// now, or those the registry recorded at its last build when it does not load; a folder no
    /// longer there is matched where a rename beside it would put it (`keyBelowRenamed`).
    public func lockKeeper(of path: String) -> Writer? {
        let real = ForeignProjectFiles.realPath(path)
        var digest: String??
        func bytes() -> String? {
            if digest == nil { digest = .some(ForeignClaims.fileDigest(path)) }
            return digest ?? nil
        }
        var found: [Writer] = []
        for entry in live() {
            guard let lockFile = lockFile(entry.lock), !lockFile.entries.isEmpty || !lockFile.left.isEmpty else { continue }
            var writer: Writer?
            let folders = Self.lockFolders(entry, loaded: project(entry.manifest))
            for bucket in folders {
                guard let key = Self.key(of: real, in: bucket, of: entry), let line = lockFile.entries[bucket.name + "/" + key] else { continue }
                if let bytes = bytes(), bytes == line.digest {
                    writer = Writer(manifest: entry.manifest, output: line.path, locked: true, lock: entry.lock)
                    break
                }
            }
            // A file its build left in place (known only from its lock, these bytes): its output,
            // as serve already counts it. Placed relative to the lock's folder, or absolute; a line
            // with no place of its own (its bucket no longer declared when it was written: attack
            // 56c's H3) lies in its bucket's folder as the lines above are matched.
            if writer == nil {
                let lockFolder = (entry.lock as NSString).deletingLastPathComponent
                for line in lockFile.left.values where line.digestInLock {
                    let place = line.place.hasPrefix("/") ? line.place : lockFolder + "/" + line.place
                    let placeReal = ForeignProjectFiles.realPath(place)
                    let inBucket = line.file == nil && folders.contains { bucket in
                        Self.key(of: real, in: bucket, of: entry).map { PathKey.same(bucket.name + "/" + $0, line.path) } ?? false
                    }
                    guard inBucket || PathKey.same(placeReal, real) || Self.keyBelowRenamed(real, folder: (placeReal as NSString).deletingLastPathComponent)
                            == (placeReal as NSString).lastPathComponent,
                          let bytes = bytes(), bytes == line.digest else { continue }
                    writer = Writer(manifest: entry.manifest, output: line.path, locked: true, lock: entry.lock, left: true)
                    break
                }
            }
            if let writer { found.append(writer) }
        }
        return found.min { PathKey.ordered($0.manifest, $1.manifest) }
    }

    /// The key the file at `real` has in `bucket` (one of `lockFolders`), nil when it lies
    /// elsewhere; a folder the registry recorded that is no longer there is matched where a
    /// rename beside it would have put the file (`keyBelowRenamed`).
    private static func key(of real: String, in bucket: (name: String, folder: String), of entry: ProjectRegistry.Entry) -> String? {
        if let key = ForeignProjectFiles.key(of: real, below: bucket.folder) { return key }
        var info = stat()
        let renamed = entry.buckets[bucket.name].map { lstat($0, &info) != 0 } ?? true
        return renamed ? keyBelowRenamed(real, folder: bucket.folder) : nil
    }

    /// The folders in which `entry`'s lock lines are matched, by bucket name. The registry's
    /// folders (those of its last build) for a manifest that does not load (its buckets unknown),
    /// and for a bucket its manifest no longer declares (cut to `version: 1`, the bucket removed:
    /// its own plan keeps those files as ones it left in place: attack 54a). A bucket it declares
    /// as it did then (the same path as written) whose folder is gone now (its link removed) was
    /// not re-pointed: the folder it led to then (attack 54a). Otherwise the folder it names now: a
    /// loading manifest that re-pointed a bucket (`outA` → `userB`, not built since) no longer
    /// writes there, and a copy may take those files (attack 41c's C0).
    private static func lockFolders(_ entry: ProjectRegistry.Entry, loaded: Project?) -> [(name: String, folder: String)] {
        let recorded = entry.buckets.sorted { $0.key < $1.key }.map { (name: $0.key, folder: $0.value) }
        guard let loaded else { return recorded }
        var info = stat()
        var folders = loaded.buckets.map { bucket -> (name: String, folder: String) in
            guard lstat(bucket.folder, &info) != 0, let then = entry.buckets[bucket.name],
                  let now = loaded.declared[bucket.name], PathKey.same(entry.declared[bucket.name] ?? then, now) else { return bucket }
            return (bucket.name, then)
        }
        let named = Set(loaded.buckets.map(\.name))
        folders += recorded.filter { !named.contains($0.name) }
        return folders
    }

    /// The key `real` lies at below `folder` as a rename beside it would have moved it, when
    /// `folder` is no longer there (`mv pub pub2`: `…/pub/n` → `…/pub2/n`): the nearest folder of
    /// its path still there holds `real` as many folders down as it held `folder`. Nil when
    /// `folder` is there (asked directly), or that folder is the root (nothing is placed there).
    static func keyBelowRenamed(_ real: String, folder: String) -> String? {
        var info = stat()
        guard folder.hasPrefix("/"), lstat(folder, &info) != 0 else { return nil }
        var ancestor = (folder as NSString).deletingLastPathComponent
        var depth = 1
        while ancestor != "/", !ancestor.isEmpty, lstat(ancestor, &info) != 0 {
            ancestor = (ancestor as NSString).deletingLastPathComponent
            depth += 1
        }
        guard ancestor != "/", !ancestor.isEmpty, (info.st_mode & S_IFMT) == S_IFDIR,
              let rest = ForeignProjectFiles.key(of: real, below: ancestor) else { return nil }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count > depth else { return nil }
        return parts.dropFirst(depth).joined(separator: "/")
    }

    /// The registry's lines of other projects whose manifest is there, read once (a fresh clone
    /// asks of each file its lock adopts).
    private func live() -> [ProjectRegistry.Entry] {
        if let known = lock.withLock({ liveEntries }) { return known }
        let found = registered().filter { entry in
            !PathKey.same(entry.manifest, ownManifest) && !PathKey.same(entry.state, ownState) && NeighbourProjects.isProjectManifest(entry.manifest)
        }
        lock.withLock { liveEntries = found }
        return found
    }

    /// The lock at `path` (within the lock's limits), read once; nil when it is not there or not a lock.
    private func lockFile(_ path: String) -> LockFile? {
        if let known = lock.withLock({ lockFiles[path] }) { return known }
        var info = stat()
        var read: LockFile?
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= LockFile.maxBytes,
           let data = FileManager.default.contents(atPath: path) {
            read = LockFile.parse(String(decoding: data, as: UTF8.self))
                ?? LockFile(entries: LockFile.salvagedEntries(data))
        }
        lock.withLock { lockFiles[path] = .some(read) }
        return read
    }
}
