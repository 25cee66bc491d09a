import Foundation
import Testing
import TestSupport

/// Issue #9, attack 49a's F9: `sub/n.yaml` (bucket `../pub/n`) took derive.yaml's output over with
/// `build --overwrite` and other bytes; derive.yaml's plan named it as n.yaml's, but its `clean`
/// said "not the file Derive wrote there (its device and inode differ: a copy, or a file put
/// there since)". README promises clean names the taker; it does now, and leaves the file.
@Suite(.ownThreads) struct CleanNamesNeighbourRound50Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    @Test func cleanNamesTheNeighbourThatTookTheFileOver() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let sub = root.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        try Data("version: 1\nbuckets:\n  src: {path: ../src}\n  nbk: {path: ../pub/n}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_6\", to: \"nbk/{name}.jpg\"}\n".utf8)
            .write(to: sub.appendingPathComponent("n.yaml"))
        for command in [["build", "-q"], ["build", "-q", "--overwrite", "sub/n.yaml"]] {
            let run = try CLI.run(command, in: root)
            #expect(run.status == 0, "\(command): \(said(run))")
        }
        let file = root.appendingPathComponent("pub/n/a.jpg")
        let theirs = try Data(contentsOf: file)
        let clean = try CLI.run(["clean"], in: root)
        let text = said(clean)
        #expect(text.contains("pub/n/a.jpg is an output of \(sub.path)/n.yaml (") && text.contains("not of this manifest; left in place"), "\(text)")
        #expect(!text.contains("device and inode differ"), "\(text)")
        #expect(try Data(contentsOf: file) == theirs, "the neighbour's output was touched")
    }
}
