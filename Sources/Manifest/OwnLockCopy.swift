import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A copy of a manifest's own lock lying elsewhere (`cp derive.lock _site/` to publish it, a deploy
/// or sync step copying the project): attack 50c's M1. Its first line names the manifest as the
/// lock's folder saw it (`"manifest":"derive.yaml"`), so read where it lies it named a manifest
/// that never existed there (`_site/derive.yaml`), and every command refused the project for a
/// gone neighbour's lock in its public bucket. Such a file is this manifest's own record copied,
/// not another project's: its first line names the same manifest as this manifest's lock's does,
/// and each of its other lines is one of that lock's (equal, or a subset: nothing of another's).
/// A copy of an older lock (a line the lock no longer has) is not told from another project's.
public enum OwnLockCopy {
    /// Bytes read at most of either file (a lock of 100 000 outputs is about 40 MiB).
    public static let maxBytes = 64 << 20

    /// Whether the file at `path` is a copy of the lock at `ownLock` (see the type's comment):
    /// never the lock itself (the same file), and only regular files, no link followed.
    public static func isCopy(_ path: String, of ownLock: String) -> Bool {
        guard let own = read(ownLock, limit: maxBytes), let copy = read(path, limit: own.data.count),
              own.identity != copy.identity else { return false }
        return isCopy(copy.data, ofLock: own.data)
    }

    /// Whether `copy` holds a first line naming the manifest `lock`'s first line names, and no
    /// other line `lock` does not hold.
    public static func isCopy(_ copy: Data, ofLock lock: Data) -> Bool {
        guard copy.starts(with: ProjectMarkers.lockMarker), let named = LockOwnerName.owner(copy), !named.isEmpty,
              LockOwnerName.owner(lock) == named else { return false }
        let own = Set(lock.split(separator: UInt8(ascii: "\n")).dropFirst())
        return copy.split(separator: UInt8(ascii: "\n")).dropFirst().allSatisfy { own.contains($0) }
    }

    /// The bytes of the regular file at `path` (opened without following a link or blocking) and
    /// its device and inode, nil when it is larger than `limit` or cannot be read.
    static func read(_ path: String, limit: Int) -> (data: Data, identity: [UInt64])? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= limit else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            guard count > 0 else { break }
            done += count
        }
        guard done == bytes.count else { return nil }
        return (Data(bytes), [UInt64(info.st_dev), UInt64(info.st_ino)])
    }
}
