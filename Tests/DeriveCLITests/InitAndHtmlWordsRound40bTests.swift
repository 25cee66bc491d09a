import Foundation
import Testing
import TestSupport

/// Attack 40b's L2 and L5: `derive init DIR` printed DIR raw in its summary line (ESC and BEL
/// retitled the terminal, LF split the line), and its warnings escaped names YAML's way
/// (`\u001B`) where watch writes `\u{1B}`; `derive html SRC --rule R` for a rule with two styles
/// gave the error of a missing --rule instead of naming `R/STYLE`.
@Suite(.ownThreads) struct InitAndHtmlWordsRound40bTests {
    @Test func initEscapesTheFolderAsWatchDoes() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let name = "e\u{1B}]0;pwned\u{07}\nx"
        try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent(name + "/a.jpg"))
        // A file the build would refuse: named in a warning.
        try Data("not an image".utf8).write(to: folder.appendingPathComponent(name + "/b\u{1B}.jpg"))
        let result = try CLI.run(["init", name], in: folder)
        let all = said(result)
        #expect(result.status == 0, "\(all)")
        #expect(!all.contains("\u{1B}") && !all.contains("\u{07}"), "\(all.debugDescription)")
        #expect(String(decoding: result.stdout, as: UTF8.self).contains("in e\\u{1B}]0;pwned\\u{7}\\u{A}x."), "\(all.debugDescription)")
        #expect(result.stderr.contains("e\\u{1B}]0;pwned\\u{7}\\u{A}x/b\\u{1B}.jpg"), "\(all.debugDescription)")
        #expect(!all.contains("\\u001B"), "\(all.debugDescription)")
    }

    @Test func htmlNamesTheStylesOfARule() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("p"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("p/a.jpg"))
        try Data("""
        version: 1
        buckets:
          images: {path: p}
          site: {path: _site}
        styles:
          thumb: image/resize,w_32
          large: image/resize,w_64
        derivatives:
          - name: thumbnails
            from: images/*.jpg
            styles: [thumb, large]
            to: site/{name}.{style}.jpg

        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let both = try CLI.run(["html", "p/a.jpg", "--rule", "thumbnails"], in: folder)
        #expect(both.status == 1)
        #expect(both.stderr.contains("--rule thumbnails/large or --rule thumbnails/thumb"), "\(both.stderr)")
        let one = try CLI.run(["html", "p/a.jpg", "--rule", "thumbnails/thumb"], in: folder)
        #expect(one.status == 0, "\(one.stderr)")
    }
}
