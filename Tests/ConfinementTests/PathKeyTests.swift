import Confinement
import Testing
import TestSupport

/// Paths compare, hash and sort by their bytes: `café` in NFC and in NFD are two names, as the
/// file system sees them, though Swift's `String` calls them equal.
@Suite(.ownThreads) struct PathKeyTests {
    static let nfc = "out/caf\u{E9}.jpg", nfd = "out/cafe\u{301}.jpg"

    @Test func twoSpellingsAreTwoKeys() {
        #expect(Self.nfc == Self.nfd, "the premise: String uses canonical equivalence")
        #expect(!PathKey.same(Self.nfc, Self.nfd) && PathKey.same(Self.nfc, "out/caf\u{E9}.jpg"))
        #expect(PathKey(Self.nfc) != PathKey(Self.nfd))
        #expect(Set([PathKey(Self.nfc), PathKey(Self.nfd)]).count == 2)
    }

    @Test func aPathDictionaryKeepsBoth() {
        var map: PathDictionary<Int> = [:]
        map[Self.nfc] = 1
        map[Self.nfd] = 2
        #expect(map.count == 2 && map[Self.nfc] == 1 && map[Self.nfd] == 2)
        map[Self.nfd, default: 0] += 10
        #expect(map[Self.nfd] == 12 && map[Self.nfc] == 1)
        #expect(map.removeValue(forKey: Self.nfc) == 1 && map.count == 1 && map[Self.nfd] == 12)
        let built = PathDictionary([(Self.nfc, 1), (Self.nfd, 2), (Self.nfc, 3)], uniquingKeysWith: { a, _ in a })
        #expect(built.count == 2 && built[Self.nfc] == 1)
    }

    /// The dictionary literal (built in a loop, issue 15) keeps both spellings and, for a path
    /// written twice, its last value, as `Dictionary(_:uniquingKeysWith: { _, last in last })` did.
    @Test func aPathDictionaryLiteralKeepsTheLastValueOfEachPath() {
        let empty: PathDictionary<Int> = [:]
        #expect(empty.isEmpty && empty[Self.nfc] == nil)
        let map: PathDictionary<Int> = [Self.nfc: 1, Self.nfd: 2, "out/caf\u{E9}.jpg": 3, "a": 4]
        #expect(map.count == 3 && map[Self.nfc] == 3 && map[Self.nfd] == 2 && map["a"] == 4)
        #expect(map == PathDictionary([(Self.nfc, 1), (Self.nfd, 2), (Self.nfc, 3), ("a", 4)], uniquingKeysWith: { _, last in last }))
    }

    @Test func aPathSetKeepsBoth() {
        var set: PathSet = [Self.nfc]
        #expect(!set.contains(Self.nfd))
        #expect(set.insert(Self.nfd).inserted && set.count == 2)
        #expect(!set.insert(Self.nfd).inserted)
        #expect(set.subtracting([Self.nfc]).sorted().map { Array($0.utf8) } == [Array(Self.nfd.utf8)])
        #expect(set.intersection([Self.nfd]).count == 1 && set.isDisjoint(with: ["out/other.jpg"]))
    }

    /// Byte order, total on bytes: NFD (`e` 0x65) before NFC (0xC3), whatever the input order, so
    /// the lock lists both, each once, in an order that never changes.
    @Test func pathsSortByBytes() {
        let expected = [Array(Self.nfd.utf8), Array(Self.nfc.utf8)]
        #expect([Self.nfc, Self.nfd].sortedByBytes().map { Array($0.utf8) } == expected)
        #expect([Self.nfd, Self.nfc].sortedByBytes().map { Array($0.utf8) } == expected)
        #expect(PathSet([Self.nfc, Self.nfd]).sorted().map { Array($0.utf8) } == expected)
        #expect(PathDictionary([(Self.nfc, 1), (Self.nfd, 2)], uniquingKeysWith: { a, _ in a }).sortedByKey().map(\.value) == [2, 1])
        #expect(PathKey.ordered("a/b", "a/b.jpg") && !PathKey.ordered("a/b", "a/b"))
    }

