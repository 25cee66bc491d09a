import Access
import DeriveServer
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import derive

/// Issue #9, round 45. N4: a project in a sub-folder of the site's folder (`gallery/derive.yaml`
/// with `out: {path: ../www/gallery, acl: private}`) wrote private outputs into the site's public
/// bucket, `validate` said valid and `serve` answered them to anyone (and, public-read-write, let
/// anyone replace and delete them): the projects below a manifest's own folder were not looked at.
/// And "writes refused, reads not hidden": a built project deeper in a public bucket than
/// validate looks had its private outputs answered anonymously (200).
@Suite(.ownThreads, .serialized) struct NestedPrivateOutputsRound45Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// R/derive.yaml (bucket www at `acl`, a public rule when `rule`) and, when `gallery`,
    /// R/gallery/derive.yaml writing private outputs into ../www/gallery, built.
    static func site(acl: String, rule: Bool = true, gallery: Bool = true) throws -> URL {
        let root = try CLI.temporaryFolder()
        for (path, sample) in ["src/r1.jpg": "landscape.jpg", "gallery/src/g1.jpg": "landscape.jpg", "gallery/src/g2.jpg": "portrait.jpg"] {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(sample), to: url)
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("www"), withIntermediateDirectories: true)
        try Data("a user's file\n".utf8).write(to: root.appendingPathComponent("www/x.txt"))
        let rules = rule ? "\n  - {name: w, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"www/{name}.jpg\", acl: public-read}\n" : " []\n"
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  www: {path: www, acl: \(acl)}\nderivatives:\(rules)".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        if gallery { try Self.buildGallery(root) }
        return root
    }

    static func buildGallery(_ root: URL) throws {
        try Data("""
            version: 1
            buckets:
              src: {path: src}
              out: {path: ../www/gallery, acl: private}
            derivatives:
              - {name: g, from: "src/*.jpg", process: "image/resize,w_8", to: "out/{name}.jpg", acl: private}

            """.utf8).write(to: root.appendingPathComponent("gallery/derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: root.appendingPathComponent("gallery"))
        #expect(build.status == 0, "\(build.stderr)")
    }

    /// N4's repro: validate refuses the site, naming the project below and the fix; serve does
    /// not start; a private `www` is allowed.
    @Test(arguments: [("public-read", true), ("public-read-write", false)])
    func aProjectBelowWritingPrivateOutputsIntoAPublicBucketIsRefused(acl: String, rule: Bool) throws {
        let root = try Self.site(acl: acl, rule: rule)
        defer { try? FileManager.default.removeItem(at: root) }
        let validate = try CLI.run(["validate"], in: root)
        #expect(validate.status == 1, "\(said(validate))")
        #expect(said(validate).contains("bucket 'www' (www) shares files with bucket 'out' (www/gallery) that gallery/derive.yaml, another project, writes its outputs into, and is \(acl) where those outputs are private"),
                "\(said(validate))")
        #expect(said(validate).contains("serve those outputs with derive serve gallery/derive.yaml"), "\(said(validate))")
        let lock = try Data(contentsOf: root.appendingPathComponent("gallery/derive.lock"))
        if acl == "public-read-write" {
            let serve = try ServeStartRound41Tests.run(["serve", "--port", "0"], in: root, seconds: 20, until: "Serving")
            #expect(serve.status == 1 && serve.stderr.contains("shares files with bucket 'out'"), "\(String(describing: serve.status)) \(serve.stdout) \(serve.stderr)")
        }
        let build = try CLI.run(["build", "-q"], in: root)
        #expect(build.status != 0 && said(build).contains("shares files with bucket 'out'"), "\(said(build))")
        #expect(try Data(contentsOf: root.appendingPathComponent("gallery/derive.lock")) == lock)
        let check = try CLI.run(["check"], in: root.appendingPathComponent("gallery"))
        #expect(check.status == 0, "\(said(check))")
    }

    /// A project appearing below the served manifest's folder, built into its public bucket: a
    /// running serve answers 503 within the listing interval, as for a neighbour beside it.
    @Test func aProjectAppearingBelowIsRefusedByARunningServe() throws {
        let root = try Self.site(acl: "public-read", rule: false, gallery: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let serve = try ServeSession(in: root)
        defer { serve.stop() }
        #expect(try serve.get("/www/x.txt").status == 200)
        try Self.buildGallery(root)
        let deadline = Date().addingTimeInterval(10)
        var status = try serve.get("/www/gallery/g1.jpg").status
        while status != 503, Date() < deadline {
            usleep(100_000)
            status = try serve.get("/www/gallery/g1.jpg").status
        }
        #expect(status == 503, "the gallery's private output was answered anonymously")
    }

    /// A built project deeper in a public bucket (`pub/P`, `pub/deep/P`, validated today: only the
    /// bucket's own folder and those above it were looked at): its private outputs are answered
    /// to an anonymous reader as OSS answers a private object (403 AccessDenied), absent from
    /// anonymous listings, whatever the depth; its lock changing (the rule made public, rebuilt)
    /// is seen at the next request, both ways.
    @Test(arguments: ["projects/P", "projects/deep/P"])
    func aDeepProjectsPrivateOutputsAreNotAnsweredAnonymously(project: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent(project)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: folder, outputs: "pub")
        try CrossManifestBucketRound42Tests.serveOnly("projects", acl: "public-read").write(to: root.appendingPathComponent("site.yaml"))
        let manifest = try #require(ManifestLoader().load(root.appendingPathComponent("site.yaml").path).manifest)
        let recorded = BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest)
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: [:], region: "cn-hangzhou"), engine: Engine(),
                                        cacheFolder: root.appendingPathComponent("cache").path, recorded: recorded)
        let inner = String(project.dropFirst("projects/".count))
        // The refusal is logged naming the project (the answer itself is OSS's usual one).
        #expect(recorded.foreignReadNote(bucket: "upl", key: "\(inner)/pub/t/a1.jpg")?.contains("/\(project)/derive.yaml, another project nested in the bucket") == true)
        #expect(recorded.foreignReadNote(bucket: "upl", key: "\(inner)/src/a1.jpg") == nil)
        let key = "/upl/\(inner)/pub/t/a1.jpg"
        for method in ["GET", "HEAD"] {
            let answer = ServeRound3Tests.request(service, method, key)
            #expect(answer.status == 403, "\(method) \(key): \(answer.status)")
            if method == "GET" { #expect(String(decoding: answer.body, as: UTF8.self).contains("<Code>AccessDenied</Code>"), "\(String(decoding: answer.body, as: UTF8.self))") }
        }
        #expect(ServeRound3Tests.request(service, "GET", key + "?x-oss-process=image/resize,w_4").status == 403)
        let listing = ServeRound3Tests.request(service, "GET", "/upl/?prefix=\(inner)/pub/")
        #expect(listing.status == 200 && !String(decoding: listing.body, as: UTF8.self).contains("a1.jpg"), "\(String(decoding: listing.body, as: UTF8.self))")
        // Writes over it stay refused.
        #expect(ServeRound3Tests.request(service, "PUT", key, body: "x").status == 403)
        // Not a recorded output: answered as the bucket says.
        #expect(ServeRound3Tests.request(service, "GET", "/upl/\(inner)/src/a1.jpg").status == 200)

        // The project publishes its outputs (rule public-read, rebuilt): its lock changes, and
        // the next request answers them; made private again, refused again.
        let publicRule = "to: \"out/t/{name}.jpg\", acl: public-read}"
        let file = folder.appendingPathComponent("derive.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        try Data(text.replacingOccurrences(of: "w_8\", to: \"out/t/{name}.jpg\"}", with: "w_9\", \(publicRule)").utf8).write(to: file)
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        #expect(ServeRound3Tests.request(service, "GET", key).status == 200, "a public output of the project is answered as its builder gives it")
        try Data(text.replacingOccurrences(of: "w_8", with: "w_10").utf8).write(to: file)
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        #expect(ServeRound3Tests.request(service, "GET", key).status == 403, "the project made its output private again")
        // Its lock alone says it (a clone, its state gone), also while its manifest is mid-edit
        // (its buckets unknown: the line's key, as builds take it); its state alone too (it keeps
        // the folder it wrote in). Not another key of the bucket.
        let state = folder.appendingPathComponent(".derive")
        try FileManager.default.moveItem(at: state, to: root.appendingPathComponent("kept-state"))
        #expect(ServeRound3Tests.request(service, "GET", key).status == 403, "its lock records it")
        try Data((text + "  x: [\n").utf8).write(to: file)
        #expect(ServeRound3Tests.request(service, "GET", key).status == 403, "its lock records it, its manifest mid-edit")
        let lock = folder.appendingPathComponent("derive.lock")
        try FileManager.default.moveItem(at: lock, to: root.appendingPathComponent("kept.lock"))
        try FileManager.default.moveItem(at: root.appendingPathComponent("kept-state"), to: state)
        #expect(ServeRound3Tests.request(service, "GET", key).status == 403, "its state records it, its manifest mid-edit")
        #expect(ServeRound3Tests.request(service, "GET", "/upl/\(inner)/src/a1.jpg").status == 200)
    }
}
