import Foundation
import Planner
import Testing
import TestSupport

/// `ContentDigests.digest(_: String)` and `utf8Data` read the text's bytes in place (issue 15):
/// the same digest and bytes as hashing `Data(text.utf8)`, for any text, however it is stored.
@Suite(.ownThreads) struct ContentDigestTextTests {
    static var texts: [String] {
        var texts = ["", "a", "derive-noop-witness/7", "caf\u{E9}", "cafe\u{301}", "\u{0}", "a\u{0}b\n", "\u{1F600}\u{200D}\u{1F4BB}",
                     "\"out/d0/s0.a.jpg\"\n", String(repeating: "x", count: 15), String(repeating: "y", count: 16),
                     String(repeating: "z\u{E9}", count: 5_000)]
        // Stored otherwise than natively: a bridged NSString (UTF-16 inside) and a substring's copy.
        texts.append(NSString(string: "bridged caf\u{E9} \u{1F600}") as String)
        texts.append(String("prefix-and-rest".dropFirst(7)))
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: UInt64) -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (state >> 33) % bound
        }
        for _ in 0..<200 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<next(41) {
                // Mostly ASCII and Latin, some of every plane (surrogates are no scalars: skipped).
                let value = next(4) == 0 ? UInt32(next(0x11_0000)) : UInt32(next(0x250))
                if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
            }
            texts.append(String(scalars))
        }
        return texts
    }

    @Test func theTextsDigestIsItsUTF8BytesDigest() {
        for text in Self.texts {
            #expect(ContentDigests.digest(text) == ContentDigests.digest(Data(text.utf8)), "\(Array(text.utf8))")
            #expect(ContentDigests.utf8Data(text) == Data(text.utf8), "\(Array(text.utf8))")
        }
    }
}
