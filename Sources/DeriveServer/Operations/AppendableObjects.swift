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
        guard let record = records.withLockedValue({ $0[Self.name(bucket, key)] }) else { return false }
        return record.inode == status.inode && record.size == status.size
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
