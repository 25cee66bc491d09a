import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file or folder as the file system knows it (device and inode), so two path strings that
/// reach one folder (`out` and a symbolic link `outlink` to it, `m2/` and `m2link/`) are known to
/// be one. Path strings never decide whether a bucket moved or whether a file to delete is
/// also an output that is wanted.
public struct FileIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
    /// When the file was made (`FileBirth`), 0 when not known: what a state records of an output
    /// file beside its device and inode, which the file system hands back to a file re-created at
    /// that path (attack 18's S3). Not part of equality: two paths are one file by device and inode.
    public var birth: Int64 = 0

    /// An identity no file has: what a record whose seal does not verify proves (nothing).
    public static let unproven = FileIdentity(device: .max, inode: .max)

    public static func == (a: FileIdentity, b: FileIdentity) -> Bool { a.device == b.device && a.inode == b.inode }
    public func hash(into hasher: inout Hasher) { hasher.combine(device); hasher.combine(inode) }

    /// Whether the regular file at `path` is this very file: its device and inode, and (when
    /// recorded) when it was made.
    public func isFile(at path: String) -> Bool {
        guard self != .unproven, let now = FileIdentity.ofRegularFile(path), now == self else { return false }
        return birth == 0 || FileBirth.of(path) == birth
    }

    /// Whether `other` names the same file: device and inode, and the birth where both know it
    /// (an inode number freed and given to a new file is another file).
    public func isSameFile(as other: FileIdentity) -> Bool {
        self == other && (birth == other.birth || birth == 0 || other.birth == 0)
    }

    /// The identity of what `path` reaches, links followed; nil when nothing is there (or for
    /// the in-memory disk's paths, which the real file system does not know).
    public static func of(_ path: String) -> FileIdentity? {
        guard let info = statFollowingLinks(path) else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The identity of the folder at `path` itself, a link not followed; nil when no folder is
    /// there (nothing, a file, a symbolic link). What a state records of a folder Derive used.
    public static func ofFolder(_ path: String) -> FileIdentity? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The identity (with its birth) of the regular file at `path` (never through a link there)
    /// when its bytes, read from the open file, hash to `digest`; nil otherwise.
    public static func ofRegularFile(_ path: String, holding digest: String) -> FileIdentity? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, RealDisk.digest(of: fd) == digest else { return nil }
        var identity = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        identity.birth = FileBirth.of(descriptor: fd) ?? 0
        return identity
    }

    /// The identity of the regular file at `path` itself, a link not followed; nil when no
    /// regular file is there. What a state records of a file Derive wrote.
    public static func ofRegularFile(_ path: String) -> FileIdentity? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Whether anything (a file, a folder, a link) is at `path`.
    public static func anythingAt(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Whether `path` itself is a symbolic link.
    public static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }

    /// As stored in the state (SQLite integers are signed).
    public var stored: (device: Int64, inode: Int64) { (Int64(bitPattern: device), Int64(bitPattern: inode)) }
    public init(stored device: Int64, _ inode: Int64, birth: Int64 = 0) {
        self.device = UInt64(bitPattern: device); self.inode = UInt64(bitPattern: inode); self.birth = birth
    }
    public init(device: UInt64, inode: UInt64) { self.device = device; self.inode = inode }

    /// Whether two paths name one file: the same path, or the same name in one folder (by device
    /// and inode), so a file not yet (or no longer) there still compares.
    public static func sameFile(_ a: String, _ b: String) -> Bool {
        if PathKey.same(a, b) { return true }
        let x = a as NSString, y = b as NSString
        return PathKey.same(x.lastPathComponent, y.lastPathComponent) && sameFolder(x.deletingLastPathComponent, y.deletingLastPathComponent)
    }

    /// Whether two folders are one: the same path, or the same device and inode.
    public static func sameFolder(_ a: String, _ b: String) -> Bool {
        if PathKey.same(a, b) { return true }
        guard let x = of(a), let y = of(b) else { return false }
        return x == y
    }
}

/// The identities of the files a build wants to keep (the plan's outputs), taken once and only
/// when something is about to be deleted: a deletion never removes a file that is also a
/// wanted output reached through another path.
public final class WantedIdentities: @unchecked Sendable {
    private let files: PathSet
    private let lock = NSLock()
    /// Each file's device and inode, and the first of the files (in path order) that has it.
    private var identities: [FileIdentity: String]?

