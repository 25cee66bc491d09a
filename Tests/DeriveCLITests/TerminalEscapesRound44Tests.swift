import Foundation
import Testing
import TestSupport

/// Attack 43's M-a, L-c and L-f: text the user wrote reached the terminal raw, or was escaped twice.
/// - `to:` with a C1 control (U+0080–U+009F) in its literal part passed validate (a C0 one is refused);
///   `derive explain` printed a key's C1 control raw where `plan` printed `\u{9B}`.
/// - `--json` held the `to:` and rule-name errors as `\\u{1B}` (escaped, then JSON-escaped) where
///   every other message holds the raw text JSON-escaped; text output said `\u{0A}`, not `\u{A}`.
/// - ArgumentParser's own errors (a value that does not parse, an unknown option, an unexpected
///   argument) printed ESC and BEL raw, and a line feed split the line.
@Suite(.ownThreads) struct TerminalEscapesRound44Tests {
    static let hostile = "z\u{1B}]0;PWN\u{07}\u{1B}[31m\nNEW"

    /// No raw control character but line feeds, and none of the hostile text's own line feed.
    static func expectEscaped(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!text.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) },
                "\(text.debugDescription)", sourceLocation: sourceLocation)
        #expect(!text.contains("\nNEW"), "\(text.debugDescription)", sourceLocation: sourceLocation)
    }

    @Test func argumentParserErrorsAreEscaped() throws {
        let x = Self.hostile
        for arguments in [["build", "--jobs", x], ["build", "--memory", x], ["build", "--jobs=" + x], ["serve", "--port", x],
                          ["sign", "site/a", "--expires", x], ["build", "--" + x], ["build", "-" + x], [x]] {
            let result = try CLI.run(arguments)
            #expect(result.status == 64, "\(arguments.debugDescription): \(result.status)")
            Self.expectEscaped(said(result))
            #expect(result.stderr.hasPrefix("derive: error: "), "\(result.stderr.debugDescription)")
            #expect(result.stderr.contains("z\\u{1B}]0;PWN\\u{7}\\u{1B}[31m\\u{A}NEW"), "\(result.stderr.debugDescription)")
        }
    }

    static func project(manifest: String) throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"),
                                         to: folder.appendingPathComponent("photos/p\u{9B}[31m.jpg"))
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    static func manifest(name: String = "r", to: String = "out/{name}.jpg") -> String {
        "version: 1\nbuckets:\n  photos: {path: photos}\n  out: {path: out, acl: public-read}\nderivatives:\n"
            + "  - name: \"\(name)\"\n    from: \"photos/*.jpg\"\n    acl: public-read\n    process: image/resize,w_50\n    to: \"\(to)\"\n"
    }

    @Test func explainEscapesAKeysC1Control() throws {
        let folder = try Self.project(manifest: Self.manifest())
        defer { try? FileManager.default.removeItem(at: folder) }
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        let explained = try CLI.run(["explain", "out/p\u{9B}[31m.jpg"], in: folder)
        #expect(explained.status == 0, "\(said(explained))")
        Self.expectEscaped(said(explained))
        #expect(said(explained).contains("out/p\\u{9B}[31m.jpg: up to date"), "\(said(explained).debugDescription)")
    }

    /// `\u0085` and `\u009b` in 'to' are refused at its line as a C0 one is; the name is shown once escaped
    /// in text, and raw (JSON-escaped) in `--json`, as every other message holds it.
    @Test func controlsInToAndRuleNamesAreRefusedAndEscapedOnce() throws {
        let folder = try Self.project(manifest: Self.manifest(name: "r\\e[1m\\n", to: "out/{name}\\e[1m\\u0085\\u009b\\n.jpg"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = try CLI.run(["validate"], in: folder)
        #expect(text.status == 1, "\(said(text))")
        Self.expectEscaped(said(text))
        #expect(said(text).contains("rule name 'r\\u{1B}[1m\\u{A}' is invalid"), "\(said(text))")
        #expect(said(text).contains("the output path '{name}\\u{1B}[1m\\u{85}\\u{9B}\\u{A}.jpg' contains"), "\(said(text))")
        let json = try CLI.run(["validate", "--json"], in: folder)
        let object = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any], "\(said(json))")
        let messages = (object["diagnostics"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
        #expect(messages.contains { $0.hasPrefix("rule name 'r\u{1B}[1m\n' is invalid") }, "\(messages.map(\.debugDescription))")
        #expect(messages.contains { $0.hasPrefix("the output path '{name}\u{1B}[1m\u{85}\u{9B}\n.jpg' contains") }, "\(messages.map(\.debugDescription))")
        #expect(!messages.contains { $0.contains("\\u{") }, "\(messages.map(\.debugDescription))")

        // A C1 control alone is refused too (the C0 form was, the C1 form passed).
        try Data(Self.manifest(to: "out/{name}\\u009b.jpg").utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let c1 = try CLI.run(["validate"], in: folder)
        #expect(c1.status == 1 && said(c1).contains("derive.yaml:10:") && said(c1).contains("\\u{9B}"), "\(said(c1))")
        Self.expectEscaped(said(c1))
    }
}
