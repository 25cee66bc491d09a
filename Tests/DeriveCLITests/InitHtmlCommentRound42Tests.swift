import Foundation
import Testing
import TestSupport

/// Attack 42b's L-c: the manifest `derive init` writes told the user "`derive html images/KEY`
/// prints it" of the responsive rule, but every source has two pictures there (thumbnails and
/// responsive), so that command always exits 1 asking for `--rule`. The command the comment names
/// is run here as written, KEY an image init found.
@Suite(.ownThreads) struct InitHtmlCommentRound42Tests {
    @Test func theHtmlCommandInInitsManifestPrintsThePicture() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/landscape.jpg"))
        let initialised = try CLI.run(["init", "photos"], in: folder)
        #expect(initialised.status == 0, "\(said(initialised))")
        let manifest = try String(contentsOf: folder.appendingPathComponent("derive.yaml"), encoding: .utf8)
        let line = try #require(manifest.split(separator: "\n").first { $0.contains("`derive html ") }, "\(manifest)")
        let quoted = try #require(line.split(separator: "`").dropFirst().first, "\(line)")
        var words = quoted.split(separator: " ").map(String.init)
        #expect(words.first == "derive", "\(line)")
        words = words.dropFirst().map { $0 == "images/KEY" ? "images/landscape.jpg" : $0 }
        #expect(words.contains("images/landscape.jpg"), "\(line)")
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        let html = try CLI.run(words, in: folder)
        #expect(html.status == 0, "\(said(html))")
        let printed = String(decoding: html.stdout, as: UTF8.self)
        #expect(printed.hasPrefix("<picture>") && printed.contains("image/avif") && printed.contains("landscape-480."), "\(printed)")
    }
}
