import Confinement
import Crypto
import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 and MD5 of object files, remembered by (size, mtime, ctime, inode) so a cached
/// derivative or a plain GET does not read the file again. Entries hashed within a second of the
/// file's mtime are not trusted next time (git's rule for racy timestamps). Files are hashed in
/// chunks from an open descriptor, never loaded whole.
final class DigestCache: Sendable {
    struct Digests: Sendable { var sha256: String; var md5: [UInt8] }
    private struct Entry { var status: FileStatus; var digests: Digests; var recorded: Int64 }
    private let state = NIOLockedValueBox<(entries: [[UInt8]: Entry], reads: Int)>(([:], 0))
    /// Bounds the memory of the table: it is emptied when it grows past this many files.
    private let maxEntries = 100_000

    /// How many times a file was read to hash it.
    var hashes: Int { state.withLockedValue { $0.reads } }

    /// The name of `key` below `folder` in the table: bytes, never a Swift `String` (whose `==`
    /// is canonical equivalence, while the file system tells `caf\u{E9}` from `cafe\u{301}`).
    static func identity(_ folder: String, _ key: ObjectKey) -> [UInt8] { Array(folder.utf8) + [0] + key.bytes }

    /// The digests of the open regular file `fd`, known by `identity` (its bucket folder and key).
    func digests(of fd: Int32, identity: [UInt8]) throws -> Digests {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw OpenFile.FileReadError(code: errno) }
        let status = FileStatus(size: Int64(info.st_size),
                                mtime: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                                ctime: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec),
                                inode: UInt64(info.st_ino), device: UInt64(info.st_dev))
        if let known = state.withLockedValue({ $0.entries[identity] }), known.status == status,
           status.mtime < known.recorded - 1_000_000_000 {
            return known.digests
        }
        var sha = SHA256(), md5 = Insecure.MD5()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var position: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, position) }
            if count < 0 { if errno == EINTR { continue }; throw OpenFile.FileReadError(code: errno) }
            if count == 0 { break }
            buffer.withUnsafeBytes { raw in
                let piece = UnsafeRawBufferPointer(rebasing: raw[0..<count])
                sha.update(bufferPointer: piece)
                md5.update(bufferPointer: piece)
            }
            position += off_t(count)
        }
        let digests = Digests(sha256: ObjectService.hex(sha.finalize()), md5: Array(md5.finalize()))
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        state.withLockedValue {
            if $0.entries.count >= maxEntries { $0.entries.removeAll(keepingCapacity: true) }
            $0.entries[identity] = Entry(status: status, digests: digests, recorded: now)
            $0.reads += 1
        }
        return digests
    }
}
