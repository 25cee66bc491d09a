import Foundation
import Testing
import TestSupport

/// Attack 27w's finding 10: build, plan and check printed a source's name raw, so a file named
/// `x<ESC>]0;PWNED<BEL>y.jpg` retitled the terminal (or a CI log's viewer), while the output's
/// name in the same line was escaped (`\u{1B}`). Every human-readable line escapes names the
/// same way; `--json` stays JSON.
@Suite(.ownThreads) struct TerminalEscapeShared28Tests {
    static let hostile = "x\u{1B}]0;PWNED\u{07}y.jpg"

    static func project() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/" + hostile))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: folder.appendingPathComponent("src/b.jpg"))
        let manifest = "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - name: r\n    from: src/*.jpg\n"
            + "    process: image/resize,w_50/format,webp\n    to: out/{name}.webp\n"
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    @Test(arguments: ["build", "plan", "check"])
    func aSourceNameIsPrintedEscaped(_ command: String) throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run([command], in: folder)
        let all = result.stderr + text(result.stdout)
        #expect(result.status == 1)
        #expect(!all.contains("\u{1B}") && !all.contains("\u{07}"), "\(all.debugDescription)")
        #expect(all.contains("src/x\\u{1B}]0;PWNED\\u{7}y.jpg: "), "\(all.debugDescription)")
    }

    /// JSON escapes it as JSON: the name reads back as the file's.
    @Test func planJSONKeepsTheName() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["plan", "--json"], in: folder)
        #expect(!text(result.stdout).contains("\u{1B}"))
        #expect(text(result.stdout).contains("\\u001b") || text(result.stdout).contains("\\u001B"), "\(text(result.stdout))")
    }
}
