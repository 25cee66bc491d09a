import Foundation
import Testing
import TestSupport

/// Attack 50c's M6 (issue #9): `derive.yml` copied beside a built `derive.yaml` shares its
/// `derive.lock` and `.derive/derive`. The error told the user to give derive.yaml, the built one,
/// names of its own: done literally, derive.yaml lost its lock, state and index to the copy and
/// no build recovered them. The advice now names the manifest whose records they are not, and
/// following it word for word leaves the built project building.
@Suite(.ownThreads) struct SameStemLockAdviceRound51Tests {
    static let manifest = "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\n"
        + "derivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\nindex: out/index.json\n"

    /// The text between `start` and `end` in `text`.
    func between(_ text: String, _ start: String, _ end: String) -> String? {
        guard let from = text.range(of: start), let to = text.range(of: end, range: from.upperBound..<text.endIndex) else { return nil }
        return String(text[from.upperBound..<to.lowerBound])
    }

    @Test func followingTheSameStemAdviceLiterallyKeepsTheBuiltProjectBuilding() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data(Self.manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let built = try CLI.run(["build", "-q"], in: root)
        #expect(built.status == 0, "\(said(built))")
        try Data(Self.manifest.utf8).write(to: root.appendingPathComponent("derive.yml"))
        let refused = try CLI.run(["build"], in: root)
        let text = said(refused)
        #expect(refused.status == 1, "\(text)")
        let target = try #require(between(text, "set both 'lock:' and 'state:' in ", " to names of its own"), "\(text)")
        let lock = try #require(between(text, "(e.g. lock: ", " and state: "), "\(text)")
        let state = try #require(between(text, " and state: ", ")"), "\(text)")
        #expect(target == "derive.yml", "the advice names the built manifest: \(text)")
        // Followed word for word.
        let handle = try FileHandle(forWritingTo: root.appendingPathComponent(target))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("lock: \(lock)\nstate: \(state)\n".utf8))
        try handle.close()
        for command in [["build"], ["check"]] {
            let run = try CLI.run(command, in: root)
            #expect(run.status == 0, "\(command) after following the advice: \(said(run))")
        }
    }
}
