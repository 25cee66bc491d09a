import Confinement
import Testing

/// Paths compare, hash and sort by their bytes: `café` in NFC and in NFD are two names, as the
/// file system sees them, though Swift's `String` calls them equal.
@Suite struct PathKeyTests {
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
}
