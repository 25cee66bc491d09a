import Confinement
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest

/// What `stat` says about a file: enough to tell whether it changed since it was hashed.
/// ctime is there for git's reason: an edit that restores size and mtime (`touch -r`) still moves it.
public struct FileStat: Sendable, Hashable {
    public var size: Int64
    /// Modification time in nanoseconds since 1970.
    public var mtime: Int64
    public var inode: UInt64
    /// Status-change time in nanoseconds since 1970.
    public var ctime: Int64

    public init(size: Int64, mtime: Int64, inode: UInt64, ctime: Int64? = nil) {
        self.size = size
        self.mtime = mtime
        self.inode = inode
        self.ctime = ctime ?? mtime
    }

    /// The later of mtime and ctime: what the racy-timestamp rule compares.
    public var changed: Int64 { max(mtime, ctime) }

    /// When a write could last have left this stat, for the racy-timestamp rule (a file whose
    /// `lastChange` is at or after `since` is racy), knowing the clock reads `now`: `changed`,
    /// except that an mtime more than `margin` ahead of `now` (an archive from a machine whose
    /// clock ran ahead, `touch -d`, a camera's card) is no clock reading of a write: no write
    /// made by now can have given it (a write takes the clock's time), so the ctime alone says
    /// when the file last changed (attack 20's M1). The ctime is the clock a user cannot set:
    /// `touch -d` and `touch -r` move it to the moment they ran, as every write does, so a
    /// later edit that puts the old mtime back still moves the stat. Without this, a file dated
    /// ahead stayed racy until the clock passed its mtime: every no-op read it again. Once the
    /// clock passes it, it is `changed` again (racy once more, read once, then settled).
    /// `now` must be read after the stat was taken.
    public func lastChange(now: Int64, margin: Int64) -> Int64 { mtime > now &+ margin ? ctime : changed }
}

/// The file system as the planner and builder see it (ninja's DiskInterface): tests swap in
/// `MemoryDisk`, everything else uses `RealDisk`.
public protocol Disk: ObjectLister {
    /// The regular file at `path` (never through a symbolic link inside a bucket), or nil.
    func stat(_ path: String) -> FileStat?
    /// `stat` of many paths, in order (a real disk walks each folder once).
    func stats(_ paths: [String]) -> [FileStat?]
    /// Whether anything (a file, a folder, a link) is at `path`, links not followed.
    func exists(_ path: String) -> Bool
    func read(_ path: String) throws -> Data
    /// `read`, refusing a file over `maxBytes` (`DiskError.tooLargeSize` set) before reading it.
    func read(_ path: String, maxBytes: Int) throws -> Data
    /// The file's SHA-256 digest and its first `headBytes` bytes, the file never held whole.
    func digestAndHead(_ path: String, headBytes: Int) throws -> (digest: String, head: Data)
    /// The file's first `bytes` bytes (fewer when it is shorter), the rest never read: what a
    /// file's format and header say, before deciding to read or hash it whole.
    func head(_ path: String, bytes: Int) throws -> Data
    /// Writes `data` to a temporary file beside `path`, fsyncs it, renames it into place and
    /// fsyncs the folder, creating folders as needed; a crash leaves either the old file or the
    /// new one. Returns the folders it created (absolute, outermost first).
    /// With `replacing: false` (a create), a file that appeared at `path` meanwhile is kept and
    /// the write fails with `DiskError.appeared` (the check and the move are one atomic step).
    @discardableResult
    func writeAtomically(_ data: Data, to path: String, replacing: Bool) throws -> [String]
    /// `writeAtomically` over a file Derive owns: the file at `path` is replaced only when its
    /// bytes hash to `digest`, checked on the file displaced by the move itself (an atomic
    /// exchange), so a file put there after the caller's last check is moved back, not lost
    /// (`DiskError.appeared`). Nothing at `path`: created only if the name is still free.
    @discardableResult
    func writeAtomically(_ data: Data, to path: String, replacingOnly digest: String) throws -> [String]
    /// An output's write: `writeAtomically` (`replacingOnly` when `digest` is given), returning
    /// also the written file's stat and identity taken from its own descriptor once in place,
    /// never a later stat by path: a file changed or moved over the name after Derive wrote it
    /// is not recorded as Derive's (attack 20's B3). Nil stat: the file moved while it was
    /// installed (its bytes are not vouched for).
    func writeOutput(_ data: Data, to path: String, replacing: Bool, replacingOnly digest: String?) throws
        -> (created: [String], stat: FileStat?, identity: FileIdentity?)
    /// `writeOutput` calling `beforeInstall` with the file to be installed (its device, inode and
    /// birth, from its open descriptor; nil on a disk without descriptors) just before it is moved
    /// into place: the build notes it, so a file at that path after a kill is Derive's only if it
    /// is that very file (issue 9, round 39). An error from `beforeInstall` installs nothing.
    func writeOutput(_ data: Data, to path: String, replacing: Bool, replacingOnly digest: String?,
                     beforeInstall: (FileIdentity?) throws -> Void) throws -> (created: [String], stat: FileStat?, identity: FileIdentity?)
    /// Removes the regular file at `path` only if its bytes hash to `digest` (checked on the
    /// open file). False when something else is there; true when removed or already gone.
    func remove(_ path: String, ifDigest digest: String) throws -> Bool
    /// `remove(_:ifDigest:)` that also requires the open file to be `identity` (its device and
    /// inode as Derive recorded them when it wrote the file); nil: the digest alone.
    func remove(_ path: String, ifDigest digest: String, identity: FileIdentity?) throws -> Bool
    /// Removes a file Derive owns by name (its witness, a state file).
    func remove(_ path: String) throws
    /// Removes the folder at `path` only if it is empty; never recursive.
    @discardableResult
    func removeEmptyFolder(_ path: String) -> Bool
    /// Removes dead writers' temporaries in `folder` for the file names in `names` only, each only
    /// when its bytes hash to a digest `digests` gives for that name (what Derive noted or
    /// recorded writing there): never by its name alone, which anyone can move a file onto.
    /// Returns the paths removed; `listOnly`: removes nothing and returns those it would remove.
    @discardableResult
    func removeStaleTemporaries(in folder: String, named names: PathSet, listOnly: Bool, digests: (String) -> Set<String>) -> [String]
    /// Whether `folder` may hold a temporary file a killed command left: false only when it was
    /// listed and no name in it has a temporary's shape (`.…` ending in `.derive-tmp`, the test
    /// `removeStaleTemporaries` makes first), so the sweep has nothing to find there. True when
    /// it cannot say (a disk in memory, a folder that cannot be listed).
    func mayHoldTemporaries(in folder: String) -> Bool
    /// Current time in nanoseconds since 1970.
    func now() -> Int64
}

