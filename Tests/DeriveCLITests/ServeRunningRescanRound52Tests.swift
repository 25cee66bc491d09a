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

    /// Issue #15, attack 53b's 4: serve's look keeps what it read of each file (a Derive lock at
    /// any name is known by its first line) while the file keeps its identity, size and times,
    /// also in a folder listed again. Over the same edits of a bucket of 200 files (files added,
    /// replaced, removed; the folder renamed; one file rewritten in place into another
    /// project's lock), the running serve answers as validate judges the manifest each time.
    @Test func aRunningServeJudgesABigBucketAsValidateOverTheSameEdits() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let pics = root.appendingPathComponent("www/pics")
        let plain = Data("plain text, long enough to be opened for a lock's first line\n".utf8)
        for index in 0..<200 { try plain.write(to: pics.appendingPathComponent("f\(index).txt")) }
        // Settled (two seconds), what the look read of them is kept.
        usleep(2_100_000)
        let serve = try ServeSession(in: root)
        defer { serve.stop() }
        func agree(_ why: String, _ key: String) throws {
            let validate = try CLI.run(["validate"], in: root)
            let status = try serve.get(key).status
            #expect((validate.status == 0) == (status == 200), "\(why): serve \(status), validate \(validate.status): \(said(validate))")
        }
        try agree("at start", "/www/pics/f0.txt")
        afterServeLooksAgain()
        try agree("looked again", "/www/pics/f1.txt")

        let fm = FileManager.default
        try plain.write(to: pics.appendingPathComponent("added.txt"))
        try plain.write(to: pics.appendingPathComponent("f3.txt.new"))
        #expect(rename(pics.appendingPathComponent("f3.txt.new").path, pics.appendingPathComponent("f3.txt").path) == 0)
        try fm.removeItem(at: pics.appendingPathComponent("f4.txt"))
        afterServeLooksAgain()
        try agree("added, replaced, removed", "/www/pics/added.txt")

        #expect(rename(pics.path, root.appendingPathComponent("www/pics2").path) == 0)
        afterServeLooksAgain()
        try agree("the folder renamed", "/www/pics2/f5.txt")

        // f7.txt rewritten in place into g's lock: the same inode, its folder's times unmoved.
        let handle = try #require(FileHandle(forWritingAtPath: root.appendingPathComponent("www/pics2/f7.txt").path))
        try handle.write(contentsOf: Data((#"{"format":"derive.lock/2","manifest":"g.yaml","note":"one output per line; written by derive build, do not edit"}"# + "\n").utf8))
        try handle.close()
        afterServeLooksAgain()
        let refused = try serve.get("/www/pics2/f5.txt").status
        #expect(refused == 503, "a file rewritten in place into another project's lock went unseen: \(refused)")
        try agree("a file rewritten in place into a lock", "/www/pics2/f5.txt")
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
