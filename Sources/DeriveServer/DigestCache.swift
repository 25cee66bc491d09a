import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 of object files, remembered by (size, mtime, inode) so a cached derivative is served
/// without reading its source again. Entries hashed within a second of the file's mtime are not
/// trusted next time (git's rule for racy timestamps).
final class DigestCache: @unchecked Sendable {
    private struct Entry { var size: Int64; var mtime: Int64; var inode: UInt64; var digest: String; var recorded: Int64 }
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var reads = 0

    /// How many times a file was read to hash it.
    var hashes: Int { lock.withLock { reads } }

    /// The digest of `path`, or nil when it is not a readable regular file.
    func digest(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let size = Int64(info.st_size), inode = UInt64(info.st_ino)
        let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        if let known = lock.withLock({ entries[path] }), known.size == size, known.mtime == mtime, known.inode == inode,
           mtime < known.recorded - 1_000_000_000 {
            return known.digest
        }
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let digest = ObjectService.sha256(data)
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        lock.withLock {
            entries[path] = Entry(size: size, mtime: mtime, inode: inode, digest: digest, recorded: now)
            reads += 1
        }
        return digest
    }
}
