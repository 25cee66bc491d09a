import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `RegisteredInstalledFiles.records(of:moved:)` kept per registered state, read again only when
/// the registry's line for it (manifest, lock, state, moved or not) or the state's own files
/// changed: its database and SQLite's files beside it, each by device, inode, size, mtime and
/// ctime (and type and owner, which the trust check reads). Why: serve read every registered
/// state's database at each rescan (910 lines: an anonymous listing took 107–203 s instead of
/// 1–2 s, s53). Whether the manifest is there is asked anew at every read.
enum RegisteredStateRecords {
    /// What the state's files are now: one line per file of the database (`-shm` by type and
    /// owner only: SQLite's readers write it, and its contents follow the others').
    static func stamp(of state: String) -> (stamp: [Int64], newest: Int64) {
        var stamp: [Int64] = []
        var newest: Int64 = 0
        let database = state + "/" + StateFiles.database
        for suffix in [""] + StateFiles.journalSuffixes {
            var info = stat()
            guard lstat(database + suffix, &info) == 0 else { stamp.append(-1); continue }
            stamp += [Int64(info.st_mode), Int64(info.st_uid)]
            if suffix == "-shm" { continue }
            newest = max(newest, Int64(info.st_mtim.tv_sec), Int64(info.st_ctim.tv_sec))
            stamp += [Int64(bitPattern: UInt64(info.st_dev)), Int64(bitPattern: UInt64(info.st_ino)), Int64(info.st_size),
                      Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
        }
        return (stamp, newest)
    }

    private struct Kept {
        var entry: ProjectRegistry.Entry
        var moved: Bool
        var stamp: [Int64]
        var records: [RegisteredInstalledFiles.Record]
    }

    private static let kept = KeptRecords()

    /// One registered state as an index was built from it.
    struct StateKey: Equatable {
        var entry: ProjectRegistry.Entry
        var moved: Bool
        var stamp: [Int64]
    }

    /// What a whole index was built from: this manifest's own paths (its records are left out)
    /// and every registered state read, in order.
    struct Signature: Equatable {
        var own: [String]
        var states: [StateKey]
    }

    /// Whether every state of `signature` was kept by `records` (none changed in its last second).
    static func allSettled(_ signature: Signature) -> Bool {
        signature.states.allSatisfy { key in key.stamp.first == -1 || kept.get(key.entry.state).map { $0.stamp == key.stamp && $0.entry == key.entry && $0.moved == key.moved } == true }
    }

    private static let lastIndex = KeptIndex()

    /// The index built last from `signature`, when it was.
    static func keptIndex(_ signature: Signature) -> [FileIdentity: [RegisteredInstalledFiles.Record]]? { lastIndex.get(signature) }

    static func keepIndex(_ signature: Signature, _ index: [FileIdentity: [RegisteredInstalledFiles.Record]]) { lastIndex.set(signature, index) }

    private final class KeptIndex: @unchecked Sendable {
        private let lock = NSLock()
        private var kept: (signature: Signature, index: [FileIdentity: [RegisteredInstalledFiles.Record]])?

        func get(_ signature: Signature) -> [FileIdentity: [RegisteredInstalledFiles.Record]]? {
            lock.withLock { kept.flatMap { $0.signature == signature ? $0.index : nil } }
        }

        func set(_ signature: Signature, _ index: [FileIdentity: [RegisteredInstalledFiles.Record]]) { lock.withLock { kept = (signature, index) } }
    }

    /// The records of `entry`'s state (`RegisteredInstalledFiles.records`), the kept ones while
    /// nothing they were read from changed.
    static func records(of entry: ProjectRegistry.Entry, moved: Bool) -> [RegisteredInstalledFiles.Record] {
        let (before, newest) = stamp(of: entry.state)
        // No database there: nothing to read, nothing to keep.
        if before.first == -1 { return [] }
        if let known = kept.get(entry.state), known.entry == entry, known.moved == moved, known.stamp == before {
            var info = stat()
            let there = known.records.first.map { lstat($0.manifest, &info) == 0 } ?? false
            return known.records.map { var record = $0; record.manifestThere = there; return record }
        }
        let read = RegisteredInstalledFiles.records(of: entry, moved: moved)
        // Kept only when nothing changed while it was read (a build writing it meanwhile), and
        // not in the second of its last change (a change in the same clock tick keeps the stamp).
        if stamp(of: entry.state).stamp == before, Int64(Date().timeIntervalSince1970) > newest + 1 { kept.set(entry.state, Kept(entry: entry, moved: moved, stamp: before, records: read)) }
        return read
    }

    /// The kept reads by registered state path, shared by the threads of one process.
    private final class KeptRecords: @unchecked Sendable {
        private let lock = NSLock()
        private var reads: [String: Kept] = [:]

        func get(_ state: String) -> Kept? { lock.withLock { reads[state] } }

        func set(_ state: String, _ read: Kept) {
            lock.withLock {
                if reads.count >= 2 * ProjectRegistry.maxEntries { reads.removeAll() }
                reads[state] = read
            }
        }
    }
}
