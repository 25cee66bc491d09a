import Foundation
import Testing
import TestSupport

/// Attack 51c's 3 and 6 (issue #13). 3: a running `derive serve` kept answering its public bucket
/// after another project's lock appeared deep in it, though validate and a fresh serve refused
/// the manifest (README: "a running serve answers 503 once an edit makes it so"): its look at the
/// neighbours now includes what validate finds of gone projects in its public buckets. 6: a
/// sibling project appearing made serve answer 503 saying "its manifest changed", and log it so:
/// the log now names the file that did it, and the 503 says the manifest itself did not change.
@Suite(.ownThreads, .serialized) struct ServeRunningRescanRound52Tests {
    static let manifest = "version: 1\nbuckets:\n  src: {path: src}\n  www: {path: www, acl: public-read}\nderivatives: []\n"

    func project() throws -> URL {
        let root = try CLI.temporaryFolder()
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("www/pics"), withIntermediateDirectories: true)
        try Data(Self.manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        try Data("<p>hi</p>\n".utf8).write(to: root.appendingPathComponent("www/pics/index.html"))
        return root
    }

    /// Serve looks at its neighbours again at most every second: a request after that sees the change.
    func afterServeLooksAgain() { usleep(1_500_000) }

    @Test func aLockOfAnotherProjectAppearingInThePublicBucketStopsARunningServe() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let log = root.appendingPathComponent("serve.log")
        let serve = try ServeSession(in: root, errors: log)
        defer { serve.stop() }
        #expect(try serve.get("/www/pics/index.html").status == 200)
        // g's lock (the header Derive writes) copied into a folder made in the bucket.
        let deep = root.appendingPathComponent("www/deep/y")
        try FileManager.default.createDirectory(at: deep, withIntermediateDirectories: true)
        try Data((#"{"format":"derive.lock/2","manifest":"g.yaml","note":"one output per line; written by derive build, do not edit"}"# + "\n").utf8)
            .write(to: deep.appendingPathComponent("g.lock"))
        let validate = try CLI.run(["validate"], in: root)
        #expect(validate.status != 0 && validate.stderr.contains("www/deep/y/g.lock"), "\(said(validate))")
        afterServeLooksAgain()
        let refused = try serve.get("/www/pics/index.html")
        #expect(refused.status == 503, "a running serve kept answering a bucket holding another project's lock: \(refused.status)")
        let logged = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(logged.contains("www/deep/y/g.lock"), "\(logged)")
        // Moved out again: served again.
        try FileManager.default.removeItem(at: deep.appendingPathComponent("g.lock"))
        afterServeLooksAgain()
        #expect(try serve.get("/www/pics/index.html").status == 200)
    }

    @Test func aSiblingThatMakesTheManifestInvalidIsNamedNotTheManifest() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let log = root.appendingPathComponent("serve.log")
        let serve = try ServeSession(in: root, errors: log)
        defer { serve.stop() }
        #expect(try serve.get("/www/pics/index.html").status == 200)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("gal"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  src: {path: ../src}\n  out: {path: ../www/gal, acl: private}\nderivatives:\n  - {from: src/*.jpg, process: \"image/resize,w_10\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("gal/derive.yaml"))
        afterServeLooksAgain()
        let refused = try serve.get("/www/pics/index.html")
        let body = String(decoding: refused.body, as: UTF8.self)
        #expect(refused.status == 503, "\(refused.status) \(body)")
        #expect(!body.contains("its manifest changed") && body.contains("another project"), "\(body)")
        let logged = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let line = logged.split(separator: "\n").first { $0.contains("does not load") } ?? ""
        #expect(line.contains("did not change") && line.contains("gal/derive.yaml appeared"), "\(logged)")
        #expect(!line.contains("changed and does not load"), "\(line)")
    }
}