extension Disk {
    /// A disk without descriptors: nothing to note of the file but its bytes.
    public func writeOutput(_ data: Data, to path: String, replacing: Bool, replacingOnly digest: String?,
                            beforeInstall: (FileIdentity?) throws -> Void) throws -> (created: [String], stat: FileStat?, identity: FileIdentity?) {
        try beforeInstall(nil)
        return try writeOutput(data, to: path, replacing: replacing, replacingOnly: digest)
    }

    @discardableResult
    public func writeAtomically(_ data: Data, to path: String) throws -> [String] {
        try writeAtomically(data, to: path, replacing: true)
    }

    /// A disk with no descriptors (in memory): the write, then the stat at `path`.
    public func writeOutput(_ data: Data, to path: String, replacing: Bool, replacingOnly digest: String?) throws
        -> (created: [String], stat: FileStat?, identity: FileIdentity?) {
        let created = try digest.map { try writeAtomically(data, to: path, replacingOnly: $0) } ?? writeAtomically(data, to: path, replacing: replacing)
        return (created, stat(path), FileIdentity.ofRegularFile(path))
    }

    public func stats(_ paths: [String]) -> [FileStat?] { paths.map { stat($0) } }

    public func mayHoldTemporaries(in folder: String) -> Bool { true }

    /// `read`, refusing a file over `maxBytes` (`DiskError.tooLarge`). A disk in memory reads it whole.
    public func read(_ path: String, maxBytes: Int) throws -> Data {
        let data = try read(path)
        guard data.count <= maxBytes else { throw DiskError.tooLarge(path, size: data.count, limit: maxBytes) }
        return data
    }

    /// The first `bytes` bytes of the file at `path`. A disk in memory reads it whole.
    public func head(_ path: String, bytes: Int) throws -> Data { try read(path).prefix(bytes) }

    /// The SHA-256 digest of the file at `path` and its first `headBytes` bytes. A disk in memory
    /// reads it whole.
    public func digestAndHead(_ path: String, headBytes: Int) throws -> (digest: String, head: Data) {
        let data = try read(path)
        return (ContentDigests.digest(data), data.prefix(headBytes))
    }
}

public struct DiskError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// Set when a create found something at its path at the moment of the move (kept).
    public var appeared = false
    /// The size of a file refused for being over a reader's limit (never read).
    public var tooLargeSize: Int?
    /// Set when the system refused a removal (an immutable file, a read-only mount, a sticky or
    /// another user's folder): `strerror`'s words and what to do. The file is still there.
    public var refusal: String?
    public init(_ description: String, appeared: Bool = false) { self.description = description; self.appeared = appeared }

    static func tooLarge(_ path: String, size: Int, limit: Int) -> DiskError {
        var error = DiskError("cannot read \(path): the file is \(size) bytes; the limit is \(limit)")
        error.tooLargeSize = size
        return error
    }
}

/// `stat(2)`/`lstat(2)`, outside any type that has its own `stat` method.
private func posixStat(_ path: String, follow: Bool = true) -> stat? {
    var info = stat()
    return (follow ? stat(path, &info) : lstat(path, &info)) == 0 ? info : nil
}

extension FileStat {
    init(_ status: FileStatus) {
        self.init(size: status.size, mtime: status.mtime, inode: status.inode, ctime: status.ctime)
    }
}

