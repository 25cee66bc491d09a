import Foundation
import Testing
import TestSupport

/// README's framework snippets are code users paste: the Eleventy one is run with node (skipped
/// where node is not installed, as on CI's fresh machine).
@Suite(.ownThreads) struct ReadmeSnippetTests {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md")

    /// The first ```js block after `heading` in README.
    static func snippet(after heading: String, fence: String = "```js\n") throws -> String {
        let text = try String(contentsOf: readme, encoding: .utf8)
        let start = try #require(text.range(of: heading), "README has no \(heading)")
        let open = try #require(text.range(of: fence, range: start.upperBound..<text.endIndex))
        let close = try #require(text.range(of: "\n```", range: open.upperBound..<text.endIndex))
        return String(text[open.upperBound..<close.lowerBound])
    }

    static var node: String? {
        ["/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Attack 36 M4: the Hugo and Astro snippets built the `<picture>` from `formats` (a `<source>`
    /// for every format but the fallback's), which is not what `html` prints: a still AVIF of an
    /// animated GIF came first, a PNG `<source>` stood before the JPEG fallback. They now print the
    /// index's `html` with the alt inserted, as the Eleventy one does; that is `derive html --alt`.
    @Test func theHugoAndAstroSnippetsPrintWhatDeriveHTMLPrints() throws {
        for (heading, fence) in [("**Hugo** (`layouts/shortcodes/picture.html`", "```go-html-template\n"), ("**Astro** (`src/components/Picture.astro`", "```astro\n")] {
            let code = try Self.snippet(after: heading, fence: fence)
            #expect(code.contains(".html") && !code.contains("formats") && !code.contains("<source"), "\(heading) does not print the index's html:\n\(code)")
        }
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        for name in ["spinner.gif", "landscape.jpg"] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: folder.appendingPathComponent("src/\(name)"))
        }
        // r-snippet.sh's cases: an animation with a still AVIF, and a PNG beside the JPEG fallback.
        try Data("""
        version: 1
        buckets:
          src: {path: src}
          out: {path: out, acl: public-read}
        derivatives:
          - name: a
            from: src/spinner.gif
            process: image/resize,w_{w}/format,{f}
            matrix: {w: [100, 200], f: [avif, gif]}
            to: out/{name}-{w}.{f}
            acl: public-read
          - name: b
            from: src/landscape.jpg
            process: image/resize,w_{w}/format,{f}
            matrix: {w: [320, 640], f: [webp, png, jpg]}
            to: out/{name}-{w}.{f}
            acl: public-read
        index: out/i.json
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build", "--quiet"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("out/i.json"))) as? [String: Any])
        for (source, rule) in [("src/spinner.gif", "a"), ("src/landscape.jpg", "b")] {
            let picture = try #require((((index["sources"] as? [String: Any])?[source] as? [String: Any])?["pictures"] as? [String: Any])?[rule] as? [String: Any])
            let html = try #require(picture["html"] as? String)
            let printed = try CLI.run(["html", source, "--rule", rule, "--alt", "The picture"], in: folder)
            #expect(printed.status == 0, "\(printed.stderr)")
            let snippet = html.replacingOccurrences(of: "alt=\"\"", with: "alt=\"The picture\"")
            #expect(String(decoding: printed.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == snippet, "\(source)")
        }
    }

    /// Attack 14 (static) L3: the alt text went through `String.replace`'s `$` patterns (`$&`
    /// inserted the matched `alt=""`, `$'` the rest of the tag). It must come out escaped, as typed.
    @Test(.enabled(if: node != nil, "node is not installed"))
    func theEleventyShortcodeEscapesAltTextLiterally() throws {
        let folder = (try ScratchFolder.make("eleventy"))
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

    /// README's text between the heading that starts with `heading` and the next heading of any level.
    static func section(_ heading: String) throws -> String {
        let text = try String(contentsOf: readme, encoding: .utf8)
        let start = try #require(text.range(of: "\n" + heading), "README has no \(heading)")
        let rest = text[start.upperBound...]
        let end = rest.range(of: "\n#")?.lowerBound ?? rest.endIndex
        return String(rest[..<end])
    }

    /// The commands `derive --help` lists, each with a section in README's Commands.
    static let commands = ["process", "info", "validate", "styles", "plan", "build", "check", "diff", "catalog", "explain", "html",
                           "clean", "init", "schema", "sign", "serve"]

    /// Round 22's review (lows-23): every command's section shows it run (an indented line
    /// `derive NAME …`, with or without a `$ ` prompt); `check` and `explain` showed none.
    @Test func everyCommandsSectionHasAnExample() throws {
        let help = try CLI.run(["--help"])
        let listed = String(decoding: help.stdout, as: UTF8.self)
        for command in Self.commands {
            #expect(listed.contains("  \(command) "), "derive --help does not list \(command)")
            let section = try Self.section("### `derive \(command)")
            let example = section.split(separator: "\n").contains { line in
                line.hasPrefix("    $ derive \(command)") || line.hasPrefix("    derive \(command)")
                    || (line.hasPrefix("    $ ") && line.contains(" derive \(command)"))
            }
            #expect(example, "README's section on derive \(command) shows no example")
        }
    }

    /// `derive sign`'s example, run as written in the project `derive init` makes: it printed a
    /// signature for a manifest the README never made (`--manifest site.yaml`, no access key).
    @Test func theSignExampleWorksAsWritten() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try copySample("landscape.jpg", to: folder.appendingPathComponent("photos/landscape.jpg"))
        let initialised = try CLI.run(["init", "photos"], in: folder)
        try #require(initialised.status == 0, "\(initialised.stderr)")
        let lines = try Self.section("### `derive sign").split(separator: "\n").filter { $0.hasPrefix("    $ ") }.map { $0.dropFirst(6) }
        try #require(lines.last?.hasPrefix("derive sign ") == true, "\(lines)")
        let path = CLI.executable.deletingLastPathComponent().path + ":/usr/bin:/bin"
        let run = try CLI.run(["-c", "PATH=\(path); set -e; " + lines.joined(separator: "\n")], in: folder, executable: "/bin/sh")
        let said = String(decoding: run.stdout, as: UTF8.self)
        #expect(run.status == 0, "\(said) \(run.stderr)")
        #expect(said.hasPrefix("http://127.0.0.1:8080/images/landscape.jpg?x-oss-process=image%2Fresize%2Cw_100&OSSAccessKeyId=AKIDEXAMPLE&Expires="), "\(said)")
        #expect(said.contains("&Signature="), "\(said)")
    }
}
