import Foundation
import Testing
import TestSupport

/// Attack 36's F9: `derive info` on /dev/zero, a FIFO or a folder said "no such file".
@Suite(.ownThreads) struct InfoNonFileRound36Tests {
    @Test func infoNamesWhatIsThereWhenItIsNoFile() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("f.jpg").path
        #expect(mkfifo(fifo, 0o644) == 0)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("d.jpg"), withIntermediateDirectories: true)
        for (path, kind) in [("/dev/zero", "a device"), (fifo, "a FIFO (named pipe)"), (folder.appendingPathComponent("d.jpg").path, "a folder")] {
            let result = try CLI.run(["info", path], in: folder)
            #expect(result.status == 1, "\(result.stderr)")
            #expect(result.stderr.contains("\(path) is \(kind), not an image file"), "\(result.stderr)")
            #expect(!result.stderr.contains("no such file"), "\(result.stderr)")
        }
        let missing = try CLI.run(["info", folder.appendingPathComponent("none.jpg").path], in: folder)
        #expect(missing.status == 1 && missing.stderr.contains("no such file"), "\(missing.stderr)")
    }
}
