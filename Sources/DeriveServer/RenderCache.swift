import Confinement
import Crypto
import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Rendered answers on disk, keyed by action key (hex SHA-256), capped in bytes with
/// least-recently-used eviction. The folder must lie outside every bucket (the service checks it
/// at start), so no request can write an entry. An entry is `<content type> <MD5 hex>\n<bytes>`
/// (the MD5 is the answer's ETag, so a hit needs no hashing); an entry whose first line is not
/// a content type a render produces and an MD5 is ignored and removed.
final class RenderCache: Sendable {
    let folder: String
    let maxBytes: Int
    private struct Entry { var size: Int; var lastUse: UInt64 }
    private struct State { var entries: [String: Entry] = [:]; var total = 0; var clock: UInt64 = 0; var confined: ConfinedFolder? }
    private let state: NIOLockedValueBox<State>

    static let contentTypes = ServeStateCleanup.cacheContentTypes

    init(folder: String, maxBytes: Int) {
        self.folder = folder
        self.maxBytes = maxBytes
        var initial = State()
        // Renders of private objects for signed callers: the user's alone (attack 23's F3).
        try? StateFiles.createPrivateFolder(folder)
        initial.confined = try? ConfinedFolder(path: folder, ownerOnly: true)
        // Entries from an earlier run, oldest first by modification time.
        var found: [(String, Int, Date)] = []
        for prefix in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where prefix.count == 2 {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder + "/" + prefix)) ?? [] where Self.isKey(name) {
                let attributes = try? FileManager.default.attributesOfItem(atPath: folder + "/" + prefix + "/" + name)
                found.append((name, (attributes?[.size] as? NSNumber)?.intValue ?? 0, attributes?[.modificationDate] as? Date ?? .distantPast))
            }
        }
        for (name, size, _) in found.sorted(by: { $0.2 < $1.2 }) {
            initial.clock += 1
            initial.entries[name] = Entry(size: size, lastUse: initial.clock)
            initial.total += size
        }
        state = NIOLockedValueBox(initial)
        evict()
    }

    static func isKey(_ name: String) -> Bool {
        name.utf8.count == 64 && name.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    private func objectKey(_ key: String) -> ObjectKey? { try? ObjectKey(String(key.prefix(2)) + "/" + key) }

    /// Bytes held now.
    var totalBytes: Int { state.withLockedValue { $0.total } }

    /// The cached answer for `key`: its content type and the byte range of the image.
    func lookup(_ key: String) -> (contentType: String, body: OpenFile)? {
        guard Self.isKey(key), let objectKey = objectKey(key), let confined = state.withLockedValue({ $0.confined }),
              let fd = try? confined.openForReading(objectKey) else { return nil }
        var info = stat()
        fstat(fd, &info)
        var head = [UInt8](repeating: 0, count: 64)
        let count = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 64, 0) }
        guard count > 0, let newline = head[0..<count].firstIndex(of: 0x0A),
              case let line = String(decoding: head[..<newline], as: UTF8.self).split(separator: " "), line.count == 2,
              case let type = String(line[0]), Self.contentTypes.contains(type), let md5 = Self.bytes(hex: line[1]), md5.count == 16 else {
            close(fd)
            remove(key)
            return nil
        }
        state.withLockedValue {
            $0.clock += 1
            if $0.entries[key] == nil { $0.total += Int(info.st_size) }
            $0.entries[key] = Entry(size: Int(info.st_size), lastUse: $0.clock)
        }
        return (type, OpenFile(descriptor: fd, offset: Int64(newline + 1), length: Int(info.st_size) - newline - 1, md5: md5))
    }

    static func bytes(hex: Substring) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// Stores an answer, then evicts the least recently used entries until the cache fits.
    func store(_ key: String, contentType: String, bytes: Data) {
        guard Self.isKey(key), Self.contentTypes.contains(contentType), let objectKey = objectKey(key),
              let confined = state.withLockedValue({ $0.confined }) else { return }
        let entry = Data((contentType + " " + ObjectService.hex(Insecure.MD5.hash(data: bytes)) + "\n").utf8) + bytes
        // An answer larger than the whole cache is not kept.
        guard entry.count <= maxBytes else { return }
        guard (try? confined.writeAtomically(entry, to: objectKey, durable: false)) != nil else { return }
        state.withLockedValue {
            $0.clock += 1
            $0.total += entry.count - ($0.entries[key]?.size ?? 0)
            $0.entries[key] = Entry(size: entry.count, lastUse: $0.clock)
        }
        evict()
    }

    private func remove(_ key: String) {
        guard let objectKey = objectKey(key), let confined = state.withLockedValue({ $0.confined }) else { return }
        _ = try? confined.removeFile(objectKey)
        state.withLockedValue { if let old = $0.entries.removeValue(forKey: key) { $0.total -= old.size } }
    }

    private func evict() {
        while true {
            let victim: String? = state.withLockedValue { state in
                guard state.total > maxBytes, let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) else { return nil }
                state.entries[oldest.key] = nil
                state.total -= oldest.value.size
                return oldest.key
            }
            guard let victim, let objectKey = objectKey(victim), let confined = state.withLockedValue({ $0.confined }) else { return }
            _ = try? confined.removeFile(objectKey)
        }
    }
}
