import Foundation
import Testing
import TestSupport

/// Attack 42c's L2: an index document serve cannot read (`chmod 000 _site/index.html`, serve run
/// by a user who then may not open it) got a Website address and `/site` a 301, then `/site/`
/// and the virtual host's `/` answered 500 InternalError. The same open a GET makes decides: an
/// index this server cannot open is no page (no 301, the Website line says so and why), and a
/// GET of it is refused 403 AccessDenied.
@Suite(.ownThreads) struct ServeUnreadableIndexRound43Tests {
    @Test(.enabled(if: UnprivilegedDerive.isPossible, "needs a user that mode 000 keeps out (not root, or root with setpriv)"))
    func anIndexServeCannotReadIsNoPage() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("_site"), withIntermediateDirectories: true)
        let index = folder.appendingPathComponent("_site/index.html")
        try Data("<h1>page</h1>".utf8).write(to: index)
        try Data("version: 1\nbuckets:\n  site: {path: _site, acl: public-read, website: {index: index.html}}\n".utf8)
            .write(to: folder.appendingPathComponent("derive.yaml"))
        let derive = try UnprivilegedDerive(in: folder)
        defer { derive.remove() }
        let built = try derive.run(["build", "-q"])
        #expect(built.status == 0, "\(built.text)")
        #expect(chmod(index.path, 0) == 0)
        let serve = try ServeSession(in: folder, errors: folder.appendingPathComponent("serve.err"), nobodyStateHome: derive.stateHome)
        defer { serve.stop() }
        let line = try #require(SiteLeftoversRound41Tests.websiteLine("site", in: serve))
        #expect(line.hasPrefix("Website site: no page is served yet") && line.contains("site/index.html cannot be read"), "\(line)")
        let bare = try serve.get("/site")
        #expect(bare.status == 403, "\(bare.status) \(bare.headers)")
        let page = try serve.get("/site/")
        #expect(page.status == 403 && String(decoding: page.body, as: UTF8.self).contains("<Code>AccessDenied</Code>"),
                "\(page.status) \(String(decoding: page.body, as: UTF8.self))")
        let connection = try ServeConnectionTests.Connection(port: serve.port)
        connection.send("GET / HTTP/1.1\r\nHost: site.localhost\r\n\r\n")
        let virtual = try #require(connection.response())
        #expect(virtual.status == 403, "\(virtual.status)")
        // Readable again: the page is served (serve needs no restart).
        #expect(chmod(index.path, 0o644) == 0)
        #expect(try serve.get("/site/").status == 200)
        #expect(try serve.get("/site").status == 301)
    }
}
