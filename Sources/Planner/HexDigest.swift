import Crypto
import Foundation

/// A digest as plans hold it (issue 15, memory): a SHA-256 in lowercase hex (what Derive writes
/// everywhere) is kept as its 32 bytes inline, where a `String` of 64 characters costs a heap
/// block of 96 bytes besides its 16 (at 200 000 derivatives, an action key each and a source
/// digest per source: about 34 MB). Any other text (a record of an older or damaged state, a
/// test's stand-in) is kept as the string itself, so `text` gives back exactly what it was
/// made from, and two digests are equal exactly when their texts are.
public struct HexDigest: Sendable, Hashable, CustomStringConvertible {
    private enum Storage: Sendable, Hashable {
        /// The 32 bytes, big-endian in four words: the hex text read left to right.
        case sha256(UInt64, UInt64, UInt64, UInt64)
        /// Text that is not 64 lowercase hex digits, as it was given.
        case other(String)
    }

    private let storage: Storage

    public init(_ text: String) {
        storage = Self.words(text).map { .sha256($0.0, $0.1, $0.2, $0.3) } ?? .other(text)
    }

    /// The SHA-256 of `data`, without making its hex text.
    public static func sha256(_ data: Data) -> HexDigest { HexDigest(SHA256.hash(data: data)) }

    /// The SHA-256 of `text`'s UTF-8 bytes.
    public static func sha256(_ text: String) -> HexDigest { sha256(Data(text.utf8)) }

    init(_ digest: SHA256.Digest) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        digest.withUnsafeBytes { bytes in
            func word(_ at: Int) -> UInt64 {
                var value: UInt64 = 0
                for index in at..<(at + 8) { value = value << 8 | UInt64(bytes[index]) }
                return value
            }
            words = (word(0), word(8), word(16), word(24))
        }
        storage = .sha256(words.0, words.1, words.2, words.3)
    }

    /// The text it was made from (for a SHA-256, its 64 lowercase hex digits).
    public var text: String {
        switch storage {
        case .other(let text): return text
        case .sha256(let a, let b, let c, let d):
            return String(unsafeUninitializedCapacity: 64) { buffer in
                func put(_ word: UInt64, at start: Int) {
                    for nibble in 0..<16 { buffer[start + nibble] = Self.hexDigits[Int((word >> UInt64(60 - 4 * nibble)) & 0xF)] }
                }
                put(a, at: 0); put(b, at: 16); put(c, at: 32); put(d, at: 48)
                return 64
            }
        }
    }

    public var description: String { text }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The four words of 64 lowercase hex digits; nil for any other text (uppercase digits too,
    /// which would not read back as written).
    private static func words(_ text: String) -> (UInt64, UInt64, UInt64, UInt64)? {
        guard text.utf8.count == 64 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var index = 0
        for byte in text.utf8 {
            let value: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = UInt64(byte - UInt8(ascii: "a") + 10)
            default: return nil
            }
            switch index >> 4 {
            case 0: words.0 = words.0 << 4 | value
            case 1: words.1 = words.1 << 4 | value
            case 2: words.2 = words.2 << 4 | value
            default: words.3 = words.3 << 4 | value
            }
            index += 1
        }
        return words
    }
}
