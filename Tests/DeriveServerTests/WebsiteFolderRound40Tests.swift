import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 39b's L5: in a website bucket, a folder's address without its final `/` (`/samples/site`,
/// whose `site/index.html` is the page) answered 403 (a private bucket) or 404, where OSS static
/// hosting, like web servers, sends the browser to `site/`; and serve printed the bucket's root
/// (403) as the Website address of a page that is in `site/`.
@Suite(.ownThreads) struct WebsiteFolderRound40Tests {
    static let manifest = """
        version: 1
        buckets:
          samples:
            path: samples
            acl: private
            website: {index: index.html}
            objects:
              - match: "site/**"
                acl: public-read
          open:
            path: open
            acl: public-read
            website: {index: index.html}
        """

    static func fixture() throws -> ServiceFixture {
        try ServiceFixture(manifest: manifest, files: [
            "samples/site/index.html": "text:<h1>page</h1>", "samples/hidden/index.html": "text:private",
            "samples/landscape.jpg": "landscape.jpg", "open/blog/index.html": "text:blog", "open/empty/.keep": "text:",
        ])
    }

    @Test func aFolderWithAPublicIndexIsRedirectedToItsSlashAddress() throws {
        let f = try Self.fixture()
        let site = f.get("/samples/site")
        #expect(site.status == 301 && site.header("Location") == "/samples/site/", "\(site.status) \(site.headers)")
        #expect(f.get("/samples/site", method: "HEAD").status == 301)
        let query = f.get("/samples/site?utm_source=mail")
        #expect(query.status == 301 && query.header("Location") == "/samples/site/?utm_source=mail", "\(query.headers)")
        #expect(f.get("/samples/site/").status == 200)
        // Virtual-host style: the path is the key's.
        let host = f.get("/site", headers: ["host": "samples.localhost:9000"])
        #expect(host.status == 301 && host.header("Location") == "/site/", "\(host.status) \(host.headers)")
        // A public bucket: 404 before, the folder's address now.
        let blog = f.get("/open/blog")
        #expect(blog.status == 301 && blog.header("Location") == "/open/blog/", "\(blog.status) \(blog.headers)")
    }

    @Test func nothingIsRedirectedThatAnonymousReadersMayNotSee() throws {
        let f = try Self.fixture()
        // The index there is private: answered as before, its existence not told.
        #expect(f.get("/samples/hidden").status == 403)
        #expect(f.get("/samples/nothing").status == 403)
        // A folder without an index, a missing key, a file: no redirect.
        #expect(f.get("/open/empty").status == 404)
        #expect(f.get("/open/none").status == 404)
        #expect(f.get("/samples/landscape.jpg").status == 403)
        // An image request on the folder's name is that request, not a page.
        #expect(f.get("/samples/site?x-oss-process=image/info").status != 301)
    }

    @Test func theWebsiteFolderIsTheFirstWhosePageAnonymousReadersMayRead() throws {
        let f = try Self.fixture()
        let samples = try #require(f.service.manifest.bucket(named: "samples"))
        #expect(f.service.websiteFolder(samples, among: ["", "site", "site/pictures"]) == "site")
        #expect(f.service.websiteFolder(samples, among: ["", "hidden"]) == nil)
        let open = try #require(f.service.manifest.bucket(named: "open"))
        #expect(f.service.websiteFolder(open, among: ["", "empty"]) == nil)
    }
}
