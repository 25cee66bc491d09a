import Foundation
import Testing
import TestSupport

/// Issue #13, attack 15/16's static M4: a running `derive serve` kept the manifest it started
/// with, so a bucket made private in derive.yaml (and built) still answered anonymous GETs with
/// 200 until serve was restarted. Serve now follows the manifest and its includes.
@Suite(.ownThreads, .serialized) struct ServeManifestReloadTests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// `site` public with a website, or private without one; the rule's outputs follow it.
    static func manifest(public: Bool, extra: String = "") -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          site: {path: site, acl: \(`public` ? "public-read, website: {index: index.html}" : "private")}
        \(extra)derivatives:
          - name: pic
            from: src/landscape.jpg
            process: image/resize,w_40/format,webp
            to: site/{name}.webp
            acl: \(`public` ? "public-read" : "private")

        """
    }

    func project(_ manifest: String, files: [String: String] = [:]) throws -> Project {
        let project = try Project(index: false)
        for (name, text) in files { try project.write(name, text) }
        try project.write("derive.yaml", manifest)
        try FileManager.default.createDirectory(at: project.url("site"), withIntermediateDirectories: true)
        try project.write("site/index.html", "<h1>draft</h1>\n")
        try project.write("site/notes.txt", "notes\n")
        #expect(try project.run(["build", "-q"]).status == 0)
        return project
    }

    /// The attack's repro: public `site` served, then made private (and its website removed) in
    /// the manifest and built. The very next anonymous GETs answer 403, as a fresh serve would.
    @Test func aBucketMadePrivateWhileServeRunsIsPrivateAtTheNextRequest() throws {
        let project = try project(Self.manifest(public: true))
        defer { project.remove() }
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(try serve.get("/site/notes.txt").status == 200)
        #expect(try serve.get("/site/").status == 200)
        #expect(try serve.get("/site/landscape.webp").status == 200)

        try project.write("derive.yaml", Self.manifest(public: false))
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(try serve.get("/site/notes.txt").status == 403, "the bucket's ACL is the manifest's, not serve's start-up copy")
        #expect(try serve.get("/site/").status == 403, "no website any more: an anonymous listing of a private bucket")
        #expect(try serve.get("/site/landscape.webp").status == 403)

        // Even before the build: the bucket ACL is the manifest's as soon as it is saved.
        try project.write("derive.yaml", Self.manifest(public: true))
        #expect(try serve.get("/site/notes.txt").status == 200)
        try project.write("derive.yaml", Self.manifest(public: false))
        #expect(try serve.get("/site/notes.txt").status == 403)
    }

    /// A bucket added to the manifest is served without a restart (it was 404 NoSuchBucket).
    @Test func aBucketAddedWhileServeRunsIsServed() throws {
        let project = try project(Self.manifest(public: true))
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("docs"), withIntermediateDirectories: true)
        try project.write("docs/a.txt", "a\n")
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(try serve.get("/docs/a.txt").status == 404)
        // Saved as editors do: written aside, then renamed over the manifest.
        let aside = project.url(".derive.yaml.swp")
        try Data(Self.manifest(public: true).replacingOccurrences(of: "  src: {path: src}\n", with: "  src: {path: src}\n  docs: {path: docs, acl: public-read}\n").utf8).write(to: aside)
        #expect(rename(aside.path, project.url("derive.yaml").path) == 0)
        let reply = try serve.get("/docs/a.txt")
        #expect(reply.status == 200, "\(text(reply.body))")
    }

    /// An include is followed like the root: the bucket declared there made private is private.
    @Test func aBucketMadePrivateInAnIncludeIsPrivate() throws {
        let project = try project("""
            version: 1
            include: buckets.yaml
            derivatives:
              - name: pic
                from: src/landscape.jpg
                process: image/resize,w_40/format,webp
                to: site/{name}.webp
                acl: public-read

            """, files: ["buckets.yaml": "version: 1\nbuckets:\n  src: {path: src}\n  site: {path: site, acl: public-read}\n"])
        defer { project.remove() }
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(try serve.get("/site/notes.txt").status == 200)
        try project.write("buckets.yaml", "version: 1\nbuckets:\n  src: {path: src}\n  site: {path: site, acl: private}\n")
        #expect(try serve.get("/site/notes.txt").status == 403)
    }

    /// A manifest saved broken is never answered from the old copy: every request is 503 (which
    /// says only that it does not load: attack 17's N2), the log says so once with the loader's
    /// error (file:line), and the fixed manifest serves again.
    @Test func aManifestThatNoLongerLoadsIsRefusedWith503UntilFixed() throws {
        let project = try project(Self.manifest(public: true))
        defer { project.remove() }
        let log = project.url("serve.err")
        let serve = try ServeSession(in: project.root, errors: log)
        defer { serve.stop() }
        #expect(try serve.get("/site/notes.txt").status == 200)

        try project.write("derive.yaml", Self.manifest(public: true).replacingOccurrences(of: "acl: public-read,", with: "acl: publick-read,"))
        let refused = try serve.get("/site/notes.txt")
        #expect(refused.status == 503, "\(text(refused.body))")
        #expect(text(refused.body).contains("see serve's log") && !text(refused.body).contains("derive.yaml:"), "\(text(refused.body))")
        #expect(try serve.get("/site/").status == 503)
        let logged = try String(contentsOf: log, encoding: .utf8)
        #expect(logged.contains("does not load") && logged.contains("derive.yaml:"), "the log names the line: \(logged)")

        try project.write("derive.yaml", Self.manifest(public: false))
        #expect(try serve.get("/site/notes.txt").status == 403)
        try project.write("derive.yaml", Self.manifest(public: true))
        #expect(try serve.get("/site/notes.txt").status == 200)
    }

    /// A manifest reached through a link: an edit of the link's target is seen.
    @Test func anEditOfALinkedManifestsTargetIsSeen() throws {
        let project = try project(Self.manifest(public: true))
        defer { project.remove() }
        let elsewhere = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        let target = elsewhere.appendingPathComponent("derive.yaml")
        try FileManager.default.moveItem(at: project.url("derive.yaml"), to: target)
        try FileManager.default.createSymbolicLink(atPath: project.url("derive.yaml").path, withDestinationPath: target.path)
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(try serve.get("/site/notes.txt").status == 200)
        try Data(Self.manifest(public: false).utf8).write(to: target)
        #expect(try serve.get("/site/notes.txt").status == 403)
    }
}
