import Foundation
import Testing
import TestSupport

/// Attack 40b's M3: `derive serve` in a fresh clone or a copied project (no build state) answered
/// every anonymous GET of the site 403 "because of bucket acl" and said nothing. Serve warns once
/// at start, and the 403 names the cause when the missing state is why.
@Suite(.ownThreads) struct ServeNoStateRound40bTests {
    @Test func withoutAStateServeSaysWhyTheSiteIsPrivate() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("p"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("_site"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("p/a.jpg"))
        try Data("<h1>page</h1>".utf8).write(to: folder.appendingPathComponent("_site/index.html"))
        try Data("""
        version: 1
        buckets:
          images: {path: p, acl: private}
          site: {path: _site, acl: public-read, website: {index: index.html}}
        derivatives:
          - from: images/*.jpg
            process: image/resize,w_64
            to: site/{name}.jpg
            acl: public-read

        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let log = folder.appendingPathComponent("serve.err")
        let serve = try ServeSession(in: folder, errors: log)
        defer { serve.stop() }
        var logged = ""
        let deadline = Date().addingTimeInterval(20)
        while !logged.contains("derive build"), Date() < deadline {
            logged = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            usleep(50_000)
        }
        #expect(logged.contains("derive: warning: no build state yet") && logged.contains("private") && logged.contains("`derive build`"), "\(logged)")
        let page = try serve.get("/site/index.html")
        let body = String(decoding: page.body, as: UTF8.self)
        #expect(page.status == 403 && body.contains("no build state") && body.contains("Run derive build"), "\(page.status) \(body)")
        #expect(!body.contains(folder.path), "\(body)")
        // A key private by its own ACL keeps the usual answer.
        let source = try serve.get("/images/a.jpg")
        let plain = String(decoding: source.body, as: UTF8.self)
        #expect(source.status == 403 && plain.contains("because of bucket acl"), "\(source.status) \(plain)")
    }
}
