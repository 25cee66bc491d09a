@testable import Builder
import Testing
import TestSupport

/// The engine cache's numbers are read from their bytes (issue 15): `EntryReader.decimal` must
/// be `Int(String(decoding:as:))` on every line, whatever it holds, so a cache file reads as
/// before and anything else still asks the worker.
@Suite(.ownThreads) struct EngineCacheNumberTests {
    @Test func decimalIsTheStandardParser() {
        var lines = ["", "0", "-0", "+0", "7", "-7", "+7", "00012", "-00012", "+", "-", "+-1", "-+1", "--1", "1-", " 1", "1 ", "1\u{0}",
                     "0x10", "1e3", "1.0", "١٢", "９", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
                     "-9223372036854775809", "+9223372036854775807", "18446744073709551615", "99999999999999999999",
                     "-1700000000", "1764750000", "999999999", String(Int.max), String(Int.min), "\u{7F}1", "/", ":"]
        var state: UInt64 = 0xD1B5_4A32_D192_ED03
        func next(_ bound: UInt64) -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (state >> 33) % bound
        }
        let pieces = ["0", "1", "5", "9", "-", "+", "/", ":", " ", "a", "\u{E9}"]
        for _ in 0..<3_000 {
            lines.append((0..<next(22)).map { _ in pieces[Int(next(UInt64(pieces.count)))] }.joined())
            // Any 64-bit pattern, negative ones included.
            let high = UInt(next(1 << 31)) << 33, low = UInt(next(1 << 31)) << 2 | UInt(next(4))
            lines.append(String(Int(bitPattern: high | low)))
        }
        let disagreements = lines.filter { EntryReader.decimal(ArraySlice($0.utf8)) != Int($0) }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(10))")
    }

    /// `number()` as the cache file is read: what `EntryWriter` wrote comes back, and a line too
    /// long, empty or not a number ends the read.
    @Test func numbersRoundTripThroughTheWriter() {
        let values = [0, 1, -1, 42, Int.max, Int.min, 1_764_750_000, -999_999_999]
        var writer = EntryWriter()
        for value in values { writer.number(value) }
        writer.numbers(values)
        var reader = EntryReader(bytes: writer.bytes)
        #expect(values.map { _ in reader.number() } == values.map(Optional.some))
        #expect(reader.numbers() == values)
        #expect(reader.atEnd)
        for garbled in ["\n", "12a\n", "+\n", "000000000000000000001\n"] {
            var bad = EntryReader(bytes: Array(garbled.utf8))
            #expect(bad.number() == nil, "\(garbled)")
        }
    }
}
