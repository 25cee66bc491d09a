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
    public init(stored device: Int64, _ inode: Int64) { self.device = UInt64(bitPattern: device); self.inode = UInt64(bitPattern: inode) }
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
    private var identities: Set<FileIdentity>?

    public init(_ files: PathSet) { self.files = files }

    /// Whether `path` is, by path or by device and inode, one of the wanted files.
    public func contains(_ path: String) -> Bool {
        if files.contains(path) { return true }
        guard let identity = FileIdentity.of(path) else { return false }
        let known = lock.withLock {
            if identities == nil { identities = Set(files.compactMap(FileIdentity.of)) }
            return identities!
        }
        return known.contains(identity)
    }
}

/// `stat(2)` outside any type that has its own `stat`.
private func statFollowingLinks(_ path: String) -> stat? {
    var info = stat()
    return stat(path, &info) == 0 ? info : nil
}