/// The real file system. Every path below one of its roots (the buckets' folders, and the
/// folders outputs were recorded in) is reached through a `ConfinedFolder`: an openat/O_NOFOLLOW
/// walk from the root's descriptor, so no source read, output write or deletion ever resolves
/// through a symbolic link out of its bucket. Other paths (the manifest, the lock beside it,
/// fonts) are the manifest author's own and are used as named.
public struct RealDisk: Disk {
    static let temporaryMarker = ConfinedFolder.temporaryMarker
    private let lister = DiskObjectLister()
    private let roots: [String]
    /// Each root's UTF-8 bytes, in the order of `roots`.
    private let rootBytes: [[UInt8]]
    /// The roots that are recorded folders, not buckets: opened without following any link.
    private let recordedRoots: PathSet
    private let folders: OpenFolders
    /// The file system's clock (`FileSystemClock`); nil: Derive's own.
    private let clock: FileSystemClock?

    /// `roots`: the buckets' folders, whose contents are reached only without following links
    /// (the folder itself as the manifest names it). `recorded`: real folders the state recorded
    /// files in (an old bucket's folder, an index's folder); a path below a bucket is always
    /// walked from that bucket, so a recorded folder only serves paths outside every bucket, and
    /// is itself opened component by component without following links (it was a real path).
    ///
    /// `project`: the manifest's folder. Given, no folder is ever made while it is not there: a
    /// project moved or deleted during a build is not created again, empty, at its old path
    /// (attack 17's N5: the lock's write made `mm/` again).
    public init(confiningTo roots: [String] = [], recorded: [String] = [], project: String? = nil, clock: FileSystemClock? = nil) {
        folders = OpenFolders(project: project)
        self.clock = clock
        let order = Self.rootOrder(roots.map { RealDisk.standard($0) }, recorded: recorded.map { RealDisk.standard($0) })
        self.roots = order.roots
        rootBytes = self.roots.map { Array($0.utf8) }
        recordedRoots = order.recorded.isEmpty ? PathSet() : PathSet(order.recorded)
    }

    /// The roots in the order they are tried, and the recorded folders among them: buckets
    /// before recorded folders (a bucket is never also a recorded one), each once by its bytes;
    /// longest first, so a bucket nested in another is walked from its own folder, and in byte
    /// order among equal lengths. Sorted arrays rather than sets: the `PathSet`s took a runtime
    /// conformance lookup each in every command's start (issue 15). `rootOrderSlowly` is the
    /// definition (`RealDiskStatsTests` compares them).
    static func rootOrder(_ buckets: [String], recorded: [String]) -> (roots: [String], recorded: [String]) {
        func unique(_ paths: [String]) -> [String] {
            var kept: [String] = []
            for path in paths.sortedByBytes() where kept.last.map({ !PathKey.same($0, path) }) ?? true { kept.append(path) }
            return kept
        }
        let buckets = unique(buckets)
        let others = recorded.isEmpty ? [] : unique(recorded).filter { path in !buckets.contains { PathKey.same($0, path) } }
        return (buckets.sorted { $0.utf8.count > $1.utf8.count } + others.sorted { $0.utf8.count > $1.utf8.count }, others)
    }

    /// `rootOrder` as it was defined on `PathSet`s.
    static func rootOrderSlowly(_ buckets: [String], recorded: [String]) -> (roots: [String], recorded: [String]) {
        let buckets = PathSet(buckets)
        let others = PathSet(recorded).subtracting(buckets)
        return (buckets.sorted().sorted { $0.utf8.count > $1.utf8.count } + others.sorted().sorted { $0.utf8.count > $1.utf8.count }, others.sorted())
    }

    /// The confined folder for a root: a bucket opened as named, a recorded folder without links.
    private func openRoot(_ root: String, create: Bool) throws -> ConfinedFolder {
        recordedRoots.contains(root) ? try folders.recordedFolder(root) : try folders.folder(root, create: create)
    }

    static func standard(_ path: String) -> String {
        let standard = URL(literalFilePath: path).standardizedFileURL.path
        return standard.count > 1 && standard.hasSuffix("/") ? String(standard.dropLast()) : standard
    }

    /// The root holding `path` and the key below it, when `path` lies under a root.
    private func confined(_ path: String) -> (root: String, key: ObjectKey)? {
        confinedIndex(path).map { (roots[$0.root], $0.key) }
    }

    /// `confined`, naming the root by its index in `roots`.
    private func confinedIndex(_ path: String) -> (root: Int, key: ObjectKey)? {
        // On contiguous bytes with memcmp: Foundation's `hasPrefix`, then `utf8.starts(with:)`
        // (15 % of a 2 000-output no-op's instructions, every output and source comes here), showed
        // in no-op profiles.
        var path = path
        return path.withUTF8 { bytes -> (root: Int, key: ObjectKey)? in
            for (index, prefix) in rootBytes.enumerated() where bytes.count > prefix.count + 1 && bytes[prefix.count] == UInt8(ascii: "/") {
                guard prefix.isEmpty || prefix.withUnsafeBufferPointer({ memcmp($0.baseAddress!, bytes.baseAddress!, prefix.count) == 0 }),
                      let key = try? ObjectKey(fileName: Array(bytes[(prefix.count + 1)...])) else { continue }
                return (index, key)
            }
            return nil
        }
    }

