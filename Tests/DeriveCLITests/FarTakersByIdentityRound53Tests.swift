import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #9, attack 52a's F1, F7, F8, F9, F10 and 52b's 3: a far taker (a project outside every
/// folder the site looks in, whose bucket is the site's `pub/n` by an absolute path) took the
/// site's output with `--overwrite`. It was found only by the paths the registry of built
/// projects recorded, so once its folder was renamed (F1), the site renamed its bucket folder or
/// moved (F8), or its output bucket was left out of its registry line (F7), the site adopted its
/// file as a "restored copy" and `clean` deleted it; serve answered its private output to anyone
/// (F9, 52b's 3); and with its lock and state moved, two manifests named each other (F10). The
/// file is judged by its identity in every registered state, wherever that state lies now.
@Suite(.ownThreads) struct FarTakersByIdentityRound53Tests: TakeoverScratch {
    static func site(acl: String = "") -> String {
        "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub\(acl.isEmpty ? "" : ", acl: " + acl)}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/n/{name}.jpg\"\(acl.isEmpty ? "" : ", acl: public-read")}\n"
    }

    /// `root/proj` (the site, `site(acl:)`) and the taker `root/far/a/b/n.yaml`, both built, the
    /// taker with `--overwrite`; the state home `root/xdg`.
    func farTakeover(_ root: URL, siteACL: String = "", width: Int = 8, extraBuckets: Int = 0) throws -> (proj: URL, taker: URL, environment: [String: String]) {
        let dummies = (0..<extraBuckets).map { root.appendingPathComponent("dummy/b\($0)") }
        for folder in dummies { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        return try takeover(root, site: Self.site(acl: siteACL)) { Self.farTaker($0, width: width, extraBuckets: dummies) }
    }

    /// F1: the taker's folder renamed in place, or moved into another folder, without a build
    /// since. Another project's build in between (which writes the registry) keeps its line.
    @Test(arguments: ["renamed in place", "moved into another folder"])
    func aMovedFarTakerKeepsItsFile(variant: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, _, environment) = try farTakeover(root)
        let now = variant == "renamed in place" ? "far/a2" : "far/else/a"
        try FileManager.default.createDirectory(at: root.appendingPathComponent(now).deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: root.appendingPathComponent("far/a"), to: root.appendingPathComponent(now))
        if variant == "renamed in place" {
            let other = root.appendingPathComponent("other")
            try write("version: 1\nbuckets:\n  src: {path: \(proj.path)/src}\n  out: {path: out}\nderivatives:\n  - {from: \"src/*.jpg\", process: \"image/resize,w_6\", to: \"out/{name}.jpg\"}\n",
                      other.appendingPathComponent("derive.yaml"))
            let built = try CLI.run(["build", "-q"], in: other, environment: environment)
            #expect(built.status == 0, "\(said(built))")
            let registry = try String(contentsOf: root.appendingPathComponent("xdg/derive/states/projects"), encoding: .utf8)
            #expect(registry.contains(now + "/b/n.yaml"), "the moved taker's line was dropped: \(registry)")
        }
        try expectClaimed(proj, "pub/n/a.jpg", by: now + "/b/n.yaml", environment, variant)
        let check = try CLI.run(["check", root.appendingPathComponent(now + "/b/n.yaml").path], in: proj, environment: environment)
        #expect(check.status == 0, "the taker lost its output: \(said(check))")
    }

    /// F8: the site renames its bucket folder (`mv pub pub2`, `path: pub2`) or moves as a whole.
    @Test(arguments: ["mv pub pub2", "mv proj proj-moved"])
    func theSiteMovedKeepsTheFarTakersClaim(variant: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        var (proj, _, environment) = try farTakeover(root)
        if variant == "mv pub pub2" {
            try FileManager.default.moveItem(at: proj.appendingPathComponent("pub"), to: proj.appendingPathComponent("pub2"))
            try write(Self.site().replacingOccurrences(of: "{path: pub}", with: "{path: pub2}"), proj.appendingPathComponent("derive.yaml"))
            try expectClaimed(proj, "pub2/n/a.jpg", by: "far/a/b/n.yaml", environment, variant)
        } else {
            let moved = root.appendingPathComponent("proj-moved")
            try FileManager.default.moveItem(at: proj, to: moved)
            proj = moved
            try expectClaimed(proj, "pub/n/a.jpg", by: "far/a/b/n.yaml", environment, variant)
        }
    }

