import Foundation
import Testing

/// README's framework snippets are code users paste: the Eleventy one is run with node (skipped
/// where node is not installed, as on CI's fresh machine).
@Suite struct ReadmeSnippetTests {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md")

    /// The first ```js block after `heading` in README.
    static func snippet(after heading: String) throws -> String {
        let text = try String(contentsOf: readme, encoding: .utf8)
        let start = try #require(text.range(of: heading), "README has no \(heading)")
        let open = try #require(text.range(of: "```js\n", range: start.upperBound..<text.endIndex))
        let close = try #require(text.range(of: "\n```", range: open.upperBound..<text.endIndex))
        return String(text[open.upperBound..<close.lowerBound])
    }

    static var node: String? {
        ["/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Attack 14 (static) L3: the alt text went through `String.replace`'s `$` patterns (`$&`
    /// inserted the matched `alt=""`, `$'` the rest of the tag). It must come out escaped, as typed.
    @Test(.enabled(if: node != nil, "node is not installed"))
    func theEleventyShortcodeEscapesAltTextLiterally() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("eleventy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("data"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try #"{"sources":{"photos/lake.jpg":{"pictures":{"hero":{"html":"<img alt=\"\" src=\"a.jpg\">"}}}}}"#
            .write(to: folder.appendingPathComponent("data/images.json"), atomically: true, encoding: .utf8)
        try Self.snippet(after: "**Eleventy**").write(to: folder.appendingPathComponent("eleventy.config.js"), atomically: true, encoding: .utf8)
        try #"""
            let shortcode;
            require("./eleventy.config.js")({ addShortcode: (name, f) => { shortcode = f; } });
            process.stdout.write(shortcode("photos/lake.jpg", process.argv[2]));
            """#.write(to: folder.appendingPathComponent("run.js"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.node))
        process.currentDirectoryURL = folder
        process.arguments = ["run.js", #"A "lake" & <b> $& $1 $' $`"#]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let html = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(html == #"<img alt="A &#34;lake&#34; &#38; &#60;b&#62; $&#38; $1 $&#39; $`" src="a.jpg">"#, "\(html)")
    }
}
