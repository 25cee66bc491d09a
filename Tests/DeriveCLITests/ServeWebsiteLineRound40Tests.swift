import Foundation
import Testing
import TestSupport

/// Attack 39b's L5: `derive serve Manifests/page.yaml` printed `Website samples: …/samples/`, which
/// answers 403 (a private bucket without a page at its root); the page is at `/samples/site/`,
/// beside or above the manifest's index, and that is the address to print.
@Suite(.ownThreads) struct ServeWebsiteLineRound40Tests {
    @Test func theWebsiteLineNamesTheAddressThatAnswersThePage() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("samples/site/pictures"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("samples/landscape.jpg"))
        try Data("<h1>page</h1>".utf8).write(to: folder.appendingPathComponent("samples/site/index.html"))
        try Data("""
        version: 1
        buckets:
          samples:
            path: samples
            acl: private
            objects:
              - match: "site/**"
                acl: public-read
            website: {index: index.html}
        derivatives:
          - name: photo
            from: samples/*.jpg
            process: image/resize,w_64
            to: samples/site/pictures/{name}.jpg
            acl: public-read
        index: samples/site/pictures/derive-index.json
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        // Built first: until then serve cannot tell which keys are outputs, and keeps all private.
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        let serve = try ServeSession(in: folder)
        defer { serve.stop() }
        let address = try SitePreviewTests.website("samples", in: serve)
        #expect(address == "http://127.0.0.1:\(serve.port)/samples/site/")
        let page = try serve.get("/samples/site/")
        #expect(page.status == 200 && String(decoding: page.body, as: UTF8.self) == "<h1>page</h1>", "\(page.status)")
        let bare = try serve.get("/samples/site")
        #expect(bare.status == 301 && bare.headers["location"] == "/samples/site/", "\(bare.status) \(bare.headers)")
    }
}
