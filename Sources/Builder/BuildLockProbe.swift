import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension BuildLock {
    /// Who holds the lock on the state in `folder` now (the line `build.lock` holds: `pid N on
    /// host, since …`), nil when no live process does. Read without taking the lock, not even
    /// shared, for an instant: a build starting at that moment must not find it held by a mere
    /// `plan` (attack 29's finding 9). On Linux `/proc/locks` lists every `flock` with the file's
    /// device and inode; elsewhere a shared lock is tried and dropped at once.
    public static func holder(folder: String) -> String? {
        let path = folder + "/" + fileName
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let held: Bool
        if let locks = FileManager.default.contents(atPath: "/proc/locks") {
            held = flockHeld(in: String(decoding: locks, as: UTF8.self), device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        } else if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            _ = flock(fd, LOCK_UN)
            held = false
        } else {
            held = errno == EWOULDBLOCK
        }
        guard held else { return nil }
        var text = [UInt8](repeating: 0, count: 512)
        let count = pread(fd, &text, text.count, 0)
        let line = String(decoding: text.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return line.isEmpty ? "a process that has not written its name yet" : line
    }

    /// Whether `/proc/locks` (`N: FLOCK ADVISORY WRITE pid MAJ:MIN:INODE 0 EOF`, the device
    /// numbers in hex) lists a held exclusive `flock` on the file `device`/`inode` (waiters,
    /// the `->` lines, hold nothing).
    static func flockHeld(in locks: String, device: UInt64, inode: UInt64) -> Bool {
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
        let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
        let wanted = String(format: "%02llx:%02llx:%llu", major, minor, inode)
        for line in locks.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 6, fields[1] == "FLOCK", fields[3] == "WRITE", fields[5] == wanted else { continue }
            return true
        }
        return false
    }
}
