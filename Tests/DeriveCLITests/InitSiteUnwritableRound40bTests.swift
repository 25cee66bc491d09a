import Foundation
import Testing
import TestSupport

/// Attack 40b's M4: `derive init` with an empty `_site` it cannot write in exited 0, wrote
/// derive.yaml, and said "_site/index.html was not written: something is there already"; the
/// first build then failed on every output. It is refused with the real cause, nothing written.
@Suite(.ownThreads) struct InitSiteUnwritableRound40bTests {
    @Test(.enabled(if: UnprivilegedDerive.isPossible, "needs a user that permissions apply to"))
    func anUnwritableSiteIsRefusedWithItsCause() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("ph"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("_site"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("ph/a.jpg"))
        let derive = try UnprivilegedDerive(in: folder)
        defer { derive.remove() }
        #expect(chmod(folder.appendingPathComponent("_site").path, 0o555) == 0)
        let result = try derive.run(["init", "ph"])
        #expect(result.status == 1, "\(result.text)")
        #expect(result.text.contains("_site") && result.text.lowercased().contains("permission denied"), "\(result.text)")
        #expect(!result.text.contains("something is there already"), "\(result.text)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("_site").path)) == [])
    }
}
