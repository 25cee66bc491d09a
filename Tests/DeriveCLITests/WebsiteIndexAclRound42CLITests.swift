import Foundation
import Testing
import TestSupport

/// Attack 41b's L1, end to end (its `p.yaml`, built): serve's `Website NAME:` line and the bucket
/// root's `/NAME` → `301 /NAME/` follow one definition, an anonymous GET of the index document
/// succeeding. A public bucket whose `index.html` a private rule writes, a private bucket, and a
/// bucket with a page only in `blog/` got the 301 to an address answering 403 or 404.
@Suite(.ownThreads) struct WebsiteIndexAclRound42CLITests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src, acl: private}
          out:
            path: out
            acl: public-read
            website: {index: index.html}
          priv:
            path: privout
            acl: private
            website: {index: index.html}
          site: {path: site, acl: public-read, website: {index: index.html}}
          pub: {path: pub, acl: public-read, website: {index: index.html}}
        derivatives:
          - name: pidx
            from: src/landscape.jpg
            process: image/resize,w_10
            to: out/index.html
            acl: private
          - name: pr
            from: src/landscape.jpg
            process: image/resize,w_10
            to: priv/index.html

        """

    @Test func theWebsiteLineAndTheRootRedirectAgreeWithAnAnonymousGetOfTheIndex() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for sub in ["src", "out", "privout", "site/blog", "pub"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/landscape.jpg"))
        try Data("<h1>blog</h1>".utf8).write(to: folder.appendingPathComponent("site/blog/index.html"))
        try Data("<h1>pub</h1>".utf8).write(to: folder.appendingPathComponent("pub/index.html"))
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        let serve = try ServeSession(in: folder)
        defer { serve.stop() }
        for name in ["out", "priv", "site", "pub"] {
            let line = try #require(SiteLeftoversRound41Tests.websiteLine(name, in: serve))
            let folderAnswer = try serve.get("/\(name)/")
            let bare = try serve.get("/\(name)")
            if name == "pub" {
                // The one page anonymous readers get: its address printed, and the root sent there.
                #expect(line == "Website pub: http://127.0.0.1:\(serve.port)/pub/", "\(line)")
                #expect(folderAnswer.status == 200)
                #expect(bare.status == 301 && bare.headers["location"] == "/pub/", "\(bare.status) \(bare.headers)")
            } else {
                // No address that answers 403 or 404, and no 301 to one: `/NAME` answers as `/NAME/`.
                #expect(line.contains("no page is served yet") && !line.contains(": http"), "\(line)")
                #expect(folderAnswer.status == (name == "site" ? 404 : 403), "\(name): \(folderAnswer.status)")
                #expect(bare.status == folderAnswer.status, "/\(name): \(bare.status) \(bare.headers)")
            }
        }
        // A public bucket whose index a private rule writes: the line says which ACL to change.
        let out = try #require(SiteLeftoversRound41Tests.websiteLine("out", in: serve))
        #expect(out.contains("out/index.html is private") && out.contains("the rule that writes it"), "\(out)")
    }
}
