import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The state folder and its database are the user's alone (attack 18's S1, in depth: the
/// records are sealed, but nothing in them is anyone else's business either).
extension StateFiles {
    /// Creates the folder at `path` and every missing folder above it, each 0700 (a `.derive/`
    /// made now is private). Folders already there are left as they are (`state: data` may name
    /// the user's own). Throws when one cannot be made.
    public static func createPrivateFolder(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 { return }
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0, errno != EEXIST {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: prefix, NSLocalizedDescriptionKey:
                    "cannot create the folder \(prefix): \(String(cString: strerror(errno)))"])
            }
        }
    }

    /// Makes the database file at `path` private: created empty with mode 0600 when absent (SQLite
    /// then starts it, and gives its journals the same mode); a file of this user's with more
    /// permissions (from before) made 0600. A link or another user's file is left alone.
    public static func makePrivate(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if descriptor >= 0 { close(descriptor) }
            return
        }
        guard (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid(), info.st_mode & 0o077 != 0 else { return }
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fchmod(descriptor, info.st_mode & 0o700)
        close(descriptor)
    }

    /// Serve's own folders and files directly in the state folder, made owner-only (0700/0600)
    /// when an earlier Derive left them readable by others (attack 23's F3: serve used to create
    /// them with the umask's modes). Only these names, which are Derive's, are touched, each
    /// opened without following a link and changed only when it is this user's (a file only
    /// when it has no other name); the state folder itself may be the user's (`state:`) and is
    /// left as it is. The entries inside `serve-cache/` and `serve-uploads/` stay as they are:
    /// a private folder above them is enough.
    public static func makeServeEntriesPrivate(in folder: String) {
        let state = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard state >= 0 else { return }
        defer { close(state) }
        for name in [serveCache, serveUploads] {
            let fd = openat(state, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var info = stat()
            if fstat(fd, &info) == 0, info.st_uid == geteuid(), info.st_mode & 0o077 != 0 { _ = fchmod(fd, info.st_mode & 0o700) }
            close(fd)
        }
        for name in [serveLock, serveAppendable, objectMetadata] + objectMetadataJournals {
            let fd = openat(state, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var info = stat()
            if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid(), info.st_nlink == 1, info.st_mode & 0o077 != 0 {
                _ = fchmod(fd, info.st_mode & 0o700)
            }
            close(fd)
        }
    }
}
