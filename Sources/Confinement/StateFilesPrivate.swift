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
}
