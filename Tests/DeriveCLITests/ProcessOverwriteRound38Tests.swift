import Foundation
import Testing
import TestSupport

/// Attack 38a's L2: `derive process` without `-o` wrote NAME.derived.EXT over a user's file of
/// that name, and `-o` naming the source replaced the source with its render. The implicit name
/// is never written over an existing file without `--force`, and the source is never replaced.
@Suite(.ownThreads) struct ProcessOverwriteRound38Tests {
    @Test func theImplicitOutputNeverReplacesAFileWithoutForce() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("landscape.jpg"))
        let notes = Data("my notes, not Derive's\n".utf8)
        let implicit = folder.appendingPathComponent("landscape.derived.jpg")
        try notes.write(to: implicit)

        let refused = try CLI.run(["process", "landscape.jpg", "resize,w_10"], in: folder)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("landscape.derived.jpg") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try Data(contentsOf: implicit) == notes, "the user's file was replaced")

        let forced = try CLI.run(["process", "landscape.jpg", "resize,w_10", "--force"], in: folder)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try Data(contentsOf: implicit).prefix(2) == Data([0xFF, 0xD8]))
    }

    @Test func theSourceIsNeverItsOwnOutput() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("landscape.jpg")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: source)
        try FileManager.default.linkItem(at: source, to: folder.appendingPathComponent("same.jpg"))
        let bytes = try Data(contentsOf: source)
        for (output, force) in [("landscape.jpg", false), ("./landscape.jpg", true), ("same.jpg", true)] {
            let result = try CLI.run(["process", "landscape.jpg", "resize,w_10", "-o", output] + (force ? ["--force"] : []), in: folder)
            #expect(result.status == 1, "\(output): \(result.stderr)")
            #expect(result.stderr.contains("source"), "\(output): \(result.stderr)")
            #expect(try Data(contentsOf: source) == bytes, "\(output) replaced the source")
        }
    }
}