    /// The confined folder for a path outside every root: its parent folder (only the last
    /// segment is walked), so writes there are still atomic and durable.
    /// `created`: the folders it made for `path` (the lock's, outside every bucket), outermost first.
    private func parentFolder(of path: String, create: Bool, created: inout [String]) throws -> (ConfinedFolder, ObjectKey) {
        let url = URL(literalFilePath: path)
        let parent = url.deletingLastPathComponent().path
        if create { created = try folders.make(parent) }
        guard let key = try? ObjectKey(fileName: Array(url.lastPathComponent.utf8)) else { throw DiskError("\(path): not a file name") }
        do { return (try folders.folder(parent, create: false), key) } catch { throw DiskError("cannot open \(parent): \(error)") }
    }

    private func parentFolder(of path: String, create: Bool) throws -> (ConfinedFolder, ObjectKey) {
        var created: [String] = []
        return try parentFolder(of: path, create: create, created: &created)
    }

    /// Whether `path`, which no root holds as a key, must not be used as named either: it lies
    /// below a root by its bytes though the rest is no key (a `..`, `.` or empty part), or it has a
    /// `..` part anywhere. The kernel would resolve such a path out of its bucket (attack 38a's H1:
    /// `out/../../victimdir/notes` from a style named `..` replaced a file outside the project);
    /// Derive's own paths outside the buckets are standardised and never hold one.
    private func refusedAsNamed(_ path: String) -> Bool {
        let bytes = Array(path.utf8)
        if bytes.split(separator: UInt8(ascii: "/")).contains(where: { $0.elementsEqual([0x2E, 0x2E]) }) { return true }
        return rootBytes.contains { prefix in
            bytes.count > prefix.count && bytes[prefix.count] == UInt8(ascii: "/") && bytes.starts(with: prefix)
        }
    }

    /// The error for a path `refusedAsNamed`.
    private func refusal(_ path: String, _ verb: String) -> DiskError {
        DiskError("cannot \(verb) \(path): the path has a '.', '..' or empty part below a bucket's folder; Derive never resolves one")
    }

    public func stat(_ path: String) -> FileStat? {
        if let (root, key) = confined(path) {
            return (try? openRoot(root, create: false))?.status(key).map(FileStat.init)
        }
        guard !refusedAsNamed(path), let info = posixStat(path), (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        let ctime = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        return FileStat(size: Int64(info.st_size), mtime: mtime, inode: UInt64(info.st_ino), ctime: ctime)
    }

    public func stats(_ paths: [String]) -> [FileStat?] {
        // Confined paths grouped by root (in order within each), each group stat'ed in one walk.
        // Grouped by the root's index, not in a map keyed by its path: hashing the root twice per
        // path was a tenth of a 2 000-output no-op (issue 15).
        var results = [FileStat?](repeating: nil, count: paths.count)
        var groups = [(indices: [Int], keys: [ObjectKey])](repeating: ([], []), count: roots.count)
        for (index, path) in paths.enumerated() {
            if let (root, key) = confinedIndex(path) {
                groups[root].indices.append(index)
                groups[root].keys.append(key)
            } else {
                results[index] = stat(path)
            }
        }
        for (root, group) in zip(roots, groups) where !group.indices.isEmpty {
            guard let folder = try? openRoot(root, create: false) else { continue }
            for (index, status) in zip(group.indices, folder.statuses(group.keys)) { results[index] = status.map(FileStat.init) }
        }
        return results
    }

    public func exists(_ path: String) -> Bool {
        if let (root, key) = confined(path) {
            guard let folder = try? openRoot(root, create: false) else { return false }
            return folder.kind(key) != nil
        }
        return !refusedAsNamed(path) && posixStat(path, follow: false) != nil
    }

    public func read(_ path: String) throws -> Data { try read(path, maxBytes: Int.max) }

    /// Refuses a file over `maxBytes` from its size, before reading a byte, and reads at most
    /// `maxBytes` + 1 bytes of one that grows meanwhile.
    public func read(_ path: String, maxBytes: Int) throws -> Data {
        do {
            if let (root, key) = confined(path) { return try openRoot(root, create: false).read(key, maxBytes: maxBytes) }
            guard !refusedAsNamed(path) else { throw refusal(path, "read") }
            return try ConfinedFolder.readRegularFile(atPath: path, maxBytes: maxBytes)
        } catch ConfinementError.tooLarge(_, let size, let limit) {
            throw DiskError.tooLarge(path, size: size, limit: limit)
        } catch {
            throw DiskError("cannot read \(path): \(error)")
        }
    }

    /// Opens the regular file at `path` for reading (confined inside a bucket, never through a link there).
    private func openForReading(_ path: String) throws -> Int32 {
        let fd: Int32
        do {
            if let (root, key) = confined(path) {
                fd = try openRoot(root, create: false).openForReading(key)
            } else {
                guard !refusedAsNamed(path) else { throw refusal(path, "read") }
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
                guard fd >= 0 else { throw DiskError("cannot read \(path): \(String(cString: strerror(errno)))") }
                var info = Glibc.stat()
                guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { close(fd); throw DiskError("cannot read \(path): not a regular file") }
                _ = fcntl(fd, F_SETFL, O_RDONLY)
            }
        } catch let error as DiskError { throw error } catch { throw DiskError("cannot read \(path): \(error)") }
        return fd
    }

    /// Reads at most `bytes` bytes from the start of the file: its length is never a cost.
    public func head(_ path: String, bytes: Int) throws -> Data {
        let fd = try openForReading(path)
        defer { close(fd) }
        var head = Data()
        var buffer = [UInt8](repeating: 0, count: min(max(bytes, 0), 1 << 16))
        while head.count < bytes {
            let wanted = min(buffer.count, bytes - head.count)
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, wanted) }
            if count < 0 { if errno == EINTR { continue }; throw DiskError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            head.append(contentsOf: buffer[0..<count])
        }
        return head
    }

