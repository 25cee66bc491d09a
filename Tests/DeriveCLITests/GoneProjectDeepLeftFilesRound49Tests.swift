import Foundation
import Testing
import TestSupport
@testable import derive

/// Issue #9, attack 48c's F2: a project whose manifest is gone (`www/g/g.yaml`, two levels below
/// the site) whose `lock: x/y/z/g.lock` and `state: p/q/st` lie five levels below the site, past
/// the four-level walk: nothing of it was left in any folder builds looked at, so the site's plan
/// called its output "not written by Derive", `build --verify` took it, `clean` deleted it and
/// validate said valid for a public `www`, while serve named the project (when a request had
/// touched its lock first). A gone project is found by its manifest's folder, in the bounds a live
/// one is: its lock and state are read where they lie, up to four levels below the deepest folder
/// a manifest is looked for in (`ForeignProjectFiles.goneLeftDepth`), by builds, validate and serve.
@Suite(.ownThreads) struct GoneProjectDeepLeftFilesRound49Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// Builds `www/g/g.yaml` with `controls` (its `lock:`/`state:` lines), removes it, and writes a
    /// site `site.yaml` whose rule renders the very same bytes at `www/g/out/a.jpg` (so `--verify`
    /// could take the file), `www` being `acl`.
    func goneProject(_ root: URL, controls: String, acl: String = "private") throws -> (file: URL, bytes: Data) {
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        let gallery = root.appendingPathComponent("www/g")
        try FileManager.default.createDirectory(at: gallery, withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  src: {path: ../../src}\n  out: {path: out, acl: private}\nderivatives:\n  - {name: r, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n\(controls)".utf8)
            .write(to: gallery.appendingPathComponent("g.yaml"))
        let built = try CLI.run(["build", "-q", "g.yaml"], in: gallery)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: gallery.appendingPathComponent("g.yaml"))
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  www: {path: www, acl: \(acl)}\nderivatives:\n  - {name: s, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"www/g/out/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("site.yaml"))
        let file = gallery.appendingPathComponent("out/a.jpg")
        return (file, try Data(contentsOf: file))
    }

    @Test func plansBuildsAndCleanKeepAGoneProjectsOutputWhoseLockAndStateLieDeep() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (file, bytes) = try goneProject(root, controls: "lock: x/y/z/g.lock\nstate: p/q/st\n")
        for command in [["plan", "site.yaml"], ["build", "site.yaml"], ["build", "--verify", "site.yaml"]] {
            let run = try CLI.run(command, in: root)
            let text = said(run)
            #expect(run.status == 1, "\(command): \(text)")
            #expect(text.contains("www/g/out/a.jpg is an output of ") && text.contains("/www/g/g.yaml, which is no longer there, but its "), "\(command): \(text)")
            #expect(!text.contains("not written by Derive"), "\(command): \(text)")
        }
        #expect(try Data(contentsOf: file) == bytes, "the gone project's output was replaced")
        // Nothing was taken, so clean leaves it (it deleted the file `--verify` had taken).
        let clean = try CLI.run(["clean", "site.yaml"], in: root)
        #expect(FileManager.default.fileExists(atPath: file.path), "clean deleted the gone project's output: \(said(clean))")
    }

    /// Validate refuses the public bucket holding that project's lock and state (it said valid),
    /// naming both, also when only its lock lies deep and its state is at its default place (the
    /// lock was left out).
    @Test(arguments: ["lock: x/y/z/g.lock\nstate: p/q/st\n", "lock: x/y/z/g.lock\n"])
    func validateRefusesAPublicBucketHoldingAGoneProjectsDeepLockAndState(controls: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try goneProject(root, controls: controls, acl: "public-read")
        let validate = try CLI.run(["validate", "site.yaml"], in: root)
        let text = said(validate)
        let state = controls.contains("state:") ? "www/g/p/q/st" : "www/g/.derive/g"
        #expect(validate.status == 1 && text.contains("bucket 'www' (www) holds the lock www/g/x/y/z/g.lock, the state folder \(state) of www/g/g.yaml, another project, which is no longer there"), "\(text)")
    }

    /// Serve agrees with the plan from its first request: the output is answered no more publicly
    /// than the gone project gave it (it was answered to anyone while no request had touched the
    /// project's lock or state), and the note names its manifest, as gone.
    @Test func serveKeepsAGoneProjectsOutputWhoseLockAndStateLieDeepAsThePlanDoes() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try goneProject(root, controls: "lock: x/y/z/g.lock\nstate: p/q/st\n", acl: "public-read")
        try Data("version: 1\nbuckets:\n  www: {path: www, acl: public-read}\nderivatives: []\n".utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let (service, recorded) = try ProjectsAroundServeRound46Tests.service(root.appendingPathComponent("derive.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/www/g/out/a.jpg").status == 403)
        let note = recorded.foreignReadNote(bucket: "www", key: "g/out/a.jpg") ?? "no note"
        // Said to be gone (attack 48b's F3: the note never said "no longer there").
        #expect(note.contains("/www/g/g.yaml, another project whose manifest is no longer there, records"), "\(note)")
    }
}
