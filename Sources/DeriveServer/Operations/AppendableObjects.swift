import Confinement
import Foundation
import Manifest
import NIOConcurrencyHelpers

/// Which objects were created by AppendObject, so a later append may continue them and an
/// append to a normal object answers ObjectNotAppendable, as OSS does. Kept in the state
/// folder (`serve-appendable.json`), never in a bucket folder.
///
/// An entry names the file version it describes (inode and size): a PUT, copy or multipart
/// upload over the key replaces the file, and the object is then normal again without any hook.
final class AppendableObjects: Sendable {
    struct Record: Codable, Hashable {
        var inode: UInt64
        var size: Int64
    }

    /// Most appendable objects remembered; entries whose files changed are dropped first.
    static let maxEntries = 10_000
    /// Most transient versions kept in memory (all keys together). Appends run one at a time and
    /// a replaced version lives `retiredSeconds`, so far fewer are alive; past the bound the
    /// oldest go first. Losing one only lets a read racing an append call the object Normal for
    /// that moment: the saved record (memory and `serve-appendable.json`) stays the truth for
    /// appends and for every later read.
    static let maxTransient = 1_024

    let file: String?
    private let records: NIOLockedValueBox<[String: Record]>

    /// Versions of a key that readers may hold besides the saved one, kept in memory only: the
    /// append's new file, announced before its link (as its metadata is), and the file it
    /// replaced, kept a few seconds after (a reader that opened it before the link looks it up
    /// after). Matched by inode, size and modification time.
    struct Transient: Hashable { var inode: UInt64; var size: Int64; var mtime: Int64; var until: Int }
    private let transient = NIOLockedValueBox<[String: [Transient]]>([:])
    static let retiredSeconds = 10
    let clock: @Sendable () -> Int

    init(file: String?, clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }) {
        self.file = file
        self.clock = clock
        var loaded: [String: Record] = [:]
        if let file, let data = try? ConfinedFolder.readRegularFile(atPath: file, maxBytes: 16 << 20),
           let decoded = try? JSONDecoder().decode([String: Record].self, from: data) {
            // A file written by hand (or by another program) may hold more than the bound: the
            // first `maxEntries` names in byte order are kept, the others are normal objects.
            loaded = decoded.count <= Self.maxEntries ? decoded
                : Dictionary(uniqueKeysWithValues: decoded.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
                    .prefix(Self.maxEntries).map { ($0.key, $0.value) })
        }
        records = NIOLockedValueBox(loaded)
    }

    /// Entries in memory now (tests).
    var counts: (records: Int, transient: Int) {
        (records.withLockedValue { $0.count }, transient.withLockedValue { $0.values.reduce(0) { $0 + $1.count } })
    }

    /// Drops expired versions of every key, then the oldest beyond `maxTransient` (the table's
    /// lock is held by the caller).
    private static func prune(_ table: inout [String: [Transient]], now: Int) {
        for (name, entries) in table {
            let live = entries.filter { $0.until >= now }
            table[name] = live.isEmpty ? nil : (live.count == entries.count ? entries : live)
        }
        var count = table.values.reduce(0) { $0 + $1.count }
        guard count > maxTransient else { return }
        // Retired versions first, soonest to expire first; announced ones (until .max) last.
        // Down to three quarters of the bound, so the sort is paid once per many appends.
        let ordered = table.flatMap { name, entries in entries.map { (name, $0) } }.sorted { $0.1.until < $1.1.until }
        for (name, entry) in ordered where count > maxTransient * 3 / 4 {
            table[name]?.removeAll { $0 == entry }
            if table[name]?.isEmpty == true { table[name] = nil }
            count -= 1
        }
    }

    static func name(_ bucket: Bucket, _ key: ObjectKey) -> String { bucket.name + "\0" + key.string }

    func isAppendable(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus) -> Bool {
        if let record = records.withLockedValue({ $0[Self.name(bucket, key)] }), record.inode == status.inode, record.size == status.size { return true }
        let now = clock()
        return transient.withLockedValue { $0[Self.name(bucket, key)] ?? [] }.contains {
            $0.inode == status.inode && $0.size == status.size && $0.mtime == status.mtime && $0.until >= now
        }
    }

    /// An append's new file, before its link (called under the key's lock).
    func announce(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus) {
        let entry = Transient(inode: status.inode, size: status.size, mtime: status.mtime, until: Int.max)
        let now = clock()
        transient.withLockedValue { table in
            table[Self.name(bucket, key), default: []].append(entry)
            Self.prune(&table, now: now)
        }
    }

    /// After the link (under the key's lock): the saved record now names the linked file; the
    /// replaced one stays valid for `retiredSeconds`.
    func retire(_ bucket: Bucket, _ key: ObjectKey, linked: FileStatus, replaced: FileStatus?) {
        let now = clock()
        transient.withLockedValue { table in
            var entries = (table[Self.name(bucket, key)] ?? []).filter { $0.until >= now && !($0.inode == linked.inode && $0.size == linked.size) }
            if let replaced { entries.append(Transient(inode: replaced.inode, size: replaced.size, mtime: replaced.mtime, until: now + Self.retiredSeconds)) }
            table[Self.name(bucket, key)] = entries.isEmpty ? nil : entries
            // Other keys' expired versions too: a key appended once and never again kept its
            // retired version for ever.
            Self.prune(&table, now: now)
        }
    }

    /// An announced file that was not linked.
    func withdraw(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus) {
        transient.withLockedValue { table in
            let entries = (table[Self.name(bucket, key)] ?? []).filter { !($0.inode == status.inode && $0.size == status.size && $0.mtime == status.mtime) }
            table[Self.name(bucket, key)] = entries.isEmpty ? nil : entries
        }
    }

    /// Whether the object at `key` can be recorded: it is already, or the table has room once
    /// entries whose files changed are dropped. Checked by an append before it writes anything
    /// (appends run one at a time, so the room is still there when it records).
    func hasRoom(for bucket: Bucket, _ key: ObjectKey, stillValid: (String, Record) -> Bool) -> Bool {
        records.withLockedValue { records in
            if records[Self.name(bucket, key)] != nil || records.count < Self.maxEntries { return true }
            let live = records.filter { stillValid($0.key, $0.value) }
            if live.count < records.count {
                records = live
                save(records)
            }
            return records.count < Self.maxEntries
        }
    }

    /// Records the object's current file; false when the table is full of live entries.
    func record(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus, stillValid: (String, Record) -> Bool) -> Bool {
        // Saved under the lock: two saves never land in the wrong order.
        records.withLockedValue { records in
            if records[Self.name(bucket, key)] == nil, records.count >= Self.maxEntries {
                records = records.filter { stillValid($0.key, $0.value) }
                if records.count >= Self.maxEntries { return false }
            }
            records[Self.name(bucket, key)] = Record(inode: status.inode, size: status.size)
            save(records)
            return true
        }
    }

    func forget(_ bucket: Bucket, _ key: ObjectKey) {
        transient.withLockedValue { _ = $0.removeValue(forKey: Self.name(bucket, key)) }
        records.withLockedValue { records in
            if records.removeValue(forKey: Self.name(bucket, key)) != nil { save(records) }
        }
    }

    private func save(_ records: [String: Record]) {
        guard let file, let data = try? JSONEncoder().encode(records) else { return }
        try? FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? data.write(to: URL(fileURLWithPath: file), options: .atomic)
    }
}
