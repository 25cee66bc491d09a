import Foundation
import Testing
import TestSupport

/// Attack 42b's L-h: `derive init dl`, `dl` a link to nothing, said only "dl is not a folder" (init
/// names `_site` and derive.yaml links as links); `derive init --page nosuchdir` ignored DIR and
/// exited 0 as if it had been read.
@Suite(.ownThreads) struct InitMessagesRound42Tests {
    @Test func aDanglingLinkAsDIRIsNamedAsOne() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("dl").path, withDestinationPath: "gone")
        let result = try CLI.run(["init", "dl"], in: folder)
        #expect(result.status == 1, "\(said(result))")
        #expect(result.stderr.contains("dl is a symbolic link to nothing (gone, which does not exist)"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
    }

    @Test func pageWithADIRIsAUsageError() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["init", "--page", "nosuchdir"], in: folder)
        #expect(result.status == 64, "\(said(result))")
        #expect(result.stderr.contains("--page") && result.stderr.contains("without nosuchdir"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("_site").path))
    }
}
