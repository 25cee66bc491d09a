import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Answers read from the disk, kept for the rest of the process while every file or folder they
/// were read from keeps its stamp: device, inode, size, modification and change times, of the
/// path followed and of the path itself (a link re-pointed changes the latter). Attack 50c's M5: a no-op
/// near 60 sibling projects listed `/tmp` about 90 times and read each sibling's manifest and
/// state several times over, once per neighbour that walked up past them, so its cost grew with
/// the neighbourhood. An answer whose files changed under two seconds ago is not kept (git's
/// "racily clean": a change within the same clock tick leaves the stamp as it was), and one whose
/// stamps differ now is read again, so it is the answer a fresh read gives. At most 8 192 kept
/// (serve runs for days): the whole set is dropped past it.
final class StampedAnswers<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var kept: [String: (stamps: [[Int64]], value: Value)] = [:]
    static var maxKept: Int { 8192 }
    /// An answer read from files modified or changed fewer seconds ago than this is not kept.
    private let settleSeconds: Int64

    init(settleSeconds: Int64 = 2) {
        self.settleSeconds = settleSeconds
    }

    /// How many answers are kept (tests).
    var keptCount: Int { lock.withLock { kept.count } }

    /// The answer for `key`, read by `read` unless one kept for it stands on `paths` stamped as now.
    /// Inside a `ReadSnapshot`, once per snapshot (not stamped again).
    func answer(_ key: String, stamping paths: [String], _ read: () -> Value) -> Value {
        ReadSnapshot.answer("stamped \(ObjectIdentifier(self))", key) { answerNow(key, stamping: paths, read) }
    }

    private func answerNow(_ key: String, stamping paths: [String], _ read: () -> Value) -> Value {
        let stamps = paths.map(Self.stamp)
        if let known = lock.withLock({ kept[key] }), known.stamps == stamps { return known.value }
        let value = read()
        guard settled(stamps) else { return value }
        lock.withLock {
            if kept.count >= Self.maxKept { kept.removeAll() }
            kept[key] = (stamps, value)
        }
        return value
    }

    /// `path`'s stamp: the link itself and what it leads to (nine fields each, all -1 when not there).
    static func stamp(_ path: String) -> [Int64] {
        var info = stat()
        var stamp: [Int64] = []
        for followed in [false, true] {
            guard (followed ? stat(path, &info) : lstat(path, &info)) == 0 else { stamp += Array(repeating: -1, count: 9); continue }
            stamp += [Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_mode), Int64(info.st_uid), Int64(info.st_size),
                      Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
        }
        return stamp
    }

    /// Whether no stamped path was modified or changed within the last `settleSeconds`.
    private func settled(_ stamps: [[Int64]]) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        for stamp in stamps {
            // Modification and change seconds of the link and of what it leads to.
            for offset in [5, 7] {
                for base in [0, 9] where stamp.count > base + offset && stamp[base] != -1 {
                    if Int64(now.tv_sec) - stamp[base + offset] < settleSeconds { return false }
                }
            }
        }
        return true
    }
}
