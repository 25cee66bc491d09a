import Foundation
import Testing
import TestSupport

/// Issue #9, attack 49a's F5: the lock a project left when its manifest was removed (`sub/n.lock`,
/// `sub/n.yaml` gone, its state still there) was no control file to the builds: a site with a
/// bucket `sbk: {path: sub}` and `to: sbk/{name}.lock` (or `index: sbk/n.lock`) validated, its plan
/// advised `--overwrite`, and `build --overwrite` wrote a JPEG (or the index) over the lock, so
/// the project lost every claim its lock made. Its state folder was already refused; its lock is
/// now refused the same way, with or without `--overwrite` (serve already refused it).
@Suite(.ownThreads) struct GoneProjectLockRound49Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// Builds `sub/n.yaml` (with `controls`, its `lock:` line if any), removes it, and writes
    /// `m.yaml` whose bucket `sbk` is `sub`, with `site` (its rule or index lines). Returns the
    /// gone project's lock and its bytes.
    func goneProject(_ root: URL, controls: String = "", lock: String = "sub/n.lock", site: String) throws -> (lock: URL, bytes: Data) {
        let sub = root.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/n.jpg"))
        try Data("version: 1\nbuckets:\n  src: {path: ../src}\n  nbk: {path: ../pub/n}\nderivatives:\n  - {name: t, from: src/a.jpg, process: \"image/resize,w_8\", to: \"nbk/{name}.jpg\"}\n\(controls)".utf8)
            .write(to: sub.appendingPathComponent("n.yaml"))
        let built = try CLI.run(["build", "-q", "n.yaml"], in: sub)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: sub.appendingPathComponent("n.yaml"))
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  sbk: {path: sub}\n\(site)".utf8).write(to: root.appendingPathComponent("m.yaml"))
        let file = root.appendingPathComponent(lock)
        return (file, try Data(contentsOf: file))
    }

    /// An output at the gone project's lock: validate refuses it (when the name ends in `.lock`),
    /// and plan and `build --overwrite` refuse it as another project's lock; the lock keeps its bytes.
    @Test(arguments: [("", "sub/n.lock", "sbk/{name}.lock"), ("lock: docs/n.md\n", "sub/docs/n.md", "sbk/docs/{name}.md")])
    func anOutputIsNeverWrittenOverAGoneProjectsLock(controls: String, lock: String, to: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let rule = "derivatives:\n  - {name: u, from: src/n.jpg, process: \"image/resize,w_8\", to: \"\(to)\"}\n"
        let (file, bytes) = try goneProject(root, controls: controls, lock: lock, site: rule)
        var commands = [["plan", "m.yaml"], ["build", "--overwrite", "m.yaml"]]
        if lock.hasSuffix(".lock") { commands.insert(["validate", "m.yaml"], at: 0) }
        for command in commands {
            let run = try CLI.run(command, in: root)
            let text = said(run)
            #expect(run.status == 1, "\(command): \(text)")
            #expect(text.contains("\(lock) is the lock of ") && text.contains("sub/n.yaml") && text.contains("no longer there"), "\(command): \(text)")
            #expect(!text.contains("pass --overwrite"), "\(command): \(text)")
        }
        #expect(try Data(contentsOf: file) == bytes, "the gone project's lock was written over")
    }

    /// `index:` at the gone project's lock: validate refuses it, and `build --overwrite` too.
    @Test func theIndexIsNeverWrittenOverAGoneProjectsLock() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let site = "index: sbk/n.lock\nderivatives:\n  - {name: u, from: src/n.jpg, process: \"image/resize,w_8\", to: \"sbk/x/{name}.jpg\"}\n"
        let (file, bytes) = try goneProject(root, site: site)
        for command in [["validate", "m.yaml"], ["build", "--overwrite", "m.yaml"]] {
            let run = try CLI.run(command, in: root)
            let text = said(run)
            #expect(run.status == 1, "\(command): \(text)")
            #expect(text.contains("sub/n.lock is the lock of ") && text.contains("no longer there"), "\(command): \(text)")
        }
        #expect(try Data(contentsOf: file) == bytes, "the gone project's lock was written over as the index")
    }
}
