import Foundation
import Planner
#if canImport(Glibc)
import Glibc
#endif

/// `flock(2)` on a file named by the digest of the manifest's real path, in a folder outside the
/// project: `$XDG_RUNTIME_DIR/derive-locks` when that is set, else `/tmp/derive-locks-<uid>`
/// (made 0700, used only when this user owns it and it is not a link). Deleting the state folder
/// and replacing the manifest by rename (an editor's save) together defeat the other two locks;
/// neither touches this one, which is keyed by where the manifest is, not by any file of the
/// project. When no such folder can be used the other locks still apply.
///
/// The file is unlinked on release, while still locked, so the folder holds only the locks of
/// commands running now (and of commands killed since, until that manifest is built again). An
/// acquirer checks after locking that the file it locked is still the one at the path: one it
/// opened just before a release unlinked it is a dead file, and it opens the path again. So
/// whoever holds a lock holds the file the path names, and two commands never both hold it.
public final class ManifestPathLock {
    private let descriptor: Int32?
    private let path: String

    /// `folder`: where the lock files live (tests give a private one); nil: no lock is taken.
    public init(manifest: String, folder: String? = ManifestPathLock.folder()) throws {
        let real = BuildSession.ownerName(manifest)
        guard let folder else { descriptor = nil; path = ""; return }
        let path = folder + "/" + Self.fileName(real: real)
        self.path = path
        var attempts = 0
        while true {
            attempts += 1
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { descriptor = nil; return }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                var text = [UInt8](repeating: 0, count: 512)
                let count = pread(fd, &text, text.count, 0)
                close(fd)
                let holder = String(decoding: text.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                throw BuildLock.Held(holder: holder.isEmpty ? "a derive command building \(real)" : holder, path: real)
            }
            if Self.isAtPath(fd, path) {
                let line = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName), building \(real)\n"
                _ = ftruncate(fd, 0)
                _ = line.withCString { pwrite(fd, $0, strlen($0), 0) }
                descriptor = fd
                return
            }
            // Unlinked by its releasing holder after we opened it: that file is no one's lock.
            close(fd)
            if attempts >= 100 { throw BuildLock.Held(holder: "processes that keep taking and releasing the lock of \(real)", path: real) }
        }
    }

    /// Unlinks the file while still holding it (only if the path still names it: a lock file is
    /// unlinked only by its holder), then releases.
    deinit {
        guard let descriptor else { return }
        if Self.isAtPath(descriptor, path) { _ = unlink(path) }
        close(descriptor)
    }

    /// Whether the open file is the one the path names now (same device and inode, not a link).
    static func isAtPath(_ fd: Int32, _ path: String) -> Bool {
        var opened = stat(), named = stat()
        return fstat(fd, &opened) == 0 && lstat(path, &named) == 0 && opened.st_ino == named.st_ino && opened.st_dev == named.st_dev
    }

    /// The lock folder, made if missing; nil when it is not a folder this user owns alone.
    public static func folder() -> String? {
        _ = mkdir(folderPath, 0o700)
        return usableFolder()
    }

    /// Where the lock of `manifest` is while a command holds it, for `plan` and `check` to look
    /// at (`BuildLock.holder`): nothing is made.
    static func lockPath(manifest: String) -> String? {
        usableFolder().map { $0 + "/" + fileName(real: BuildSession.ownerName(manifest)) }
    }

    private static var folderPath: String {
        ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"].flatMap { $0.hasPrefix("/") ? $0 + "/derive-locks" : nil }
            ?? "/tmp/derive-locks-\(getuid())"
    }

    /// The lock folder when it is a folder this user owns alone.
    private static func usableFolder() -> String? {
        let folder = folderPath
        var info = stat()
        guard lstat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid(),
              (info.st_mode & 0o077) == 0 else { return nil }
        return folder
    }

    private static func fileName(real: String) -> String { String(ContentDigests.digest(real).prefix(32)) + ".lock" }
}
