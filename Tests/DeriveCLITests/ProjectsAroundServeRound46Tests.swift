import Access
import DeriveServer
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import derive

/// Issue #9, attack 45b. F1: `gallery/derive.yaml` writing private outputs into the site's public
/// bucket (`../www/gallery`) is refused by validate while it loads; mid-edit (a half-typed line,
/// or emptied beside its state), validate said valid and serve answered its outputs to anyone,
/// and let anonymous writers replace and delete them. F2: a project validate does not look for (a
/// sibling folder writing `../site/www/gallery`; a project deep in the bucket writing another
/// folder of it) alike. Serve now asks the projects around each file, as builds do, whether they
/// record it (their lock or their state), loaded or not.
@Suite(.ownThreads, .serialized) struct ProjectsAroundServeRound46Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    static func service(_ manifestFile: URL) throws -> (ObjectService, BuiltOutputs) {
        let manifest = try #require(ManifestLoader().load(manifestFile.path).manifest)
        let recorded = BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest)
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: [:], region: "cn-hangzhou"), engine: Engine(),
                                        cacheFolder: manifestFile.deletingLastPathComponent().appendingPathComponent("cache").path, recorded: recorded)
        return (service, recorded)
    }

    /// Anonymous reads of `key` refused (403), writes over it and deletes refused, the file kept.
    func expectGuarded(_ service: ObjectService, _ key: String, file: URL, _ comment: String) throws {
        let before = try Data(contentsOf: file)
        for method in ["GET", "HEAD"] {
            #expect(ServeRound3Tests.request(service, method, key).status == 403, "\(method) \(key): \(comment)")
        }
        #expect(ServeRound3Tests.request(service, "GET", key + "?x-oss-process=image/resize,w_4").status == 403, "\(comment)")
        #expect(ServeRound3Tests.request(service, "PUT", key, body: "x").status == 403, "PUT \(key): \(comment)")
        #expect(ServeRound3Tests.request(service, "DELETE", key).status == 403, "DELETE \(key): \(comment)")
        #expect(try Data(contentsOf: file) == before, "\(comment)")
    }

    /// F1's repro (n4mid, n4app): the gallery below the site mid-edit, emptied, its state gone.
    @Test func aProjectBelowMidEditKeepsItsPrivateOutputsFromAnonymousRequests() throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read-write", rule: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let gallery = root.appendingPathComponent("gallery/derive.yaml")
        let text = try String(contentsOf: gallery, encoding: .utf8)
        let output = root.appendingPathComponent("www/gallery/g1.jpg")
        try Data((text + "oops: [x\n").utf8).write(to: gallery)
        // The real serve (validate says valid while the gallery does not load).
        let serve = try ServeSession(in: root)
        let answered = try serve.get("/www/gallery/g1.jpg").status
        #expect(try serve.get("/www/x.txt").status == 200)
        serve.stop()
        #expect(answered == 403, "the gallery's private output was answered anonymously while its manifest was mid-edit")

        let (service, recorded) = try Self.service(root.appendingPathComponent("derive.yaml"))
        try expectGuarded(service, "/www/gallery/g1.jpg", file: output, "mid-edit")
        #expect(recorded.foreignReadNote(bucket: "www", key: "gallery/g1.jpg")?.contains("/gallery/derive.yaml, another project, records") == true,
                "\(recorded.foreignReadNote(bucket: "www", key: "gallery/g1.jpg") ?? "no note")")
        // A file of the site's own in that bucket is answered as the bucket says.
        #expect(ServeRound3Tests.request(service, "GET", "/www/x.txt").status == 200)
        #expect(ServeRound3Tests.request(service, "PUT", "/www/gallery/new.txt", body: "x").status == 200)
        // Emptied beside its state: its state still places its outputs.
        try Data().write(to: gallery)
        try expectGuarded(service, "/www/gallery/g1.jpg", file: output, "emptied")
        // Its state gone too (a clone): its lock's keys, wherever the file ends so.
        try FileManager.default.moveItem(at: root.appendingPathComponent("gallery/.derive"), to: root.appendingPathComponent("kept-state"))
        try Data((text + "oops: [x\n").utf8).write(to: gallery)
        try expectGuarded(service, "/www/gallery/g2.jpg", file: root.appendingPathComponent("www/gallery/g2.jpg"), "lock only")
        #expect(ServeRound3Tests.request(service, "GET", "/www/x.txt").status == 200)
    }

    /// F2 (sibg): a sibling project, which validate does not look for, writing private outputs
    /// into the served site's public bucket; published by its builder, answered publicly.
    @Test func aSiblingProjectsPrivateOutputsInThePublicBucketAreGuarded() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let site = root.appendingPathComponent("site"), gallery = root.appendingPathComponent("gallery")
        try FileManager.default.createDirectory(at: site.appendingPathComponent("www"), withIntermediateDirectories: true)
        try Data("a user's file\n".utf8).write(to: site.appendingPathComponent("www/x.txt"))
        try Data("version: 1\nbuckets:\n  www: {path: www, acl: public-read-write}\nderivatives: []\n".utf8)
            .write(to: site.appendingPathComponent("derive.yaml"))
        try FileManager.default.createDirectory(at: gallery, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: gallery, outputs: "../site/www/gallery")
        let output = site.appendingPathComponent("www/gallery/t/a1.jpg")
        #expect(FileManager.default.fileExists(atPath: output.path))
        let (service, recorded) = try Self.service(site.appendingPathComponent("derive.yaml"))
        try expectGuarded(service, "/www/gallery/t/a1.jpg", file: output, "sibling")
        #expect(recorded.foreignReadNote(bucket: "www", key: "gallery/t/a1.jpg")?.contains("/gallery/derive.yaml, another project, records") == true)
        #expect(ServeRound3Tests.request(service, "GET", "/www/x.txt").status == 200)
        // Its builder publishes them: answered publicly, as it gives them (writes still refused).
        let file = gallery.appendingPathComponent("derive.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        try Data(text.replacingOccurrences(of: "to: \"out/t/{name}.jpg\"}", with: "to: \"out/t/{name}.jpg\", acl: public-read}").utf8).write(to: file)
        let build = try CLI.run(["build", "-q"], in: gallery)
        #expect(build.status == 0, "\(said(build))")
        #expect(ServeRound3Tests.request(service, "GET", "/www/gallery/t/a1.jpg").status == 200)
        #expect(ServeRound3Tests.request(service, "PUT", "/www/gallery/t/a1.jpg", body: "x").status == 403)
    }

    /// F2 (xw): a project deep in the public bucket (`pub/x/P`) writing its private outputs into
    /// another folder of it (`pub/y`): not on the key's path, found as builds find it.
    @Test func aProjectInTheBucketWritingAnotherFolderOfItIsGuarded() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = root.appendingPathComponent("pub/x/P")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: project, outputs: "../../y")
        try CrossManifestBucketRound42Tests.serveOnly("pub").write(to: root.appendingPathComponent("site.yaml"))
        let output = root.appendingPathComponent("pub/y/t/a2.jpg")
        #expect(FileManager.default.fileExists(atPath: output.path))
        let (service, _) = try Self.service(root.appendingPathComponent("site.yaml"))
        try expectGuarded(service, "/upl/y/t/a2.jpg", file: output, "deep project writing another folder")
        #expect(ServeRound3Tests.request(service, "PUT", "/upl/y/t/new.txt", body: "x").status == 200)
    }

    /// F3 (cap.sh): the site's own bucket of 1 100 folders used up the 1 024 folders the walk
    /// below lists before `zz/gallery` was reached (validate said valid): its buckets are walked
    /// last now. A tree beyond the bounds outside the buckets is warned about.
    @Test func aBucketOfManyFoldersNoLongerHidesAProjectBelow() throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read", rule: false, gallery: false)
        defer { try? FileManager.default.removeItem(at: root) }
        for index in 0..<1100 {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(String(format: "www/a%04d", index)), withIntermediateDirectories: true)
        }
        let zz = root.appendingPathComponent("zz")
        try FileManager.default.createDirectory(at: zz, withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: root.appendingPathComponent("gallery"), to: zz.appendingPathComponent("gallery"))
        let galleryManifest = zz.appendingPathComponent("gallery/derive.yaml")
        try Data("""
            version: 1
            buckets:
              src: {path: src}
              out: {path: ../../www/gallery, acl: private}
            derivatives:
              - {name: g, from: "src/*.jpg", process: "image/resize,w_8", to: "out/{name}.jpg", acl: private}

            """.utf8).write(to: galleryManifest)
        #expect(try CLI.run(["build", "-q"], in: zz.appendingPathComponent("gallery")).status == 0)
        let validate = try CLI.run(["validate"], in: root)
        #expect(validate.status == 1 && said(validate).contains("shares files with bucket 'out' (www/gallery) that zz/gallery/derive.yaml"), "\(said(validate))")
        #expect(!said(validate).contains("hold more than Derive looks through"), "\(said(validate))")

        // 1 100 folders outside every bucket: the walk stops, and says so.
        try FileManager.default.removeItem(at: zz)
        for index in 0..<1100 {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(String(format: "misc/b%04d", index)), withIntermediateDirectories: true)
        }
        let warned = try CLI.run(["validate"], in: root)
        #expect(warned.status == 0, "\(said(warned))")
        #expect(said(warned).contains("outside its buckets, hold more than Derive looks through for other projects (1024 folders or 64 manifests, 4 levels down"), "\(said(warned))")
    }

    /// F4 (rd2): a project nested in a public bucket: its manifest and lock, answered as missing
    /// to a GET, were named in listings; they are not listed now (its sources still are).
    @Test func listingsDoNotNameANestedProjectsControlFiles() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("projects/P")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: folder, outputs: "pub")
        try CrossManifestBucketRound42Tests.serveOnly("projects", acl: "public-read").write(to: root.appendingPathComponent("site.yaml"))
        let (service, _) = try Self.service(root.appendingPathComponent("site.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/upl/P/derive.lock").status == 404)
        #expect(ServeRound3Tests.request(service, "GET", "/upl/P/derive.yaml").status == 404)
        for query in ["?prefix=P/", "?prefix=P/&list-type=2", ""] {
            let listing = ServeRound3Tests.request(service, "GET", "/upl/" + query)
            let body = String(decoding: listing.body, as: UTF8.self)
            #expect(listing.status == 200 && body.contains("P/src/a1.jpg"), "\(query): \(body)")
            #expect(!body.contains("P/derive.lock") && !body.contains("P/derive.yaml") && !body.contains("P/.derive"), "\(query): \(body)")
        }
    }

    /// Attack 46a: H1 (emptied beside its lock, no state: its partial reading placed nothing),
    /// M1 (a lock's keys alone took every same-named file of the bucket: the file must hold the
    /// bytes the line records), H3 (a merge conflict in the lock dropped every line).
    @Test func aLockOnlyNeighbourIsTakenAtItsWordByKeyAndBytes() throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read-write", rule: false)
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.removeItem(at: root.appendingPathComponent("gallery/.derive"))
        let gallery = root.appendingPathComponent("gallery/derive.yaml")
        let text = try String(contentsOf: gallery, encoding: .utf8)
        try Data().write(to: gallery)
        let user = root.appendingPathComponent("www/g1.jpg")
        try Data("a user's file\n".utf8).write(to: user)
        let (service, _) = try Self.service(root.appendingPathComponent("derive.yaml"))
        try expectGuarded(service, "/www/gallery/g1.jpg", file: root.appendingPathComponent("www/gallery/g1.jpg"), "emptied, lock only")
        // Another file of that name, other bytes: the bucket's as before.
        #expect(ServeRound3Tests.request(service, "GET", "/www/g1.jpg").status == 200)
        #expect(ServeRound3Tests.request(service, "PUT", "/www/g1.jpg", body: "x").status == 200)
        // A merge conflict in the lock and the manifest: its whole lines still count.
        let lock = root.appendingPathComponent("gallery/derive.lock")
        let lines = try String(contentsOf: lock, encoding: .utf8)
        try Data(("<<<<<<< HEAD\n" + lines + "=======\n>>>>>>> theirs\n").utf8).write(to: lock)
        try Data(("<<<<<<< HEAD\n" + text + "=======\n>>>>>>> theirs\n").utf8).write(to: gallery)
        try expectGuarded(service, "/www/gallery/g2.jpg", file: root.appendingPathComponent("www/gallery/g2.jpg"), "merge conflict")
    }

    /// Attack 46a: M4 (a rule made public, not rebuilt, was published by this serve before the
    /// gallery's own serve would), M3 (a rule half-typed: the partial reading gave the ACL), H2
    /// (`lock:` and `state:` moved: mid-edit, its defaults named nothing; what serve saw while it
    /// loaded counts).
    @Test func aNeighboursRecordedACLAndMovedControlFilesCount() throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read-write", rule: false, gallery: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let gallery = root.appendingPathComponent("gallery/derive.yaml")
        let text = """
            version: 1
            lock: meta/g.lock
            state: ../.gstate
            buckets:
              src: {path: src}
              out: {path: ../www/gallery, acl: private}
            derivatives:
              - {name: g, from: "src/*.jpg", process: "image/resize,w_8", to: "out/{name}.jpg", acl: private}

            """
        try Data(text.utf8).write(to: gallery)
        #expect(try CLI.run(["build", "-q"], in: root.appendingPathComponent("gallery")).status == 0)
        let output = root.appendingPathComponent("www/gallery/g1.jpg")
        let (service, _) = try Self.service(root.appendingPathComponent("derive.yaml"))
        try expectGuarded(service, "/www/gallery/g1.jpg", file: output, "loaded")
        // Made public, not rebuilt: its build recorded it private.
        try Data(text.replacingOccurrences(of: "acl: private}\n\n", with: "acl: public-read}\n\n").utf8).write(to: gallery)
        #expect(ServeRound3Tests.request(service, "GET", "/www/gallery/g1.jpg").status == 403, "published before its build")
        // Half-typed (parses, does not load), then broken YAML, then emptied: what serve saw it use.
        try Data(text.replacingOccurrences(of: ", to: \"out/{name}.jpg\"", with: "").utf8).write(to: gallery)
        try expectGuarded(service, "/www/gallery/g1.jpg", file: output, "a rule half-typed")
        try Data((text + "oops: [x\n").utf8).write(to: gallery)
        try expectGuarded(service, "/www/gallery/g1.jpg", file: output, "mid-edit, lock and state moved")
        try Data().write(to: gallery)
        try expectGuarded(service, "/www/gallery/g2.jpg", file: root.appendingPathComponent("www/gallery/g2.jpg"), "emptied, lock and state moved")
    }

    /// Attack 46a's H6: the site's bucket pointed at the folder where a project below wrote
    /// byte-identical outputs under the same keys: "holds exactly the bytes Derive recorded (its
    /// folder renamed since?)" took them, and the next build without the rule deleted them.
    @Test func aBucketPointedAtANeighboursOutputsNeverTakesThem() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("gallery"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/landscape.jpg"))
        let site = """
            version: 1
            buckets:
              src: {path: src, acl: private}
              www: {path: www, acl: public-read}
            derivatives:
              - {name: t, from: "src/*.jpg", process: "image/resize,w_50", to: "www/t/{name}.jpg", acl: public-read}

            """
        try Data(site.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        try Data("""
            version: 1
            buckets:
              pics: {path: ../src, acl: private}
              out: {path: ../gout, acl: public-read}
            derivatives:
              - {name: t, from: "pics/*.jpg", process: "image/resize,w_50", to: "out/t/{name}.jpg", acl: public-read}

            """.utf8).write(to: root.appendingPathComponent("gallery/derive.yaml"))
        #expect(try CLI.run(["build", "-q"], in: root).status == 0)
        #expect(try CLI.run(["build", "-q"], in: root.appendingPathComponent("gallery")).status == 0)
        let theirs = root.appendingPathComponent("gout/t/landscape.jpg")
        let bytes = try Data(contentsOf: theirs)
        #expect(try Data(contentsOf: root.appendingPathComponent("www/t/landscape.jpg")) == bytes)
        try Data(site.replacingOccurrences(of: "www: {path: www", with: "www: {path: gout").utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build"], in: root)
        #expect(build.status != 0 && said(build).contains("gallery/derive.yaml"), "\(said(build))")
        try Data(site.components(separatedBy: "derivatives:")[0].appending("derivatives: []\n").replacingOccurrences(of: "www: {path: www", with: "www: {path: gout").utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        _ = try CLI.run(["build"], in: root)
        #expect(try Data(contentsOf: theirs) == bytes, "the gallery's output was replaced or deleted")
        let check = try CLI.run(["check"], in: root.appendingPathComponent("gallery"))
        #expect(check.status == 0, "\(said(check))")
    }

    /// Attack 46a's second round. H9: a JSON manifest cut mid-file beside its state was not a
    /// project mid-edit. H2: half-typed at serve's start with `lock:` and `state:` moved (its
    /// lines still say them). H8: a file its build left in place under a private ACL (a `left`
    /// line) was answered publicly. H10: a project nested in a public bucket with its manifest
    /// gone: its lock, state and private outputs were answered.
    @Test func neighboursMidEditInOtherSpellingsKeepTheirFiles() throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read-write", rule: false, gallery: false)
        defer { try? FileManager.default.removeItem(at: root) }
        // H9: derive.json cut mid-file.
        let json = root.appendingPathComponent("gallery/derive.json")
        let text = #"{"version": 1, "buckets": {"src": {"path": "src"}, "out": {"path": "../www/gallery", "acl": "private"}}, "derivatives": [{"name": "g", "from": "src/*.jpg", "process": "image/resize,w_8", "to": "out/{name}.jpg", "acl": "private"}]}"#
        try Data(text.utf8).write(to: json)
        #expect(try CLI.run(["build", "-q", "derive.json"], in: root.appendingPathComponent("gallery")).status == 0)
        try Data(text.prefix(text.count * 2 / 3).utf8).write(to: json)
        let (service, _) = try Self.service(root.appendingPathComponent("derive.yaml"))
        try expectGuarded(service, "/www/gallery/g1.jpg", file: root.appendingPathComponent("www/gallery/g1.jpg"), "JSON cut short")

        // H2 at serve's start: half-typed, its lock and state moved.
        let other = try NestedPrivateOutputsRound45Tests.site(acl: "public-read-write", rule: false, gallery: false)
        defer { try? FileManager.default.removeItem(at: other) }
        let yaml = """
            version: 1
            lock: meta/g.lock
            state: ../.gstate
            buckets:
              src: {path: src}
              out: {path: ../www/gallery, acl: private}
            derivatives:
              - {name: g, from: "src/*.jpg", process: "image/resize,w_8", to: "out/{name}.jpg", acl: private}

            """
        try Data(yaml.utf8).write(to: other.appendingPathComponent("gallery/derive.yaml"))
        #expect(try CLI.run(["build", "-q"], in: other.appendingPathComponent("gallery")).status == 0)
        try Data((yaml + "  - name: h\n    from: \"src/*.jp").utf8).write(to: other.appendingPathComponent("gallery/derive.yaml"))
        let (moved, _) = try Self.service(other.appendingPathComponent("derive.yaml"))
        try expectGuarded(moved, "/www/gallery/g2.jpg", file: other.appendingPathComponent("www/gallery/g2.jpg"), "half-typed at start, lock and state moved")
    }

    /// H10: a project nested in a public-read-write bucket, its manifest removed (its lock and
    /// state left): its files are answered as missing, its private outputs privately, none listed.
    @Test func aNestedProjectWithItsManifestGoneKeepsItsFiles() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("projects/P")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: folder, outputs: "pub")
        try FileManager.default.removeItem(at: folder.appendingPathComponent("derive.yaml"))
        try CrossManifestBucketRound42Tests.serveOnly("projects").write(to: root.appendingPathComponent("site.yaml"))
        let (service, _) = try Self.service(root.appendingPathComponent("site.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/upl/P/derive.lock").status == 404)
        #expect(ServeRound3Tests.request(service, "GET", "/upl/P/.derive/derive/state.sqlite").status == 404)
        try expectGuarded(service, "/upl/P/pub/t/a1.jpg", file: folder.appendingPathComponent("pub/t/a1.jpg"), "manifest gone")
        let listing = String(decoding: ServeRound3Tests.request(service, "GET", "/upl/?prefix=P/").body, as: UTF8.self)
        #expect(listing.contains("P/src/a1.jpg") && !listing.contains("derive.lock") && !listing.contains("P/pub/"), "\(listing)")
    }

    /// H8: a file the gallery's build left in place under a private ACL (changed by hand, its
    /// private rule then removed: a `left` line in its lock) was answered publicly by the site.
    @Test func aNeighboursLeftPrivateFileStaysPrivate() throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read", rule: false, gallery: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let gallery = root.appendingPathComponent("gallery/derive.yaml")
        let text = """
            version: 1
            buckets:
              src: {path: src}
              out: {path: ../www/gallery, acl: public-read}
            derivatives:
              - {name: priv, from: "src/*.jpg", process: "image/resize,w_8", to: "out/p-{name}.jpg", acl: private}
              - {name: pub, from: "src/*.jpg", process: "image/resize,w_6", to: "out/q-{name}.jpg", acl: public-read}

            """
        try Data(text.utf8).write(to: gallery)
        #expect(try CLI.run(["build", "-q"], in: root.appendingPathComponent("gallery")).status == 0)
        let left = root.appendingPathComponent("www/gallery/p-g1.jpg")
        let handle = try FileHandle(forWritingTo: left)
        try handle.seekToEnd(); try handle.write(contentsOf: Data("xx".utf8)); try handle.close()
        try Data(text.replacingOccurrences(of: "  - {name: priv, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/p-{name}.jpg\", acl: private}\n", with: "").utf8).write(to: gallery)
        let build = try CLI.run(["build"], in: root.appendingPathComponent("gallery"))
        let lockText = String(decoding: try Data(contentsOf: root.appendingPathComponent("gallery/derive.lock")), as: UTF8.self)
        #expect(build.status == 0 && lockText.contains("\"why\""), "\(said(build)) \(lockText)")
        let (service, _) = try Self.service(root.appendingPathComponent("derive.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/www/gallery/p-g1.jpg").status == 403, "the gallery's left private file")
        #expect(ServeRound3Tests.request(service, "GET", "/www/gallery/q-g1.jpg").status == 200, "the gallery's public output")
    }

    /// Attack 46a's H7: the site given a rule writing over the files of a lock-only gallery below
    /// it (a clone, its state gone) mid-edit, or with a merge conflict in its lock: `--overwrite`
    /// replaced them ("exists and was not written by Derive"); its lock's lines, with these bytes
    /// under a key the file's path ends with, say they are its outputs.
    @Test(arguments: ["half-typed", "conflict"])
    func overwriteNeverTakesALockOnlyNeighboursOutputs(state: String) throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "private", rule: false)
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.removeItem(at: root.appendingPathComponent("gallery/.derive"))
        let gallery = root.appendingPathComponent("gallery/derive.yaml")
        let text = try String(contentsOf: gallery, encoding: .utf8)
        try Data((text + "oops: [x\n").utf8).write(to: gallery)
        if state == "conflict" {
            let lock = root.appendingPathComponent("gallery/derive.lock")
            let lines = try String(contentsOf: lock, encoding: .utf8)
            try Data(("<<<<<<< HEAD\n" + lines + "=======\n>>>>>>> theirs\n").utf8).write(to: lock)
        }
        let theirs = root.appendingPathComponent("www/gallery/g1.jpg")
        let bytes = try Data(contentsOf: theirs)
        let site = root.appendingPathComponent("derive.yaml")
        let manifest = try String(contentsOf: site, encoding: .utf8).replacingOccurrences(of: "derivatives: []",
            with: "derivatives:\n  - {name: w, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"www/gallery/g1.jpg\"}")
        try Data(manifest.utf8).write(to: site)
        let build = try CLI.run(["build", "--overwrite"], in: root)
        #expect(build.status != 0 && said(build).contains("gallery/derive.yaml, another project whose manifest does not load"), "\(said(build))")
        #expect(try Data(contentsOf: theirs) == bytes)
    }

    /// Attack 46b. N1: `lock:` and `state:` moved, seen while the gallery loaded, then its
    /// manifest emptied or removed: serve (which loads the site again when a neighbour goes, with
    /// new instances) forgot them. N3: a manifest cut to a newline, or to `version: 1`, beside
    /// its state was no project at all.
    @Test(arguments: ["emptied", "removed", "newline", "version only"])
    func aNeighbourCutBackKeepsItsFiles(how: String) throws {
        let root = try NestedPrivateOutputsRound45Tests.site(acl: "public-read-write", rule: false, gallery: how != "emptied" && how != "removed")
        defer { try? FileManager.default.removeItem(at: root) }
        let gallery = root.appendingPathComponent("gallery/derive.yaml")
        if how == "emptied" || how == "removed" {
            try Data("""
                version: 1
                lock: meta/g.lock
                state: ../.gstate-\(how)
                buckets:
                  src: {path: src}
                  out: {path: ../www/gallery, acl: private}
                derivatives:
                  - {name: g, from: "src/*.jpg", process: "image/resize,w_8", to: "out/{name}.jpg", acl: private}

                """.utf8).write(to: gallery)
            #expect(try CLI.run(["build", "-q"], in: root.appendingPathComponent("gallery")).status == 0)
            let (seen, _) = try Self.service(root.appendingPathComponent("derive.yaml"))
            #expect(ServeRound3Tests.request(seen, "GET", "/www/gallery/g1.jpg").status == 403)
        }
        switch how {
        case "emptied": try Data().write(to: gallery)
        case "removed": try FileManager.default.removeItem(at: gallery)
        case "newline": try Data("\n".utf8).write(to: gallery)
        default: try Data("version: 1\n".utf8).write(to: gallery)
        }
        let (service, _) = try Self.service(root.appendingPathComponent("derive.yaml"))
        try expectGuarded(service, "/www/gallery/g1.jpg", file: root.appendingPathComponent("www/gallery/g1.jpg"), how)
    }

    /// N4: two checkouts of one site side by side, the other one mid-edit: its lock's lines
    /// (same keys, same bytes) made this site's own public outputs private.
    @Test func anotherCheckoutMidEditNeverCapsThisSitesOwnOutputs() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let manifest = "version: 1\nbuckets:\n  src: {path: src}\n  www: {path: www, acl: public-read}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"www/t/{name}.jpg\", acl: public-read}\n"
        for copy in ["A", "B"] {
            let folder = root.appendingPathComponent(copy)
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
            try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
            #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        }
        try FileManager.default.removeItem(at: root.appendingPathComponent("A/.derive"))
        try Data((manifest + "oops: [x\n").utf8).write(to: root.appendingPathComponent("A/derive.yaml"))
        let (service, _) = try Self.service(root.appendingPathComponent("B/derive.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/www/t/a.jpg").status == 200, "B's own public output")
    }
}
