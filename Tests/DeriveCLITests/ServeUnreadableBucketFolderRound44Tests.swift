import Foundation
import Testing
import TestSupport

/// Attack 43's L-e and L-b.
/// L-e: when serve could not read a bucket's own folder (`chmod 000 _site`, serve run by a user it
/// then keeps out), every key got 404 NoSuchKey, the listing an empty 200, and the Website line said
/// "no index.html in site/; write one there". An unreadable sub-folder got 403 and a log line saying
/// why; the bucket's folder is answered so too: 403 AccessDenied for keys and the listing, a log
/// warning naming the folder, and a Website line that says the folder cannot be read.
/// L-b: an error document serve could not read was logged "answered 403" while the client got
/// 404 NoSuchKey: the log line says what the client got.
@Suite(.ownThreads) struct ServeUnreadableBucketFolderRound44Tests {
    static func log(_ file: URL, contains text: String) -> String? {
        // Waited for (the line may come after the answer): 5 s was a timing goal a loaded machine can miss.
        let deadline = Date().addingTimeInterval(60)
        var printed = ""
        while Date() < deadline {
            printed = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            if printed.contains(text) { return printed }
            usleep(50_000)
        }
        return nil
    }

    @Test(.enabled(if: UnprivilegedDerive.isPossible, "needs a user that mode 000 keeps out (not root, or root with setpriv)"))
    func aFolderServeCannotReadIsRefusedAndSaidSo() throws {
        let folder = try CLI.temporaryFolder()
        defer { chmod(folder.appendingPathComponent("_site").path, 0o755); try? FileManager.default.removeItem(at: folder) }
        let site = folder.appendingPathComponent("_site")
        try FileManager.default.createDirectory(at: site, withIntermediateDirectories: true)
        try Data("<h1>page</h1>".utf8).write(to: site.appendingPathComponent("index.html"))
        try Data("<h1>not found</h1>".utf8).write(to: site.appendingPathComponent("404.html"))
        try Data("version: 1\nbuckets:\n  site: {path: _site, acl: public-read, website: {index: index.html, error: 404.html}}\n".utf8)
            .write(to: folder.appendingPathComponent("derive.yaml"))
        let derive = try UnprivilegedDerive(in: folder)
        defer { derive.remove() }
        let built = try derive.run(["build", "-q"])
        #expect(built.status == 0, "\(built.text)")

        // L-b: the error document cannot be read; the client gets 404 NoSuchKey, and so says the log.
        let errorDocument = site.appendingPathComponent("404.html")
        #expect(chmod(errorDocument.path, 0) == 0)
        do {
            let errors = folder.appendingPathComponent("serve-b.err")
            let serve = try ServeSession(in: folder, errors: errors, nobodyStateHome: derive.stateHome)
            defer { serve.stop() }
            let missing = try serve.get("/site/nothing.html")
            #expect(missing.status == 404 && String(decoding: missing.body, as: UTF8.self).contains("<Code>NoSuchKey</Code>"), "\(missing.status)")
            let log = Self.log(errors, contains: "404.html")
            #expect(log?.contains("answered 404 NoSuchKey") == true && log?.contains("answered 403") == false, "\(log ?? "no log line")")
        }
        #expect(chmod(errorDocument.path, 0o644) == 0)

        // L-e: the bucket's own folder cannot be read.
        #expect(chmod(site.path, 0) == 0)
        let errors = folder.appendingPathComponent("serve-e.err")
        let serve = try ServeSession(in: folder, errors: errors, nobodyStateHome: derive.stateHome)
        defer { serve.stop() }
        let line = try #require(SiteLeftoversRound41Tests.websiteLine("site", in: serve))
        #expect(line.hasPrefix("Website site: no page is served yet") && line.contains("cannot be read") && !line.contains("write one there"), "\(line)")
        for target in ["/site", "/site/", "/site/index.html", "/site/?list-type=2", "/site/nothing.html"] {
            let answer = try serve.get(target)
            #expect(answer.status == 403 && String(decoding: answer.body, as: UTF8.self).contains("<Code>AccessDenied</Code>"),
                    "\(target): \(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
        }
        let log = Self.log(errors, contains: "folder of bucket 'site'")
        #expect(log?.contains("cannot be read by the user derive serve runs as") == true, "\(log ?? "no log line")")
        // Readable again: the page is served (serve needs no restart).
        #expect(chmod(site.path, 0o755) == 0)
        #expect(try serve.get("/site/").status == 200)
    }
}
