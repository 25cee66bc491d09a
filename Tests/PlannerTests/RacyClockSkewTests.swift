import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
@testable import Planner

/// Attack 23's H1 without `faketime`: Derive's clock read 2 s ahead of the kernel's that stamps
/// the files (a file server behind the machine). A file written just now, then hashed, must be
/// racy (hashed again next time): a second edit in the same tick of a coarse file system keeps
/// its stat. Judged by Derive's clock it looked settled (the control below); judged by the file
/// system's clock (`FileSystemClock`, a stamp in the state folder) it is racy.
@Suite(.ownThreads) struct RacyClockSkewTests {
    static func folder() throws -> String {
        let path = (try ScratchFolder.make("derive-racy-skew")).path
        try FileManager.default.createDirectory(atPath: path + "/src", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: path + "/state", withIntermediateDirectories: true)
        return path
    }

    /// Whether the file written just now is trusted by its stat right after it was hashed.
    static func trustedRightAfterHashing(skew: Int64, corrects: Bool) throws -> Bool {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let clock = FileSystemClock(folder: root + "/state", create: true, skew: skew, corrects: corrects)
        let disk = RealDisk(confiningTo: [root + "/src"], clock: clock)
        let file = root + "/src/pic.bmp"
        try Data(repeating: 7, count: 4000).write(to: URL(fileURLWithPath: file))
        let digests = ContentDigests(disk: disk, cache: [:])
        _ = try #require(try digests.content(of: file))
        let stat = try #require(disk.stat(file))
        return digests.cached(file, stat: stat) != nil
    }

    @Test func aFileHashedRightAfterItsWriteIsRacyWhenDerivesClockRunsAhead() throws {
        // The rule before: Derive's clock 2 s ahead, the file looks a second older than it is.
        #expect(try Self.trustedRightAfterHashing(skew: 2_000_000_000, corrects: false))
        // The file system's clock: racy, whatever Derive's clock says.
        for skew: Int64 in [0, 2_000_000_000, 5_000_000_000, -5_000_000_000] {
            #expect(try !Self.trustedRightAfterHashing(skew: skew, corrects: true), "skew \(skew) ns")
        }
    }

    @Test func theCorrectionIsNeverAheadOfTheFileSystemAndLeavesAStamp() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let clock = FileSystemClock(folder: root + "/state", create: true, skew: 3_000_000_000)
        let before = FileSystemClock.realTime()
        let now = clock.now()
        #expect(now <= FileSystemClock.realTime())
        #expect(now > before - 2_000_000_000)   // not set back more than a tick's worth
        var info = stat()
        #expect(lstat(root + "/state/" + StateFiles.clockStamp, &info) == 0 && info.st_size == 0)
        // A read-only command makes no stamp: Derive's clock, as before.
        let other = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: other) }
        let readOnly = FileSystemClock(folder: other + "/state", create: false, skew: 3_000_000_000)
        #expect(readOnly.now() > FileSystemClock.realTime() + 2_000_000_000)
        #expect(lstat(other + "/state/" + StateFiles.clockStamp, &info) != 0)
        // Someone else's file under the stamp's name is left untouched (not empty: not Derive's).
        try Data("mine".utf8).write(to: URL(fileURLWithPath: other + "/state/" + StateFiles.clockStamp))
        let planted = FileSystemClock(folder: other + "/state", create: true)
        _ = planted.now()
        #expect(try Data(contentsOf: URL(fileURLWithPath: other + "/state/" + StateFiles.clockStamp)) == Data("mine".utf8))
    }
}
