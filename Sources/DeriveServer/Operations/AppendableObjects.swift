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

    let file: String?
    private let records: NIOLockedValueBox<[String: Record]>

    /// Versions of a key that readers may hold besides the saved one, kept in memory only: the
    /// append's new file, announced before its link (as its metadata is), and the file it
    /// replaced, kept a few seconds after (a reader that opened it before the link looks it up
    /// after). Matched by inode, size and modification time.
    struct Transient: Hashable { var inode: UInt64; var size: Int64; var mtime: Int64; var until: Int }
    private let transient = NIOLockedValueBox<[String: [Transient]]>([:])
    static let retiredSeconds = 10
    static func now() -> Int { Int(Date().timeIntervalSince1970) }

    init(file: String?) {
        self.file = file
        var loaded: [String: Record] = [:]
        if let file, let data = try? ConfinedFolder.readRegularFile(atPath: file, maxBytes: 16 << 20),
           let decoded = try? JSONDecoder().decode([String: Record].self, from: data) {
            loaded = decoded
        }
        records = NIOLockedValueBox(loaded)
    }

    static func name(_ bucket: Bucket, _ key: ObjectKey) -> String { bucket.name + "\0" + key.string }

    func isAppendable(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus) -> Bool {
        if let record = records.withLockedValue({ $0[Self.name(bucket, key)] }), record.inode == status.inode, record.size == status.size { return true }
        let now = Self.now()
        return transient.withLockedValue { $0[Self.name(bucket, key)] ?? [] }.contains {
            $0.inode == status.inode && $0.size == status.size && $0.mtime == status.mtime && $0.until >= now
        }
    }

    /// An append's new file, before its link (called under the key's lock).
    func announce(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus) {
        let entry = Transient(inode: status.inode, size: status.size, mtime: status.mtime, until: Int.max)
        transient.withLockedValue { $0[Self.name(bucket, key), default: []].append(entry) }
    }

    /// After the link (under the key's lock): the saved record now names the linked file; the
    /// replaced one stays valid for `retiredSeconds`.
    func retire(_ bucket: Bucket, _ key: ObjectKey, linked: FileStatus, replaced: FileStatus?) {
        let now = Self.now()
        transient.withLockedValue { table in
            var entries = (table[Self.name(bucket, key)] ?? []).filter { $0.until >= now && !($0.inode == linked.inode && $0.size == linked.size) }
            if let replaced { entries.append(Transient(inode: replaced.inode, size: replaced.size, mtime: replaced.mtime, until: now + Self.retiredSeconds)) }
            table[Self.name(bucket, key)] = entries.isEmpty ? nil : entries
        }
    }

    /// An announced file that was not linked.
    func withdraw(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus) {
        transient.withLockedValue { table in
            let entries = (table[Self.name(bucket, key)] ?? []).filter { !($0.inode == status.inode && $0.size == status.size && $0.mtime == status.mtime) }
            table[Self.name(bucket, key)] = entries.isEmpty ? nil : entries
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
