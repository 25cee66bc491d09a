#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A path or key as the file system names a file: compared, hashed and ordered by its UTF-8 bytes.
///
/// Swift's `String` compares and hashes by canonical equivalence: `café.jpg` spelled with `é`
/// (NFC, `caf\xC3\xA9.jpg`) equals `cafe\u{301}.jpg` (NFD), and `<` orders the two as one. On
/// Linux they are two files, so a dictionary or a set keyed by a path `String` takes one file
/// for the other (one source planned, its outputs written once; one lock line vouching for the
/// other file). Every map or set that identifies a file keys by this instead (through
/// `PathDictionary` and `PathSet`, which keep `String` at their edges), and every order of
/// paths is this byte order, so the lock, the index and the plan list both names, each once.
public struct PathKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let string: String

    public init(_ string: String) { self.string = string }

    public var description: String { string }

    public static func == (a: PathKey, b: PathKey) -> Bool { same(a.string, b.string) }
    public static func < (a: PathKey, b: PathKey) -> Bool { ordered(a.string, b.string) }

    public func hash(into hasher: inout Hasher) {
        var string = string
        string.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(0xFF as UInt8)   // never in UTF-8: ends the name
    }

    /// Whether two paths name one file: the same bytes (never canonical equivalence).
    public static func same(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return compare(a, b).map { $0 == 0 } ?? sameSlowly(a, b)
    }

    /// Byte order (as `LC_ALL=C sort`), total on bytes: two spellings of one name keep one order.
    public static func ordered(_ a: String, _ b: String) -> Bool { compare(a, b).map { $0 < 0 } ?? orderedSlowly(a, b) }

    /// `same` and `ordered` element by element through the UTF-8 views: the definitions the
    /// memcmp paths above must agree with (`PathKeyTests` runs both), and the way taken for a
    /// string without contiguous UTF-8 (a bridged one). Element by element they cost a fifth
    /// of a 2 000-output no-op, in the sorts of its path lists (issue 15).
    public static func sameSlowly(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }
    public static func orderedSlowly(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// The sign of the byte comparison of `a` and `b` (a proper prefix first), by memcmp over
    /// their UTF-8 storage; nil when either has none that is contiguous.
    public static func compare(_ a: String, _ b: String) -> Int? {
        a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y -> Int in
                let common = Swift.min(x.count, y.count)
                if common > 0, let p = x.baseAddress, let q = y.baseAddress {
                    let sign = memcmp(p, q, common)
                    if sign != 0 { return sign < 0 ? -1 : 1 }
                }
                return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
            }
        } ?? nil
    }
}

extension Sequence where Element == String {
    /// The paths in byte order (`PathKey.ordered`), never `String`'s canonical order.
    /// Sorted as a concrete `[String]`: `sorted(by:)` on the generic `Self` ran unspecialized
    /// across modules (an indirect call and element copies per comparison), a fifth of a
    /// 2 000-output no-op (issue 15).
    ///
    /// Each path is sorted with its first 16 bytes as two big-endian numbers (zero after its
    /// end), compared before any memcmp: most comparisons of a folder listing are settled by
    /// two integer compares (the listing's sort was a tenth of a 2 000-output no-op). Exact:
    /// the first differing byte among the 16 decides as byte order does, a path that ends
    /// first reads as zeros and is a proper prefix (first, as in byte order), and equal
    /// numbers fall back to `PathKey.ordered` on the whole paths (`PathKeyTests`).
    public func sortedByBytes() -> [String] {
        let paths = Array(self)
        guard paths.count > 1 else { return paths }
        var order: [(high: UInt64, low: UInt64, index: Int)] = []
        order.reserveCapacity(paths.count)
        for (index, path) in paths.enumerated() {
            var high: UInt64 = 0, low: UInt64 = 0, count = 0
            for byte in path.utf8 {
                if count < 8 { high |= UInt64(byte) << (56 - 8 * count) } else { low |= UInt64(byte) << (56 - 8 * (count - 8)) }
                count += 1
                if count == 16 { break }
            }
            order.append((high, low, index))
        }
        order.sort { a, b in
            if a.high != b.high { return a.high < b.high }
            if a.low != b.low { return a.low < b.low }
            return PathKey.ordered(paths[a.index], paths[b.index])
        }
        return order.map { paths[$0.index] }
    }
}

