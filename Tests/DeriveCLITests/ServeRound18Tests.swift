import Foundation
import Manifest
import Planner
import Testing
import TestSupport
@testable import derive
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13, attack 18 (static sites) against a running `derive serve`: F1 (in a fresh clone a
/// private rule's old `{hash}` output, which the build "leaves in place" known only from the
/// lock, was served 200 to anyone and listed) and F1b (the same with a state, when the private
/// output was re-created with a new inode: "not the file Derive wrote there … left in place").
/// Every path that reads an object is tried anonymously and signed: GET, HEAD, Range, an
/// `x-oss-process` source, a watermark object, a website error document, and the listings.
@Suite(.ownThreads, .serialized) struct ServeRound18Tests {
    static let secretVariable = "DERIVE_R18_TEST_SECRET"
    static let secret = "r18-s3cret"

    /// Attack 18's manifest: public gallery and private `internal` outputs, both `{hash}` names
    /// in the public bucket `site`; the index private by an `objects:` rule. `width` is the
    /// private rule's (the edit that leaves its old output); `error` a website error document.
    static func manifest(width: Int = 200, error: String? = nil) -> String {
        """
        version: 1
        access_keys:
          - id: AKIDR18
            secret_env: \(secretVariable)
        buckets:
          pub: {path: pub, acl: public-read}
          priv: {path: priv, acl: private}
          site:
            path: site
            acl: public-read
            objects: [{match: "index.json", acl: private}]
            website: {index: index.html\(error.map { ", error: \"\($0)\"" } ?? "")}
        derivatives:
          - name: gallery
            from: pub/*.jpg
            process: image/resize,w_64/format,webp
            to: site/g/{name}.{hash}.webp
          - name: internal
            from: priv/*.jpg
            process: image/resize,w_\(width)/format,webp
            to: site/internal/{name}.{hash}.webp
            acl: private
        index: site/index.json

        """
    }

    struct Project {
        let root: URL
        init() throws {
            root = try CLI.temporaryFolder()
            for folder in ["pub", "priv", "site"] {
                try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
            }
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("pub/lake.jpg"))
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("priv/ceo-passport-scan.jpg"))
            try write("site/index.html", "<h1>site</h1>\n")
            try write("derive.yaml", ServeRound18Tests.manifest())
        }
        func write(_ name: String, _ text: String) throws { try Data(text.utf8).write(to: url(name)) }
        func url(_ path: String) -> URL { root.appendingPathComponent(path) }
        func run(_ arguments: [String]) throws -> CLI.Result {
            try CLI.run(arguments, in: root, environment: [ServeRound18Tests.secretVariable: ServeRound18Tests.secret])
        }
        func remove() { try? FileManager.default.removeItem(at: root) }
        func files(_ folder: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: url(folder).path)) ?? []).sorted()
        }
        /// Builds (exit 0 expected) and names the private rule's first output in `site/internal`.
        func buildAPrivateOutput() throws -> String {
            let first = try run(["build", "-q"])
            #expect(first.status == 0, "\(first.stderr)")
            return try #require(files("site/internal").first)
        }
    }

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    func request(_ serve: ServeSession, _ method: String, _ target: String, extra: String = "") throws -> (status: Int, headers: [String: String], body: [UInt8]) {
        let connection = try ServeConnectionTests.Connection(port: serve.port)
        connection.send("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(extra)\r\n")
        return try #require(connection.response(head: method == "HEAD"))
    }

    /// `derive sign bucket/key` for this serve: the signed path and query.
    func signed(_ project: Project, _ object: String, serve: ServeSession) throws -> String {
        let result = try project.run(["sign", object, "--endpoint", "http://127.0.0.1:\(serve.port)"])
        #expect(result.status == 0, "\(result.stderr)")
        let url = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let components = try #require(URLComponents(string: url))
        return components.percentEncodedPath + "?" + (components.percentEncodedQuery ?? "")
    }

    static func base64url(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Every read of `site/<left>` anonymously: none answers its bytes or lists its name. Signed:
    /// GET answers it (a private object, not a missing one).
    func expectPrivate(_ left: String, project: Project, serve: ServeSession, _ when: String) throws {
        let secretBytes = try Data(contentsOf: project.url("site/" + left))
        let path = "/site/" + left
        let get = try request(serve, "GET", path)
        #expect(get.status == 403, "\(when): anonymous GET \(get.status)")
        #expect(Data(get.body) != secretBytes)
        #expect(try request(serve, "HEAD", path).status == 403, "\(when): HEAD")
        let range = try request(serve, "GET", path, extra: "Range: bytes=0-99\r\n")
        #expect(range.status == 403, "\(when): Range \(range.status)")
        let info = try request(serve, "GET", path + "?x-oss-process=image%2Finfo")
        #expect(info.status == 403, "\(when): x-oss-process source \(info.status) \(text(info.body))")
        let acl = try request(serve, "GET", path + "?acl")
        #expect(acl.status == 403, "\(when): GetObjectAcl \(acl.status)")
        // The private picture as a watermark on a public output.
        let gallery = try #require(project.files("site/g").first, "\(when): no gallery output")
        let mark = try request(serve, "GET", "/site/g/\(gallery)?x-oss-process=image%2Fwatermark%2Cimage_\(Self.base64url(left))")
        #expect(mark.status != 200, "\(when): the private output as an anonymous watermark: \(mark.status)")
        for listing in ["/site/?prefix=internal/", "/site/?list-type=2&prefix=internal/", "/site/?max-keys=1000"] {
            let list = try request(serve, "GET", listing)
            #expect(list.status == 200, "\(when): \(listing): \(list.status)")
            #expect(!text(list.body).contains(left), "\(when): \(listing) lists it: \(text(list.body))")
        }
        // Signed: the object is there and readable.
        let signedGet = try request(serve, "GET", try signed(project, "site/" + left, serve: serve))
        #expect(signedGet.status == 200 && Data(signedGet.body) == secretBytes, "\(when): signed GET \(signedGet.status) \(text(signedGet.body).prefix(300))")
    }

    /// F1: built, `.derive/` gone (a fresh clone of a repository that commits its outputs), the
    /// private rule's width changed, built again: the old `{hash}` output is left in place,
    /// known only from the lock, and must stay private — before and after that build.
    @Test func aPrivateOutputLeftInAFreshCloneStaysPrivate() throws {
        setenv(Self.secretVariable, Self.secret, 1)
        let project = try Project()
        defer { project.remove() }
        let old = try project.buildAPrivateOutput()
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("derive.yaml", Self.manifest(width: 180))

        let serve = try ServeSession(in: project.root, environment: [Self.secretVariable: Self.secret])
        defer { serve.stop() }
        try expectPrivate("internal/" + old, project: project, serve: serve, "no state, before the build")

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(project.files("site/internal").contains(old) && project.files("site/internal").count == 2, "\(project.files("site/internal"))")
        try expectPrivate("internal/" + old, project: project, serve: serve, "after the build that left it")
        let new = try #require(project.files("site/internal").first { $0 != old })
        #expect(try request(serve, "GET", "/site/internal/" + new).status == 403)
        let gallery = try #require(project.files("site/g").first)
        #expect(try request(serve, "GET", "/site/g/" + gallery).status == 200, "the public rule's output stays public")
        #expect(try request(serve, "GET", "/site/").status == 200, "the website's index document")
    }

    /// F1b: with a state, the private output re-created with the same bytes and a new inode (a
    /// restore, rsync without --inplace) is left in place by the next build ("not the file Derive
    /// wrote there") and must stay private. Also named as the website's error document.
    @Test func aPrivateOutputWithANewInodeLeftByABuildStaysPrivate() throws {
        setenv(Self.secretVariable, Self.secret, 1)
        let project = try Project()
        defer { project.remove() }
        let old = try project.buildAPrivateOutput()
        let file = project.url("site/internal/" + old)
        try FileManager.default.copyItem(at: file, to: project.url("copy.tmp"))
        #expect(rename(project.url("copy.tmp").path, file.path) == 0)
        try project.write("derive.yaml", Self.manifest(width: 160))

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stderr.contains("left in place"), "\(build.stderr)")
        #expect(project.files("site/internal").contains(old), "\(project.files("site/internal"))")

        let serve = try ServeSession(in: project.root, environment: [Self.secretVariable: Self.secret])
        defer { serve.stop() }
        try expectPrivate("internal/" + old, project: project, serve: serve, "with a state, after the build that left it")

        // The private output named as the website's error document: a missing page answers
        // NoSuchKey, never the private picture.
        try project.write("derive.yaml", Self.manifest(width: 160, error: "internal/" + old))
        let missing = try request(serve, "GET", "/site/no-such-page")
        let secretBytes = try Data(contentsOf: file)
        #expect(missing.status == 404 && Data(missing.body) != secretBytes, "\(missing.status) \(missing.headers)")
        #expect(text(missing.body).contains("NoSuchKey"), "\(text(missing.body).prefix(300))")
    }
    /// Serve asks whether the lock lists a key for every key the state does not record: the
    /// parsed lock is kept, and read again when a build rewrites it (a new file renamed over it).
    @Test func theLockIsReadAgainWhenABuildRewritesIt() throws {
        let project = try Project()
        defer { project.remove() }
        let loaded = try #require(ManifestLoader().load(project.url("derive.yaml").path).manifest)
        func lock(_ key: String) throws {
            let entry = LockFile.Entry(path: "site/internal/\(key)", actionKey: "k", digest: "d", width: 1, height: 1, bytes: 1, format: "webp")
            try project.write("derive.lock.new", LockFile(entries: [entry], manifest: "derive.yaml").text)
            #expect(rename(project.url("derive.lock.new").path, loaded.lockFile) == 0)
        }
        let outputs = BuiltOutputs(stateFolder: loaded.stateFolder, manifest: loaded)
        try lock("a.0123456789.webp")
        #expect(outputs.lockLists(bucket: "site", key: "internal/a.0123456789.webp"))
        #expect(!outputs.lockLists(bucket: "site", key: "internal/b.0123456789.webp"))
        try lock("b.0123456789.webp")
        #expect(!outputs.lockLists(bucket: "site", key: "internal/a.0123456789.webp"))
        #expect(outputs.lockLists(bucket: "site", key: "internal/b.0123456789.webp"))
    }

    /// Attack 18's B1: the bucket renamed in the manifest (`site` → `www`, same folder, same
    /// private rule): the state's records are under the old name, yet the rule in force writes
    /// exactly that key, so it is private before any build, in the running serve.
    @Test func aBucketRenamedKeepsItsPrivateOutputsPrivateBeforeABuild() throws {
        let project = try Project()
        defer { project.remove() }
        let output = try project.buildAPrivateOutput()
        let serve = try ServeSession(in: project.root, environment: [Self.secretVariable: Self.secret])
        defer { serve.stop() }
        #expect(try request(serve, "GET", "/site/internal/" + output).status == 403)
        try project.write("derive.yaml", Self.manifest().replacingOccurrences(of: "  site:\n", with: "  www:\n")
            .replacingOccurrences(of: "to: site/", with: "to: www/").replacingOccurrences(of: "index: site/", with: "index: www/"))
        let renamed = try request(serve, "GET", "/www/internal/" + output)
        #expect(renamed.status == 403, "the private output under the bucket's new name: \(renamed.status)")
        let listing = try request(serve, "GET", "/www/?prefix=internal/")
        #expect(listing.status == 200 && !text(listing.body).contains(output), "\(text(listing.body))")
        #expect(try request(serve, "GET", "/www/").status == 200, "the website still answers")
    }

    /// Attack 18's G1: `git pull` brings a teammate's new private output (its file and lock line)
    /// into a project whose state is from before the pull: the state does not record it, the
    /// lock lists it and the private rule writes that key, so it is private until the build.
    @Test func aPulledPrivateOutputIsPrivateBeforeTheBuildRecordsIt() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.copyItem(at: project.url(".derive"), to: project.url("state-before-pull"))
        let before = Set(project.files("site/internal"))
        try FileManager.default.copyItem(at: project.url("priv/ceo-passport-scan.jpg"), to: project.url("priv/ceo-passport.jpg"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let pulled = try #require(project.files("site/internal").first { !before.contains($0) })
        // My state from before the pull; the files and the lock are the teammate's.
        try FileManager.default.removeItem(at: project.url(".derive"))
        try FileManager.default.moveItem(at: project.url("state-before-pull"), to: project.url(".derive"))
        let serve = try ServeSession(in: project.root, environment: [Self.secretVariable: Self.secret])
        defer { serve.stop() }
        let reply = try request(serve, "GET", "/site/internal/" + pulled)
        #expect(reply.status == 403, "the pulled private output: \(reply.status)")
        let listing = try request(serve, "GET", "/site/?prefix=internal/")
        #expect(!text(listing.body).contains(pulled), "\(text(listing.body))")
    }
}
