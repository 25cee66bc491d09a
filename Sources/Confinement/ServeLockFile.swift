import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `serve.lock` in a state folder, held (`flock`) by a running `derive serve`, and by `derive
/// clean` while it removes serve's files, so clean never removes a running server's uploads or
/// cache and no server starts in the middle of a clean.
///
/// The file is opened only when it is Derive's: a regular file with one link (not a hard link
/// to a user's file, attack 12, finding 1) holding nothing or one holder line `pid N` (what
/// Derive writes there). Anything else is refused and left as it is. The holder line is only
/// ever shown once it has that shape, so no byte of a foreign file reaches a terminal.
///
/// The state folder is held a second way too: a lock on a name is gone once someone removes
/// `serve.lock` by hand, and a second serve or a clean would then get in beside the running
/// serve (attack 13, N2). An abstract Unix socket named by the folder's device and inode is
/// bound while the lock is held: no file name can remove it, and it goes with the process. (Not
/// `flock` on the folder's descriptor: builds hold that one, and serve and build run together.)
public final class ServeLockFile: Sendable {
    public let descriptor: Int32
    /// The socket bound for the state folder.
    let folderSocket: Int32

    /// Binds the abstract socket of the folder whose identity is given; the descriptor, or -1 with errno set.
    static func bindFolderSocket(device: UInt64, inode: UInt64) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let name = Array("derive-serve-state-\(device)-\(inode)".utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw[0] = 0   // abstract: no file
            for (index, byte) in name.enumerated() { raw[index + 1] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.count)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else {
            let saved = errno
            close(fd)
            errno = saved
            return -1
        }
        return fd
    }
    public let path: String

    public enum Failure: Error, CustomStringConvertible {
        /// Another process holds the lock; `holder` is its line (`pid N`, or a note that it has none yet).
        case held(holder: String, path: String)
        /// What is at the path is not Derive's lock file (why, in words).
        case notDerives(path: String, reason: String)

        public var description: String {
            switch self {
            case .held(let holder, let path): return "\(path) is held by \(holder)"
            case .notDerives(let path, let reason): return "\(path) \(reason); Derive opens, writes or removes only its own serve.lock. Move that file away."
            }
        }
    }

    /// The note `derive clean` writes after its pid (serve writes none).
    public static let cleanNote = " (derive clean)"

    /// The holder line Derive writes: `pid N`, then optionally `cleanNote`.
    public static func isHolderLine(_ bytes: [UInt8]) -> Bool {
        var text = bytes
        if text.last == 10 { text.removeLast() }
        let prefix = Array("pid ".utf8), suffix = Array(cleanNote.utf8)
        guard text.starts(with: prefix) else { return false }
        var digits = Array(text.dropFirst(prefix.count))
        if digits.count > suffix.count, Array(digits.suffix(suffix.count)) == suffix { digits.removeLast(suffix.count) }
        return (1...10).contains(digits.count) && digits.allSatisfy { (48...57).contains($0) }
    }

    /// The file's first bytes (at most 64: Derive's line is shorter), nil when it cannot be read.
    static func contents(_ fd: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = pread(fd, &buffer, buffer.count, 0)
        return count < 0 ? nil : Array(buffer.prefix(count))
    }

    /// Opens (creating it when absent) and locks `serve.lock` in `folder`, then writes
    /// `pid <this process><note>` in it. `note`: "" for serve, `cleanNote` for clean.
    public init(folder: String, note: String = "") throws(Failure) {
        path = folder + "/" + StateFiles.serveLock
        var attempts = 0
        while true {
            attempts += 1
            var fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0, errno == ENOENT {
                fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                if fd < 0, errno == EEXIST, attempts < 5 { continue }   // made by another process since
            }
            guard fd >= 0 else {
                let reason = errno == ELOOP ? "is a symbolic link" : "cannot be opened (\(String(cString: strerror(errno))))"
                throw .notDerives(path: path, reason: reason)
            }
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                throw .notDerives(path: path, reason: "is not a regular file")
            }
            guard info.st_nlink == 1 else {
                close(fd)
                throw .notDerives(path: path, reason: "has another name too (a hard link, \(info.st_nlink) names), so it is not the file Derive made")
            }
            guard let text = Self.contents(fd), text.isEmpty || Self.isHolderLine(text) else {
                close(fd)
                throw .notDerives(path: path, reason: "does not hold what Derive writes there (one line: pid N)")
            }
            var result: Int32
            repeat { result = flock(fd, LOCK_EX | LOCK_NB) } while result != 0 && errno == EINTR
            guard result == 0 else {
                let now = Self.contents(fd) ?? []
                close(fd)
                let holder = Self.isHolderLine(now) ? String(decoding: now, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                                                    : "a process that has not written its pid yet"
                throw .held(holder: holder, path: path)
            }
            // The file locked must still be the one at the path (clean unlinks it when done).
            var named = stat()
            if fstat(fd, &info) == 0, lstat(path, &named) == 0, info.st_ino == named.st_ino, info.st_dev == named.st_dev, info.st_nlink == 1 {
                var folderInfo = stat()
                let held = stat(folder, &folderInfo) == 0 ? Self.bindFolderSocket(device: UInt64(folderInfo.st_dev), inode: UInt64(folderInfo.st_ino)) : -1
                guard held >= 0 else {
                    let busy = errno == EADDRINUSE, reason = String(cString: strerror(errno))
                    close(fd)
                    if busy { throw .held(holder: "a process whose serve.lock was removed while it ran", path: path) }
                    throw .notDerives(path: folder, reason: "cannot be locked (\(reason))")
                }
                descriptor = fd
                folderSocket = held
                break
            }
            close(fd)
            if attempts >= 5 { throw .held(holder: "a process that keeps replacing it", path: path) }
        }
        let line = Array("pid \(getpid())\(note)\n".utf8)
        _ = line.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        _ = ftruncate(descriptor, off_t(line.count))
    }

    /// Unlinks the file (only while it is still the one locked); the lock goes with this object.
    public func remove() {
        var opened = stat(), named = stat()
        if fstat(descriptor, &opened) == 0, lstat(path, &named) == 0, opened.st_ino == named.st_ino, opened.st_dev == named.st_dev {
            _ = unlink(path)
        }
    }

    deinit {
        close(descriptor)
        close(folderSocket)
    }
}
