/// An object key as OSS defines it: bytes that are valid UTF-8, split on the byte `/`.
///
/// Keys are validated on their bytes, never on `Character`s: Swift compares grapheme clusters, so
/// `..` followed by a combining mark is a different `Character` sequence from `..` while the file
/// system sees the two dots. Every check here works on the UTF-8 bytes.
public struct ObjectKey: Hashable, Sendable, CustomStringConvertible {
    /// The key's UTF-8 bytes.
    public let bytes: [UInt8]

    /// Longest key, in bytes (OSS: 1 023).
    public static let maxBytes = 1_023

    public enum Problem: Error, Hashable, Sendable, CustomStringConvertible {
        case empty
        case tooLong(Int)
        case invalidUTF8
        case leadingSlash
        case trailingSlash
        case controlCharacter
        case badPercentEscape
        case emptySegment
        case dotSegment

        public var description: String {
            switch self {
            case .empty: return "the key is empty"
            case .tooLong(let count): return "the key is \(count) bytes long; at most \(ObjectKey.maxBytes) are allowed"
            case .invalidUTF8: return "the key is not valid UTF-8"
            case .leadingSlash: return "the key starts with '/'"
            case .trailingSlash: return "the key ends with '/' (a folder, not an object)"
            case .controlCharacter: return "the key contains a NUL or another control character"
            case .badPercentEscape: return "the key has a malformed percent escape"
            case .emptySegment: return "the key has an empty segment ('//')"
            case .dotSegment: return "the key has a '.' or '..' segment"
            }
        }
    }

    /// Validates `bytes` as a key: UTF-8, no control bytes, no empty, `.` or `..` segments.
    public init(bytes: [UInt8]) throws(Problem) {
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count <= Self.maxBytes else { throw .tooLong(bytes.count) }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .invalidUTF8 }
        // C0 controls and DEL: NUL ends C strings, newlines break logs and line-based files.
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { throw .controlCharacter }
        guard bytes.first != UInt8(ascii: "/") else { throw .leadingSlash }
        guard bytes.last != UInt8(ascii: "/") else { throw .trailingSlash }
        for segment in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if segment.isEmpty { throw .emptySegment }
            if segment.elementsEqual([0x2E]) || segment.elementsEqual([0x2E, 0x2E]) { throw .dotSegment }
        }
        self.bytes = bytes
    }

    /// A key as a file system names a file below a bucket folder: the same rules as `init(bytes:)`
    /// except that control characters other than NUL are allowed (a local file may be called
    /// "IMG\t1.jpg"); Derive's lock and index escape them. Still no `.`, `..` or empty segments.
    public init(fileName bytes: [UInt8]) throws(Problem) {
        guard !bytes.isEmpty else { throw .empty }
        // ASCII is valid UTF-8: only other names pay for building a String to validate (every
        // source and output of a no-op build comes here; 6 % of its instructions at 2 000).
        guard bytes.allSatisfy({ $0 < 0x80 }) || String(validating: bytes, as: UTF8.self) != nil else { throw .invalidUTF8 }
        guard !bytes.contains(0) else { throw .controlCharacter }
        guard bytes.first != UInt8(ascii: "/") else { throw .leadingSlash }
        guard bytes.last != UInt8(ascii: "/") else { throw .trailingSlash }
        // The segments in order, without an array of them: empty, "." and ".." are refused.
        var start = 0
        for end in 0...bytes.count where end == bytes.count || bytes[end] == UInt8(ascii: "/") {
            if end == start { throw .emptySegment }
            if end - start <= 2, bytes[start..<end].allSatisfy({ $0 == 0x2E }) { throw .dotSegment }
            start = end + 1
        }
        self.bytes = bytes
    }

    /// Validates a key given as a Swift string (its UTF-8 bytes).
    public init(_ string: String) throws(Problem) {
        try self.init(bytes: Array(string.utf8))
    }

    /// Decodes `%XX` escapes to bytes first (a URL path or query value), then validates.
    public init(percentEncoded text: Substring) throws(Problem) {
        try self.init(bytes: try Self.percentDecode(Array(text.utf8)))
    }

    /// `%XX` → byte; any other byte stays as it is. A `%` not followed by two hex digits is an error.
    public static func percentDecode(_ input: [UInt8]) throws(Problem) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < input.count, let high = hexValue(input[index + 1]), let low = hexValue(input[index + 2]) else {
                    throw .badPercentEscape
                }
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(byte)
                index += 1
            }
        }
        return output
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The key as a string (always valid: the bytes were checked to be UTF-8).
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    public var description: String { string }

    /// The segments between `/` bytes, each non-empty and neither `.` nor `..`.
    public var segments: [ArraySlice<UInt8>] {
        bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    }

    /// Names no key passes through: version control's folders (a `.git` in a published folder
    /// holds the remote's address with its token and the whole history: attack 50c's L1) and
    /// Derive's state folder (`ProjectMarkers.stateFolderName`). Discovery skips them too.
    public static let unservedNames: Set<String> = [".git", ".hg", ".svn", ".bzr", ".jj", ".pijul", ".derive"]

    /// Whether a part of the key is one of `unservedNames` (a folder on its way, or its file):
    /// never an object, answered, listed or written by serve, signed or not.
    public var isUnserved: Bool { segments.contains(where: Self.isUnservedName) }

    /// Whether one part of a key (a folder entry's name) is one of `unservedNames`.
    public static func isUnservedName(_ name: some Collection<UInt8>) -> Bool {
        name.first == UInt8(ascii: ".") && unservedNames.contains(String(decoding: name, as: UTF8.self))
    }

    /// Unicode scalars of the key, for glob matching: never grapheme clusters.
    public var scalars: [Unicode.Scalar] { Array(string.unicodeScalars) }
}