    /// Streams the file through SHA-256 in 64 KiB pieces: a file of any size costs 64 KiB.
    public func digestAndHead(_ path: String, headBytes: Int) throws -> (digest: String, head: Data) {
        let fd = try openForReading(path)
        defer { close(fd) }
        guard let result = Self.digestAndHead(of: fd, headBytes: headBytes) else {
            throw DiskError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        return result
    }

    @discardableResult
    public func writeAtomically(_ data: Data, to path: String, replacing: Bool) throws -> [String] {
        try write(to: path) { folder, key in try folder.writeAtomically(data, to: key, replacing: replacing) }
    }

    @discardableResult
    public func writeAtomically(_ data: Data, to path: String, replacingOnly digest: String) throws -> [String] {
        try write(to: path) { folder, key in
            try folder.writeAtomically(data, to: key, replacingOnly: { fd in Self.digest(of: fd) == digest })
        }
    }

    public func writeOutput(_ data: Data, to path: String, replacing: Bool, replacingOnly digest: String?) throws
        -> (created: [String], stat: FileStat?, identity: FileIdentity?) {
        try writeOutput(data, to: path, replacing: replacing, replacingOnly: digest, beforeInstall: { _ in })
    }

    public func writeOutput(_ data: Data, to path: String, replacing: Bool, replacingOnly digest: String?,
                            beforeInstall: (FileIdentity?) throws -> Void) throws -> (created: [String], stat: FileStat?, identity: FileIdentity?) {
        var status: FileStatus?
        let created = try write(to: path) { folder, key in
            let written = try folder.writeAtomicallyReportingStatus(data, to: key, replacing: replacing,
                                                                    replacingOnly: digest.map { digest in { fd in Self.digest(of: fd) == digest } },
                                                                    beforeCommit: { fd in
                var info = Glibc.stat()
                guard fstat(fd, &info) == 0 else { throw DiskError("cannot read the file written for \(path): \(String(cString: strerror(errno)))") }
                var identity = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
                identity.birth = FileBirth.of(descriptor: fd) ?? 0
                try beforeInstall(identity)
            })
            status = written.status
            return written.created
        }
        return (created, status.map(FileStat.init), status.map { FileIdentity(device: $0.device, inode: $0.inode) })
    }

    /// Opens the folder `path` is written in (its bucket's, confined, or its parent's), runs `write`
    /// there and returns the folders it created as paths; a file that appeared at the name is
    /// `appeared`.
    private func write(to path: String, _ write: (ConfinedFolder, ObjectKey) throws -> [String]) throws -> [String] {
        let (folder, key): (ConfinedFolder, ObjectKey)
        let rootPath: String
        var made: [String] = []
        if let (root, confinedKey) = confined(path) {
            do { folder = try openRoot(root, create: true) } catch { throw DiskError("cannot open the bucket folder \(root): \(error)") }
            key = confinedKey
            rootPath = root
        } else {
            guard !refusedAsNamed(path) else { throw refusal(path, "write") }
            (folder, key) = try parentFolder(of: path, create: true, created: &made)
            rootPath = folder.path
        }
        do {
            return try made + write(folder, key).map { rootPath + "/" + $0 }
        } catch ConfinementError.alreadyExists {
            throw DiskError("cannot write \(path): a file appeared there while building", appeared: true)
        } catch {
            throw DiskError("cannot write \(path): \(error)")
        }
    }

    public func remove(_ path: String, ifDigest digest: String) throws -> Bool {
        try remove(path, ifDigest: digest, identity: nil)
    }

    public func remove(_ path: String, ifDigest digest: String, identity: FileIdentity?) throws -> Bool {
        let (folder, key): (ConfinedFolder, ObjectKey)
        if let (root, confinedKey) = confined(path) {
            guard let opened = try? openRoot(root, create: false) else { return true }
            (folder, key) = (opened, confinedKey)
        } else {
            guard !refusedAsNamed(path) else { throw refusal(path, "remove") }
            guard posixStat(path, follow: false) != nil else { return true }
            (folder, key) = try parentFolder(of: path, create: false)
        }
        guard folder.kind(key) != nil else { return true }
        do {
            return try folder.removeFile(key, if: { fd in
                if let identity {
                    var info = Glibc.stat()
                    guard fstat(fd, &info) == 0, FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) == identity,
                          identity != .unproven, identity.birth == 0 || FileBirth.of(descriptor: fd) == identity.birth else { return false }
                }
                return Self.digest(of: fd) == digest
            }, viaFreshName: true)
        } catch ConfinementError.removalRefused(_, let code) {
            var error = DiskError("cannot remove \(path): \(ConfinedFolder.refusalReason(code))")
            error.refusal = ConfinedFolder.refusalReason(code)
            throw error
        } catch {
            throw DiskError("cannot remove \(path): \(error)")
        }
    }

