import Foundation
import Testing
import TestSupport
@testable import derive

/// Issue #9, attack 49a's F3 and F6: a project whose manifest is gone was found only by a lock
/// whose name ends in `.lock` and only outside folders whose names start with `.`. Its lock at
/// `lock: docs/readme.md` (or `n-lock.txt`), or its lock and state at `.locks/n.lock` and
/// `.cache/st` (the most ordinary layout), claimed nothing: validate passed a public bucket over
/// its private output, serve answered that output to anyone and listed it, and the other
/// manifest adopted its identical file as a "restored copy" and `clean` deleted it. A Derive lock
/// is known by its first line, wherever it lies and whatever its name; dot folders are looked
/// through too (VCS folders and the state folder's own tree aside).
@Suite(.ownThreads) struct GoneProjectLockAnywhereRound50Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// The gone project's `lock:`/`state:` lines, the lock's path below `www/g`, and whether its
    /// state folder is removed too (then only the lock says anything).
    static let layouts: [(controls: String, lock: String, dropState: Bool)] = [
        ("lock: docs/readme.md\n", "docs/readme.md", true),
        ("lock: .locks/g.lock\nstate: .cache/st\n", ".locks/g.lock", false),
    ]

    /// `www/g/g.yaml` built with `controls`, then removed (its state too when `dropState`), and a
    /// site `site.yaml` whose rule renders the same bytes at `www/g/out/a.jpg`, `www` being `acl`.
    func goneProject(_ root: URL, controls: String, dropState: Bool, acl: String) throws -> (file: URL, bytes: Data) {
        let made = try GoneProjectDeepLeftFilesRound49Tests().goneProject(root, controls: controls, acl: acl)
        if dropState { try FileManager.default.removeItem(at: root.appendingPathComponent("www/g/.derive")) }
        return made
    }

    @Test(arguments: 0..<2)
    func validateRefusesAPublicBucketHoldingAGoneProjectsLockAtAnyNameOrInADotFolder(layout: Int) throws {
        let (controls, lock, dropState) = Self.layouts[layout]
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try goneProject(root, controls: controls, dropState: dropState, acl: "public-read")
        let validate = try CLI.run(["validate", "site.yaml"], in: root)
        let text = said(validate)
        #expect(validate.status == 1 && text.contains("bucket 'www' (www) holds the lock www/g/\(lock)")
                && text.contains("of www/g/g.yaml, another project, which is no longer there"), "\(text)")
    }

    @Test(arguments: 0..<2)
    func plansBuildsAndCleanKeepAGoneProjectsOutputWhoseLockHasAnyNameOrLiesInADotFolder(layout: Int) throws {
        let (controls, _, dropState) = Self.layouts[layout]
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (file, bytes) = try goneProject(root, controls: controls, dropState: dropState, acl: "private")
        for command in [["plan", "site.yaml"], ["build", "--verify", "site.yaml"]] {
            let run = try CLI.run(command, in: root)
            let text = said(run)
            #expect(run.status == 1, "\(command): \(text)")
            #expect(text.contains("www/g/out/a.jpg is an output of ") && text.contains("/www/g/g.yaml, which is no longer there, but its "), "\(command): \(text)")
        }
        #expect(try Data(contentsOf: file) == bytes, "the gone project's output was replaced")
        let clean = try CLI.run(["clean", "site.yaml"], in: root)
        #expect(FileManager.default.fileExists(atPath: file.path), "clean deleted the gone project's output: \(said(clean))")
    }

    /// F3's repro A in serve: the output is answered no more publicly than the gone project gave
    /// it, and the listing leaves it out (it answered 200 and listed it; its lock answered 404).
    @Test(arguments: 0..<2)
    func serveHidesAGoneProjectsPrivateOutputWhoseLockHasAnyNameOrLiesInADotFolder(layout: Int) throws {
        let (controls, _, dropState) = Self.layouts[layout]
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try goneProject(root, controls: controls, dropState: dropState, acl: "public-read")
        try Data("version: 1\nbuckets:\n  www: {path: www, acl: public-read}\nderivatives: []\n".utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let (service, _) = try ProjectsAroundServeRound46Tests.service(root.appendingPathComponent("derive.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/www/g/out/a.jpg").status == 403)
        let list = ServeRound3Tests.request(service, "GET", "/www/?prefix=g/out/")
        #expect(list.status == 200 && !String(decoding: list.body, as: UTF8.self).contains("<Key>g/out/a.jpg</Key>"), "\(String(decoding: list.body, as: UTF8.self))")
    }

    /// F3's repro B and F6's dot folders, where the gone project had taken the site's files over
    /// with `--overwrite` (identical bytes, new inodes): the site's plan called each a "restored
    /// copy", build adopted it and clean deleted it. `sub`: the gone manifest was `sub/n.yaml`
    /// (bucket `../pub/n`), else `n.yaml` beside the site's.
    @Test(arguments: [("lock: docs/notes.md\n", true, true), ("lock: .locks/n.lock\nstate: .cache/st\n", false, true),
                      ("lock: n-lock.txt\n", true, false), ("lock: .locks/n.lock\nstate: .cache/n\n", false, false)])
    func aGoneTakersIdenticalOutputIsNoRestoredCopy(controls: String, dropState: Bool, sub: Bool) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        let folder = sub ? root.appendingPathComponent("sub") : root
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        let up = sub ? "../" : ""
        try Data("version: 1\nbuckets:\n  src: {path: \(up)src}\n  nbk: {path: \(up)pub/n}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"nbk/{name}.jpg\"}\n\(controls)".utf8)
            .write(to: folder.appendingPathComponent("n.yaml"))
        let first = try CLI.run(["build", "-q"], in: root)
        let taken = try CLI.run(["build", "-q", "--overwrite", "n.yaml"], in: folder)
        #expect(first.status == 0 && taken.status == 0, "\(said(first)) \(said(taken))")
        try fm.removeItem(at: folder.appendingPathComponent("n.yaml"))
        if dropState { try fm.removeItem(at: folder.appendingPathComponent(".derive/n")) }
        let file = root.appendingPathComponent("pub/n/a.jpg")
        for command in [["plan"], ["build"]] {
            let run = try CLI.run(command, in: root)
            let text = said(run)
            #expect(run.status == 1 && !text.contains("restored copy") && text.contains("n.yaml, which is no longer there"), "\(command): \(text)")
        }
        let clean = try CLI.run(["clean"], in: root)
        #expect(fm.fileExists(atPath: file.path), "clean deleted the gone project's output: \(said(clean))")
    }

    /// Discovery now reads a lock at any name, so no writer of serve creates one at any name (it
    /// refused one only at a name ending in `.lock`): a planted lock would claim the files it lists.
    @Test func serveCreatesNoDeriveLockAtAnyName() throws {
        let (root, service) = try ProjectMarkerWritesRound44Tests.served()
        defer { try? FileManager.default.removeItem(at: root) }
        let lock = #"{"format":"derive.lock/2","manifest":"../gone.yaml"}"# + "\n"
        let answer = ProjectMarkerWritesRound44Tests.send(service, "PUT", "upl", "u/notes.md", body: lock)
        #expect(answer.status == 403 && answer.text.contains("Derive lock"), "\(answer.status) \(answer.text)")
        #expect(!ProjectMarkerWritesRound44Tests.exists(root, "pub/u/notes.md"))
        // A file that merely mentions a lock still lands.
        #expect(ProjectMarkerWritesRound44Tests.send(service, "PUT", "upl", "u/about.md", body: "a lock: " + lock).status == 200)
    }
}
