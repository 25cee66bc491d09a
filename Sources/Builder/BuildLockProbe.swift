import Confinement
import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

extension BuildLock {
    /// A live process holding one of the locks a build or clean holds on a state.
    public struct Holder: Sendable {
        /// `pid N on host, since …` (the line a build wrote in `build.lock`), `pid N (derive)`
        /// when that line is gone, `pid N (flock)` for another program.
        public var name: String
        /// Whether it is a derive command (its line names its pid, or its name is derive).
        public var isDerive: Bool
        /// The file or folder whose lock it holds.
        public var lock: String
    }

    /// Who holds a lock on the state in `folder` now, nil when no live process does. A build or
    /// clean holds `build.lock`, the state folder itself and the manifest (`BuildLock`), and the
    /// manifest's lock outside the project (`ManifestPathLock`): `build.lock` deleted or the state
    /// folder moved away mid-build (attack 31's F4) leaves the others held, so each is looked at.
    /// Read without taking any lock, not even shared, for an instant: a build starting at that
    /// moment must not find it held by a mere `plan` (attack 29's finding 9). On Linux
    /// `/proc/locks` lists every `flock` with the file's device and inode, and its holder's pid;
    /// elsewhere a shared lock on `build.lock` is tried and dropped at once.
    public static func holder(folder: String, manifest: String?) -> Holder? {
        let lockFile = folder + "/" + fileName
        guard let locks = FileManager.default.contents(atPath: "/proc/locks") else { return triedHolder(lockFile) }
        let holders = flockHolders(in: String(decoding: locks, as: UTF8.self))
        // (path, whether a link there is followed, as the lock's holder opened it)
        var places = [(lockFile, false), (folder, true)]
        if let manifest {
            places.append((manifest, true))
            if let pathLock = ManifestPathLock.lockPath(manifest: manifest) { places.append((pathLock, false)) }
        }
        for (path, follow) in places {
            var info = stat()
            guard (follow ? stat(path, &info) : lstat(path, &info)) == 0,
                  let pid = holders[fileID(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))] else { continue }
            return describe(pid: pid, lock: path, lockFile: lockFile)
        }
        return nil
    }

    /// Who holds the lock on the open `build.lock` (`file`), which this process could not take.
    static func holder(of file: stat, lockFile: String) -> Holder? {
        guard let locks = FileManager.default.contents(atPath: "/proc/locks") else {
            return firstLine(lockFile).map { Holder(name: TerminalText.escaped($0), isDerive: true, lock: lockFile) }
        }
        let holders = flockHolders(in: String(decoding: locks, as: UTF8.self))
        return holders[fileID(device: UInt64(file.st_dev), inode: UInt64(file.st_ino))].map { describe(pid: $0, lock: lockFile, lockFile: lockFile) }
            ?? firstLine(lockFile).map { Holder(name: TerminalText.escaped($0), isDerive: true, lock: lockFile) }
    }

    /// The holder of `pid`: by the line in `build.lock` when that line names it (a build writes
    /// it once it holds the lock), else by its process name (`/proc/PID/comm`): a program that
    /// is not derive is named as what it is, not as the last build (attack 31's F11).
    static func describe(pid: Int32, lock: String, lockFile: String) -> Holder {
        if let line = firstLine(lockFile), line.hasPrefix("pid \(pid) ") {
            return Holder(name: TerminalText.escaped(line), isDerive: true, lock: lock)
        }
        // A zombie (ended, not yet reaped by its parent) still has a name but holds no file.
        let ended = firstLine("/proc/\(pid)/stat").map { $0.split(separator: ")").last?.dropFirst().first == "Z" } ?? true
        if !ended, let command = firstLine("/proc/\(pid)/comm").map(TerminalText.escaped) {
            return Holder(name: "pid \(pid) (\(command))", isDerive: command == "derive", lock: lock)
        }
        // `/proc/locks` names the process that took the lock, which may have ended while a child
        // it started holds the lock still (`flock build.lock cmd` killed): a live process with
        // the file open is named instead, the only one that can be holding it.
        var info = stat()
        if stat(lock, &info) == 0, let (opener, command) = openers(of: info).first {
            return Holder(name: "pid \(opener) (\(command)), which has it open (pid \(pid), which took the lock, has ended)",
                          isDerive: command == "derive", lock: lock)
        }
        return Holder(name: "pid \(pid) (ended since; a process it started may hold the lock still)", isDerive: false, lock: lock)
    }

    /// Live processes other than this one with `file` open (`/proc/PID/fd`), with their names;
    /// bounded (4,096 processes, 1,024 descriptors each) so a crowded machine is not walked whole.
    static func openers(of file: stat) -> [(Int32, String)] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [(Int32, String)] = []
        for pid in entries.compactMap(Int32.init).prefix(4096) where pid != getpid() {
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds.prefix(1024) {
                var info = stat()
                guard stat("/proc/\(pid)/fd/\(fd)", &info) == 0, info.st_dev == file.st_dev, info.st_ino == file.st_ino else { continue }
                // A zombie (ended, not yet reaped by its parent) still has a name but holds no file.
        let ended = firstLine("/proc/\(pid)/stat").map { $0.split(separator: ")").last?.dropFirst().first == "Z" } ?? true
        if !ended, let command = firstLine("/proc/\(pid)/comm").map(TerminalText.escaped) { found.append((pid, command)) }
                break
            }
        }
        return found
    }

    /// Without `/proc/locks`: a shared lock on `build.lock` tried and dropped at once.
    private static func triedHolder(_ lockFile: String) -> Holder? {
        let fd = open(lockFile, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            _ = flock(fd, LOCK_UN)
            return nil
        }
        guard errno == EWOULDBLOCK else { return nil }
        let line = firstLine(lockFile).map(TerminalText.escaped)
        return Holder(name: line ?? "a process that has not written its name yet", isDerive: line?.hasPrefix("pid ") == true, lock: lockFile)
    }

    /// The first line of the regular file at `path`, trimmed; nil when there is none or it is
    /// blank. Read by `LockFirstLine` (not following a link, never waiting on a FIFO, bounded).
    static func firstLine(_ path: String) -> String? {
        guard let bytes = LockFirstLine.read(path) else { return nil }
        let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return line.isEmpty ? nil : line
    }

    /// The holders of exclusive `flock`s in `/proc/locks` (`N: FLOCK ADVISORY WRITE pid
    /// MAJ:MIN:INODE 0 EOF`), by `fileID`; waiters (the `->` lines) hold nothing.
    static func flockHolders(in locks: String) -> [String: Int32] {
        var holders: [String: Int32] = [:]
        for line in locks.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 6, fields[1] == "FLOCK", fields[3] == "WRITE", let pid = Int32(fields[4]) else { continue }
            holders[String(fields[5])] = pid
        }
        return holders
    }

    /// How `/proc/locks` names a file: its device numbers in hex and its inode.
    static func fileID(device: UInt64, inode: UInt64) -> String {
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
        let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
        return String(format: "%02llx:%02llx:%llu", major, minor, inode)
    }
}
