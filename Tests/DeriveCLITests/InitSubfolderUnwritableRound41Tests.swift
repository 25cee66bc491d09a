import Foundation
import Testing
import TestSupport

/// Attack 41b's L6: with an empty `_site/trip` this user cannot write in and `ph/trip/a.jpg`,
/// `derive init` exited 0 "for 2 images" and the first build failed on every output of
/// `trip/a.jpg`. Init's writable check covers the folders the starter rules write into: refused,
/// the folder named, nothing written.
@Suite(.ownThreads) struct InitSubfolderUnwritableRound41Tests {
    @Test(.enabled(if: UnprivilegedDerive.isPossible, "needs a user that permissions apply to"))
    func anUnwritableOutputSubfolderIsRefusedByName() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manager = FileManager.default
        try manager.createDirectory(at: folder.appendingPathComponent("ph/trip"), withIntermediateDirectories: true)
        try manager.createDirectory(at: folder.appendingPathComponent("_site/trip"), withIntermediateDirectories: true)
        try manager.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("ph/a.jpg"))
        try manager.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: folder.appendingPathComponent("ph/trip/a.jpg"))
        let derive = try UnprivilegedDerive(in: folder)
        defer { derive.remove() }
        #expect(chmod(folder.appendingPathComponent("_site/trip").path, 0o555) == 0)
        let result = try derive.run(["init", "ph"])
        #expect(result.status == 1, "\(result.text)")
        #expect(result.text.contains("_site/trip") && result.text.lowercased().contains("permission denied"), "\(result.text)")
        #expect(!manager.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        // Writable again, init counts both images and the first build exits 0.
        #expect(chmod(folder.appendingPathComponent("_site/trip").path, 0o755) == 0)
        let written = try derive.run(["init", "ph"])
        #expect(written.status == 0 && written.text.contains("for 2 images"), "\(written.text)")
    }
}
