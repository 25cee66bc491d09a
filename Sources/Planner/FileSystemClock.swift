import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The clock the racy-timestamp rule reads (attack 23's H1): Derive's own clock, set back to
/// the time the file system stamps, measured on a small file in the state folder
/// (`StateFiles.clockStamp`, its times set to "now" by the kernel, never by Derive).
///
/// git compares a file's mtime with the index file's mtime, which the file system stamped; the
/// racy rule compared it with Derive's clock. When the file system's clock lags Derive's (a file
/// server whose clock is behind, or coarse times: FAT keeps 2 s, some ext4 1 s), a file edited
/// just before a build was dated more than the margin before the moment Derive recorded hashing
/// it, so it looked settled, and a second edit within the same tick (same size, same stat) was
/// never seen. Here the correction is `min(0, stamp - clock after stamping)`: the stamp is never
/// later than the file system's time, so Derive's recorded times are never later than what the
/// file system would stamp on a write after them. A stamp with no nanoseconds (a file system
/// with whole-second or coarser times) takes one more second off, so the margin (1 s) plus this
/// covers a tick of up to 2 s (FAT). A file system ahead of Derive's clock is not used to move
/// the clock forward: files dated after it stay racy until Derive's clock passes them (safe).
///
/// Measured again once a second of Derive's clock has passed (one open, one futimens, one
/// fstat). Where the stamp cannot be written (a read-only command on a state folder not made
/// yet, a folder not Derive's user's), Derive's own clock is used, as before.
/// Scope: the stamp measures the state folder's file system; sources on another device are
/// judged by the same correction (a project and its state on one file server is the case).
public final class FileSystemClock: @unchecked Sendable {
    private let path: String
    private let create: Bool
    private let lock = NSLock()
    private var correction: Int64 = 0
    private var measuredAt: Int64?
    private var measured = false

    private static let lock = NSLock()
    nonisolated(unsafe) private static var clocks: [String: FileSystemClock] = [:]

    /// One clock per state folder and process (`create`: whether the stamp may be made).
    public static func forStateFolder(_ folder: String, create: Bool) -> FileSystemClock {
        lock.withLock {
            let key = (create ? "w:" : "r:") + folder
            if let clock = clocks[key] { return clock }
            let clock = FileSystemClock(folder: folder, create: create)
            clocks[key] = clock
            return clock
        }
    }

    /// Tests: Derive's clock read `skew` ns ahead of the kernel's (a file server behind it);
    /// `corrects: false` is the rule before attack 23 (Derive's clock as it reads).
    private let skew: Int64
    private let corrects: Bool

    init(folder: String, create: Bool, skew: Int64 = 0, corrects: Bool = true) {
        path = folder + "/" + StateFiles.clockStamp
        self.create = create
        self.skew = skew
        self.corrects = corrects
    }

    /// Derive's clock (ns since 1970) as the file system would stamp it, or earlier.
    public func now() -> Int64 {
        now(Self.realTime() &+ skew)
    }

    static func realTime() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// `raw` (Derive's clock, ns) as the file system would stamp it, or earlier.
    func now(_ raw: Int64) -> Int64 {
        guard corrects else { return raw }
        return lock.withLock {
            if measuredAt.map({ raw - $0 < (measured ? 1_000_000_000 : 100_000_000) && raw >= $0 }) != true {
                let found = Self.measure(path, create: create, skew: skew)
                // Not stamped (no state folder yet): Derive's clock, and another try soon, once
                // the build has made the folder.
                (correction, measured, measuredAt) = (found ?? 0, found != nil, raw)
            }
            return raw &+ correction
        }
    }

    /// The correction (≤ 0) read from the stamp, or nil when it cannot be stamped.
    static func measure(_ path: String, create: Bool, skew: Int64) -> Int64? {
        let folder = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folder >= 0 else { return nil }
        defer { close(folder) }
        let name = StateFiles.clockStamp
        let fd = openat(folder, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (create ? O_CREAT : 0), 0o600)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var opened = stat(), info = stat()
        // Only an empty regular file of this user with one name is Derive's stamp (`clean`'s
        // rule): anything else is left untouched. Its times are read as sources' are (`fstatat`
        // by name in its folder, the same file), so both come through one call.
        guard fstat(fd, &opened) == 0, StateFiles.isClockStamp(opened), opened.st_uid == geteuid(),
              futimens(fd, nil) == 0, fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0,
              info.st_ino == opened.st_ino, info.st_dev == opened.st_dev else { return nil }
        let after = realTime() &+ skew
        // The ctime: the kernel (or the file server) always sets it to its own "now", whatever
        // times a futimens asks for (a preloaded libfaketime gives its own clock as the mtime).
        let stamp = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        let coarse: Int64 = info.st_ctim.tv_nsec == 0 ? 1_000_000_000 : 0
        return min(0, stamp - after) - coarse
    }
}
