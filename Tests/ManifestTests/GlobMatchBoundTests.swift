import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack round 24's M2: the backtracking matcher was exponential in the number of `*` (one
/// 245-byte name against a pattern of many `*`/`**` took more than 13 s per plan, and `derive
/// build --watch` ignored Ctrl-C meanwhile). The matcher now remembers the (pattern, text)
/// positions that failed, so each is tried once; its answers are those of the old matcher, kept
/// here as the reference.
@Suite(.ownThreads) struct GlobMatchBoundTests {
    /// The matcher as it was before round 24 (a copy of `Glob.match`), for comparison only.
    static func reference<End: Glob.TextEnd>(_ p: [Unicode.Scalar], _ i: Int, _ s: [Unicode.Scalar], _ j: Int, _ end: End) -> Bool {
        var i = i, j = j
        while i < p.count {
            if End.isBeginning, j == s.count { return end.accepts(i) }
            switch p[i] {
            case "*":
                if i + 1 < p.count, p[i + 1] == "*" {
                    var next = i + 2
                    if next < p.count, p[next] == "/" {
                        next += 1
                        if reference(p, next, s, j, end) { return true }
                        var k = j
                        while k < s.count {
                            if s[k] == "/", reference(p, next, s, k + 1, end) { return true }
                            k += 1
                        }
                        return End.isBeginning && end.accepts(i)
                    }
                    var k = j
                    while k <= s.count {
                        if reference(p, next, s, k, end) { return true }
                        k += 1
                    }
                    return End.isBeginning && end.accepts(i)
                }
                var k = j
                while k <= s.count {
                    if reference(p, i + 1, s, k, end) { return true }
                    if k < s.count, s[k] == "/" { return false }
                    k += 1
                }
                return End.isBeginning && end.accepts(i)
            case "?":
                guard j < s.count, s[j] != "/" else { return false }
                i += 1; j += 1
            case "[":
                guard j < s.count, s[j] != "/", let close = p[(i + 1)...].firstIndex(of: "]") else { return false }
                guard Glob.classAdmits(Array(p[(i + 1)..<close]), s[j]) else { return false }
                i = close + 1; j += 1
            default:
                guard j < s.count, p[i] == s[j] else { return false }
                i += 1; j += 1
            }
        }
        return j == s.count && (!End.isBeginning || end.accepts(i))
    }

    /// SplitMix64: the same draws on every run.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let patternPieces = ["a", "b", "c", "/", "*", "*", "**", "**/", "/**", "?", "[ab]", "[!a]", "[a-b]", "{a,b}", ".", "a/", "*/"]
    static let namePieces = ["a", "b", "c", "/", ".", "ab", "a/"]

    static func draw(_ pieces: [String], upTo count: Int, _ random: inout Seeded) -> String {
        (0..<Int.random(in: 0...count, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    /// The public answers (the first 64 failed tries not remembered), and the matcher remembering
    /// every failed try from the first, so short draws exercise what is remembered too.
    @Test func answersAreTheOldMatchersOnRandomPatterns() throws {
        var random = Seeded(state: 24)
        var compared = 0, matched = 0, below = 0
        for round in 0..<4_000 {
            let long = round % 4 == 0
            let pattern = Self.draw(Self.patternPieces, upTo: long ? 16 : 8, &random)
            guard let glob = try? Glob(pattern) else { continue }
            for _ in 0..<6 {
                let name = Self.draw(Self.namePieces, upTo: long ? 24 : 8, &random)
                let text = Array(name.unicodeScalars)
                let whole = glob.alternatives.contains { Self.reference($0, 0, text, 0, Glob.WholeKey()) }
                #expect(glob.matches(name) == whole, "'\(pattern)' against '\(name)'")
                #expect(glob.alternatives.contains { Glob.match($0, 0, text, 0, Glob.WholeKey(), untracked: 0) } == whole)
                let folder = Array((name + "/").unicodeScalars)
                let some = glob.alternatives.contains { Self.reference($0, 0, folder, 0, Glob.SomePatternLeft(count: $0.count)) }
                #expect(glob.mayMatchBelow(name) == some, "'\(pattern)' below '\(name)'")
                #expect(glob.alternatives.contains { Glob.match($0, 0, folder, 0, Glob.SomePatternLeft(count: $0.count), untracked: 0) } == some)
                let every = glob.alternatives.contains { Self.reference($0, 0, folder, 0, Glob.RestTakesAnyKey(pattern: $0)) }
                #expect(glob.matchesEverythingBelow(name) == every, "'\(pattern)' everything below '\(name)'")
                #expect(glob.alternatives.contains { Glob.match($0, 0, folder, 0, Glob.RestTakesAnyKey(pattern: $0), untracked: 0) } == every)
                compared += 1
                if whole { matched += 1 }
                if some { below += 1 }
            }
        }
        // The draws exercise both answers, not only "no".
        #expect(compared > 15_000 && matched > 500 && below > 500, "\(compared) compared, \(matched) matched, \(below) below")
    }

    /// Many `*` (or `**`) and a long name that almost matches: every way of splitting the name
    /// among the stars was tried (hours); now each position pair is tried once.
    @Test func manyStarsAgainstALongNameAnswerAtOnce() throws {
        let name = String(repeating: "a", count: 244) + "c"
        let started = Date()
        for star in ["*", "**"] {
            let glob = try Glob(String(repeating: star + "a", count: 30) + "b")
            #expect(!glob.matches(name))
            #expect(!glob.matches(name + "/" + name))
            #expect(glob.mayMatchBelow(name + "/x") == (star == "**"))   // only `**` goes on past a "/"
            #expect(!glob.matchesEverythingBelow(name))
            #expect(try Glob(String(repeating: star + "a", count: 30) + "c").matches(name))
        }
        let folders = try Glob(String(repeating: "**/a", count: 30) + "b")
        #expect(!folders.matches(Array(repeating: "a", count: 120).joined(separator: "/")))
        #expect(Date().timeIntervalSince(started) < 10)
    }
}
