#if canImport(Glibc)
import Glibc
#endif

extension ObjectKey {
    /// Whether `bytes` would make an `ObjectKey(fileName:)`, checked on the bytes in place (no
    /// array, no key): the no-op check stats every output named by its witness, and building a
    /// key per output to validate it was a fifth of a debug no-op (issue 15).
    /// `ObjectKeyBytesTests` compares it with `init(fileName:)`.
    public static func isFileName(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = bytes.first, let last = bytes.last, first != UInt8(ascii: "/"), last != UInt8(ascii: "/") else { return false }
        var ascii = true
        var start = 0
        for index in 0...bytes.count {
            let byte = index < bytes.count ? bytes[index] : UInt8(ascii: "/")
            if byte == 0 { return false }
            if byte >= 0x80 { ascii = false }
            guard byte == UInt8(ascii: "/") else { continue }
            let length = index - start
            if length == 0 { return false }
            if length <= 2, bytes[start] == 0x2E, length == 1 || bytes[start + 1] == 0x2E { return false }
            start = index + 1
        }
        return ascii || String(validating: bytes, as: UTF8.self) != nil
    }
}

extension ConfinedFolder {
    /// `statuses` of keys given as byte ranges of one buffer (each already checked with
    /// `ObjectKey.isFileName`): the same walk (each run of keys in one folder walks to it once,
    /// `walkToParent`, then `fstatat` without following links), without a key or a name array
    /// per file. `ConfinedKeyBytesTests` compares it with `statuses`.
    public func statuses(_ buffer: UnsafeBufferPointer<UInt8>, keys: [Range<Int>]) -> [FileStatus?] {
        guard let base = buffer.baseAddress else { return keys.map { _ in nil } }
        var current: (folder: Range<Int>, fd: Int32)?
        defer { if let current, current.fd >= 0, current.fd != descriptor { close(current.fd) } }
        var name: [CChar] = []
        var results: [FileStatus?] = []
        results.reserveCapacity(keys.count)
        for range in keys {
            // The last slash of the key: its folder before, its name after.
            var slash = range.upperBound
            while slash > range.lowerBound, buffer[slash - 1] != UInt8(ascii: "/") { slash -= 1 }
            let folder = range.lowerBound..<max(range.lowerBound, slash - 1)
            name.removeAll(keepingCapacity: true)
            for index in slash..<range.upperBound { name.append(CChar(bitPattern: buffer[index])) }
            name.append(0)
            let parent: Int32
            if let current, current.folder.count == folder.count,
               current.folder.isEmpty || memcmp(base + current.folder.lowerBound, base + folder.lowerBound, folder.count) == 0 {
                parent = current.fd
            } else {
                if let current, current.fd >= 0, current.fd != descriptor { close(current.fd) }
                let key = try? ObjectKey(fileName: Array(buffer[range]))
                parent = key.flatMap { try? walkToParent($0, create: false) }?.0 ?? -1
                current = (folder, parent)
            }
            var info = stat()
            guard parent >= 0, fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                results.append(nil)
                continue
            }
            results.append(FileStatus(info))
        }
        return results
    }
}