    /// F7: a far taker with 70 more buckets, named before its output bucket: its registry line
    /// keeps the bucket holding its outputs, and the site leaves the file.
    @Test func aFarTakerWithManyBucketsKeepsItsOutputBucketRegistered() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, _, environment) = try farTakeover(root, extraBuckets: 70)
        let registry = try String(contentsOf: root.appendingPathComponent("xdg/derive/states/projects"), encoding: .utf8)
        let line = registry.split(separator: "\n").first { $0.contains("/far/a/b/n.yaml") } ?? ""
        #expect(line.contains("\"out\":\"\(proj.path)/pub/n\""), "\(line)")
        try expectClaimed(proj, "pub/n/a.jpg", by: "far/a/b/n.yaml", environment, "70 buckets")
    }

    /// F9, 52b's 3: the taker's private output (other bytes) in the site's public bucket.
    /// With the taker's folder renamed, validate still refuses the site (found where it is now).
    @Test func validateFindsAMovedFarTakersPrivateOutputInAPublicBucket() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, _, environment) = try farTakeover(root, siteACL: "public-read", width: 9)
        let before = try CLI.run(["validate"], in: proj, environment: environment)
        #expect(before.status == 1 && said(before).contains("far/a/b/n.yaml"), "\(said(before))")
        try FileManager.default.moveItem(at: root.appendingPathComponent("far/a"), to: root.appendingPathComponent("far/a2"))
        let after = try CLI.run(["validate"], in: proj, environment: environment)
        #expect(after.status == 1 && said(after).contains("far/a2/b/n.yaml"), "\(said(after))")
    }

    /// F9 by the file's identity: the site renamed its public bucket folder, so no registered path
    /// holds the taker's private output; serve refuses it anonymously (GET, DELETE) and does not list it.
    @Test func serveKeepsAFarTakersPrivateOutputPrivateAfterTheSiteRenamedItsBucket() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (proj, _, environment) = try farTakeover(root, siteACL: "public-read-write", width: 9)
        try FileManager.default.moveItem(at: proj.appendingPathComponent("pub"), to: proj.appendingPathComponent("pub2"))
        try write(Self.site(acl: "public-read-write").replacingOccurrences(of: "{path: pub,", with: "{path: pub2,"), proj.appendingPathComponent("derive.yaml"))
        try Data("mine\n".utf8).write(to: proj.appendingPathComponent("pub2/n/mine.txt"))
        let file = proj.appendingPathComponent("pub2/n/a.jpg")
        let bytes = try Data(contentsOf: file)
        let serve = try ServeSession(in: proj, environment: environment)
        defer { serve.stop() }
        #expect(try serve.get("/pub/n/mine.txt").status == 200)
        let got = try serve.get("/pub/n/a.jpg")
        #expect(got.status == 403, "the far taker's private output was answered: \(got.status)")
        let listing = String(decoding: try serve.get("/pub/?prefix=n/").body, as: UTF8.self)
        #expect(listing.contains("n/mine.txt") && !listing.contains("n/a.jpg"), "\(listing)")
        let connection = try ServeConnectionTests.Connection(port: serve.port)
        connection.send("DELETE /pub/n/a.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        let deleted = try #require(connection.response())
        #expect(deleted.status == 403, "DELETE: \(deleted.status)")
        #expect(try Data(contentsOf: file) == bytes)
    }

    /// F10: site.yaml keeps its lock and state far away (`lock:`/`state:` absolute), took the file
    /// over; then that folder moved. site.yaml is told its own state (moved) records the file,
    /// not that derive.yaml's "build state says so"; derive.yaml names site.yaml.
    @Test func movedLockAndStateAreNamedAsTheirOwnManifests() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let p = root.appendingPathComponent("p"), far = root.appendingPathComponent("far")
        try FileManager.default.createDirectory(at: p.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: p.appendingPathComponent("src/a.jpg"))
        let site = "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: pub}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"pub/{name}.jpg\"}\n"
        try write(site, p.appendingPathComponent("derive.yaml"))
        try write(site + "lock: \(far.path)/site.lock\nstate: \(far.path)/st\n", p.appendingPathComponent("site.yaml"))
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        #expect(try CLI.run(["build", "-q"], in: p, environment: environment).status == 0)
        let taken = try CLI.run(["build", "-q", "--overwrite", "site.yaml"], in: p, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        try FileManager.default.moveItem(at: far, to: root.appendingPathComponent("far2"))
        let own = try CLI.run(["plan", "site.yaml"], in: p, environment: environment)
        #expect(own.status == 1 && said(own).contains("far2/st") && !said(own).contains("derive.yaml"), "\(said(own))")
        let original = try CLI.run(["plan"], in: p, environment: environment)
        #expect(original.status == 1 && said(original).contains("site.yaml") && !said(original).contains("restored copy"), "\(said(original))")
    }
}
