import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Issue #13, attack 42c's M3: a folder named `index.html` holding an `index.html` made the
/// website's root a redirect chain (`/site` → `/site/` → `/site//` → 400), and the same in a
/// sub-folder (`/site/blog/` → `/site/blog//`). The index document put in for a folder's address
/// is never sent on as a folder: those addresses answer as a missing index does (the error
/// document, 404), which is what the Website line says ("no index.html").
@Suite(.ownThreads) struct WebsiteIndexFolderRound43Tests {
    static let manifest = """
        version: 1
        buckets:
          site: {path: site, acl: public-read, website: {index: index.html, error: 404.html}}
          bare: {path: bare, acl: public-read, website: {index: index.html}}
        """

    static func fixture() throws -> ServiceFixture {
        try ServiceFixture(manifest: manifest, files: [
            "site/index.html/index.html": "text:inside a folder", "site/404.html": "text:lost",
            "site/blog/index.html/index.html": "text:blog inside a folder", "site/docs/index.html": "text:docs",
            "bare/index.html/index.html": "text:inside a folder",
        ])
    }

    @Test func aFolderNamedLikeTheIndexIsNeverRedirectedIntoAsTheIndex() throws {
        let f = try Self.fixture()
        for method in ["GET", "HEAD"] {
            for path in ["/site", "/site/", "/site/?utm=1", "/site/blog/", "/site/blog"] {
                let answer = f.get(path, method: method)
                #expect(answer.status == 404, "\(method) \(path): \(answer.status) \(answer.header("Location") ?? "")")
                #expect(answer.header("Location") == nil, "\(method) \(path): \(answer.header("Location") ?? "")")
                if method == "GET" { #expect(answer.text == "lost", "\(path): \(answer.text)") }
            }
            #expect(f.get("/bare/", method: method).status == 404)
            #expect(f.get("/bare", method: method).status == 404)
        }
        #expect(f.get("/bare/").code == "NoSuchKey")
        // The Website line agrees: no page at the root.
        let site = try #require(f.service.manifest.bucket(named: "site"))
        #expect(f.service.websitePage(site, among: [""]) == .noIndex)
        // A real folder page is still reached as before: `/site/docs` → 301 `/site/docs/` → 200.
        let docs = f.get("/site/docs")
        #expect(docs.status == 301 && docs.header("Location") == "/site/docs/", "\(docs.status)")
        #expect(f.get("/site/docs/").status == 200 && f.get("/site/docs/").text == "docs")
        // The folder named `index.html`, asked for by its own name, is a folder holding a page.
        let named = f.get("/site/index.html")
        #expect(named.status == 301 && named.header("Location") == "/site/index.html/", "\(named.status)")
        #expect(f.get("/site/index.html/").text == "inside a folder")
    }
}
