import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `flock(2)` on the state folder's own descriptor, taken before `build.lock`: the lock file
/// can be deleted while held (and a second command would then lock a new file), the folder
/// of a running build cannot be replaced without the holder's descriptor going stale, which
/// is checked (the folder locked must still be the one at the path).
final class FolderLock {
    private let descriptor: Int32

    init(folder: String, lockFile: String) throws {
        var attempts = 0
        while true {
            attempts += 1
            let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else {
                throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot open \(folder): \(String(cString: strerror(errno)))"])
            }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                close(fd)
                var holder = (FileManager.default.contents(atPath: lockFile).map { String(decoding: $0.prefix(512), as: UTF8.self) } ?? "")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                if holder.isEmpty { holder = "a process holding the state folder \(folder); its \(BuildLock.fileName) was deleted" }
                throw BuildLock.Held(holder: holder, path: folder)
            }
            var opened = stat(), named = stat()
            if fstat(fd, &opened) == 0, lstat(folder, &named) == 0, opened.st_ino == named.st_ino, opened.st_dev == named.st_dev {
                descriptor = fd
                return
            }
            close(fd)
            if attempts >= 5 { throw BuildLock.Held(holder: "a process that keeps replacing \(folder)", path: folder) }
        }
    }

    deinit { close(descriptor) }
}
