import Foundation
import Manifest
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The source listing reads names as bytes: a name starting with `.` then a combining mark is
/// one `Character` (not `.`), but a hidden name all the same; keys come back in byte order.
@Suite(.ownThreads) struct ListingOnBytesTests {
    @Test func aDotFollowedByACombiningMarkIsStillHidden() throws {
        #expect(!sourceListingKeeps(".\u{301}x.jpg"))
        #expect(sourceListingKeeps("\u{301}x.jpg") && sourceListingKeeps("x.jpg"))
        let folder = (try ScratchFolder.make("derive-listing")).path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for name in [".\u{301}hidden.jpg", "caf\u{E9}.jpg", "cafe\u{301}.jpg", "\u{301}mark.jpg"] {
            let fd = open(folder + "/" + name, O_WRONLY | O_CREAT, 0o644)
            #expect(fd >= 0)
            close(fd)
        }
        let keys = try #require(DiskObjectLister().keys(inFolder: folder, skipping: []))
        #expect(keys.map { Array($0.utf8) } == [Array("cafe\u{301}.jpg".utf8), Array("caf\u{E9}.jpg".utf8), Array("\u{301}mark.jpg".utf8)])
    }
}
