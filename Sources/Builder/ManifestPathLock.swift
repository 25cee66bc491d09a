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
/// project. When no such folder can be used the other locks still apply. The files stay (one
/// small file per manifest): deleting a lock file while held would let a second command in.
final class ManifestPathLock {
    private let descriptor: Int32?

    init(manifest: String) throws {
        guard let folder = Self.folder() else { descriptor = nil; return }
        let real = BuildSession.ownerName(manifest)
        let path = folder + "/" + String(ContentDigests.digest(real).prefix(32)) + ".lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { descriptor = nil; return }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var text = [UInt8](repeating: 0, count: 512)
            let count = pread(fd, &text, text.count, 0)
            close(fd)
            let holder = String(decoding: text.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw BuildLock.Held(holder: holder.isEmpty ? "a derive command building \(real)" : holder, path: real)
        }
        let line = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName), building \(real)\n"
        _ = ftruncate(fd, 0)
        _ = line.withCString { pwrite(fd, $0, strlen($0), 0) }
        descriptor = fd
    }

    deinit { if let descriptor { close(descriptor) } }

    /// The lock folder, made if missing; nil when it is not a folder this user owns alone.
    static func folder() -> String? {
        let environment = ProcessInfo.processInfo.environment
        let folder = environment["XDG_RUNTIME_DIR"].flatMap { $0.hasPrefix("/") ? $0 + "/derive-locks" : nil }
            ?? "/tmp/derive-locks-\(getuid())"
        _ = mkdir(folder, 0o700)
        var info = stat()
        guard lstat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid(),
              (info.st_mode & 0o077) == 0 else { return nil }
        return folder
    }
}
