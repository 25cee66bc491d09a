import Foundation
import Testing
import TestSupport

/// Attack 13b's finding 9: `derive clean` while a `derive serve` runs said, rightly, that a serve
/// is running and its files are kept, then that the state folder was kept for `serve-cache`
/// "written while clean ran (a serve started?): run clean again", which was false (the serve ran
/// all along, nothing was written) and contradicted the first line. The state folder's line now
/// refers to the line above for serve's files.
@Suite(.ownThreads, .serialized) struct CleanWhileServingRound27Tests {
    @Test func cleanBesideARunningServeSaysOnlyThatTheServeRuns() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("pub/a.jpg"))
        try Data("version: 1\nbuckets:\n  pub: {path: pub, acl: public-read}\n".utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let serve = try ServeSession(in: root)
        defer { serve.stop() }
        // A render: serve keeps it in its cache in the state folder.
        let answer = try serve.get("/pub/a.jpg?x-oss-process=image/resize,w_50")
        #expect(answer.status == 200)
        let state = root.appendingPathComponent(".derive/derive")
        #expect(FileManager.default.fileExists(atPath: state.appendingPathComponent("serve-cache").path))

        let clean = try CLI.run(["clean"], in: root)
        let said = text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "\(said)")
        #expect(said.contains("a derive serve is running on this state folder"), "\(said)")
        #expect(!said.contains("written while clean ran"), "\(said)")
        #expect(!said.contains("a serve started?"), "\(said)")
        // The state folder's line says why serve's files stay: the line above.
        let stateLine = said.split(separator: "\n").first { $0.contains(".derive/derive is kept") }.map(String.init) ?? ""
        #expect(stateLine.contains("serve-cache") && stateLine.contains("named above"), "\(said)")
        // Nothing of serve's was removed.
        #expect(FileManager.default.fileExists(atPath: state.appendingPathComponent("serve-cache").path))
        #expect(FileManager.default.fileExists(atPath: state.appendingPathComponent("serve.lock").path))
    }
}
