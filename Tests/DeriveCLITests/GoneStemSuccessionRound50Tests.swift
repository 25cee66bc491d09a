import Foundation
import Testing
import TestSupport

/// Issue #9, attack 49a's F7: `n.yml` written after `n.yaml` was removed took n.yaml's lock and
/// state over by its default names alone (the same stem), though it shares no bucket with it, and
/// its first build deleted n.yaml's outputs as "no longer produced". A removed manifest's records
/// pass to one of another name only when asked (`lock:` and `state:` set to them); the guess is
/// refused by validate, plan, build and clean alike, nothing written, with that advice.
@Suite(.ownThreads) struct GoneStemSuccessionRound50Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// Builds `n.yaml` (bucket `nbk` at `pub/n`), removes it (and `removed`), and writes `n.yml`
    /// with a bucket of its own. Returns the folder.
    func removedStem(removing removed: [String] = []) throws -> URL {
        let root = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  nbk: {path: pub/n}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_8\", to: \"nbk/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("n.yaml"))
        let built = try CLI.run(["build", "-q", "n.yaml"], in: root)
        #expect(built.status == 0, "\(said(built))")
        for name in ["n.yaml"] + removed { try FileManager.default.removeItem(at: root.appendingPathComponent(name)) }
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  other: {path: other}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_6\", to: \"other/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("n.yml"))
        return root
    }

    /// Lock and state left, or only the state (the lock deleted): every command refuses n.yml,
    /// naming the removed manifest and the lines that take its records over; its output stays.
    @Test(arguments: [[], ["n.lock"]])
    func aNewManifestOfTheSameStemDoesNotTakeARemovedOnesRecordsUnasked(removed: [String]) throws {
        let root = try removedStem(removing: removed)
        defer { try? FileManager.default.removeItem(at: root) }
        let output = root.appendingPathComponent("pub/n/a.jpg")
        let bytes = try Data(contentsOf: output)
        for command in [["validate", "n.yml"], ["plan", "n.yml"], ["build", "n.yml"], ["clean", "n.yml"]] {
            let run = try CLI.run(command, in: root)
            let text = said(run)
            #expect(run.status == 1, "\(removed) \(command): \(text)")
            #expect(text.contains("n.yaml") && text.contains("no longer there") && text.contains("lock: n.lock") && text.contains("state: .derive/n"),
                    "\(removed) \(command): \(text)")
        }
        #expect(try Data(contentsOf: output) == bytes, "n.yaml's output was deleted or rewritten")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("other").path), "n.yml built")
    }

    /// The advice works: with `lock:` and `state:` set to them, n.yml takes the records over
    /// (said once) and builds; n.yaml's output, no longer produced, is then its to delete.
    @Test func settingLockAndStateTakesTheRecordsOver() throws {
        let root = try removedStem()
        defer { try? FileManager.default.removeItem(at: root) }
        let manifest = root.appendingPathComponent("n.yml")
        try Data((try String(contentsOf: manifest, encoding: .utf8) + "lock: n.lock\nstate: .derive/n\n").utf8).write(to: manifest)
        let validated = try CLI.run(["validate", "n.yml"], in: root)
        #expect(validated.status == 0, "\(said(validated))")
        let build = try CLI.run(["build", "n.yml"], in: root)
        #expect(build.status == 0, "\(said(build))")
        #expect(build.stderr.contains("takes it over"), "\(build.stderr)")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("other/a.jpg").path))
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("pub/n/a.jpg").path))
    }
}
