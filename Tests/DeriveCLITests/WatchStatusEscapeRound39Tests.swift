import Foundation
import Testing
import TestSupport
@testable import derive

/// Attack 39b's L1: the watch's status line (`[hh:mm:ss] … changed:`) printed file names raw,
/// so ESC and BEL retitled or cleared the terminal and a line feed split the line.
@Suite(.ownThreads) struct WatchStatusEscapeRound39Tests {
    @Test func theChangedFileIsNamedEscaped() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let name = folder.path + "/\u{1B}]0;pwned\u{07}\u{1B}[2J\nx.jpg"
        let line = WatchMode.describe([name])
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(line.debugDescription)")
        #expect(line.contains("\\u{1B}]0;pwned\\u{7}\\u{1B}[2J\\u{A}x.jpg changed"), "\(line.debugDescription)")
        let two = WatchMode.describe([name, folder.path + "/b.jpg"])
        #expect(two.contains("\\u{A}x.jpg and 1 more changed"), "\(two.debugDescription)")
    }
}
