import Foundation
import Testing
import TestSupport

/// Attack 51a's 3 (issue #9/#13): with XDG_STATE_HOME inside a public bucket, `derive serve`
/// listed and answered Derive's per-user secret (`states/<sha>`: whoever reads it can forge
/// records that make the owner's build delete or overwrite files), the lock provenance and the
/// folder records to anonymous clients. A manifest one of whose buckets holds the folder of
/// tokens is refused by validate, plan, build, check and serve, decided by the file system (a
/// link to the bucket counts, a name that merely starts like it does not); a running serve whose
/// folder of tokens is re-pointed into a bucket answers 503, never the secret.
@Suite(.ownThreads, .serialized) struct StateHomeInBucketRound52Tests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          pub: {path: pub, acl: public-read}
        derivatives:
          - {from: src/*.jpg, process: "image/resize,w_16", to: "pub/{name}.jpg", acl: public-read}

        """

    func project() throws -> URL {
        let root = try CLI.temporaryFolder()
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data(Self.manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        try Data("<p>hi</p>\n".utf8).write(to: root.appendingPathComponent("pub/index.html"))
        return root
    }

    @Test func everyCommandRefusesABucketHoldingTheStateHome() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let home = root.appendingPathComponent("pub/.st")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let environment = ["XDG_STATE_HOME": home.path]
        for command in ["validate", "plan", "build", "check"] {
            let result = try CLI.run([command], in: root, environment: environment)
            #expect(result.status != 0, "\(command): \(said(result))")
            #expect(result.stderr.contains("bucket 'pub' (pub) holds Derive's folder of per-user secrets") && result.stderr.contains("point XDG_STATE_HOME to a folder outside every bucket"),
                    "\(command): \(said(result))")
        }
        // Nothing was built, and no secret was written where the bucket would hand it out.
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("pub/a.jpg").path))
        #expect(!FileManager.default.fileExists(atPath: home.appendingPathComponent("derive").path))
        #expect(throws: (any Error).self) {
            let serve = try ServeSession(in: root, environment: environment)
            serve.stop()
        }
    }

    /// By the file system, not by how the path is spelt: a link to the bucket's folder counts; a
    /// folder whose name only starts like the bucket's does not.
    @Test func theRefusalFollowsLinksNotSpelling() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("published").path, withDestinationPath: "pub")
        let linked = try CLI.run(["validate"], in: root, environment: ["XDG_STATE_HOME": root.appendingPathComponent("published/.st").path])
        #expect(linked.status != 0 && linked.stderr.contains("holds Derive's folder of per-user secrets"), "\(said(linked))")
        let beside = try CLI.run(["validate"], in: root, environment: ["XDG_STATE_HOME": root.appendingPathComponent("pub2/.st").path])
        #expect(beside.status == 0, "\(said(beside))")
    }

    /// A serve started with its folder of tokens outside the buckets, then that folder's link
    /// re-pointed into the public bucket (a secret there): the secret is never answered or listed.
    @Test func aRunningServeNeverAnswersTheStateHomeOnceItIsInABucket() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("elsewhere"), withIntermediateDirectories: true)
        let link = root.appendingPathComponent("statehome")
        try fm.createSymbolicLink(atPath: link.path, withDestinationPath: "elsewhere")
        let secrets = root.appendingPathComponent("pub/.st/derive/states")
        try fm.createDirectory(at: secrets, withIntermediateDirectories: true)
        try Data("secret 00112233\n".utf8).write(to: secrets.appendingPathComponent("k"))
        let serve = try ServeSession(in: root, environment: ["XDG_STATE_HOME": link.path])
        defer { serve.stop() }
        // Answered (403 while nothing is built: objects Derive writes are private until then).
        #expect(try serve.get("/pub/index.html").status != 503)
        try fm.removeItem(at: link)
        try fm.createSymbolicLink(atPath: link.path, withDestinationPath: "pub/.st")
        let answer = try serve.get("/pub/.st/derive/states/k")
        #expect(answer.status == 503 && !String(decoding: answer.body, as: UTF8.self).contains("secret 0011"), "\(answer.status)")
        let listing = try serve.get("/pub?list-type=2")
        #expect(listing.status == 503 && !String(decoding: listing.body, as: UTF8.self).contains("states/k"), "\(listing.status)")
    }
}
