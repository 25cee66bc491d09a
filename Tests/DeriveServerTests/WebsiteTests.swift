import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Issue #13: a built site is browsable through `derive serve` (types by extension, OSS static
/// website hosting with index and error documents, ACLs unchanged).
@Suite(.ownThreads) struct WebsiteTests {
    static let manifest = """
        version: 1
        region: cn-hangzhou
        access_keys:
          - id: AKIDEXAMPLE
            secret_env: DERIVE_TEST_SECRET
        buckets:
          site:
            path: site
            acl: public-read
            website: {index: index.html, error: 404.html}
            objects:
              - match: "members/**"
                acl: private
          bare:
            path: bare
            acl: public-read
            website: {index: index.html}
          vault:
            path: vault
            acl: private
            website: {index: index.html, error: 404.html}
          plain:
            path: plain
            acl: public-read
        """

    static func fixture() throws -> ServiceFixture {
        try ServiceFixture(manifest: manifest, files: [
            "site/index.html": "text:<h1>home</h1>", "site/404.html": "text:<h1>lost</h1>",
            "site/blog/index.html": "text:<h1>blog</h1>", "site/members/index.html": "text:secret",
            "bare/index.html": "text:bare home", "vault/index.html": "text:vault", "vault/404.html": "text:vault lost",
            "plain/index.html": "text:plain",
        ])
    }

    @Test func theRootAndFolderURLsServeTheIndexDocument() throws {
        let f = try Self.fixture()
        let root = f.get("/site/")
        #expect(root.status == 200 && root.text == "<h1>home</h1>", "\(root.status) \(root.text)")
        #expect(root.header("Content-Type") == "text/html; charset=utf-8")
        // Attack 12 N4: without the final slash the page's relative addresses break: redirected.
        let bare = f.get("/site")
        #expect(bare.status == 301 && bare.header("Location") == "/site/", "\(bare.status) \(bare.headers)")
        #expect(f.get("/site", method: "HEAD").status == 301)
        #expect(f.get("/plain").status != 301, "a bucket without website: is no folder to redirect to")
        let host = f.get("/", headers: ["host": "site.localhost:9000"])   // virtual-host style
        #expect(host.status == 200 && host.text == "<h1>home</h1>")
        let blog = f.get("/site/blog/")
        #expect(blog.status == 200 && blog.text == "<h1>blog</h1>", "\(blog.status) \(blog.text)")
        let head = f.get("/site/blog/", method: "HEAD")
        #expect(head.status == 200 && head.header("Content-Length") == "13")
    }

    /// Attack 14 (static) M1: a page address with a query (`?utm_source=`, a cache-buster) is still
    /// the page, as on a web server; it listed the bucket as XML. A query that names a listing
    /// parameter or a sub-resource is still that call.
    @Test func aQueryOnThePageAddressStillServesThePage() throws {
        let f = try Self.fixture()
        for target in ["/site/?utm_source=mail", "/site/?v=2&x", "/site/?utm_source=a%20b"] {
            let page = f.get(target)
            #expect(page.status == 200 && page.text == "<h1>home</h1>", "\(target): \(page.status) \(page.text.prefix(120))")
        }
        let host = f.get("/?utm_source=mail", headers: ["host": "site.localhost:9000"])
        #expect(host.status == 200 && host.text == "<h1>home</h1>", "\(host.status) \(host.text.prefix(120))")
        let blog = f.get("/site/blog/?v=2")
        #expect(blog.status == 200 && blog.text == "<h1>blog</h1>", "\(blog.status) \(blog.text.prefix(120))")
        let bare = f.get("/site?utm_source=mail")
        #expect(bare.status == 301 && bare.header("Location") == "/site/?utm_source=mail", "\(bare.status) \(bare.headers)")
        // Listing parameters and sub-resources keep their meaning.
        for target in ["/site/?prefix=blog/", "/site/?list-type=2", "/site/?max-keys=1", "/site/?Prefix=blog/"] {
            let listing = f.get(target)
            #expect(listing.text.contains("<ListBucketResult"), "\(target): \(listing.status) \(listing.text.prefix(120))")
        }
        #expect(!f.get("/site/?acl").text.contains("<h1>home</h1>"))
    }

