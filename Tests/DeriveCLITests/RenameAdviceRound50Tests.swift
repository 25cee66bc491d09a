import Foundation
import Testing
import TestSupport

/// Issue #9, attack 49a's F11: two pieces of advice that did not fit. A manifest renamed away
/// from `lock: locks/n.lock` and `state: var/n` was told to set `'lock: n.lock' and 'state:
/// .derive/n'` (the default names, refused again once set); and a neighbour's output in the same
/// folder was refused with "if n.yaml gave that name to a narrower source's width …, build
/// n.yaml first", where neither rule has a width to narrow (building it first changes nothing).
@Suite(.ownThreads) struct RenameAdviceRound50Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    func folder(_ manifests: [String: String]) throws -> URL {
        let root = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        for (name, text) in manifests { try Data(text.utf8).write(to: root.appendingPathComponent(name)) }
        return root
    }

    static let renamed = "version: 1\nbuckets:\n  src: {path: src}\n  nbk: {path: pub/n}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_8\", to: \"nbk/{name}.jpg\"}\n"

    /// The advice names the lock and state the removed manifest used, and following it works.
    @Test func theRenameAdviceNamesTheLockAndStateTheManifestUsed() throws {
        let root = try folder(["n.yaml": Self.renamed + "lock: locks/n.lock\nstate: var/n\n"])
        defer { try? FileManager.default.removeItem(at: root) }
        let built = try CLI.run(["build", "-q", "n.yaml"], in: root)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: root.appendingPathComponent("n.yaml"))
        let manifest = root.appendingPathComponent("m.yaml")
        try Data(Self.renamed.utf8).write(to: manifest)
        let plan = try CLI.run(["plan", "m.yaml"], in: root)
        #expect(plan.status == 1 && said(plan).contains("set 'lock: locks/n.lock' and 'state: var/n' in it"), "\(said(plan))")
        try Data((Self.renamed + "lock: locks/n.lock\nstate: var/n\n").utf8).write(to: manifest)
        let followed = try CLI.run(["plan", "m.yaml"], in: root)
        #expect(followed.status == 0, "\(said(followed))")
    }

    /// A neighbour in the same folder took the output over (the same bytes); no rule has a width name to narrow,
    /// so the refusal does not tell the user to build it first.
    @Test func noNarrowedWidthAdviceWithoutAWidthToNarrow() throws {
        let root = try folder([
            "derive.yaml": "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n",
            "n.yaml": "version: 1\nbuckets:\n  src: {path: src}\n  nbk: {path: pub/n}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_8\", to: \"nbk/{name}.jpg\"}\n",
        ])
        defer { try? FileManager.default.removeItem(at: root) }
        for command in [["build", "-q"], ["build", "-q", "--overwrite", "n.yaml"]] {
            let run = try CLI.run(command, in: root)
            #expect(run.status == 0, "\(command): \(said(run))")
        }
        let plan = try CLI.run(["plan"], in: root)
        #expect(plan.status == 1 && said(plan).contains("pub/n/a.jpg is an output of"), "\(said(plan))")
        #expect(!said(plan).contains("narrower source's width"), "\(said(plan))")
    }
}
