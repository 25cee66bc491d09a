import Foundation
import Testing
import TestSupport
@testable import derive

/// Issue #9, attack 47b's F1 (variants left open): a neighbour project whose manifest was removed,
/// its lock and build state left, below the site (`sub/n.yaml` writing `../pub/n`) or nested in
/// the site's bucket (`pub/n/n.yaml` writing `pub/n/out`). Builds looked for such a project only
/// in the manifest's own folder, so the site's build called its outputs "not written by Derive"
/// (and `--verify` would take them); serve, asking `ForeignProjectFiles.goneProjects`, kept them.
/// Builds now ask the same definition: the file is named as that project's output, kept, and only
/// `--overwrite` takes it, as README says of a gone manifest's output beside the site.
@Suite(.ownThreads) struct GoneNeighbourOutputsRound48Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// `place`: where the neighbour lies ("below", "inside" the site's bucket), and whether its
    /// build state is left too ("…-lock-only": its lock alone records the output).
    @Test(arguments: ["below", "inside", "below-lock-only"])
    func aNeighbourWithItsManifestGoneKeepsItsOutputsFromBuilds(place: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let inside = place == "inside"
        let folder = inside ? "pub/n" : "sub"
        let output = inside ? "pub/n/out/n1.jpg" : "pub/n/n1.jpg"
        for path in ["src/n1.jpg", folder + "/src/n1.jpg"] {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: url)
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        let neighbour = root.appendingPathComponent(folder + "/n.yaml")
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: \(inside ? "out" : "../pub/n")}\nderivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: neighbour)
        let built = try CLI.run(["build", "-q", "n.yaml"], in: neighbour.deletingLastPathComponent())
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: neighbour)
        if place.hasSuffix("lock-only") {
            try FileManager.default.removeItem(at: root.appendingPathComponent(folder + "/.derive"))
        }
        let file = root.appendingPathComponent(output)
        let bytes = try Data(contentsOf: file)
        // The site writes other bytes (w_9) at that very path.
        let target = inside ? "pub/n/out/{name}.jpg" : "pub/n/{name}.jpg"
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: s, from: \"src/*.jpg\", process: \"image/resize,w_9\", to: \"\(target)\"}\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))

        let build = try CLI.run(["build", "--verify"], in: root)
        let text = said(build)
        #expect(build.status != 0, "\(text)")
        #expect(text.contains("\(output) is an output of ") && text.contains("/\(folder)/n.yaml, which is no longer there, but its "), "\(text)")
        #expect(text.contains(place.hasSuffix("lock-only") ? "its lock " : "its build state "), "\(text)")
        #expect(!text.contains("not written by Derive"), "\(text)")
        #expect(try Data(contentsOf: file) == bytes, "the neighbour's output was replaced: \(text)")

        // `--overwrite` takes it, as it takes a gone manifest's output beside the site (README).
        let overwrite = try CLI.run(["build", "-q", "--overwrite"], in: root)
        #expect(overwrite.status == 0, "\(said(overwrite))")
        #expect(try Data(contentsOf: file) != bytes)
    }

    /// F6: a neighbour's lock where its `lock:` keeps it (`meta/d.lock`) is its lock to validate
    /// (a manifest beside it naming it validated), and its default lock, which it no longer uses,
    /// is named as its default, with the lock it uses.
    @Test func validateNamesANeighboursMovedLock() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let rule = "derivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n"
        try Data("version: 1\nlock: meta/d.lock\nstate: meta/st\nbuckets:\n  src: {path: src}\n  out: {path: out}\n\(rule)".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        for (lock, said) in [("meta/d.lock", "the lock file meta/d.lock is the lock of derive.yaml; two manifests may not share a lock"),
                             ("derive.lock", "the lock file derive.lock is the default lock of derive.yaml, whose 'lock:' names meta/d.lock now")] {
            try Data("version: 1\nlock: \(lock)\nstate: meta/s2\nbuckets:\n  src: {path: src}\n  out: {path: sout}\n\(rule)".utf8)
                .write(to: root.appendingPathComponent("site.yaml"))
            let validate = try CLI.run(["validate", "site.yaml"], in: root)
            #expect(validate.status == 1 && self.said(validate).contains(said), "\(lock): \(self.said(validate))")
        }
    }

    /// F6: serve's note on a refused read names the gone project by the manifest its moved lock's
    /// first line names (`www/g/g.yaml`), not by the folder of that lock (`www/g/locks`).
    @Test func serveNamesAGoneProjectWithAMovedLockByItsManifest() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let gallery = root.appendingPathComponent("www/g")
        try FileManager.default.createDirectory(at: gallery.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: gallery.appendingPathComponent("src/a.jpg"))
        try Data("version: 1\nlock: locks/g.lock\nstate: locks/st\nbuckets:\n  src: {path: src}\n  out: {path: out, acl: private}\nderivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\", acl: private}\n".utf8)
            .write(to: gallery.appendingPathComponent("g.yaml"))
        let built = try CLI.run(["build", "-q", "g.yaml"], in: gallery)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: gallery.appendingPathComponent("g.yaml"))
        try Data("version: 1\nbuckets:\n  www: {path: www, acl: public-read}\nderivatives: []\n".utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let (service, recorded) = try ProjectsAroundServeRound46Tests.service(root.appendingPathComponent("derive.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/www/g/out/a.jpg").status == 403)
        let note = recorded.foreignReadNote(bucket: "www", key: "g/out/a.jpg") ?? "no note"
        #expect(note.contains("/www/g/g.yaml, another project") && !note.contains("/locks"), "\(note)")
        // A signed write over it is refused naming that manifest too.
        let signed = try NeighbourControlFilesRound47Tests.service(root.appendingPathComponent("derive.yaml"))
        let put = ProjectMarkerWritesRound44Tests.send(signed, "PUT", "www", "g/out/a.jpg", body: "x", signed: true)
        #expect(put.status == 403 && put.text.contains("/www/g/g.yaml, another manifest") && !put.text.contains("/locks"), "\(put.status) \(put.text)")
    }

    /// The lock and build state of a project whose manifest is gone, moved by its `lock:` and
    /// `state:` into `locks/` inside the site's public bucket (no `.derive` or manifest left to
    /// mark the folder a project's): were answered to anyone (200), and taken by writes.
    @Test func serveNeverAnswersAGoneProjectsMovedLockOrState() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let gallery = root.appendingPathComponent("www/g")
        try FileManager.default.createDirectory(at: gallery.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: gallery.appendingPathComponent("src/a.jpg"))
        try Data("version: 1\nlock: locks/g.lock\nstate: locks/st\nbuckets:\n  src: {path: src}\n  out: {path: out, acl: private}\nderivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\", acl: private}\n".utf8)
            .write(to: gallery.appendingPathComponent("g.yaml"))
        let built = try CLI.run(["build", "-q", "g.yaml"], in: gallery)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: gallery.appendingPathComponent("g.yaml"))
        try Data("version: 1\nbuckets:\n  www: {path: www, acl: public-read-write}\nderivatives: []\n".utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let (service, _) = try ProjectsAroundServeRound46Tests.service(root.appendingPathComponent("derive.yaml"))
        for key in ["g/locks/g.lock", "g/locks/st/state.sqlite"] {
            let file = gallery.appendingPathComponent(String(key.dropFirst(2)))
            let before = try Data(contentsOf: file)
            for method in ["GET", "HEAD"] {
                #expect(ServeRound3Tests.request(service, method, "/www/" + key).status != 200, "\(method) \(key)")
            }
            #expect(ServeRound3Tests.request(service, "PUT", "/www/" + key, body: "x").status == 403, "PUT \(key)")
            #expect(ServeRound3Tests.request(service, "DELETE", "/www/" + key).status == 403, "DELETE \(key)")
            #expect(try Data(contentsOf: file) == before, "\(key) changed")
        }
        // The site's own files there are answered as the bucket says.
        try Data("mine\n".utf8).write(to: root.appendingPathComponent("www/x.txt"))
        #expect(ServeRound3Tests.request(service, "GET", "/www/x.txt").status == 200)
        // Issue #9 (3): listings (V1, V2, with and without a delimiter) named the lock and state
        // that a GET answers as missing; they agree with GET now (its sources are still listed).
        for query in ["?prefix=g/", "?prefix=g/&list-type=2", "?prefix=g/locks/&delimiter=/", ""] {
            let listing = ServeRound3Tests.request(service, "GET", "/www/" + query)
            let body = String(decoding: listing.body, as: UTF8.self)
            #expect(listing.status == 200 && (query.contains("locks") || body.contains("g/src/a.jpg")), "\(query): \(body)")
            #expect(!body.contains("g/locks/g.lock") && !body.contains("g/locks/st/"), "\(query): \(body)")
        }
    }

    /// Issue #9 (1): a public bucket holding a gone project's lock and build state (and so the
    /// outputs they record) validated, while builds and serve take them for that project's.
    /// Refused now as a live neighbour's are, naming the manifest its lock's first line names;
    /// a private bucket may hold them. `moved`: its `lock:` and `state:` put them in `locks/`.
    @Test(arguments: [false, true])
    func validateRefusesAPublicBucketHoldingAGoneProjectsLockAndState(moved: Bool) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let gallery = root.appendingPathComponent("www/g")
        try FileManager.default.createDirectory(at: gallery.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: gallery.appendingPathComponent("src/a.jpg"))
        let controls = moved ? "lock: locks/g.lock\nstate: locks/st\n" : ""
        try Data("version: 1\n\(controls)buckets:\n  src: {path: src}\n  out: {path: out, acl: private}\nderivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\", acl: private}\n".utf8)
            .write(to: gallery.appendingPathComponent("g.yaml"))
        let built = try CLI.run(["build", "-q", "g.yaml"], in: gallery)
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.removeItem(at: gallery.appendingPathComponent("g.yaml"))
        for acl in ["public-read", "private"] {
            try Data("version: 1\nbuckets:\n  www: {path: www, acl: \(acl)}\nderivatives: []\n".utf8).write(to: root.appendingPathComponent("derive.yaml"))
            let validate = try CLI.run(["validate"], in: root)
            let text = said(validate)
            guard acl == "public-read" else {
                #expect(validate.status == 0, "\(text)")
                continue
            }
            let lock = moved ? "www/g/locks/g.lock" : "www/g/g.lock"
            #expect(validate.status == 1 && text.contains("bucket 'www' (www) holds the lock \(lock)") && text.contains("of www/g/g.yaml, another project, which is no longer there, and is public-read"), "\(text)")
            #expect(moved || text.contains("the state folder www/g/.derive/g of "), "\(text)")
        }
    }

    /// Issue #9 (2): `derive clean` looked for gone projects beside the site only: a restored
    /// copy at a recorded output path that a gone neighbour below the site (`sub/n.yaml` writing
    /// `../pub/n`) records with these bytes was called this manifest's own restored copy. It is
    /// named as that project's output now, and left in place.
    @Test func cleanNamesAGoneNeighboursOutputBelowTheSite() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        for path in ["src/n1.jpg", "sub/src/n1.jpg"] {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: url)
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        let rule = "derivatives:\n  - {name: g, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n"
        let neighbour = root.appendingPathComponent("sub/n.yaml")
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: ../pub/n}\n\(rule)".utf8).write(to: neighbour)
        #expect(try CLI.run(["build", "-q", "n.yaml"], in: neighbour.deletingLastPathComponent()).status == 0)
        try FileManager.default.removeItem(at: neighbour)
        // The site renders the same bytes there and takes the file over.
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: pub/n}\n\(rule)".utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let overwrite = try CLI.run(["build", "-q", "--overwrite"], in: root)
        #expect(overwrite.status == 0, "\(said(overwrite))")
        // A copy put in its place: the recorded bytes, another file.
        let file = root.appendingPathComponent("pub/n/n1.jpg")
        let bytes = try Data(contentsOf: file)
        try FileManager.default.removeItem(at: file)
        try bytes.write(to: file)
        let clean = try CLI.run(["clean"], in: root)
        let text = said(clean)
        #expect(text.contains("pub/n/n1.jpg is an output of ") && text.contains("/sub/n.yaml"), "\(text)")
        #expect(!text.contains("a restored copy"), "\(text)")
        #expect(try Data(contentsOf: file) == bytes)
    }
}