/// A set of paths compared by their bytes (`PathKey`), with `String` at its edges.
public struct PathSet: Sequence, Hashable, Sendable, ExpressibleByArrayLiteral {
    public private(set) var keys: Set<PathKey>

    public init() { keys = [] }
    public init(arrayLiteral elements: String...) { keys = Set(elements.map(PathKey.init)) }
    public init<S: Sequence>(_ paths: S) where S.Element == String { keys = Set(paths.map(PathKey.init)) }
    public init(keys: Set<PathKey>) { self.keys = keys }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }
    public func contains(_ path: String) -> Bool { keys.contains(PathKey(path)) }

    @discardableResult
    public mutating func insert(_ path: String) -> (inserted: Bool, memberAfterInsert: String) {
        let (inserted, member) = keys.insert(PathKey(path))
        return (inserted, member.string)
    }
    @discardableResult
    public mutating func remove(_ path: String) -> String? { keys.remove(PathKey(path))?.string }
    public mutating func removeAll() { keys.removeAll() }

    public func union<S: Sequence>(_ other: S) -> PathSet where S.Element == String {
        var result = self
        result.formUnion(other)
        return result
    }
    public mutating func formUnion<S: Sequence>(_ other: S) where S.Element == String {
        for path in other { keys.insert(PathKey(path)) }
    }
    public func subtracting<S: Sequence>(_ other: S) -> PathSet where S.Element == String {
        var result = self
        result.subtract(other)
        return result
    }
    public mutating func subtract<S: Sequence>(_ other: S) where S.Element == String {
        for path in other { keys.remove(PathKey(path)) }
    }
    public func intersection<S: Sequence>(_ other: S) -> PathSet where S.Element == String {
        PathSet(keys: keys.intersection(other.lazy.map(PathKey.init)))
    }
    public func isDisjoint<S: Sequence>(with other: S) -> Bool where S.Element == String {
        !other.contains { keys.contains(PathKey($0)) }
    }
    public func isSubset(of other: PathSet) -> Bool { keys.isSubset(of: other.keys) }
    public func filter(_ isIncluded: (String) throws -> Bool) rethrows -> PathSet {
        PathSet(keys: try keys.filter { try isIncluded($0.string) })
    }

    /// In byte order: shadows `Sequence.sorted()`, whose `String` order is canonical.
    public func sorted() -> [String] { keys.sorted().map(\.string) }

    public func makeIterator() -> LazyMapSequence<Set<PathKey>, String>.Iterator { keys.lazy.map(\.string).makeIterator() }
}

