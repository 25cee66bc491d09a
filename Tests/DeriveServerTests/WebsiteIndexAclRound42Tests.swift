import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 41b's L1: the bucket root's `/site` → `301 /site/` was answered for every website bucket,
/// whatever its index document's own ACL: a public bucket whose `index.html` a private rule (or an
/// `objects:` rule) makes private, a private bucket, and a bucket with no index at all were all sent
/// to `/site/`, which then answered 403 or 404. The 301 now follows the Website line's definition
/// (`websitePage`: the index a regular file an anonymous GET may read); otherwise `/site` is
/// answered exactly as `/site/` is.
@Suite(.ownThreads) struct WebsiteIndexAclRound42Tests {
    static let manifest = """
        version: 1
        buckets:
          open: {path: open, acl: public-read, website: {index: index.html}}
          out: {path: out, acl: public-read, website: {index: index.html}}
          priv: {path: priv, acl: private, website: {index: index.html, error: 404.html}}
          ruled:
            path: ruled
            acl: public-read
            website: {index: index.html}
            objects:
              - match: index.html
                acl: private
          nopage: {path: nopage, acl: public-read, website: {index: index.html, error: 404.html}}
          bare: {path: bare, acl: public-read, website: {index: index.html}}
        """

    static let buckets = ["open", "out", "priv", "ruled", "nopage", "bare"]

    /// `out/index.html` is a private rule's output (its build recorded it private), as in the
    /// attack's `p.yaml`; `nopage` and `bare` hold a page only in `blog/`.
    static func fixture() throws -> ServiceFixture {
        try ServiceFixture(manifest: manifest, files: [
            "open/index.html": "text:open home", "out/index.html": "text:private rule's page", "out/sub/index.html": "text:sub",
            "priv/index.html": "text:vault", "priv/404.html": "text:vault lost", "ruled/index.html": "text:ruled",
            "nopage/blog/index.html": "text:blog", "nopage/404.html": "text:lost", "bare/blog/index.html": "text:blog",
        ], recorded: Recorded(acls: ["out/index.html": .private, "out/sub/index.html": .private]))
    }

    /// An answer without what differs between two requests (the request id, also inside a HEAD's
    /// `x-oss-err`, the error body in base64).
    static func shape(_ answer: ServiceResponse) -> String {
        func withoutId(_ text: String) -> String {
            var text = text
            if let start = text.range(of: "<RequestId>"), let end = text.range(of: "</RequestId>") {
                text.removeSubrange(start.lowerBound..<end.upperBound)
            }
            return text
        }
        let headers = answer.headers.filter { $0.0.lowercased() != "x-oss-request-id" }.map { name, value in
            let decoded = name.lowercased() == "x-oss-err" ? Data(base64Encoded: value).map { withoutId(String(decoding: $0, as: UTF8.self)) } : nil
            return "\(name.lowercased()): \(decoded ?? value)"
        }.sorted()
        return "\(answer.status) \(headers) \(withoutId(answer.text))"
    }

    @Test func theRootIsRedirectedOnlyWhenItsIndexIsServedAndOtherwiseAnsweredAsTheFolder() throws {
        let f = try Self.fixture()
        for name in Self.buckets {
            let bucket = try #require(f.service.manifest.bucket(named: name))
            let served = f.service.websitePage(bucket, among: [""]) == .served(folder: "")
            for method in ["GET", "HEAD"] {
                for query in ["", "?utm_source=mail"] {
                    let bare = f.get("/\(name)\(query)", method: method)
                    let folder = f.get("/\(name)/\(query)", method: method)
                    if served {
                        #expect(bare.status == 301 && bare.header("Location") == "/\(name)/\(query)", "\(name) \(method): \(bare.status)")
                        #expect(folder.status == 200, "\(name) \(method): \(folder.status) \(folder.text)")
                    } else {
                        #expect(bare.status != 301 && Self.shape(bare) == Self.shape(folder),
                                "\(method) /\(name)\(query): \(Self.shape(bare)) vs /\(name)/: \(Self.shape(folder))")
                        #expect(folder.status >= 400, "\(name) \(method): \(folder.status)")
                    }
                }
            }
        }
    }

    /// The attack's cases one by one: which answer each root gives now, and that the Website
    /// line's page says the same (served only for `open`).
    @Test func eachCaseOfTheAttackAnswersWhatItsFolderAnswers() throws {
        let f = try Self.fixture()
        func page(_ name: String) throws -> ObjectService.WebsitePage {
            f.service.websitePage(try #require(f.service.manifest.bucket(named: name)), among: [""])
        }
        #expect(try page("open") == .served(folder: ""))
        #expect(f.get("/open").status == 301)
        // A public bucket whose index a private rule wrote: 403, as `/out/`.
        #expect(try page("out") == .privateIndex(key: "index.html"))
        #expect(f.get("/out").code == "AccessDenied")
        // A private sub-folder index still gives the key's own answer (attack 41b saw this right).
        #expect(f.get("/out/sub").status == 404)
        // A private bucket, and an index an `objects:` rule makes private: 403.
        #expect(try page("priv") == .privateIndex(key: "index.html"))
        #expect(f.get("/priv").code == "AccessDenied")
        #expect(try page("ruled") == .privateIndex(key: "index.html"))
        #expect(f.get("/ruled").code == "AccessDenied")
        // No index at the root (only `blog/index.html`): the error document, or NoSuchKey.
        #expect(try page("nopage") == .noIndex)
        let lost = f.get("/nopage")
        #expect(lost.status == 404 && lost.text == "lost", "\(lost.status) \(lost.text)")
        #expect(try page("bare") == .noIndex)
        #expect(f.get("/bare").code == "NoSuchKey")
        // A query naming a listing parameter is the bucket call, as before.
        #expect(f.get("/bare?prefix=blog/").status != 301)
    }
}