    @Test func missingKeysGetTheErrorDocumentWith404() throws {
        let f = try Self.fixture()
        let missing = f.get("/site/nope.html")
        #expect(missing.status == 404 && missing.text == "<h1>lost</h1>", "\(missing.status) \(missing.text)")
        #expect(missing.header("Content-Type") == "text/html; charset=utf-8")
        let folder = f.get("/site/empty/")
        #expect(folder.status == 404 && folder.text == "<h1>lost</h1>")
        // Without an error document: OSS's NoSuchKey.
        let bare = f.get("/bare/nope.html")
        #expect(bare.status == 404 && bare.code == "NoSuchKey")
    }

    @Test func aclsStillApply() throws {
        let f = try Self.fixture()
        // A private folder's index stays private, and so does a private bucket's site.
        #expect(f.get("/site/members/").code == "AccessDenied")
        #expect(f.get("/vault/").code == "AccessDenied")
        #expect(f.get("/vault/nope.html").code == "AccessDenied")
        // A signed GET of the root still lists the bucket (SDKs rely on it).
        let listed = f.send("GET", "site")
        #expect(listed.status == 200 && listed.values("Key").contains("index.html"), "\(listed.text)")
        // Buckets without `website` are unchanged.
        #expect(f.get("/plain/").text != "plain")
        #expect(f.get("/plain/dir/").code == "InvalidObjectName")
        #expect(f.get("/plain/nope.html").code == "NoSuchKey")
    }

    /// Files a build writes carry no upload metadata: the type comes from the extension.
    @Test func everyCommonTypeIsServedByExtension() throws {
        let expected = [
            "a.html": "text/html; charset=utf-8", "a.htm": "text/html; charset=utf-8", "a.css": "text/css; charset=utf-8", "a.js": "application/javascript",
            "a.mjs": "application/javascript", "a.json": "application/json", "a.map": "application/json",
            "a.webmanifest": "application/manifest+json", "a.svg": "image/svg+xml", "a.avif": "image/avif",
            "a.heic": "image/heic", "a.heif": "image/heif", "a.webp": "image/webp", "a.jpg": "image/jpeg", "a.jpeg": "image/jpeg",
            "a.png": "image/png", "a.apng": "image/apng", "a.gif": "image/gif", "a.ico": "image/x-icon", "a.jxl": "image/jxl",
            "a.tif": "image/tiff", "a.bmp": "image/bmp", "a.woff": "font/woff", "a.woff2": "font/woff2", "a.ttf": "font/ttf",
            "a.otf": "font/otf", "a.txt": "text/plain; charset=utf-8", "a.md": "text/markdown; charset=utf-8", "a.csv": "text/csv; charset=utf-8", "a.xml": "application/xml",
            "a.rss": "application/rss+xml", "a.atom": "application/atom+xml", "a.pdf": "application/pdf", "a.wasm": "application/wasm",
            "a.mp4": "video/mp4", "a.webm": "video/webm", "a.vtt": "text/vtt; charset=utf-8", "a.yaml": "application/yaml", "a.yml": "application/yaml",
            "A.HTML": "text/html; charset=utf-8", "a.unknown": "application/octet-stream",
        ]
        var files: [String: String] = [:]
        for name in expected.keys { files["plain/" + name] = "text:x" }
        let f = try ServiceFixture(manifest: Self.manifest, files: files)
        for (name, type) in expected {
            #expect(f.get("/plain/" + name).header("Content-Type") == type, "\(name)")
            #expect(f.get("/plain/" + name, method: "HEAD").header("Content-Type") == type, "HEAD \(name)")
        }
    }
}
