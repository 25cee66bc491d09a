import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `flock(2)` on the manifest file, the first lock `build` and `clean` take. The state folder's
/// locks live in a folder the user may delete or replace while they are held; the manifest is
/// the one file of the project Derive never writes, so a second command on the same manifest
/// finds it locked whatever happened to the state folder. The file locked must still be the
/// one at the path (an editor saving by rename replaces it), else it is locked again.
final class ManifestLock {
    private let descriptor: Int32

    /// `lockFile`: the state's `build.lock`, read to name the holder when it is still there.
    init(manifest: String, lockFile: String) throws {
        var attempts = 0
        while true {
            attempts += 1
            let fd = open(manifest, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot open \(manifest): \(String(cString: strerror(errno)))"])
            }
            var opened = stat()
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                _ = fstat(fd, &opened)
                close(fd)
                throw BuildLock.Held(holder: Self.holder(of: opened, lockFile: lockFile, manifest: manifest), path: manifest)
            }
            var named = stat()
            if fstat(fd, &opened) == 0, stat(manifest, &named) == 0, opened.st_ino == named.st_ino, opened.st_dev == named.st_dev {
                descriptor = fd
                return
            }
            close(fd)
            if attempts >= 5 { throw BuildLock.Held(holder: "a process that keeps replacing \(manifest)", path: manifest) }
        }
    }

    deinit { close(descriptor) }

    /// Who holds the lock: the state's `build.lock` line when it is still there, else the
    /// process the kernel lists for this file's lock (`/proc/locks`).
    static func holder(of file: stat, lockFile: String, manifest: String) -> String {
        if let text = FileManager.default.contents(atPath: lockFile).map({ String(decoding: $0.prefix(512), as: UTF8.self) }),
           text.hasPrefix("pid ") {
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let device = UInt64(file.st_dev)
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)
        let minor = (device & 0xff) | ((device >> 12) & ~0xff)
        let id = String(format: "%02llx:%02llx:%llu", major, minor, UInt64(file.st_ino))
        let locks = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
        for line in locks.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 6, fields[1] == "FLOCK", fields[5] == id {
                return "pid \(fields[4]) on \(ProcessInfo.processInfo.hostName), building \(manifest); its state folder was deleted or replaced"
            }
        }
        return "a derive command building \(manifest); its state folder was deleted or replaced"
    }
}