    /// SHA-256 of an open file's bytes, read from its descriptor.
    static func digest(of fd: Int32) -> String? { digestAndHead(of: fd, headBytes: 0)?.digest }

    /// SHA-256 of an open file's bytes, read from its descriptor in 64 KiB pieces, and its first
    /// `headBytes` bytes; nil on a read error (`errno` says which).
    static func digestAndHead(of fd: Int32, headBytes: Int) -> (digest: String, head: Data)? {
        var hasher = SHA256()
        var head = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 { if errno == EINTR { continue }; return nil }
            if count == 0 { break }
            hasher.update(data: buffer[0..<count])
            if head.count < headBytes { head.append(contentsOf: buffer[0..<min(count, headBytes - head.count)]) }
        }
        return (ContentDigests.hex(hasher.finalize()), head)
    }

    public func remove(_ path: String) throws {
        guard !refusedAsNamed(path) || confined(path) != nil else { throw refusal(path, "remove") }
        guard posixStat(path, follow: false) != nil else { return }
        if let (root, key) = confined(path) {
            do { try openRoot(root, create: false).removeFile(key) } catch { throw DiskError("cannot remove \(path): \(error)") }
            return
        }
        guard unlink(path) == 0 else { throw DiskError("cannot remove \(path): \(String(cString: strerror(errno)))") }
    }

    @discardableResult
    public func removeEmptyFolder(_ path: String) -> Bool {
        if let (root, key) = confined(path) {
            return (try? openRoot(root, create: false))?.removeEmptyFolder(key) ?? false
        }
        // Outside every bucket (a folder made for the lock): by name in its parent, never followed.
        guard !refusedAsNamed(path), let (parent, name) = try? parentFolder(of: path, create: false), parent.removeEmptyFolder(name) else { return false }
        folders.forget(path)
        return true
    }

    @discardableResult
    public func removeStaleTemporaries(in folder: String, named names: PathSet, listOnly: Bool, digests: (String) -> Set<String>) -> [String] {
        let approve = { (name: String, fd: Int32) -> Bool in
            let allowed = digests(name)
            return !allowed.isEmpty && Self.digest(of: fd).map(allowed.contains) == true
        }
        var found: [String] = []
        if let (root, key) = confined(folder) {
            found = (try? openRoot(root, create: false))?.removeStaleTemporaries(in: key, named: names, listOnly: listOnly, if: approve) ?? []
        } else if !refusedAsNamed(folder), let opened = try? folders.folder(RealDisk.standard(folder), create: false) {
            found = opened.removeStaleTemporaries(in: nil, named: names, listOnly: listOnly, if: approve)
        }
        return found.map { folder + "/" + $0 }
    }

    /// Lists the folder's names only (no file opened): a name of a temporary's shape, or a
    /// folder that cannot be listed, says it may (the sweep then looks as it always did).
    public func mayHoldTemporaries(in folder: String) -> Bool {
        guard let directory = opendir(folder) else { return true }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasPrefix("."), name.hasSuffix(ConfinedFolder.temporaryMarker) { return true }
        }
        return false
    }

    /// The racy-timestamp rule's clock: the file system's (`FileSystemClock`) when given.
    public func now() -> Int64 {
        if let clock { return clock.now() }
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    public func keys(inFolder folder: String, skipping: [String]) -> [String]? {
        lister.keys(inFolder: folder, skipping: skipping)
    }

    public func entries(inFolder folder: String, skipping: [String]) -> (keys: [String], others: [(key: String, kind: String)])? {
        lister.entries(inFolder: folder, skipping: skipping)
    }
}

extension DiskError {
    /// Why the folder `path` could not be made, in words (never a Foundation error's dump): for
    /// folders an option names (`--html DIR`), as for bucket folders.
    public static func whyFolderNotMade(_ path: String, _ error: any Error) -> String { OpenFolders.whyNot(path, error) }
}

/// Bucket folders opened once per process and shared by the worker threads.
final class OpenFolders: @unchecked Sendable {
    private let lock = NSLock()
    private var open: PathDictionary<ConfinedFolder> = [:]
    /// The manifest's folder: nothing is made while it is gone (nil: no such check).
    private let project: String?

    init(project: String? = nil) { self.project = project }