    public init(_ files: PathSet) { self.files = files }

    /// Whether `path` is one of the files by path alone (no `stat`).
    public func containsPath(_ path: String) -> Bool { files.contains(path) }

    /// Whether `path` is, by path or by device and inode, one of the wanted files.
    public func contains(_ path: String) -> Bool {
        files.contains(path) || sameFile(as: path) != nil
    }

    /// Whether `path` is one of the files by device and inode as they are now (each `stat`ed
    /// afresh, not the identities first seen): for a file this build has just written at a
    /// wanted path reached another way (a bucket through a symbolic link: attack 41a's B11).
    /// Costs a `stat` per wanted file: only where Derive would otherwise warn.
    public func containsAsNow(_ path: String) -> Bool {
        guard let identity = FileIdentity.of(path) else { return false }
        return files.contains { FileIdentity.of($0) == identity }
    }

    /// The file of these that `path` is by device and inode (a hard link to it, or a link
    /// leading to it); nil when none is or `path` is one of them by path.
    public func sameFile(as path: String) -> String? {
        guard !files.contains(path), let identity = FileIdentity.of(path) else { return nil }
        let known = lock.withLock {
            if identities == nil {
                var map: [FileIdentity: String] = [:]
                for file in files.sorted(by: PathKey.ordered) { if let identity = FileIdentity.of(file), map[identity] == nil { map[identity] = file } }
                identities = map
            }
            return identities!
        }
        return known[identity]
    }
}

/// `stat(2)` outside any type that has its own `stat`.
private func statFollowingLinks(_ path: String) -> stat? {
    var info = stat()
    return stat(path, &info) == 0 ? info : nil
}

/// When a file was made, as one number (0: not known): its birth time in nanoseconds (`statx`'s
/// STATX_BTIME: ext4, xfs, btrfs, tmpfs), else minus one less its status-change time, which
/// re-creating a file changes and Derive's own later steps do not (it records it after the
/// rename that installs the file). A file re-created at a path with the same bytes gets the same
/// inode number back on ext4; it is never born at the same instant (attack 18's S3).
public enum FileBirth {
    /// Of the file at `path` itself (a link not followed); nil when nothing is there.
    public static func of(_ path: String) -> Int64? {
        query(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW)
    }

    /// Of an open file.
    public static func of(descriptor: Int32) -> Int64? {
        query(descriptor, "", 0x1000)   // AT_EMPTY_PATH
    }

    private typealias Statx = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UInt32, UnsafeMutableRawPointer) -> Int32
    /// glibc's `statx` (2.28+), looked up once: Swift's Glibc module does not declare it.
    private static let statx: Statx? = dlsym(dlopen(nil, RTLD_NOW), "statx").map { unsafeBitCast($0, to: Statx.self) }

    private static func query(_ folder: Int32, _ path: String, _ flags: Int32) -> Int64? {
        // struct statx (the kernel's layout): stx_mask at 0, stx_btime at 80, stx_ctime at 96
        // (each a 64-bit seconds then 32-bit nanoseconds); 256 bytes in all.
        let STATX_CTIME: UInt32 = 0x80, STATX_BTIME: UInt32 = 0x800
        if let statx {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 8)
            defer { buffer.deallocate() }
            buffer.initializeMemory(as: UInt8.self, repeating: 0, count: 256)
            guard statx(folder, path, flags, STATX_BTIME | STATX_CTIME, buffer) == 0 else { return nil }
            let mask = buffer.load(fromByteOffset: 0, as: UInt32.self)
            let seconds = buffer.load(fromByteOffset: 80, as: Int64.self), nanoseconds = buffer.load(fromByteOffset: 88, as: UInt32.self)
            if mask & STATX_BTIME != 0, seconds != 0 || nanoseconds != 0 { return seconds &* 1_000_000_000 &+ Int64(nanoseconds) }
            let changed = buffer.load(fromByteOffset: 96, as: Int64.self) &* 1_000_000_000 &+ Int64(buffer.load(fromByteOffset: 104, as: UInt32.self))
            return -1 &- changed
        }
        var info = stat()
        let result = path.isEmpty ? fstat(folder, &info) : lstat(path, &info)
        guard result == 0 else { return nil }
        return -1 &- (Int64(info.st_ctim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_ctim.tv_nsec))
    }
}