    /// `sortedByBytes` settles most comparisons on each path's first 16 bytes as two numbers
    /// (issue 15): it must give the byte order itself at that window's edges (paths that end
    /// inside it against ones with NUL bytes there, equal first 8 or 16 bytes, bytes above 0x7F
    /// in either half, multi-byte scalars across the 8th and 16th byte), whatever the order given.
    @Test func prefixKeyedSortAgreesWithByteOrder() {
        var corpus = ["", "\u{0}", "\u{0}\u{0}", "a", "a\u{0}", "a\u{0}\u{0}b", "ab", "abcdefg", "abcdefgh", "abcdefgh\u{0}", "abcdefghi",
                      "abcdefg\u{E9}", "abcdefg\u{7F}", "abcdefgh\u{FF}", "abcdefghijklmno", "abcdefghijklmnop", "abcdefghijklmnop\u{0}",
                      "abcdefghijklmnopq", "abcdefghijklmno\u{E9}", "abcdefghijklmnoq", "abcdefghijklmnpa", "\u{E9}", "\u{FF}a", "\u{10FFFF}",
                      "out/d1/s1.a.jpg", "out/d1/s1.b.jpg", "out/d10/s1.a.jpg", "out/d1/s10.a.jpg", "out/d1/s1.a.jpg\u{301}", "out/d1/s1.\u{E9}.jpg"]
        let pieces = ["a", "b", "/", "\u{0}", "\u{7F}", "\u{80}", "\u{E9}", "\u{10000}", "out/d1/", "abcdefg"]
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<600 { corpus.append((0..<next(8)).map { _ in pieces[next(pieces.count)] }.joined()) }
        corpus += corpus.prefix(40)   // duplicates
        let expected = corpus.sorted(by: PathKey.orderedSlowly).map { Array($0.utf8) }
        var shuffled = corpus
        for index in shuffled.indices.reversed() { shuffled.swapAt(index, next(index + 1)) }
        for order in [corpus, Array(corpus.reversed()), shuffled, corpus.sorted(by: PathKey.orderedSlowly)] {
            #expect(order.sortedByBytes().map { Array($0.utf8) } == expected)
        }
        #expect([String]().sortedByBytes().isEmpty && ["x"].sortedByBytes() == ["x"])
    }

    /// `same`, `ordered` and `sortedByBytes` compare by memcmp (issue 15): they must answer as
    /// the element-by-element definitions do, on every pair of a corpus made to cross their edges
    /// (empty, proper prefixes, NUL and bytes above 0x7F where signedness would matter, the
    /// 15/16-byte edge between small and heap strings, long shared prefixes, both spellings of
    /// é), and the memcmp path must be the one taken.
    @Test func memcmpOrderAgreesWithTheByteByByteDefinition() {
        var corpus = ["", "a", "b", "a/b", "a/b.jpg", "a/b/", "a\u{0}", "a\u{0}b", "\u{7F}", "\u{80}", "\u{FF}", "\u{10FFFF}", "🙂",
                      Self.nfc, Self.nfd, "out/caf", "out/cafe", "out/café/x", "A", "Z", "z"]
        let small = String(repeating: "x", count: 15), large = String(repeating: "x", count: 16)
        corpus += [small, large, small + "a", large + "a", small + "\u{E9}", String(large.dropLast()) + "\u{E9}"]
        let prefix = "photos/" + String(repeating: "d/", count: 40)
        corpus += [prefix, prefix + "s1.jpg", prefix + "s10.jpg", prefix + "s2.jpg", prefix + "s1.jpg\u{301}", prefix + "S1.jpg"]
        // Pseudo-random names from pieces that collide often (seeded: the same corpus every run).
        let pieces = ["a", "b", "/", "\u{0}", "\u{7F}", "\u{E9}", "e\u{301}", "\u{10000}", "photos/d1/"]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<250 { corpus.append((0..<next(12)).map { _ in pieces[next(pieces.count)] }.joined()) }
        // A substring's copy and a string built by appending: other storage than the literals.
        corpus += corpus.prefix(30).map { String(decoding: Array($0.utf8), as: UTF8.self) }
        corpus += corpus.prefix(30).map { var s = String(); s.append(contentsOf: Substring($0)); return s }

        var disagreements: [String] = [], slowPaths = 0
        for a in corpus {
            for b in corpus {
                if PathKey.compare(a, b) == nil { slowPaths += 1 }
                if PathKey.ordered(a, b) != PathKey.orderedSlowly(a, b) || PathKey.same(a, b) != PathKey.sameSlowly(a, b)
                    || (PathKey(a) < PathKey(b)) != PathKey.orderedSlowly(a, b) || (PathKey(a) == PathKey(b)) != PathKey.sameSlowly(a, b) {
                    disagreements.append("\(Array(a.utf8)) vs \(Array(b.utf8))")
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
        #expect(slowPaths == 0, "the memcmp path must be the one taken for native strings")
        #expect(corpus.sortedByBytes().map { Array($0.utf8) } == corpus.sorted(by: PathKey.orderedSlowly).map { Array($0.utf8) })
        #expect(corpus.reversed().sortedByBytes().map { Array($0.utf8) } == corpus.reversed().sorted(by: PathKey.orderedSlowly).map { Array($0.utf8) })
    }
}