    /// Makes the folder `path` and any missing folder above it, unless the project's folder is
    /// gone (moved or deleted while building): then nothing is made.
    /// Returns the folders it made, outermost first.
    @discardableResult
    func make(_ path: String) throws -> [String] {
        var isFolder: ObjCBool = false
        if let project, !(FileManager.default.fileExists(atPath: project, isDirectory: &isFolder) && isFolder.boolValue) {
            // Nothing is made at all when the folder is already there: only a missing one is refused.
            if FileManager.default.fileExists(atPath: path) { return [] }
            throw DiskError("cannot make the folder \(path): the project folder \(project) is gone (moved or deleted during the build); nothing is written at its old path: run derive build again where the project is now")
        }
        // The folders not there yet (nothing at their names), so those made can be recorded.
        var missing: [String] = []
        var folder = path
        var info = Glibc.stat()
        while folder.count > 1, lstat(folder, &info) != 0, errno == ENOENT {
            missing.insert(folder, at: 0)
            folder = (folder as NSString).deletingLastPathComponent
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw DiskError("cannot make the folder \(path): \(Self.whyNot(path, error))")
        }
        return missing
    }

    /// Drops the folder opened at `path` (removed): a folder made there later is opened anew.
    func forget(_ path: String) {
        _ = lock.withLock { open.removeValue(forKey: path) }
    }

    /// Why `path` could not be made, in words (never a Foundation error's dump): the first name on
    /// it that is there but no folder (a symbolic link to nothing, a loop of links, a file), or
    /// the system's reason.
    static func whyNot(_ path: String, _ error: any Error) -> String {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            var info = Glibc.stat(), target = Glibc.stat()
            guard lstat(prefix, &info) == 0 else { break }
            let failed = stat(prefix, &target) != 0 ? errno : 0
            let destination = (info.st_mode & S_IFMT) == S_IFLNK ? ((try? FileManager.default.destinationOfSymbolicLink(atPath: prefix)) ?? "?") : ""
            if failed == ELOOP { return "\(prefix) is a symbolic link to \(destination), which leads back to itself (a loop of links): remove the link" }
            if failed != 0 { return "\(prefix) is a symbolic link to nothing (\(destination), which does not exist): make the folder it leads to, or remove the link" }
            if (target.st_mode & S_IFMT) != S_IFDIR {
                return "\(prefix) is \(destination.isEmpty ? "a file" : "a symbolic link to \(destination), a file"), not a folder: move it away"
            }
        }
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        if let underlying, underlying.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(underlying.code))) }
        return whyNoNewFolder(path) ?? (error as NSError).localizedDescription
    }

    /// Why the deepest folder of `path` that is there takes no new folder, when Foundation gave
    /// no errno (mkdir in /proc fails with ENOENT, which it said as "The file doesn't exist":
    /// attack 41b's L3); nil when nothing there explains it.
    static func whyNoNewFolder(_ path: String) -> String? {
        var parent = path, child = ""
        var info = Glibc.stat()
        while lstat(parent, &info) != 0 {
            let up = (parent as NSString).deletingLastPathComponent
            let next = up.isEmpty ? "." : up
            guard next != parent else { return nil }
            child = (parent as NSString).lastPathComponent
            parent = next
        }
        guard !child.isEmpty, stat(parent, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        if access(parent, W_OK | X_OK) != 0 {
            return "this user may not make folders in \(parent) (\(String(cString: strerror(errno)))); choose another place, or change its permissions"
        }
        var volume = statvfs()
        if statvfs(parent, &volume) == 0, (volume.f_flag & UInt(ST_RDONLY)) != 0 {
            return "\(parent) is on a read-only file system; choose a folder on a writable disk"
        }
        return "\(parent) takes no new folder \(child): its file system refuses one (a virtual file system, such as /proc or /sys); choose a folder on a writable disk"
    }

    func folder(_ path: String, create: Bool) throws -> ConfinedFolder {
        if let known = lock.withLock({ open[path] }) { return known }
        if create { try make(path) }
        let folder = try ConfinedFolder(path: path)
        lock.withLock { open[path] = folder }
        return folder
    }

    /// A recorded real folder, opened from `/` one component at a time without following links.
    func recordedFolder(_ path: String) throws -> ConfinedFolder {
        let name = "\u{0}recorded:" + path
        if let known = lock.withLock({ open[name] }) { return known }
        let folder = try ConfinedFolder(realPath: path)
        lock.withLock { open[name] = folder }
        return folder
    }
}

/// An in-memory disk for tests: files, a clock, and counters of what was read.
public final class MemoryDisk: Disk, @unchecked Sendable {
    private let lock = NSLock()
    private var files: PathDictionary<(data: Data, stat: FileStat)> = [:]
    private var clock: Int64 = 1_700_000_000_000_000_000
    private var nextInode: UInt64 = 1
    public private(set) var reads: [String] = []
    /// Paths whose first bytes only were read (`head`).
    public private(set) var heads: [String] = []
    /// Runs at the start of every `writeAtomically` (a test's way into the instant between the
    /// builder's last check and its write).
    public var beforeWrite: ((String) -> Void)? {
        get { lock.withLock { hook } }
        set { lock.withLock { hook = newValue } }
    }
    private var hook: ((String) -> Void)?

