import Confinement
#if canImport(Glibc)
import Glibc
#endif

/// Paths kept as their UTF-8 bytes in one buffer, each ending where `ends` says: the witness's
/// outputs as read (issue 15), stat'ed from the bytes (`Disk.stats(_:in:)`) without a String
/// per output, made into Strings only when a slower path (a refresh, a touched-only plan) asks.
public struct PathBytes: Sendable, Equatable {
    public private(set) var bytes: [UInt8] = []
    public private(set) var ends: [Int] = []

    public init() {}

    public init(_ paths: [String]) {
        bytes.reserveCapacity(paths.reduce(0) { $0 + $1.utf8.count })
        ends.reserveCapacity(paths.count)
        for path in paths { append(path) }
    }

    public var count: Int { ends.count }

    /// The bytes of path `index`, as a range of `bytes`.
    public func range(_ index: Int) -> Range<Int> { (index == 0 ? 0 : ends[index - 1])..<ends[index] }

    public func string(_ index: Int) -> String { String(decoding: bytes[range(index)], as: UTF8.self) }

    /// Every path as a String, in order.
    public var strings: [String] { (0..<count).map(string) }

    mutating func append(_ path: String) {
        bytes.append(contentsOf: path.utf8)
        ends.append(bytes.count)
    }

    mutating func append(_ path: ArraySlice<UInt8>) {
        bytes.append(contentsOf: path)
        ends.append(bytes.count)
    }

    mutating func reserve(paths: Int, bytes total: Int) {
        ends.reserveCapacity(paths)
        bytes.reserveCapacity(total)
    }
}

extension Disk {
    /// `stats` of the paths `indices` of `paths`, in order. A real disk stats them from their
    /// bytes (`RealDisk`); any other disk as Strings.
    public func stats(_ paths: PathBytes, in indices: Range<Int>) -> [FileStat?] {
        stats(indices.map(paths.string))
    }
}

extension RealDisk {
    /// `stats(_:)` from the paths' bytes: each path's root and key found on the bytes in place
    /// (`rootOfBytes`, as `confinedIndex` finds them from a String), each root's keys stat'ed from
    /// its descriptor with `ConfinedFolder.statuses(_:keys:)`; a path under no root is stat'ed
    /// as `stat(_:)` does. `PathBytesStatsTests` compares it with `stats(_:)`.
    public func stats(_ paths: PathBytes, in indices: Range<Int>) -> [FileStat?] {
        var results = [FileStat?](repeating: nil, count: indices.count)
                var groups = [(indices: [Int], keys: [Range<Int>])](repeating: ([], []), count: roots.count)
        paths.bytes.withUnsafeBufferPointer { buffer in
            for index in indices {
                let range = paths.range(index)
                if let (root, key) = Self.rootOfBytes(buffer, range, rootBytes: rootBytes) {
                    groups[root].indices.append(index - indices.lowerBound)
                    groups[root].keys.append(key)
                } else {
                    results[index - indices.lowerBound] = stat(paths.string(index))
                }
            }
            for (root, group) in zip(roots, groups) where !group.indices.isEmpty {
                guard let folder = try? openRoot(root, create: false) else { continue }
                for (index, status) in zip(group.indices, folder.statuses(buffer, keys: group.keys)) { results[index] = status.map(FileStat.init) }
            }
        }
        return results
    }

    /// The first root (in `rootBytes`' order) whose folder holds the path at `range` of `buffer`
    /// with a valid key below it, and that key's range: `confinedIndex` on bytes.
    static func rootOfBytes(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, rootBytes: [[UInt8]]) -> (root: Int, key: Range<Int>)? {
        guard let base = buffer.baseAddress else { return nil }
        for (index, prefix) in rootBytes.enumerated()
        where range.count > prefix.count + 1 && buffer[range.lowerBound + prefix.count] == UInt8(ascii: "/") {
            guard prefix.isEmpty || prefix.withUnsafeBufferPointer({ memcmp($0.baseAddress!, base + range.lowerBound, prefix.count) == 0 }) else { continue }
            let key = (range.lowerBound + prefix.count + 1)..<range.upperBound
            guard ObjectKey.isFileName(UnsafeBufferPointer(rebasing: buffer[key])) else { continue }
            return (index, key)
        }
        return nil
    }
}
