import Foundation
import Testing
import TestSupport

/// Attack 52b's 5 and 5b (issue #13): trivial "decoy" manifests use up the bounds of the search
/// for other projects, and a private writer beyond them (built under another state home, so no
/// registry names it) has its output in this manifest's public bucket answered to anyone. 5b:
/// 33 decoys in the manifest's own folder (the 32 read around the buckets) hid it, and nothing
/// warned. Both bounds warn now, and while one is reached serve answers anonymous readers of a
/// public bucket only the files this manifest's build records with their bytes.
@Suite(.ownThreads, .serialized) struct DecoyBoundRound53Tests {
    static let warning = "hold more than Derive looks through for other projects"

    func said(_ result: CLI.Result) -> String { result.stderr + String(decoding: result.stdout, as: UTF8.self) }

    /// a.yaml's state home, in the test's folder (the writer's is another: no registry names it).
    func environment(_ root: URL) -> [String: String] { ["XDG_STATE_HOME": root.appendingPathComponent("home").path] }

    /// a.yaml publishes `pub` (its own rule writes `pub/own/`, public-read; `pub/hi.txt` put by
    /// hand); `writer` (`zz.yaml`, or `zz/w.yaml`) writes `pub/p/s.jpg` privately, built under a
    /// state home of its own.
    func layout(writer: String, writerBuckets: String, decoys: (URL) throws -> Void) throws -> URL {
        let root = try CLI.temporaryFolder()
        let fm = FileManager.default
        let writerFolder = root.appendingPathComponent(writer).deletingLastPathComponent()
        for folder in [root.appendingPathComponent("pub"), root.appendingPathComponent("src"), writerFolder.appendingPathComponent("img")] {
            try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/s.jpg"))
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: writerFolder.appendingPathComponent("img/s.jpg"))
        try Data("hi\n".utf8).write(to: root.appendingPathComponent("pub/hi.txt"))
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  www: {path: pub, acl: public-read}\nderivatives:\n  - {from: src/*.jpg, process: \"image/resize,w_8\", acl: public-read, to: \"www/own/{name}.{ext}\"}\n".utf8)
            .write(to: root.appendingPathComponent("a.yaml"))
        try Data("version: 1\nbuckets:\n  img: {path: img}\n  out: {path: \(writerBuckets)}\nderivatives:\n  - {from: img/*.jpg, process: \"image/resize,w_8\", to: \"out/p/{name}.{ext}\"}\n".utf8)
            .write(to: root.appendingPathComponent(writer))
        let other = try CLI.run(["build", "-q", writer], in: root, environment: ["XDG_STATE_HOME": root.appendingPathComponent("other-home").path])
        #expect(other.status == 0, "\(said(other))")
        let found = try CLI.run(["validate", "a.yaml"], in: root, environment: environment(root))
        #expect(found.status != 0, "without decoys the writer is found: \(said(found))")
        try decoys(root)
        return root
    }

    /// GET `target`, asked again when no answer came within the connection's timeout (the first
    /// requests of a serve with dozens of manifests around are slow on a loaded machine).
    func get(_ serve: ServeSession, _ target: String) throws -> (status: Int, body: String) {
        for _ in 0..<4 {
            let connection = try ServeConnectionTests.Connection(port: serve.port)
            connection.send(ServeConnectionTests.get(target))
            if let answer = connection.response() { return (answer.status, String(decoding: answer.body, as: UTF8.self)) }
        }
        throw ServeSession.Failure(message: "derive serve gave no answer to \(target)")
    }

    /// Validate warns of the bound; serve keeps the writer's file private (and unlisted), its own
    /// public output public, and the file put by hand private while the bound is reached.
    /// `listed`: the anonymous listing is checked too (with 64 folders below, a listing's first
    /// answer took over two minutes at load 30; the reads above go through the same ACL).
    func expectBoundKept(_ root: URL, listed: Bool = true) throws {
        let validate = try CLI.run(["validate", "a.yaml"], in: root, environment: environment(root))
        #expect(validate.stderr.contains(Self.warning), "no warning of the bound: \(said(validate))")
        let built = try CLI.run(["build", "-q", "a.yaml"], in: root, environment: environment(root))
        #expect(built.status == 0, "\(said(built))")
        let serve = try ServeSession(in: root, manifest: "a.yaml", environment: environment(root))
        defer { serve.stop() }
        #expect(try get(serve, "/www/own/s.jpg").status == 200, "this manifest's own public output")
        let hidden = try get(serve, "/www/p/s.jpg")
        #expect(hidden.status == 403, "the unweighed writer's private output answered \(hidden.status)")
        #expect(try get(serve, "/www/hi.txt").status == 403, "a file nothing records, while the bound is reached")
        guard listed else { return }
        let list = try get(serve, "/www/?list-type=2").body
        #expect(!list.contains("<Key>p/s.jpg</Key>") && list.contains("<Key>own/s.jpg</Key>"), "\(list)")
    }

    @Test func decoysBesideTheManifestAreSaidAndHideNoPrivateWriter() throws {
        let root = try layout(writer: "zz.yaml", writerBuckets: "pub") { root in
            for number in 10...42 {
                try Data("version: 1\nbuckets:\n  x\(number): {path: x\(number)}\n".utf8).write(to: root.appendingPathComponent("d\(number).yaml"))
            }
        }
        defer { try? FileManager.default.removeItem(at: root) }
        try expectBoundKept(root)
    }

    @Test func decoysBelowTheManifestHideNoPrivateWriter() throws {
        let root = try layout(writer: "zz/w.yaml", writerBuckets: "../pub") { root in
            for number in 10...73 {
                let folder = root.appendingPathComponent("d\(number)")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                try Data("version: 1\nbuckets:\n  x: {path: x}\n".utf8).write(to: folder.appendingPathComponent("derive.yaml"))
            }
        }
        defer { try? FileManager.default.removeItem(at: root) }
        try expectBoundKept(root, listed: false)
    }
}
