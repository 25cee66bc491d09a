import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `plan` and `check` note of a state folder before they read it, and compare after they
/// answered: the folder's device and inode, and `build.lock`'s, with the line in it. A build or
/// clean rewrites that line (its pid and start) as it takes the lock, so one that ran and ended
/// meanwhile, unseen by a look for a lock's holder, still changes the mark (attack 31's F10), as
/// does the folder moved, deleted or replaced (F4). Nothing is opened for writing or locked.
public struct StateMark: Equatable, Sendable {
    struct Identity: Equatable, Sendable { var device: UInt64; var inode: UInt64 }
    var folder: Identity?
    var lockFile: Identity?
    var line: String?

    /// The state folder found as the build locks it (a link to it followed), `build.lock` in it not.
    public init(folder: String) {
        func identity(_ path: String, follow: Bool) -> Identity? {
            var info = stat()
            guard (follow ? stat(path, &info) : lstat(path, &info)) == 0 else { return nil }
            return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        }
        let lockFile = folder + "/" + BuildLock.fileName
        self.folder = identity(folder, follow: true)
        self.lockFile = identity(lockFile, follow: false)
        line = BuildLock.firstLine(lockFile)
    }

    /// What changed since `earlier`, in words; nil when nothing did.
    public func change(since earlier: StateMark) -> Change? {
        if folder != earlier.folder { return .folder }
        if lockFile != earlier.lockFile || line != earlier.line { return .lock(line) }
        return nil
    }

    public enum Change: Equatable, Sendable {
        /// The state folder moved, deleted, replaced, or made.
        case folder
        /// `build.lock` rewritten (a build or clean took the lock), deleted or replaced; its line now.
        case lock(String?)
    }
}
