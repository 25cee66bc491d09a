import Access
import DeriveServer
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import derive

/// Issue #9, attack 46b. N2: a neighbour manifest broken mid-edit in JSON, YAML flow style or
/// with quoted keys, its `lock:` and `state:` moved: only block-YAML `lock:`/`state:` lines were
/// read from a broken file, so its lock and state were not found (nor was it a project at all,
/// none of its control files lying beside it), and its private outputs were answered to anyone
/// and replaced or deleted by requests. M2: a neighbour whose manifest was removed (its lock and
/// state left), beside or below the site: found by its manifest only, its outputs were nobody's
/// to serve. L1: the layout README names under serve's limits (a project elsewhere in a bucket
/// outside the site's folder writing another folder of it), served public-read.
@Suite(.ownThreads, .serialized) struct NeighbourControlFilesRound47Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// An in-process serve of `manifestFile` that takes V1-signed requests
    /// (`ProjectMarkerWritesRound44Tests.send`).
    static func service(_ manifestFile: URL) throws -> ObjectService {
        let manifest = try #require(ManifestLoader().load(manifestFile.path).manifest)
        return try ObjectService(manifest: manifest, verifier: Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou"), engine: Engine(),
                                 cacheFolder: manifestFile.deletingLastPathComponent().appendingPathComponent("cache").path,
                                 recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest),
                                 clock: { ProjectMarkerWritesRound44Tests.now })
    }

    /// Anonymous GET, HEAD, process, PUT and DELETE of `key` refused, signed PUT and DELETE too,
    /// the file kept.
    func expectGuarded(_ service: ObjectService, bucket: String, _ key: String, file: URL, _ comment: String) throws {
        let before = try Data(contentsOf: file)
        for method in ["GET", "HEAD"] {
            #expect(ServeRound3Tests.request(service, method, "/\(bucket)/\(key)").status == 403, "\(method) \(key): \(comment)")
        }
        #expect(ServeRound3Tests.request(service, "GET", "/\(bucket)/\(key)?x-oss-process=image/resize,w_4").status == 403, "process: \(comment)")
        for signed in [false, true] {
            let put = ProjectMarkerWritesRound44Tests.send(service, "PUT", bucket, key, body: "x", signed: signed)
            #expect(put.status == 403, "PUT \(key) signed \(signed): \(comment): \(put.text)")
            let delete = ProjectMarkerWritesRound44Tests.send(service, "DELETE", bucket, key, signed: signed)
            #expect(delete.status == 403, "DELETE \(key) signed \(signed): \(comment): \(delete.text)")
        }
        #expect(FileManager.default.fileExists(atPath: file.path) && (try? Data(contentsOf: file)) == before, "\(key) changed: \(comment)")
    }

    /// The gallery's manifest in each spelling, its lock and state moved: the text it builds
    /// with, and the file it lies in.
    static func gallery(_ form: String) -> (name: String, text: String) {
        let state = "../.gstate-" + form
        switch form {
        case "json":
            return ("derive.json", #"{"version": 1, "lock": "meta/g.lock", "state": "\#(state)", "buckets": {"src": {"path": "src"}, "out": {"path": "../www/gallery", "acl": "private"}}, "derivatives": [{"name": "g", "from": "src/*.jpg", "process": "image/resize,w_8", "to": "out/{name}.jpg", "acl": "private"}]}"#)
        case "flow":
            return ("derive.yaml", #"{version: 1, lock: meta/g.lock, state: \#(state), buckets: {src: {path: src}, out: {path: ../www/gallery, acl: private}}, derivatives: [{name: g, from: "src/*.jpg", process: "image/resize,w_8", to: "out/{name}.jpg", acl: private}]}"# + "\n")
        default:
            return ("derive.yaml", """
                "version": 1
                "lock": "meta/g.lock"
                'state': '\(state)'
                "buckets":
                  "src": {"path": "src"}
                  "out": {"path": "../www/gallery", "acl": "private"}
                "derivatives":
                  - {"name": "g", "from": "src/*.jpg", "process": "image/resize,w_8", "to": "out/{name}.jpg", "acl": "private"}

                """)
        }
    }

    /// N2: the gallery below the site, built with `lock:` and `state:` moved, then broken mid-edit
    /// (JSON and flow cut short, quoted keys with a bad line appended): its outputs in the site's
    /// public-read-write bucket stay private and unwritable, and the site's build with
    /// `--overwrite` never takes them.
    @Test(arguments: ["json", "flow", "quoted"])
    func aBrokenNeighbourInAnySpellingKeepsItsMovedLockAndState(form: String) throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read-write", rule: false, gallery: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let (name, text) = Self.gallery(form)
        let file = root.appendingPathComponent("gallery/" + name)
        try Data(text.utf8).write(to: file)
        let build = try CLI.run(["build", "-q", name], in: root.appendingPathComponent("gallery"))
        #expect(build.status == 0, "\(said(build))")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("gallery/meta/g.lock").path))
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("gallery/.derive").path))
        let output = root.appendingPathComponent("www/gallery/g1.jpg")
        let bytes = try Data(contentsOf: output)
        let broken = form == "quoted" ? text + "oops: [x\n" : String(text.prefix(text.count * 2 / 3))
        try Data(broken.utf8).write(to: file)

        let service = try Self.service(root.appendingPathComponent("derive.yaml"))
        try expectGuarded(service, bucket: "www", "gallery/g1.jpg", file: output, form)
        try expectGuarded(service, bucket: "www", "gallery/g2.jpg", file: root.appendingPathComponent("www/gallery/g2.jpg"), form)
        // The site's own files in that bucket are answered as the bucket says.
        #expect(ServeRound3Tests.request(service, "GET", "/www/x.txt").status == 200)

        // The site given a rule writing over the gallery's output: refused with --overwrite too.
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  www: {path: www, acl: private}\nderivatives:\n  - {name: w, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"www/gallery/g1.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        let overwrite = try CLI.run(["build", "--overwrite"], in: root)
        #expect(overwrite.status != 0 && said(overwrite).contains("gallery/" + name), "\(said(overwrite))")
        #expect(try Data(contentsOf: output) == bytes)
    }

    /// M2: a neighbour whose manifest was removed, its lock and state left (`derive.lock`,
    /// `.derive/derive`), beside the site (`site.yaml` in the same folder) or below it: its
    /// recorded outputs in the site's public-read-write bucket stay private and unwritable.
    @Test(arguments: ["beside", "below"])
    func aNeighbourWithItsManifestGoneKeepsItsOutputs(place: String) throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read-write", rule: false, gallery: place == "below")
        defer { try? FileManager.default.removeItem(at: root) }
        let site: URL
        if place == "beside" {
            // The neighbour is derive.yaml in the site's folder; the site is site.yaml beside it.
            try Data("""
                version: 1
                buckets:
                  src: {path: gallery/src}
                  out: {path: www/gallery, acl: private}
                derivatives:
                  - {name: g, from: "src/*.jpg", process: "image/resize,w_8", to: "out/{name}.jpg", acl: private}

                """.utf8).write(to: root.appendingPathComponent("derive.yaml"))
            let build = try CLI.run(["build", "-q"], in: root)
            #expect(build.status == 0, "\(said(build))")
            try FileManager.default.removeItem(at: root.appendingPathComponent("derive.yaml"))
            site = root.appendingPathComponent("site.yaml")
            try Data("version: 1\nbuckets:\n  www: {path: www, acl: public-read-write}\nderivatives: []\n".utf8).write(to: site)
        } else {
            try FileManager.default.removeItem(at: root.appendingPathComponent("gallery/derive.yaml"))
            site = root.appendingPathComponent("derive.yaml")
        }
        let service = try Self.service(site)
        try expectGuarded(service, bucket: "www", "gallery/g1.jpg", file: root.appendingPathComponent("www/gallery/g1.jpg"), place)
        try expectGuarded(service, bucket: "www", "gallery/g2.jpg", file: root.appendingPathComponent("www/gallery/g2.jpg"), place)
        // The site's own files in that bucket are answered, replaced and deleted as the bucket says.
        #expect(ServeRound3Tests.request(service, "GET", "/www/x.txt").status == 200)
        #expect(ServeRound3Tests.request(service, "PUT", "/www/gallery/new.txt", body: "x").status == 200)
        #expect(ServeRound3Tests.request(service, "DELETE", "/www/gallery/new.txt").status == 204)
    }

    /// N2 the other way: no writer through serve creates a broken manifest that names its lock or
    /// state folder (discovery would take it for a project once they exist); one that names
    /// neither, and an ordinary JSON file, still land.
    @Test func noWriterCreatesABrokenManifestNamingItsLockOrState() throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read-write", rule: false, gallery: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let service = try Self.service(root.appendingPathComponent("derive.yaml"))
        for (key, body) in [("u/half.json", #"{"version": 1, "lock": "../../derive.lock", "buckets": {"#),
                            ("u/flow.yaml", "{version: 1, state: ../.derive/derive, buckets: {"),
                            ("u/quoted.yml", "\"version\": 1\n\"lock\": \"x.lock\"\n\"buckets\": [x\n")] {
            for signed in [false, true] {
                let answer = ProjectMarkerWritesRound44Tests.send(service, "PUT", "www", key, body: body, signed: signed)
                #expect(answer.status == 403 && answer.text.contains("names its lock or state folder"), "\(key) signed \(signed): \(answer.status) \(answer.text)")
            }
            #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("www/" + key).path), "\(key) was written")
        }
        for (key, body) in [("u/plain.json", #"{"version": 1, "buckets": {"#), ("u/data.json", #"{"lock": "a", "state": "b"}"#)] {
            #expect(ProjectMarkerWritesRound44Tests.send(service, "PUT", "www", key, body: body).status == 200, "\(key)")
        }
    }

    /// L1: README's layout under serve's limits (`upl: {path: ../pub}` holding `pub/x/P`, which
    /// writes `../../y`), served public-read: no anonymous request replaces or deletes anything
    /// (anonymous writes need public-read-write), whatever the file.
    @Test func aPublicReadBucketTakesNoAnonymousWrites() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = root.appendingPathComponent("pub/x/P")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: project, outputs: "../../y")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("site"), withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.serveOnly("../pub", acl: "public-read").write(to: root.appendingPathComponent("site/site.yaml"))
        let output = root.appendingPathComponent("pub/y/t/a2.jpg")
        let bytes = try Data(contentsOf: output)
        let service = try Self.service(root.appendingPathComponent("site/site.yaml"))
        for (method, key) in [("DELETE", "y/t/a2.jpg"), ("PUT", "y/t/a2.jpg"), ("PUT", "y/new.txt"), ("POST", "y/t/a2.jpg?append&position=0")] {
            let answer = ServeRound3Tests.request(service, method, "/upl/" + key, body: "x")
            #expect(answer.status == 403, "\(method) \(key): \(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
        }
        #expect(try Data(contentsOf: output) == bytes)
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("pub/y/new.txt").path))
    }
}
