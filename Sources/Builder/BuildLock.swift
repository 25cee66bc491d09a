import Foundation
import Confinement
import Planner
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a state folder, held for a whole `build` or `clean`, so two commands
/// never write the same state or outputs. The file says who holds it; a second command exits at
/// once (status `BuildLock.busyExitCode`) naming the holder.
///
/// `flock(2)`, not `fcntl` record locks: a record lock is dropped when the process closes *any*
/// descriptor of the file (reading the holder line, the ownership check), which let `clean`
/// remove a running build's outputs and state. The lock file may be unlinked by `clean` while
/// held; a waiter that locked the unlinked file notices (its inode is no longer at the path) and
/// opens the new one.
public final class BuildLock {
    private let descriptor: Int32
    /// The state folder itself, locked too: a folder cannot be unlinked while it holds files, so
    /// deleting `build.lock` mid-build does not let a second command in.
    private let folderLock: PathLock
    public let path: String
    /// Why the lock file could not be opened for writing (a read-only mount, its permissions),
    /// when it was taken on a read-only descriptor instead: nil when it is writable. Such a
    /// build may only find nothing to do (`BuildSession` refuses one with work before it writes).
    public let unwritable: String?
    public static let fileName = StateFiles.buildLock
    /// The exit status of a command that found the lock held (EX_TEMPFAIL: try again later).
    public static let busyExitCode: Int32 = 75

    public struct Held: Error, CustomStringConvertible {
        public var holder: String
        public var path: String = ""
        /// False when the holder is known to be another program (`flock build.lock …`).
        public var isDerive = true
        public init(holder: String, path: String = "", isDerive: Bool = true) {
            self.holder = holder; self.path = path; self.isDerive = isDerive
        }
        public var description: String {
            // The path once: a holder's line naming it already ("pid 7 on vm, building
            // /w/derive.yaml") is not followed by it again (attack 46's low "cc").
            let place = path.isEmpty || holder.contains(path) ? "" : ", " + path
            return isDerive
                ? "another derive command holds the lock on this state (\(holder))\(place); wait for it to finish"
                : "the lock on this state is held by \(holder), not a derive command\(place); wait for that process to end or release it"
        }
    }

    /// The manifest file, locked first: Derive never writes, replaces or deletes it, so deleting
    /// or replacing the state folder under a running build (`rm -rf .derive`) does not let a
    /// second command on the same manifest in (it would lock a new folder).
    private let manifestLock: PathLock?
    /// Keyed by the manifest's real path outside the project: holds when the state folder is
    /// deleted and the manifest replaced by rename during one build.
    private let pathLock: ManifestPathLock?

