import Foundation
import Testing
import TestSupport

/// Attack 43's N6: a running `derive serve site.yaml`, whose bucket shares files with the outputs
/// of derive.yaml beside it, kept answering them anonymously after derive.yaml made them private
/// and rebuilt; a fresh serve (and validate) refuses that manifest. A neighbour's manifest or lock
/// changing is an edit that serve re-checks, as its own manifest's is.
@Suite(.ownThreads, .serialized) struct ServeNeighbourReloadRound43Tests {
    func said(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) + result.stderr }

    /// derive.yaml writing pub/t/{name}.jpg, public-read or private, at width `width`.
    static func builder(public: Bool, width: Int = 8) -> Data {
        let acl = `public` ? "public-read" : "private"
        return Data("""
            version: 1
            buckets:
              src: {path: src}
              out: {path: pub, acl: \(acl)}
            derivatives:
              - {name: t, from: "src/*.jpg", process: "image/resize,w_\(width)", to: "out/t/{name}.jpg", acl: \(acl)}

            """.utf8)
    }

    static let site = Data("version: 1\nbuckets:\n  upl: {path: pub, acl: public-read}\nderivatives: []\n".utf8)

    func workspace(builder: Bool) throws -> URL {
        let root = try CLI.temporaryFolder()
        let source = root.appendingPathComponent("src/a1.jpg")
        try FileManager.default.createDirectory(at: source.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: source)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub/t"), withIntermediateDirectories: true)
        try Self.site.write(to: root.appendingPathComponent("site.yaml"))
        if builder {
            try Self.builder(public: true).write(to: root.appendingPathComponent("derive.yaml"))
            let build = try CLI.run(["build", "-q"], in: root)
            #expect(build.status == 0, "\(said(build))")
        } else {
            try Data("a user's file\n".utf8).write(to: root.appendingPathComponent("pub/t/a1.jpg"))
        }
        let validate = try CLI.run(["validate", "site.yaml"], in: root)
        #expect(validate.status == 0, "\(said(validate))")
        return root
    }

    /// The status of GET `target`, asked until it is `wanted` or `seconds` have passed.
    func status(_ serve: ServeSession, _ target: String, becomes wanted: Int, within seconds: Double) throws -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        var status = try serve.get(target).status
        while status != wanted, Date() < deadline {
            usleep(100_000)
            status = try serve.get(target).status
        }
        return status
    }

    /// The attack's repro: the neighbour's rule and bucket go private, restyled and built. The
    /// very next request is refused (503), as a fresh start is; made public again, served again.
    @Test func aNeighbourMakingItsOutputsPrivateIsRefusedAtTheNextRequest() throws {
        let root = try workspace(builder: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let serve = try ServeSession(in: root, manifest: "site.yaml")
        defer { serve.stop() }
        #expect(try serve.get("/upl/t/a1.jpg").status == 200)

        try Self.builder(public: false, width: 9).write(to: root.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: root)
        #expect(build.status == 0, "\(said(build))")
        let validate = try CLI.run(["validate", "site.yaml"], in: root)
        #expect(validate.status != 0 && said(validate).contains("shares files with bucket 'out'"), "\(said(validate))")
        #expect(try serve.get("/upl/t/a1.jpg").status == 503, "the neighbour's private output was still answered anonymously")

        try Self.builder(public: true, width: 10).write(to: root.appendingPathComponent("derive.yaml"))
        #expect(try CLI.run(["build", "-q"], in: root).status == 0)
        #expect(try serve.get("/upl/t/a1.jpg").status == 200, "valid again: served again without a restart")
    }

    /// A project appearing beside the served manifest (no file serve watched changed) is found
    /// by the listing made at most every second.
    @Test func aNeighbourAppearingWithPrivateOutputsIsRefusedWithinSeconds() throws {
        let root = try workspace(builder: false)
        defer { try? FileManager.default.removeItem(at: root) }
        let serve = try ServeSession(in: root, manifest: "site.yaml")
        defer { serve.stop() }
        #expect(try serve.get("/upl/t/a1.jpg").status == 200)

        try FileManager.default.removeItem(at: root.appendingPathComponent("pub/t/a1.jpg"))
        try Self.builder(public: false).write(to: root.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build", "-q"], in: root)
        #expect(build.status == 0, "\(said(build))")
        #expect(try status(serve, "/upl/t/a1.jpg", becomes: 503, within: 10) == 503, "a new neighbour's private outputs were answered anonymously")
    }
}
