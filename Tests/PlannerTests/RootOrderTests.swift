import Testing
import TestSupport
@testable import Planner

/// `RealDisk` orders its roots on sorted arrays instead of `PathSet`s (issue 15): for every
/// list of buckets and recorded folders (duplicates, both spellings of é, nested folders,
/// equal lengths, recorded folders that are buckets too, none recorded) the roots, their order
/// and the recorded ones must be what the sets gave.
@Suite(.ownThreads) struct RootOrderTests {
    @Test func rootOrderIsTheSetsOrder() {
        let nfc = "/p/caf\u{E9}", nfd = "/p/cafe\u{301}"
        let folders = ["/p/a", "/p/b", "/p/a/b", "/p/ab", "/p/ba", nfc, nfd, "/p", "/q/a", "/p/a/b/c", "/p/\u{0}", "/p/\u{FF}x"]
        var state: UInt64 = 0x0DDC_0FFE_EBAD_F00D
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var cases: [([String], [String])] = [([], []), (["/p/a"], []), ([], ["/p/a"]), ([nfc, nfd, nfc], [nfd, "/p/a"]), (folders, folders)]
        for _ in 0..<300 {
            cases.append(((0..<next(7)).map { _ in folders[next(folders.count)] }, (0..<next(4)).map { _ in folders[next(folders.count)] }))
        }
        for (buckets, recorded) in cases {
            let fast = RealDisk.rootOrder(buckets, recorded: recorded), slow = RealDisk.rootOrderSlowly(buckets, recorded: recorded)
            #expect(fast.roots.map { Array($0.utf8) } == slow.roots.map { Array($0.utf8) }, "\(buckets) \(recorded)")
            #expect(fast.recorded.map { Array($0.utf8) } == slow.recorded.map { Array($0.utf8) }, "\(buckets) \(recorded)")
        }
    }
}
