import Foundation
import Testing
import TestSupport
@testable import Confinement

/// `ObjectKey.isFileName` checks a key's bytes in place for the no-op's stats (issue 15): it must
/// accept exactly the byte strings `ObjectKey(fileName:)` accepts, or a path would be stat'ed
/// from its bucket's descriptor when it is no key there (a `..` part), or not when it is one.
@Suite(.ownThreads) struct ObjectKeyBytesTests {
    static func slow(_ bytes: [UInt8]) -> Bool { (try? ObjectKey(fileName: bytes)) != nil }
    static func fast(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBufferPointer { ObjectKey.isFileName($0) } }

    @Test func acceptsExactlyTheKeysInitFileNameAccepts() {
        let texts = ["", "a", "/", "//", "a/", "/a", "a//b", ".", "..", "...", "./a", "a/.", "a/..", "../a", "a/../b", "a/./b",
                     ".a", "a.", "..a", "a..", "a/.b/c", "a/b..", "d0/s1.a.jpg", "é/ü.jpg", "IMG\t1.jpg", "a\u{0}b", "🙂",
                     "a/b/c/d/e/f", String(repeating: "x", count: 2_000), "a/\u{7F}", "\"q\"\\b"]
        var cases = texts.map { Array($0.utf8) }
        cases += [[0xFF], [0x61, 0xC3], [0xC3, 0xA9], [0x2F, 0x2E], [0x2E, 0x2E, 0x2F], [0xE2, 0x82], [0x61, 0x2F, 0xFE, 0x62]]
        // Seeded random bytes over an alphabet of slashes, dots, NUL, ASCII and bytes of UTF-8 sequences.
        var random = SplitMix(seed: 41)
        let alphabet: [UInt8] = [0x2F, 0x2E, 0x2E, 0x00, 0x61, 0x62, 0xC3, 0xA9, 0xFF, 0x2F, 0x2E, 0x09]
        for _ in 0..<4_000 {
            let count = Int(random.next() % 9)
            cases.append((0..<count).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
        }
        for bytes in cases {
            #expect(Self.fast(bytes) == Self.slow(bytes), "\(bytes)")
        }
        #expect(Self.fast(Array("d0/s1.a.jpg".utf8)) && !Self.fast(Array("a/../b".utf8)))
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
