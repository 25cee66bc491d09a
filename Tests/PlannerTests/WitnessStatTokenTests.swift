import Testing
import TestSupport
@testable import Planner

/// Each output's stat is written on its witness line and compared there (issue 15), instead of
/// hashed with the others: two tokens are equal exactly when the stats are, field by field.
@Suite(.ownThreads) struct WitnessStatTokenTests {
    @Test func tokensAreEqualExactlyWhenStatsAre() {
        let base = FileStat(size: 1_234, mtime: 1_764_750_000_123_456_789, inode: 987_654_321, ctime: 1_764_750_001_000_000_001)
        var stats: [FileStat?] = [nil, base]
        for value: Int64 in [0, 1, -1, .max, .min, 1 << 32, 0x0F0F_0F0F_0F0F_0F0F] {
            var size = base; size.size = value; stats.append(size)
            var mtime = base; mtime.mtime = value; stats.append(mtime)
            var ctime = base; ctime.ctime = value; stats.append(ctime)
            var inode = base; inode.inode = UInt64(bitPattern: value); stats.append(inode)
        }
        // Values that only trade places between fields.
        stats.append(FileStat(size: base.mtime, mtime: base.size, inode: base.inode, ctime: base.ctime))
        stats.append(FileStat(size: base.size, mtime: base.ctime, inode: base.inode, ctime: base.mtime))
        for a in stats {
            let token = NoOpWitness.statToken(a)
            #expect(token == (a == nil ? Array("-".utf8) : token) && (a == nil || token.count == 64))
            #expect(!token.contains(0x20) && !token.contains(0x0A), "a token never holds the line's separators")
            for b in stats {
                #expect((token == NoOpWitness.statToken(b)) == (a == b), "\(String(describing: a)) vs \(String(describing: b))")
            }
        }
        #expect(String(decoding: NoOpWitness.statToken(FileStat(size: 1, mtime: -1, inode: 0xABC, ctime: 16)), as: UTF8.self)
                == "0000000000000001" + "ffffffffffffffff" + "0000000000000010" + "0000000000000abc")
    }
}
