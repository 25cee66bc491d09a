import Foundation
import Testing
import TestSupport
import Planner

/// `RealDisk.stats` stats many paths at once (grouped by bucket root, one walk per root); it must
/// answer exactly as `stat` does for each path alone, in the order asked (issue 15 changed how it
/// groups them).
@Suite(.ownThreads) struct RealDiskStatsTests {
    @Test func statsTogetherAnswerAsEachPathStatedAlone() throws {
        let base = (try ScratchFolder.make("derive-stats")).path
        defer { try? FileManager.default.removeItem(atPath: base) }
        // Two buckets, one inside the other, a third, and a folder outside all of them.
        for folder in ["photos/sub", "photos/nested/deep", "site", "outside"] {
            try FileManager.default.createDirectory(atPath: base + "/" + folder, withIntermediateDirectories: true)
        }
        let files = ["photos/a.jpg", "photos/sub/b.jpg", "photos/nested/c.jpg", "photos/nested/deep/d.jpg", "site/e.jpg", "outside/f.txt"]
        for (index, file) in files.enumerated() {
            try Data(repeating: 7, count: index + 1).write(to: URL(fileURLWithPath: base + "/" + file))
        }
        try FileManager.default.createSymbolicLink(atPath: base + "/site/link.jpg", withDestinationPath: base + "/site/e.jpg")
        let disk = RealDisk(confiningTo: [base + "/photos", base + "/photos/nested", base + "/site"])
        // Roots interleaved, a path twice, missing files, a link, folders, a path through a file.
        let names = ["photos/a.jpg", "site/e.jpg", "photos/nested/c.jpg", "outside/f.txt", "photos/sub/b.jpg", "photos/missing.jpg",
                     "site/link.jpg", "photos/nested/deep/d.jpg", "site/sub", "photos/a.jpg", "photos/sub", "site/e.jpg/x", "outside/none"]
        let paths = names.map { base + "/" + $0 }
        let together = disk.stats(paths)
        let alone = paths.map { disk.stat($0) }
        #expect(together == alone)
        let sizes = together.map { $0?.size }
        #expect(sizes[0] == 1 && sizes[1] == 5 && sizes[2] == 3 && sizes[3] == 6 && sizes[4] == 2 && sizes[7] == 4 && sizes[9] == 1)
        #expect(sizes[5] == nil && sizes[8] == nil && sizes[10] == nil && sizes[11] == nil && sizes[12] == nil)
        #expect(disk.stats([]).isEmpty)
    }
}
