import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13, attack 17 (static sites) against a running `derive serve`: N1/N1b (a bucket folder
/// replaced under serve kept being served from the descriptor opened at start, a private one
/// included), N6 (a rule's `acl:` made private stayed public until a build), N2 (the 503 body
/// gave anonymous clients the loader's errors) and N7 (a manifest over the loader's size limit
/// was hashed whole about once a second).
@Suite(.ownThreads, .serialized) struct ServeRound17Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// `site` public-read with a website; `extraBuckets` lines go into `buckets:`.
    static func manifest(extraBuckets: String = "", ruleACL: String = "public-read", siteACL: String = "public-read") -> String {
        """
        version: 1
        buckets:
          src: {path: src}
        \(extraBuckets)  site: {path: site, acl: \(siteACL), website: {index: index.html}}
        derivatives:
          - name: pic
            from: src/landscape.jpg
            process: image/resize,w_40/format,webp
            to: site/{name}.webp
            acl: \(ruleACL)

        """
    }

    func project(_ manifest: String = Self.manifest()) throws -> Project {
        let project = try Project(index: false)
        try project.write("derive.yaml", manifest)
        try FileManager.default.createDirectory(at: project.url("site"), withIntermediateDirectories: true)
        try project.write("site/index.html", "<h1>draft</h1>\n")
        try project.write("site/notes.txt", "secret-notes\n")
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        return project
    }

    /// N1b: the site's folder is kept as private drafts (`mv site drafts; mkdir site`) and the
    /// manifest declares `drafts` private. The running serve must serve the new `site` folder,
    /// never the old one (now `drafts`) anonymously under the public bucket's name.
    @Test func aSiteFolderMovedAsidePrivateIsNeverServedAsTheSite() throws {
        let project = try project()
        defer { project.remove() }
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(try serve.get("/site/notes.txt").status == 200)
        #expect(text(try serve.get("/site/").body).contains("draft"))

        #expect(rename(project.url("site").path, project.url("drafts").path) == 0)
        try FileManager.default.createDirectory(at: project.url("site"), withIntermediateDirectories: true)
        try project.write("site/index.html", "<h1>public v2</h1>\n")
        try project.write("derive.yaml", Self.manifest(extraBuckets: "  drafts: {path: drafts, acl: private}\n"))

        let notes = try serve.get("/site/notes.txt")
        #expect(notes.status == 404, "the old folder's file under the public name: \(notes.status) \(text(notes.body))")
        #expect(try serve.get("/drafts/notes.txt").status == 403)
        let page = try serve.get("/site/")
        #expect(page.status == 200 && text(page.body).contains("public v2"), "\(page.status) \(text(page.body))")
    }

    /// N1: the same without any manifest edit — the folder at the bucket's path is what serve
    /// answers from at the next request: a replaced folder's new page, and after `rm -rf site`
    /// and a build (which makes the folder again) the built outputs, not 404 until a restart.
    @Test func aBucketFolderReplacedOrRebuiltIsServedFromThePathAtOnce() throws {
        let project = try project()
        defer { project.remove() }
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(try serve.get("/site/landscape.webp").status == 200)

        #expect(rename(project.url("site").path, project.url("site.prev").path) == 0)
        try FileManager.default.createDirectory(at: project.url("site"), withIntermediateDirectories: true)
        try project.write("site/index.html", "<h1>NEW</h1>\n")
        let page = try serve.get("/site/")
        #expect(page.status == 200 && text(page.body).contains("NEW"), "\(page.status) \(text(page.body))")

        try FileManager.default.removeItem(at: project.url("site"))
        try FileManager.default.removeItem(at: project.url("site.prev"))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let output = try serve.get("/site/landscape.webp")
        #expect(output.status == 200, "the rebuilt output in the folder made again: \(output.status) \(text(output.body))")
    }

    /// N1, blue/green deploy: `site` is a link to `v1`, swapped atomically for one to `v2`
    /// (`ln -sfn v2 site.new && mv -T site.new site`). Serve follows a link on the way to a
    /// bucket as build does, at the next request.
    @Test func aBlueGreenLinkSwapOfTheBucketPathIsServedAtTheNextRequest() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        for version in ["v1", "v2"] {
            try FileManager.default.createDirectory(at: project.url(version), withIntermediateDirectories: true)
            try project.write("\(version)/index.html", "<h1>\(version.uppercased())</h1>\n")
        }
        try FileManager.default.createSymbolicLink(atPath: project.url("site").path, withDestinationPath: "v1")
        try project.write("derive.yaml", """
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
              site: {path: site, acl: public-read, website: {index: index.html}}
            derivatives:
              - name: pic
                from: src/landscape.jpg
                process: image/resize,w_40/format,webp
                to: out/{name}.webp

            """)
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(text(try serve.get("/site/").body).contains("V1"))

        try FileManager.default.createSymbolicLink(atPath: project.url("site.new").path, withDestinationPath: "v2")
        #expect(rename(project.url("site.new").path, project.url("site").path) == 0)
        let page = try serve.get("/site/")
        #expect(page.status == 200 && text(page.body).contains("V2"), "\(page.status) \(text(page.body))")
    }

    /// Held (attack 17): a public bucket's folder swapped for a link to the private bucket's
    /// folder does not publish the private bucket: the two would share files, which the loader
    /// refuses, so serve refuses (503) rather than answer from either folder.
    @Test func aBucketFolderSwappedForALinkToAPrivateBucketDoesNotPublishIt() throws {
        let project = try project()
        defer { project.remove() }
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(try serve.get("/site/notes.txt").status == 200)
        try FileManager.default.removeItem(at: project.url("site"))
        try FileManager.default.createSymbolicLink(atPath: project.url("site").path, withDestinationPath: "src")
        let reply = try serve.get("/site/landscape.jpg")
        #expect(reply.status != 200, "the private source through the public bucket: \(reply.status)")
        #expect(try serve.get("/src/landscape.jpg").status != 200)
    }

    /// N6: the rule's `acl:` changed public-read → private and saved, no build: its built output
    /// is private at the next anonymous GET (README "Serve follows the manifest").
    @Test func aRuleMadePrivateMakesItsBuiltOutputsPrivateBeforeAnyBuild() throws {
        let project = try project(Self.manifest(siteACL: "private"))
        defer { project.remove() }
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(try serve.get("/site/landscape.webp").status == 200, "public by its rule in a private bucket")

        try project.write("derive.yaml", Self.manifest(ruleACL: "private", siteACL: "private"))
        let reply = try serve.get("/site/landscape.webp")
        #expect(reply.status == 403, "the rule is private now: \(reply.status)")

        // Back to public-read: the build's record (public-read) and the rule agree again.
        try project.write("derive.yaml", Self.manifest(siteACL: "private"))
        #expect(try serve.get("/site/landscape.webp").status == 200)
    }

    /// N2: a manifest saved mid-edit so that it leaks a private bucket's keys in its error: the
    /// anonymous 503 says only that the manifest does not load and to see serve's log; the log
    /// has the loader's error.
    @Test func theRefusalOfABrokenManifestTellsAnonymousClientsNothingOfIt() throws {
        let manifest = """
            version: 1
            buckets:
              src: {path: src}
              site: {path: site, acl: public-read}
            derivatives:
              - name: pic
                from: src/*.jpg
                process: image/resize,w_40/format,webp
                to: site/{name}.webp
                acl: public-read

            """
        let project = try project(manifest)
        defer { project.remove() }
        try FileManager.default.copyItem(at: project.url("src/landscape.jpg"), to: project.url("src/payroll-2026-ceo-salary.jpg"))
        let log = project.url("serve.err")
        let serve = try ServeSession(in: project.root, errors: log)
        defer { serve.stop() }
        #expect(try serve.get("/site/notes.txt").status == 200)

        try project.write("derive.yaml", manifest.replacingOccurrences(of: "    acl: public-read\n", with: ""))
        let refused = try serve.get("/anything")
        let body = text(refused.body)
        #expect(refused.status == 503, "\(body)")
        #expect(body.contains("does not load") && body.contains("log"), "\(body)")
        #expect(!body.contains("payroll") && !body.contains("derive.yaml:") && !body.contains(project.root.path), "\(body)")
        let logged = try String(contentsOf: log, encoding: .utf8)
        #expect(logged.contains("derive.yaml:"), "the details are in serve's log: \(logged)")
    }

    /// N7: a manifest over the loader's size limit (1 GiB, sparse) is refused from its size; the
    /// requests that find it so (one a second, as a live-reload tab polls) do not read it whole.
    /// Before, each hashed the whole gigabyte: seconds of CPU per request.
    @Test func aManifestOverTheSizeLimitIsNotHashedAtEachRequest() throws {
        let project = try project()
        defer { project.remove() }
        let serve = try ServeSession(in: project.root)
        defer { serve.stop() }
        #expect(try serve.get("/site/notes.txt").status == 200)

        let big = project.url("big.yaml")
        #expect(FileManager.default.createFile(atPath: big.path, contents: Data(Self.manifest().utf8)))
        #expect(truncate(big.path, 1 << 30) == 0)
        #expect(rename(big.path, project.url("derive.yaml").path) == 0)
        #expect(try serve.get("/site/notes.txt").status == 503)
        let before = try Self.cpuSeconds(serve.process.processIdentifier)
        for _ in 0..<3 {
            usleep(1_100_000)
            #expect(try serve.get("/site/notes.txt").status == 503)
        }
        let spent = try Self.cpuSeconds(serve.process.processIdentifier) - before
        // Hashing 3 GiB costs several seconds; not reading it costs next to nothing.
        #expect(spent < 1.5, "serve spent \(spent) s of CPU on 3 requests")

        try project.write("derive.yaml", Self.manifest())
        #expect(try serve.get("/site/notes.txt").status == 200)
    }

    /// User plus system CPU time of a process, from /proc.
    static func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
