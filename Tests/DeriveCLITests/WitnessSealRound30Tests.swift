import Foundation
import Testing
import TestSupport

/// Attack 30's F2: the witness alone makes `build` say `Nothing to do` and `check` exit 0, and a
/// hand-edited one was taken at its word: an output's line taken out of `noop-witness` (and that
/// output deleted), or a source's digest in `noop-witness.inputs` swapped for its new bytes'.
/// The witness files are sealed now: an edited one is not read, and the full plan runs.
@Suite(.ownThreads) struct WitnessSealRound30Tests {
    static let manifest = """
    version: 1
    buckets:
      src: {path: src, acl: public-read}
      out: {path: out, acl: public-read}
    derivatives:
      - name: r
        from: src/*.jpg
        process: image/resize,w_16/format,png
        to: out/{name}.png

    """

    func out(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// A built project whose no-op is settled: the witness is saved and holds.
    func settledProject() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: folder.appendingPathComponent("src/a.jpg"))
        try copySample("orientation-1.jpg", to: folder.appendingPathComponent("src/b.jpg"))
        Thread.sleep(forTimeInterval: 1.2)
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        Thread.sleep(forTimeInterval: 1.2)
        _ = try CLI.run(["build"], in: folder)
        Thread.sleep(forTimeInterval: 1.2)
        let noOp = try CLI.run(["build"], in: folder)
        #expect(out(noOp).contains("Nothing to do: 2 outputs up to date"), "\(out(noOp))")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(".derive/derive/noop-witness").path))
        return folder
    }

    @Test func aWitnessMissingAnOutputsLineIsNotTaken() throws {
        let folder = try settledProject()
        defer { try? FileManager.default.removeItem(at: folder) }
        let witness = folder.appendingPathComponent(".derive/derive/noop-witness")
        let lines = try String(contentsOf: witness, encoding: .utf8).components(separatedBy: "\n")
        #expect(lines.contains { $0.contains("/out/a.png\"") })
        try Data(lines.filter { !$0.contains("/out/a.png\"") }.joined(separator: "\n").utf8).write(to: witness)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("out/a.png"))

        let check = try CLI.run(["check"], in: folder)
        #expect(check.status != 0, "check called a deleted output up to date: \(out(check))")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(out(build))")
        #expect(!out(build).contains("Nothing to do"), "\(out(build))")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/a.png").path), "the deleted output was not built again")
    }

    @Test func aWitnessRecordWithASwappedDigestIsNotTaken() throws {
        let folder = try settledProject()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("src/b.jpg")
        let before = try Data(contentsOf: folder.appendingPathComponent("out/b.png"))
        let old = SHA256Hex.of(try Data(contentsOf: source))
        // The same size (the touched-only path's case): the EXIF orientation 1 → 3 (turned 180°).
        var edited = try Data(contentsOf: source)
        #expect(edited[0x1F] == 1)
        edited[0x1F] = 3
        try edited.write(to: source)
        let record = folder.appendingPathComponent(".derive/derive/noop-witness.inputs")
        let text = try String(contentsOf: record, encoding: .utf8)
        #expect(text.contains(old))
        try Data(text.replacingOccurrences(of: old, with: SHA256Hex.of(edited)).utf8).write(to: record)

        let check = try CLI.run(["check"], in: folder)
        #expect(check.status != 0, "check called an edited source's output up to date: \(out(check))")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(out(build))")
        #expect(!out(build).contains("Nothing to do"), "\(out(build))")
        #expect(try Data(contentsOf: folder.appendingPathComponent("out/b.png")) != before, "the edited source's output was not rendered again")
    }
}
