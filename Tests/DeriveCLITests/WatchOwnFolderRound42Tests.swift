import Foundation
import Testing
import TestSupport
@testable import derive

/// Attack 42b's L-i: after `chmod 555 .` and `chmod 755 .` in the project, the watch's line named
/// the project folder by its absolute path (`[10:58:14] /tmp/…/pw changed: …`), where README says
/// names are relative to the folder the watch started in: that folder itself is `.`.
@Suite(.ownThreads) struct WatchOwnFolderRound42Tests {
    @Test func theFolderTheWatchStartedInIsNamedDot() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("m"), withIntermediateDirectories: true)
        let bases = [folder.path, folder.path + "/m"]
        #expect(WatchMode.describe([folder.path], relativeTo: bases) == ". changed")
        // Its sub-folders and files as before; the manifest's folder is named from the start folder.
        #expect(WatchMode.describe([folder.path + "/m"], relativeTo: bases) == "m changed")
        #expect(WatchMode.describe([folder.path + "/m/site.yaml"], relativeTo: bases) == "m/site.yaml changed")
        // A folder outside keeps its absolute path.
        #expect(WatchMode.describe(["/elsewhere/x"], relativeTo: bases) == "/elsewhere/x changed")
    }
}
