import Foundation
import Testing
import TestSupport

/// Issue #9, attack 49a's F8: `state: sub/.derive/n`, the state folder `sub/n.yaml` left when it
/// was removed, validated, while plan, check, build and clean refused it ("lies in the folder of
/// sub/n.yaml, whose manifest is not there now"). Validate refuses it now, with the same words.
@Suite(.ownThreads) struct GoneStateFolderValidateRound50Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    @Test func validateRefusesARemovedNeighboursStateFolderAsThePlanDoes() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let sub = root.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data("version: 1\nbuckets:\n  src: {path: ../src}\n  nbk: {path: ../pub/n}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_8\", to: \"nbk/{name}.jpg\"}\n".utf8)
            .write(to: sub.appendingPathComponent("n.yaml"))
        let built = try CLI.run(["build", "-q", "n.yaml"], in: sub)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: sub.appendingPathComponent("n.yaml"))
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_6\", to: \"out/{name}.jpg\"}\nstate: sub/.derive/n\n".utf8)
            .write(to: root.appendingPathComponent("m.yaml"))
        let refusal = "lies in the folder of \(sub.path)/n.yaml, whose manifest is not there now"
        let validated = try CLI.run(["validate", "m.yaml"], in: root)
        #expect(validated.status == 1, "\(said(validated))")
        #expect(said(validated).contains(refusal) && said(validated).contains("set 'state:' in"), "\(said(validated))")
        let planned = try CLI.run(["plan", "m.yaml"], in: root)
        #expect(planned.status == 1 && said(planned).contains(refusal), "\(said(planned))")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("out").path))
    }
}