    public init() {}

    public func put(_ path: String, _ data: Data) {
        lock.withLock {
            clock += 10_000_000_000
            let inode = files[path]?.stat.inode ?? { nextInode += 1; return nextInode }()
            files[path] = (data, FileStat(size: Int64(data.count), mtime: clock, inode: inode))
        }
    }

    /// New bytes of the same size with the stat unchanged: an edit in the clock tick of the last
    /// write, which no stat can tell apart.
    public func replaceKeepingStat(_ path: String, _ data: Data) {
        lock.withLock {
            guard let old = files[path], old.stat.size == Int64(data.count) else { return }
            files[path] = (data, old.stat)
        }
    }

    /// Changes the modification time only, like `touch`.
    public func touch(_ path: String) {
        lock.withLock {
            clock += 10_000_000_000
            files[path]?.stat.mtime = clock
            files[path]?.stat.ctime = clock
        }
    }

    /// Moves the clock on, so files written before count as settled.
    public func advance(seconds: Int64) { lock.withLock { clock += seconds * 1_000_000_000 } }

    public func exists(_ path: String) -> Bool { lock.withLock { files[path] != nil } }
    public func contents(_ path: String) -> Data? { lock.withLock { files[path]?.data } }
    public func resetReads() { lock.withLock { reads.removeAll() } }

    public func stat(_ path: String) -> FileStat? { lock.withLock { files[path]?.stat } }

    public func read(_ path: String) throws -> Data {
        try lock.withLock {
            reads.append(path)
            guard let file = files[path] else { throw DiskError("cannot read \(path)") }
            return file.data
        }
    }

    /// The first bytes only: counted in `heads`, not in `reads` (a whole read).
    public func head(_ path: String, bytes: Int) throws -> Data {
        try lock.withLock {
            heads.append(path)
            guard let file = files[path] else { throw DiskError("cannot read \(path)") }
            return file.data.prefix(bytes)
        }
    }

    @discardableResult
    public func writeAtomically(_ data: Data, to path: String, replacing: Bool) throws -> [String] {
        beforeWrite?(path)
        if !replacing, exists(path) { throw DiskError("cannot write \(path): a file appeared there while building", appeared: true) }
        put(path, data); return []
    }

    @discardableResult
    public func writeAtomically(_ data: Data, to path: String, replacingOnly digest: String) throws -> [String] {
        beforeWrite?(path)
        try lock.withLock {
            if let file = files[path], ContentDigests.digest(file.data) != digest {
                throw DiskError("cannot write \(path): a file appeared there while building", appeared: true)
            }
        }
        put(path, data); return []
    }

    public func remove(_ path: String, ifDigest digest: String) throws -> Bool {
        lock.withLock {
            guard let file = files[path] else { return true }
            guard ContentDigests.digest(file.data) == digest else { return false }
            files.removeValue(forKey: path)
            return true
        }
    }

    /// The in-memory disk has no device or inode: the digest alone decides.
    public func remove(_ path: String, ifDigest digest: String, identity: FileIdentity?) throws -> Bool {
        try remove(path, ifDigest: digest)
    }

    public func remove(_ path: String) throws { _ = lock.withLock { files.removeValue(forKey: path) } }

    public func removeEmptyFolder(_ path: String) -> Bool { false }

    public func removeStaleTemporaries(in folder: String, named names: PathSet, listOnly: Bool, digests: (String) -> Set<String>) -> [String] { [] }

    public func now() -> Int64 { lock.withLock { clock } }

    /// Folders listed as `kind` (a link to a folder, a folder that cannot be read) instead of
    /// with their files, as `DiskObjectLister` lists them.
    private var hidden: [(folder: String, kind: String)] = []

    /// Lists the folder at `path` as `kind` from now on: its files are not keys.
    public func hide(_ path: String, as kind: String) { lock.withLock { hidden.append((path, kind)) } }

    public func entries(inFolder folder: String, skipping: [String]) -> (keys: [String], others: [(key: String, kind: String)])? {
        guard let keys = keys(inFolder: folder, skipping: skipping) else { return nil }
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        let shown = lock.withLock { hidden.filter { $0.folder.hasPrefix(prefix) } }
            .map { (key: String($0.folder.dropFirst(prefix.count)), kind: $0.kind) }
        return (keys.filter { key in !shown.contains { key.hasPrefix($0.key + "/") } }, shown)
    }

    public func keys(inFolder folder: String, skipping: [String]) -> [String]? {
        lock.withLock {
            let prefix = folder.hasSuffix("/") ? folder : folder + "/"
            let keys = files.keys.filter { path in path.hasPrefix(prefix) && !skipping.contains { path.hasPrefix($0 + "/") } }
                .map { String($0.dropFirst(prefix.count)) }
                .filter { $0.split(separator: "/").allSatisfy(sourceListingKeeps) }
            return keys.isEmpty && !files.keys.contains(where: { $0.hasPrefix(prefix) }) ? nil : keys.sortedByBytes()
        }
    }
}
