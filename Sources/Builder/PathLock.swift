import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `flock(2)` on the file or folder at a path, held while this object lives. The thing locked
/// must still be the one at the path once the lock is taken (a folder deleted and made again, a
/// manifest saved by rename): otherwise it is opened and locked again, at most five times.
/// Used for the state folder's own descriptor (the lock file inside it can be deleted while
/// held) and for the manifest file (the one file of the project Derive never writes, so a second
/// command finds it locked whatever happened to the state folder).
final class PathLock {
    private let descriptor: Int32

    /// `folder`: open the path as a folder, not following a link; otherwise as a file.
    /// `holder`: who holds the lock when it is taken, given what was opened.
    init(_ path: String, folder: Bool, holder: (stat) -> String) throws {
        var attempts = 0
        while true {
            attempts += 1
            let fd = open(path, O_RDONLY | O_CLOEXEC | (folder ? O_DIRECTORY | O_NOFOLLOW : 0))
            guard fd >= 0 else {
                throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot open \(path): \(String(cString: strerror(errno)))"])
            }
            var opened = stat(), named = stat()
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                _ = fstat(fd, &opened)
                close(fd)
                throw BuildLock.Held(holder: holder(opened), path: path)
            }
            let atPath = folder ? lstat(path, &named) : stat(path, &named)
            if fstat(fd, &opened) == 0, atPath == 0, opened.st_ino == named.st_ino, opened.st_dev == named.st_dev {
                descriptor = fd
                return
            }
            close(fd)
            if attempts >= 5 { throw BuildLock.Held(holder: "a process that keeps replacing \(path)", path: path) }
        }
    }

    deinit { close(descriptor) }

    /// The state folder's lock, taken before `build.lock`, naming the holder from that file.
    static func stateFolder(_ folder: String, lockFile: String) throws -> PathLock {
        // A state folder the user made a symbolic link (to another disk, say) is theirs to name:
        // the real folder is the one locked. Only its last component is resolved here; the lock is
        // still taken on a folder, never a file.
        var info = stat()
        var locked = folder
        if lstat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK, let real = realpath(folder, nil) {
            locked = String(cString: real)
            free(real)
        }
        return try PathLock(locked, folder: true) { _ in
            let holder = (FileManager.default.contents(atPath: lockFile).map { String(decoding: $0.prefix(512), as: UTF8.self) } ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return holder.isEmpty ? "a process holding the state folder \(folder); its \(BuildLock.fileName) was deleted" : holder
        }
    }

    /// The manifest's lock, the first `build` and `clean` take; `lockFile` is the state's
    /// `build.lock`, read to name the holder when it is still there.
    static func manifest(_ manifest: String, lockFile: String) throws -> PathLock {
        try PathLock(manifest, folder: false) { opened in holder(of: opened, lockFile: lockFile, manifest: manifest) }
    }

    /// Who holds the manifest's lock: the state's `build.lock` line when it is still there,
    /// else the process the kernel lists for this file's lock (`/proc/locks`).
    static func holder(of file: stat, lockFile: String, manifest: String) -> String {
        let holders = lockHolders(of: file)
        // The state's line, when its process is the one holding this file (a killed build left a
        // line naming a process long gone).
        if let text = FileManager.default.contents(atPath: lockFile).map({ String(decoding: $0.prefix(512), as: UTF8.self) }),
           text.hasPrefix("pid "), let pid = text.dropFirst(4).split(separator: " ").first, holders.isEmpty || holders.contains(String(pid)) {
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let pid = holders.first {
            // What it runs, from its own command line: the file may have another name (a hard
            // link, another path to it) whose build holds it, with a state of its own (attack
            // 42a's L2 named this manifest and a state folder "deleted or replaced").
            let command = commandLine(of: pid).map { " (\($0))" } ?? ""
            return "pid \(pid)\(command) on \(ProcessInfo.processInfo.hostName), which holds the lock on \(manifest)'s file: "
                + "it builds this file under that name (a hard link or another path to it), or its own state folder was deleted or replaced"
        }
        return "a derive command holding the lock on \(manifest)'s file: it builds this file under another name (a hard link or another path to it), or its own state folder was deleted or replaced"
    }

    /// The processes the kernel lists as holding a `flock` on `file` (`/proc/locks`).
    static func lockHolders(of file: stat) -> [String] {
        let device = UInt64(file.st_dev)
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)
        let minor = (device & 0xff) | ((device >> 12) & ~0xff)
        let id = String(format: "%02llx:%02llx:%llu", major, minor, UInt64(file.st_ino))
        let locks = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
        return locks.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count >= 6 && fields[1] == "FLOCK" && fields[5] == id ? String(fields[4]) : nil
        }
    }

    /// The command line of process `pid` (`/proc/PID/cmdline`, its arguments joined by spaces), at most 300 bytes.
    static func commandLine(of pid: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        let words = data.prefix(300).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return words.isEmpty ? nil : TerminalText.escaped(words.joined(separator: " "))
    }
}
