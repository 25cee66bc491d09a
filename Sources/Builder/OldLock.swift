import Confinement
import Foundation
import Planner
import Manifest

/// A lock Derive wrote at a path `lock:` no longer names (attack 37b's finding 13): it gets the
/// old index's treatment. The state records each lock written (`StateStore.lockFiles`: its real
/// path, digest, device and inode; the folders made for it as created folders). An old one is
/// removed only while it is still that file holding those bytes (checked on the open file, never
/// through a link: `Disk.remove(_:ifDigest:identity:)`), then the folders Derive made for it once
/// empty (never recursive); otherwise it is left in place and named. Plan, build and clean judge
/// it here, so they say the same.
enum OldLock {
    /// Whether the recorded lock at `path` is the lock at `lockPath` now (another spelling of it).
    static func isCurrent(_ path: String, lockPath: String) -> Bool {
        PathKey.same(path, lockPath) || PathKey.same(path, ControlFileTargets.recordKey(lockPath)) || FileIdentity.sameFile(path, lockPath)
    }

    /// What becomes of an old lock.
    enum Fate {
        case removed
        /// Its folder is reached through a symbolic link now (the real folder named).
        case throughLink(String)
        /// Something else than a regular file is there (a link, a folder).
        case notAFile(String)
        /// Other bytes, or another file (device and inode).
        case changed

        var removes: Bool { if case .removed = self { return true } else { return false } }

        /// Why it is kept, after its path (plan: `keep: …`).
        func why(_ display: (String) -> String) -> String {
            switch self {
            case .removed: return "is no longer wanted"
            case .throughLink(let real): return "is Derive's old lock, but its folder leads through a symbolic link now (to \(display(real))), which Derive does not follow; it is left in place"
            case .notAFile(let kind): return "is not the file Derive wrote as the lock (\(kind)); it is left in place"
            case .changed: return "was changed since Derive wrote it as the lock (or replaced: its bytes, or its device and inode, are not the ones recorded); it is left in place: delete it by hand if it is not yours"
            }
        }
    }

    /// How the plan sees the old lock at `path` now (the build checks again on the open file).
    static func fate(_ path: String, written: WrittenLock, disk: any Disk) -> Fate {
        let folder = (path as NSString).deletingLastPathComponent
        let real = RealFolder.of(folder)
        if real != folder { return .throughLink(real) }
        guard FileKind.isRegularFile(path) else { return .notAFile(FileKind.describe(path)) }
        guard FileIdentity.ofRegularFile(path) == written.identity, (try? disk.digestAndHead(path, headBytes: 0).digest) == written.digest else { return .changed }
        return .removed
    }

    /// Removes the old lock at `path` if it is still what Derive wrote, then the folders Derive
    /// made for it that are empty now; forgets its record either way. Returns whether a file went,
    /// and why it was left (nil when nothing is there or it went).
    static func remove(_ path: String, written: WrittenLock, disk: any Disk, store: StateStore, foreign: ForeignProjectFiles,
                       display: (String) -> String) throws -> (removed: Bool, left: String?) {
        defer { try? store.setLockFile(path, nil) }
        guard FileIdentity.anythingAt(path) else { return (false, nil) }
        let folder = (path as NSString).deletingLastPathComponent
        let real = RealFolder.of(folder)
        if real != folder { return (false, "\(display(path)) " + Fate.throughLink(real).why(display)) }
        do {
            guard try disk.remove(path, ifDigest: written.digest, identity: written.identity) else {
                return (false, "\(display(path)) " + Fate.changed.why(display))
            }
        } catch where !FileKind.isRegularFile(path) {
            return (false, "\(display(path)) " + Fate.notAFile(FileKind.describe(path)).why(display))
        } catch {
            return (false, "\(display(path)) is Derive's old lock but could not be removed (\(error)); it is left in place")
        }
        try Builder.removeCreatedFolders(above: path, disk: disk, store: store, foreign: foreign)
        return (true, nil)
    }
}