/// A map from paths compared by their bytes (`PathKey`), with `String` at its edges: a drop-in for
/// `[String: Value]` wherever the key names a file.
public struct PathDictionary<Value>: Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var storage: [PathKey: Value]

    public init() { storage = [:] }
    public init(storage: [PathKey: Value]) { self.storage = storage }
    /// A repeated path keeps its last value. A loop, not `Dictionary(_:uniquingKeysWith:)`: that
    /// generic initializer had the Swift runtime look up a `Sequence` conformance (a scan of every
    /// conformance in the binary) for each value type, even for the empty literal `[:]` (issue 15).
    public init(dictionaryLiteral elements: (String, Value)...) {
        storage = [:]
        guard !elements.isEmpty else { return }
        storage.reserveCapacity(elements.count)
        for (path, value) in elements { storage[PathKey(path)] = value }
    }
    public init<S: Sequence>(uniqueKeysWithValues pairs: S) where S.Element == (String, Value) {
        storage = Dictionary(uniqueKeysWithValues: pairs.lazy.map { (PathKey($0.0), $0.1) })
    }
    public init<S: Sequence>(_ pairs: S, uniquingKeysWith combine: (Value, Value) throws -> Value) rethrows where S.Element == (String, Value) {
        storage = try Dictionary(pairs.lazy.map { (PathKey($0.0), $0.1) }, uniquingKeysWith: combine)
    }

    // `_modify`, not `set`: `groups[root, default: []].append(x)` then mutates the value in
    // place. With get/set it copied the whole value on every append: `RealDisk.stats` grouping
    // 2 000 paths cost 250 M instructions, two thirds of a 2 000-output no-op (issue 15).
    public subscript(path: String) -> Value? {
        get { storage[PathKey(path)] }
        _modify { yield &storage[PathKey(path)] }
    }
    public subscript(path: String, default value: @autoclosure () -> Value) -> Value {
        get { storage[PathKey(path), default: value()] }
        _modify { yield &storage[PathKey(path), default: value()] }
    }

    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }
    public var keys: PathSet { PathSet(keys: Set(storage.keys)) }
    public var values: Dictionary<PathKey, Value>.Values { storage.values }

    @discardableResult
    public mutating func removeValue(forKey path: String) -> Value? { storage.removeValue(forKey: PathKey(path)) }
    @discardableResult
    public mutating func updateValue(_ value: Value, forKey path: String) -> Value? { storage.updateValue(value, forKey: PathKey(path)) }
    public mutating func removeAll() { storage.removeAll() }

    public func filter(_ isIncluded: ((key: String, value: Value)) throws -> Bool) rethrows -> PathDictionary {
        PathDictionary(storage: try storage.filter { try isIncluded((key: $0.key.string, value: $0.value)) })
    }
    public func mapValues<T>(_ transform: (Value) throws -> T) rethrows -> PathDictionary<T> {
        PathDictionary<T>(storage: try storage.mapValues(transform))
    }
    public func compactMapValues<T>(_ transform: (Value) throws -> T?) rethrows -> PathDictionary<T> {
        PathDictionary<T>(storage: try storage.compactMapValues(transform))
    }

    /// The entries in byte order of their paths.
    public func sortedByKey() -> [(key: String, value: Value)] {
        storage.sorted { $0.key < $1.key }.map { (key: $0.key.string, value: $0.value) }
    }

    public func makeIterator() -> LazyMapSequence<[PathKey: Value], (key: String, value: Value)>.Iterator {
        storage.lazy.map { (key: $0.key.string, value: $0.value) }.makeIterator()
    }
}

extension PathDictionary: Sendable where Value: Sendable {}
extension PathDictionary: Equatable where Value: Equatable {}
extension PathDictionary: Hashable where Value: Hashable {}

extension PathKey {
    /// `bucket/key` split at its first `/` byte; nil without one. Never on `Character`s: a `/`
    /// followed by a combining mark (`out/\u{301}mark.jpg`) is one `Character`, which is not `/`.
    public static func split(_ path: String) -> (bucket: String, key: String)? {
        let bytes = path.utf8
        guard let slash = bytes.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        return (String(decoding: bytes[..<slash], as: UTF8.self), String(decoding: bytes[bytes.index(after: slash)...], as: UTF8.self))
    }

    /// The bucket of `bucket/key` (all of it without a `/`).
    public static func bucket(of path: String) -> String { split(path)?.bucket ?? path }

    /// The key of `bucket/key` (empty without a `/`).
    public static func key(of path: String) -> String { split(path)?.key ?? "" }

    /// A path split at its last `/` byte into its folder and its name; nil without one.
    public static func splitLast(_ path: String) -> (folder: String, name: String)? {
        let bytes = path.utf8
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        return (String(decoding: bytes[..<slash], as: UTF8.self), String(decoding: bytes[bytes.index(after: slash)...], as: UTF8.self))
    }

    /// `path` below `folder` (`folder/…`, by bytes): the rest after the `/`, or nil.
    public static func below(_ folder: String, _ path: String) -> String? {
        let prefix = Array((folder + "/").utf8)
        guard path.utf8.count > prefix.count, path.utf8.starts(with: prefix) else { return nil }
        return String(decoding: path.utf8.dropFirst(prefix.count), as: UTF8.self)
    }
}
