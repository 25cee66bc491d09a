import Foundation
import Testing
import TestSupport
@testable import Planner

/// The witness is read by line ranges found with `memchr` (issue 15), not by `split`'s array of
/// slices: the ranges must be `split(separator: 0x0A, omittingEmptySubsequences: false)`'s pieces
/// exactly (empty lines, a missing or doubled final newline, a slice that does not start at 0 as
/// the seal's body does), or a witness would be read differently.
@Suite(.ownThreads) struct WitnessLineRangesTests {
    static func pieces(_ bytes: ArraySlice<UInt8>) -> [Range<Int>] {
        bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { $0.startIndex..<$0.endIndex }
    }

    @Test func rangesAreSplitsPieces() {
        let texts = ["", "\n", "\n\n", "a", "a\n", "a\nb", "a\n\nb\n", "\na", "head\n1\n2\n3\n\"out\" -\n", "x\n\n\n",
                     "é\n\u{0}\n🙂"]
        var cases = texts.map { Array($0.utf8) }
        // Seeded random bytes over a small alphabet, newlines frequent, up to 300 bytes.
        var state: UInt64 = 40
        for _ in 0..<400 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let count = Int(state >> 33) % 300
            cases.append((0..<count).map { i in [0x0A, 0x61, 0x20, 0x0A, 0x22][Int((state >> UInt64(i % 40)) & 7) % 5] })
        }
        for bytes in cases {
            #expect(NoOpWitness.lineRanges(bytes[...]) == Self.pieces(bytes[...]), "\(bytes)")
            // A slice starting past 0, as the body `WitnessSeal.opened` returns.
            let padded = [0x0A, 0x7A] + bytes + [0x21]
            let slice = padded[2..<(padded.count - 1)]
            #expect(NoOpWitness.lineRanges(slice) == Self.pieces(slice), "\(bytes)")
        }
    }
}
