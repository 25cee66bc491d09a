import Foundation
@testable import Planner
import Testing
import TestSupport

/// Issue 15: `noop-witness.inputs` is read whenever the witness fails (a touched or edited
/// source), one line per source. Its lines are parsed from their bytes (no `String` per field,
/// no `Int64(String)` per number); the answer must be the one the `String` parse gave, for every
/// line, well formed or not.
@Suite(.ownThreads) struct TouchedInputsParseTests {
    /// The parse as it was (a `String` per field), kept here as the reference.
    static func reference(_ lines: ArraySlice<ArraySlice<UInt8>>) -> (files: [String], stats: [FileStat?], digests: [String: String])? {
        var files: [String] = [], stats: [FileStat?] = [], digests: [String: String] = [:]
        for line in lines {
            var fields: [String] = []
            var rest = line[...]
            while fields.count < 5, let space = rest.firstIndex(of: 0x20) {
                fields.append(String(decoding: rest[rest.startIndex..<space], as: UTF8.self))
                rest = rest[(space + 1)...]
            }
            guard fields.count == 5, let file = NoOpWitness.unquote(rest) else { return nil }
            files.append(file)
            if fields[1] == "-" {
                stats.append(nil)
                continue
            }
            guard let size = Int64(fields[1]), let mtime = Int64(fields[2]), let ctime = Int64(fields[3]),
                  let inode = UInt64(fields[4]) else { return nil }
            stats.append(FileStat(size: size, mtime: mtime, inode: inode, ctime: ctime))
            if fields[0] != "-" { digests[file] = fields[0] }
        }
        return (files, stats, digests)
    }

    static func agree(_ text: String, _ note: String) {
        let lines = ArraySlice(Array(text.utf8).split(separator: 0x0A, omittingEmptySubsequences: true))
        let fast = TouchedInputs.entries(lines), slow = reference(lines)
        #expect((fast == nil) == (slow == nil), "\(note): \(text.debugDescription) parsed \(fast == nil ? "nil" : "a record") vs \(slow == nil ? "nil" : "a record")")
        guard let fast, let slow else { return }
        #expect(fast.files == slow.files, "\(note)")
        #expect(fast.stats == slow.stats, "\(note)")
        var digests: [String: String] = [:]
        for (file, digest) in fast.digests { digests[file] = digest }
        #expect(digests == slow.digests, "\(note)")
    }

    /// Numbers as `Int64(String)` and `UInt64(String)` read them, edge by edge.
    @Test func numbersAreReadAsTheStringParseReadsThem() {
        let fields = ["0", "7", "007", "123456789012345678", "999999999999999999", "1234567890123456789", "9223372036854775807",
                      "9223372036854775808", "18446744073709551615", "18446744073709551616", "-0", "-1", "+1", "+", "-", "",
                      "1a", "a1", " 1", "1 ", "١٢", "1.0", "0x10", "00000000000000000001", "-9223372036854775808"]
        for field in fields {
            let bytes = ArraySlice(Array(field.utf8))
            #expect(TouchedInputs.integer(bytes, as: Int64.self) == Int64(field), "\(field.debugDescription) as Int64")
            #expect(TouchedInputs.integer(bytes, as: UInt64.self) == UInt64(field), "\(field.debugDescription) as UInt64")
        }
    }

    /// Whole records, well formed and not, and seeded random mutations of them.
    @Test func linesAreReadAsTheStringParseReadsThem() {
        let digest = String(repeating: "ab", count: 32)
        let good = [
            "\(digest) 1234 1796000000123456789 1796000000987654321 4242 \"/p/src/d1/s1.jpg\"",
            "- 12 1796000000123456789 1796000000987654321 4242 \"/p/src/a b.jpg\"",
            "- - - - - \"/p/fonts/missing.ttf\"",
            "\(digest) 0 0 0 0 \"/p/src/\\\"quoted\\\".jpg\"",
            "\(digest) 5 6 7 8 \"/p/src/é.jpg\"",
        ]
        Self.agree(good.joined(separator: "\n") + "\n", "well formed")
        let bad = [
            "\(digest) 12 13 14 \"/p/x.jpg\"", "\(digest) 12 13 14 15 /p/x.jpg", "\(digest) +12 13 14 15 \"/p/x.jpg\"",
            "\(digest) 12 -13 14 15 \"/p/x.jpg\"", "\(digest) 12 13 14 -15 \"/p/x.jpg\"", "\(digest) 12 13 14 -0 \"/p/x.jpg\"",
            "\(digest) 12  14 15 \"/p/x.jpg\"", "\(digest) 12 13 14 18446744073709551616 \"/p/x.jpg\"",
            "\(digest) 9223372036854775808 13 14 15 \"/p/x.jpg\"", "- - 13 x 15 \"/p/x.jpg\"", "\(digest) 1 2 3 4 \"/p/x.jpg",
        ]
        for line in bad { Self.agree(good[0] + "\n" + line + "\n", "one odd line") }
        var random = SeededGenerator(seed: 40)
        let alphabet = Array("0123456789 -+\"\\/ax".utf8)
        for round in 0..<2_000 {
            var bytes = Array(good[Int(random.next() % UInt64(good.count))].utf8)
            for _ in 0...(random.next() % 3) {
                let at = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[at] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: at)
                default: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: at)
                }
            }
            Self.agree(good[1] + "\n" + String(decoding: bytes, as: UTF8.self) + "\n", "random \(round)")
        }
    }
}
