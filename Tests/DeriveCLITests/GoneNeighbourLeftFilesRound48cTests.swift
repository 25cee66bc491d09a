import Foundation
import Testing
import TestSupport
@testable import derive

/// Issue #9, attack 48b: what a neighbour whose manifest is gone leaves behind still protects its
/// outputs, for builds (plan, `--verify`, clean) and serve alike (`ForeignProjectFiles.goneProjects`).
/// F1: its lock and state moved by `lock: locks/n.lock` and `state: var/st` (or `.derive/x`), left
/// alone: builds called the output "not written by Derive", `--verify` took it and clean deleted it.
/// F6/F8: a dangling link, a folder or a YAML file that is no manifest (`hello: world`) left at its
/// manifest's name counted as the manifest being there: builds took its outputs, and serve answered
/// its private outputs to anyone.
@Suite(.ownThreads) struct GoneNeighbourLeftFilesRound48cTests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// Writes a copy of the sample at each of `paths` below `root`.
    func samples(_ root: URL, _ paths: [String]) throws {
        for path in paths {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: url)
        }
    }

    /// What is left of `sub/n.yaml` (writing `../pub/n`): `moved-lock-and-state`, `moved-lock`
    /// (its state deleted), `moved-state` (its lock deleted), `state-in-derive-x`; or, with its
    /// default lock and state, a `link`, a `folder` or a non-manifest YAML (`hello`) at its name.
    @Test(arguments: ["moved-lock-and-state", "moved-lock", "moved-state", "state-in-derive-x", "link", "folder", "hello"])
    func whatAGoneNeighbourLeftKeepsItsOutputFromBuilds(left: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try samples(root, ["src/n1.jpg", "sub/src/n1.jpg"])
        let moves = ["moved-lock-and-state": "lock: locks/n.lock\nstate: var/st\n", "moved-lock": "lock: locks/n.lock\n",
                     "moved-state": "state: var/st\n", "state-in-derive-x": "lock: locks/n.lock\nstate: .derive/x\n"][left] ?? ""
        let neighbour = root.appendingPathComponent("sub/n.yaml")
        try Data("version: 1\n\(moves)buckets:\n  src: {path: src}\n  out: {path: ../pub/n}\nderivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: neighbour)
        let built = try CLI.run(["build", "-q", "n.yaml"], in: neighbour.deletingLastPathComponent())
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: neighbour)
        switch left {
        case "moved-lock": try FileManager.default.removeItem(at: root.appendingPathComponent("sub/.derive"))
        case "moved-state": try FileManager.default.removeItem(at: root.appendingPathComponent("sub/n.lock"))
        case "link": try FileManager.default.createSymbolicLink(atPath: neighbour.path, withDestinationPath: "/nowhere/n.yaml")
        case "folder": try FileManager.default.createDirectory(at: neighbour, withIntermediateDirectories: false)
        case "hello": try Data("hello: world\n".utf8).write(to: neighbour)
        default: break
        }
        let file = root.appendingPathComponent("pub/n/n1.jpg")
        let bytes = try Data(contentsOf: file)
        // The site writes the same bytes (w_8) at that very path: `--verify` would take it as its own.
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: s, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))

        let build = try CLI.run(["build", "--verify"], in: root)
        let text = said(build)
        #expect(build.status != 0, "\(text)")
        #expect(text.contains("pub/n/n1.jpg is an output of ") && text.contains("/sub/n.yaml, which is no longer there, but its "), "\(text)")
        #expect(!text.contains("not written by Derive"), "\(text)")
        let clean = try CLI.run(["clean"], in: root)
        #expect(try Data(contentsOf: file) == bytes, "the neighbour's output was taken or deleted: \(text) \(said(clean))")
    }

    /// F8: a project nested in the site's public bucket (`www/a/a.yaml`, private outputs) whose
    /// manifest is replaced by a link, a folder or a non-manifest YAML: its outputs stay private.
    @Test(arguments: ["link", "folder", "hello"])
    func serveKeepsAGoneNestedProjectsOutputsPrivate(left: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let nested = root.appendingPathComponent("www/a")
        try samples(nested, ["src/a.jpg"])
        let manifest = nested.appendingPathComponent("a.yaml")
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: manifest)
        let built = try CLI.run(["build", "-q", "a.yaml"], in: nested)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: manifest)
        switch left {
        case "link": try FileManager.default.createSymbolicLink(atPath: manifest.path, withDestinationPath: "/nowhere")
        case "folder": try FileManager.default.createDirectory(at: manifest, withIntermediateDirectories: false)
        default: try Data("hello: world\n".utf8).write(to: manifest)
        }
        try Data("version: 1\nbuckets:\n  www: {path: www, acl: public-read}\nderivatives: []\n".utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let (service, _) = try ProjectsAroundServeRound46Tests.service(root.appendingPathComponent("derive.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/www/a/out/a.jpg").status == 403)
        // The site's own file beside it is answered as the bucket says.
        try Data("mine\n".utf8).write(to: root.appendingPathComponent("www/x.txt"))
        #expect(ServeRound3Tests.request(service, "GET", "/www/x.txt").status == 200)
    }

    /// F7: a neighbour still there that renamed its bucket (`pub` → `out`, same folder `../pub/n`)
    /// and has not rebuilt: its state (or, `lock-only`, its lock alone) records the file under the
    /// old bucket name with these bytes. `--verify` took it as the site's and clean deleted it.
    @Test(arguments: ["state", "lock-only"])
    func aNeighboursOutputUnderARenamedBucketIsStillItsOwn(records: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try samples(root, ["src/n1.jpg", "sub/src/n1.jpg"])
        let neighbour = root.appendingPathComponent("sub/n.yaml")
        func write(bucket: String) throws {
            try Data("version: 1\nbuckets:\n  src: {path: src}\n  \(bucket): {path: ../pub/n}\nderivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"\(bucket)/{name}.jpg\"}\n".utf8)
                .write(to: neighbour)
        }
        try write(bucket: "pub")
        let built = try CLI.run(["build", "-q", "n.yaml"], in: neighbour.deletingLastPathComponent())
        #expect(built.status == 0, "\(said(built))")
        try write(bucket: "out")
        if records == "lock-only" { try FileManager.default.removeItem(at: root.appendingPathComponent("sub/.derive")) }
        let file = root.appendingPathComponent("pub/n/n1.jpg")
        let bytes = try Data(contentsOf: file)
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: s, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))

        let build = try CLI.run(["build", "--verify"], in: root)
        let text = said(build)
        #expect(build.status != 0, "\(text)")
        #expect(text.contains("pub/n/n1.jpg is an output of ") && text.contains("/sub/n.yaml ("), "\(text)")
        let clean = try CLI.run(["clean"], in: root)
        #expect(try Data(contentsOf: file) == bytes, "the neighbour's output was taken or deleted: \(text) \(said(clean))")
    }

    /// F2: a project nested in the site's public bucket, its manifest gone, its lock and state
    /// moved (`lock: locks/a.lock`, `state: var/st`): serve read its lock's keys alone (its state
    /// was not found), so the user's own copy with the output's name and bytes elsewhere in the
    /// bucket (`mine/a.jpg`) was answered 403 as that project's. Its state places its output.
    @Test func serveMatchesAGoneProjectsMovedStateByPlaceNotName() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let nested = root.appendingPathComponent("www/a")
        try samples(nested, ["src/a.jpg"])
        let manifest = nested.appendingPathComponent("a.yaml")
        try Data("version: 1\nlock: locks/a.lock\nstate: var/st\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: manifest)
        let built = try CLI.run(["build", "-q", "a.yaml"], in: nested)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: manifest)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("www/mine"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: nested.appendingPathComponent("out/a.jpg"), to: root.appendingPathComponent("www/mine/a.jpg"))
        try Data("version: 1\nbuckets:\n  www: {path: www, acl: public-read}\nderivatives: []\n".utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let (service, _) = try ProjectsAroundServeRound46Tests.service(root.appendingPathComponent("derive.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/www/mine/a.jpg").status == 200)
        #expect(ServeRound3Tests.request(service, "GET", "/www/a/out/a.jpg").status == 403)
    }

    /// F10: an output in a folder named `.derive` was valid and built, then answered 404 by serve
    /// (taken for a build state); at the bucket's root it was served. Validate refuses both alike.
    @Test(arguments: ["pub/x/.derive/{name}.jpg", "pub/.derive/{name}.jpg", "pub/{dir}/.derive/t-{name}.jpg"])
    func validateRefusesAnOutputInAFolderNamedDotDerive(to: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try samples(root, ["src/n1.jpg"])
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub, acl: public-read}\nderivatives:\n  - {name: s, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"\(to)\"}\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        let validate = try CLI.run(["validate"], in: root)
        let text = said(validate)
        #expect(validate.status == 1 && text.contains("has a part named '.derive'; Derive keeps build states in folders named .derive"), "\(text)")
        let build = try CLI.run(["build", "-q"], in: root)
        #expect(build.status != 0 && !FileManager.default.fileExists(atPath: root.appendingPathComponent("pub").path), "\(said(build))")
    }
}
