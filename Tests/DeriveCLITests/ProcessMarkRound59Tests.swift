import Foundation
import Testing
import TestSupport

/// Attack 59b's F4: `derive process` refused `-o` naming its source, but wrote its render over
/// the watermark image the same chain reads (`-o b/logo.png` with `watermark,image_<logo.png>`).
@Suite(.ownThreads) struct ProcessMarkRound59Tests {
    @Test(arguments: ["b/logo.png", "./b/../b/logo.png"])
    func aWatermarkImageTheChainReadsIsNeverReplaced(output: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("b"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("photo.jpg"))
        let logo = root.appendingPathComponent("b/logo.png")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("logo-alpha.png"), to: logo)
        let before = try Data(contentsOf: logo)
        let key = Data("logo.png".utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let run = try CLI.run(["process", "photo.jpg", "resize,w_300/watermark,image_\(key)", "--bucket-root", "b", "-o", output], in: root)
        #expect(run.status == 1 && run.stderr.contains("is the watermark image logo.png this chain reads"), "\(said(run))")
        #expect(try Data(contentsOf: logo) == before)
        // Another name is written as before.
        let other = try CLI.run(["process", "photo.jpg", "resize,w_300/watermark,image_\(key)", "--bucket-root", "b", "-o", "out.jpg"], in: root)
        #expect(other.status == 0 && FileManager.default.fileExists(atPath: root.appendingPathComponent("out.jpg").path), "\(said(other))")
    }
}
