import Foundation
import Testing
import TestSupport

/// Attack 39b's L7: after `rm -rf _site` init's page was gone for good (builds never write it and
/// `derive init` refuses beside derive.yaml), and `init` and `html` said `Error:` where every other
/// command says `derive: error:`.
@Suite(.ownThreads) struct InitPageAndPrefixRound40Tests {
    func initialised() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("images"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("images/a.jpg"))
        let made = try CLI.run(["init"], in: folder)
        #expect(made.status == 0, "\(said(made))")
        return folder
    }

    @Test func initPageWritesOnlyThePageAgainAndNeverOverAFile() throws {
        let folder = try initialised()
        defer { try? FileManager.default.removeItem(at: folder) }
        let page = folder.appendingPathComponent("_site/index.html")
        let original = try Data(contentsOf: page)
        let manifest = try Data(contentsOf: folder.appendingPathComponent("derive.yaml"))
        try FileManager.default.removeItem(at: folder.appendingPathComponent("_site"))

        // The refusal says the way back.
        let refused = try CLI.run(["init"], in: folder)
        #expect(refused.status == 1 && refused.stderr.contains("derive init --page"), "\(said(refused))")

        let again = try CLI.run(["init", "--page"], in: folder)
        #expect(again.status == 0, "\(said(again))")
        #expect(try Data(contentsOf: page) == original)
        #expect(try Data(contentsOf: folder.appendingPathComponent("derive.yaml")) == manifest)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("_site").path) == ["index.html"])

        // Never over a file: the user's own page stays as it is.
        try Data("<p>mine</p>".utf8).write(to: page)
        let kept = try CLI.run(["init", "--page"], in: folder)
        #expect(kept.status == 1 && kept.stderr.hasPrefix("derive: error: _site/index.html is there already"), "\(said(kept))")
        #expect(try Data(contentsOf: page) == Data("<p>mine</p>".utf8))
        // Nor through a link in _site's place.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("_site"))
        let elsewhere = folder.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("_site"), withDestinationURL: elsewhere)
        let linked = try CLI.run(["init", "--page"], in: folder)
        #expect(linked.status == 1 && linked.stderr.contains("symbolic link"), "\(said(linked))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).isEmpty)
    }

    /// One prefix for every command's errors, usage errors included.
    @Test func everyCommandSaysDeriveError() throws {
        let folder = try initialised()
        defer { try? FileManager.default.removeItem(at: folder) }
        for arguments in [["init"], ["html", "images/missing.jpg"], ["html", "images/a.jpg", "--sizes", ""], ["explain"], ["build", "--no-such-option"]] {
            let result = try CLI.run(arguments, in: folder)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.hasPrefix("derive: error: ") && !result.stderr.contains("Error:"), "\(arguments): \(result.stderr)")
        }
    }
}
