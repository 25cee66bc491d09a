import Confinement
import Crypto
import Foundation
import Logging
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// Records follow their files to new inodes (attack 14, F2). A record names the file it was
/// written for by (device, inode, size, mtime); a copy of the project (`cp -a`, tar, rsync,
/// a restore) gives every file a new inode, and the records would match nothing. At start,
/// before anything is served, a key whose records match no file is checked: when the file now
/// at the key has a record's size and its bytes have the record's MD5 (read once), the record
/// (and its appendable row) is moved to that file. Different bytes: the record does not apply.
///
/// Cost: one `stat` per key with records, plus one read of each file whose inode changed and
/// whose size matches (the first start after a copy reads those files once; later starts find
/// them bound). Nothing is read for a key whose file matches its record.
enum MovedRecords {
    struct Outcome: Equatable {
        var rebound = 0
        /// Keys whose file changed size or bytes (the records do not apply), or whose record
        /// has no MD5 to compare (written by a version that did not keep it).
        var unmatched = 0
        var bytesRead: Int64 = 0
    }

    @discardableResult
    static func rebind(_ store: ObjectMetadataStore, buckets: [Bucket], logger: Logger) -> Outcome {
        var outcome = Outcome()
        let started = Date()
        let records: [ObjectMetadataStore.StoredRecord]
        do { records = try store.allRecords() } catch {
            logger.error("checking object metadata records against their files failed: \(error)")
            return outcome
        }
        var byKey: [[UInt8]: [ObjectMetadataStore.StoredRecord]] = [:]
        for record in records { byKey[Array(record.bucket.utf8) + [0] + record.key.bytes, default: []].append(record) }
        var folders: [String: ConfinedFolder?] = [:]
        var moves: [(bucket: String, key: ObjectKey, from: ObjectFileIdentity, to: ObjectFileIdentity)] = []
        for group in byKey.values {
            let first = group[0]
            guard let bucket = buckets.first(where: { $0.name == first.bucket }) else { continue }
            if folders[bucket.name] == nil { folders[bucket.name] = .some(try? ConfinedFolder(path: bucket.path)) }
            guard let folder = folders[bucket.name] ?? nil else { continue }
            guard let fd = try? folder.openForReading(first.key) else { continue }
            defer { close(fd) }
            guard let now = ObjectFileIdentity(descriptor: fd) else { continue }
            if group.contains(where: { $0.identity == now }) { continue }
            let sized = group.filter { $0.identity.size == now.size && $0.metadata.bytesMD5 != nil }
            guard !sized.isEmpty, let md5 = md5(fd) else { outcome.unmatched += 1; continue }
            outcome.bytesRead += now.size
            guard let match = sized.first(where: { $0.metadata.bytesMD5 == md5 }) else { outcome.unmatched += 1; continue }
            moves.append((first.bucket, first.key, match.identity, now))
        }
        do {
            try store.rebind(moves)
            outcome.rebound = moves.count
        } catch {
            logger.error("moving \(moves.count) object metadata records to their copied files failed: \(error); they are tried again at the next start")
        }
        if outcome.rebound > 0 {
            let seconds = String(format: "%.1f", Date().timeIntervalSince(started))
            logger.notice("\(outcome.rebound) object metadata \(outcome.rebound == 1 ? "record follows its file" : "records follow their files") to a new inode (the project was copied or restored: same key, size and bytes; \(outcome.bytesRead) bytes read in \(seconds) s)")
        }
        if outcome.unmatched > 0 {
            logger.notice("\(outcome.unmatched) \(outcome.unmatched == 1 ? "key has" : "keys have") object metadata records that describe other bytes than the file now there (replaced or edited behind derive serve): those objects answer default headers")
        }
        return outcome
    }

    /// The upper-case hex MD5 of the open file `fd` (read in chunks); nil when it cannot be read.
    static func md5(_ fd: Int32) -> String? {
        var hasher = Insecure.MD5()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var position: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, position) }
            if count < 0 { if errno == EINTR { continue }; return nil }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            position += off_t(count)
        }
        return hasher.finalize().map { String(format: "%02X", $0) }.joined()
    }
}