    /// `manifest`: the manifest whose build this is (nil only in tests that lock a bare folder).
    public init(folder: String, manifest: String? = nil) throws {
        // Another manifest's state (its `state:` names this folder too): refused before anything is written.
        if let manifest { try StateOwner.refuseShared(stateFolder: folder, manifest: manifest) }
        pathLock = try manifest.map { try ManifestPathLock(manifest: $0) }
        manifestLock = try manifest.map { try PathLock.manifest($0, lockFile: folder + "/" + Self.fileName) }
        try StateFolderTrust.check(stateFolder: folder)   // the running user's own, no one else may write it
        try StateOwnership.check(folder: folder)   // never write over, or later delete, a user's files
        try StateFolderTrust.makeFolder(folder)
        path = folder + "/" + Self.fileName
        folderLock = try PathLock.stateFolder(folder, lockFile: folder + "/" + Self.fileName)
        // Written before the file is opened: a command killed at any point never leaves an empty
        // lock file behind (an empty `build.lock` beside no state database may be anyone's, and is
        // refused by the next build).
        let host = ProcessInfo.processInfo.hostName
        let text = "pid \(getpid()) on \(host), since \(ISO8601DateFormatter().string(from: Date()))\n"
        var attempts = 0
        var unwritable: String?
        while true {
            attempts += 1
            Self.createFilled(path, with: text)
            var fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            if fd < 0, [EROFS, EACCES, EPERM].contains(errno) {
                // flock(2) needs no write access: the same exclusive lock keeps a concurrent build
                // (through another, writable mount of the folder too) out; only the holder line is
                // not written.
                unwritable = String(cString: strerror(errno)).lowercased()
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            }
            guard fd >= 0 else {
                if errno == ENOENT, attempts < 5 { continue }   // removed by `clean` since it was made
                // Still not there after being made again: the folder itself went (the state folder
                // lock holds the old one), which the build reports in the same words as later on.
                if errno == ENOENT { throw PlanError(message: "the state folder \(folder) was deleted or replaced during the build; run derive build again") }
                throw StateFolderTrust.unopenable(path, errno: errno)
            }
            guard lockExclusively(fd) else {
                // Named as plan names it: by the line only when the line names the holder's pid.
                var info = stat()
                let holder = fstat(fd, &info) == 0 ? Self.holder(of: info, lockFile: path) : nil
                close(fd)
                throw Held(holder: holder?.name ?? "a process that has not written its name yet", path: path, isDerive: holder?.isDerive ?? true)
            }
            // The file locked must still be the one at the path (`clean` unlinks it when done).
            var opened = stat(), named = stat()
            if fstat(fd, &opened) == 0, lstat(path, &named) == 0, opened.st_ino == named.st_ino, opened.st_dev == named.st_dev {
                descriptor = fd
                break
            }
            close(fd)
            if attempts >= 5 { throw Held(holder: "a process that keeps replacing \(path)", path: path) }
        }
        self.unwritable = unwritable
        guard unwritable == nil else { return }
        // The new line over the old, then the old tail cut: the file never reads empty.
        _ = text.withCString { pwrite(descriptor, $0, strlen($0), 0) }
        _ = ftruncate(descriptor, off_t(text.utf8.count))
    }

    /// Creates the lock file at `path`, if there is none, already holding `text`: an unnamed file
    /// (`O_TMPFILE`) is filled and then linked into place, which fails harmlessly when another
    /// command made one first. Without `O_TMPFILE` the file is created exclusively and filled at once.
    private static func createFilled(_ path: String, with text: String) {
        var info = stat()
        guard lstat(path, &info) != 0, errno == ENOENT else { return }
        let folder = (path as NSString).deletingLastPathComponent
        #if os(Linux)
        let anonymous = open(folder, 0o20000000 | O_DIRECTORY | O_WRONLY | O_CLOEXEC, 0o644)   // O_TMPFILE
        if anonymous >= 0 {
            defer { close(anonymous) }
            let length = text.utf8.count
            guard text.withCString({ write(anonymous, $0, length) }) == length else { return }
            _ = linkat(AT_FDCWD, "/proc/self/fd/\(anonymous)", AT_FDCWD, path, AT_SYMLINK_FOLLOW)
            return
        }
        #endif
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Refuses a `command` that writes while the state folder cannot be written (`unwritable`),
    /// before it writes anything: what it wrote could not be recorded.
    public func refuseUnwritable(_ command: String) throws {
        guard let unwritable else { return }
        let folder = (path as NSString).deletingLastPathComponent
        throw PlanError(message: "cannot \(command): the state folder \(folder) cannot be written (\(unwritable): its \(Self.fileName) could not be opened for writing), "
            + "so what it would write could not be recorded; nothing was written. To fix it, remount that file system read-write or make the folder writable by this user, then run derive \(command) again")
    }

    /// The holder's line stays after release (closing drops the lock): the file stays
    /// recognisably Derive's, and the line is only ever shown while someone holds the lock.
    deinit {
        close(descriptor)
    }
}

/// `flock(2)` without waiting, outside the `flock` struct's shadow.
private func lockExclusively(_ fd: Int32) -> Bool {
    flock(fd, LOCK_EX | LOCK_NB) == 0
}
