import Access
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import DeriveServer
@testable import derive

/// Attack 50c's L1 and L2 (issue #9/#13). L1: a `.git` made in a public bucket's folder (GitHub
/// Pages' usual layout) was answered and listed to anonymous readers: its `config` with the
/// remote's token, its whole history. Version control's folders and Derive's `.derive` inside a
/// bucket are no objects: never answered, listed or written, signed or not. L2: a user's own file
/// whose first line merely looks like a lock's (`{"format":"derive.lock/2","manifest":"x.yaml"}`)
/// was answered NoSuchKey even to a signed owner; only a file that is a Derive lock (the header
/// Derive writes: `LockFirstLine.derivesLockManifest`, the rule discovery uses too) is hidden.
@Suite(.ownThreads) struct ServeHiddenFilesRound51Tests {
    /// site.yaml serving `pub` (public-read) and `up` (private), with the files the report made by hand.
    static func served() throws -> (root: URL, service: ObjectService) {
        let root = try CLI.temporaryFolder()
        let fm = FileManager.default
        func put(_ path: String, _ text: String) throws {
            let url = root.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        try put("pub/index.html", "<p>hello</p>\n")
        try put("pub/.git/config", "[remote \"origin\"]\n\turl = https://user:ghp_SECRET@github.com/u/u.github.io\n")
        try put("pub/.git/HEAD", "ref: refs/heads/main\n")
        try put("pub/sub/.hg/hgrc", "[paths]\ndefault = https://user:pw@example.com/r\n")
        try put("pub/sub/.git", "gitdir: ../../.git/modules/sub\n")
        try put("pub/sub/page.html", "<p>sub</p>\n")
        try put("up/plain.txt", "hi\n")
        try put("up/mylog.jsonl", #"{"format":"derive.lock/2","manifest":"x.yaml"}"# + "\nline2\n")
        // A copy of a real lock (the header Derive writes): still another project's record.
        try put("up/backup/g.lock", #"{"format":"derive.lock/2","manifest":"../g.yaml","note":"one output per line; written by derive build, do not edit"}"# + "\n"
            + #"{"path":"out/a.jpg","actionKey":"k","digest":"d","width":8,"height":5,"bytes":100,"format":"jpg"}"# + "\n")
        try put("site.yaml", "version: 1\nbuckets:\n  upl: {path: pub, acl: public-read}\n  prv: {path: up}\nderivatives: []\n")
        let manifest = try #require(ManifestLoader().load(root.appendingPathComponent("site.yaml").path).manifest)
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou"), engine: Engine(),
                                        cacheFolder: root.appendingPathComponent("cache").path,
                                        recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest), clock: { ProjectMarkerWritesRound44Tests.now })
        return (root, service)
    }

    static func send(_ service: ObjectService, _ method: String, _ bucket: String, _ key: String, query: [(String, String?)] = [],
                     body: String = "", signed: Bool) -> (status: Int, text: String, etag: String?) {
        ProjectMarkerWritesRound44Tests.send(service, method, bucket, key, query: query, body: body, signed: signed)
    }

    @Test func versionControlFoldersInABucketAreNeverAnsweredListedOrWritten() throws {
        let (root, service) = try Self.served()
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(Self.send(service, "GET", "upl", "index.html", signed: false).status == 200)
        #expect(Self.send(service, "GET", "upl", "sub/page.html", signed: false).status == 200)
        for key in [".git/config", ".git/HEAD", "sub/.hg/hgrc", "sub/.git"] {
            for signed in [false, true] {
                for method in ["GET", "HEAD"] {
                    let answer = Self.send(service, method, "upl", key, signed: signed)
                    #expect(answer.status == 404 && (method == "HEAD" || answer.text.contains("NoSuchKey")),
                            "\(method) \(key) signed \(signed): \(answer.status) \(answer.text)")
                    #expect(!answer.text.contains("ghp_SECRET") && !answer.text.contains("refs/heads"), "\(key): \(answer.text)")
                }
            }
        }
        for signed in [false, true] {
            let whole = Self.send(service, "GET", "upl", "", signed: signed)
            #expect(whole.status == 200 && whole.text.contains("<Key>index.html</Key>") && whole.text.contains("<Key>sub/page.html</Key>"), "\(whole.text)")
            #expect(!whole.text.contains(".git") && !whole.text.contains(".hg"), "signed \(signed): \(whole.text)")
            let prefixed = Self.send(service, "GET", "upl", "", query: [("prefix", ".git/")], signed: signed)
            #expect(prefixed.status == 200 && !prefixed.text.contains("<Key>"), "\(prefixed.text)")
            let rolled = Self.send(service, "GET", "upl", "", query: [("delimiter", "/")], signed: signed)
            #expect(rolled.status == 200 && rolled.text.contains("<Prefix>sub/</Prefix>") && !rolled.text.contains(".git"), "\(rolled.text)")
        }
        // No writer reaches into them either (a hook put there runs at the owner's next commit).
        let hook = Self.send(service, "PUT", "upl", ".git/hooks/pre-commit", body: "#!/bin/sh\necho owned\n", signed: true)
        #expect(hook.status == 403 || hook.status == 404, "\(hook.status) \(hook.text)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("pub/.git/hooks/pre-commit").path))
        let deleted = Self.send(service, "DELETE", "upl", ".git/HEAD", signed: true)
        #expect([204, 403, 404].contains(deleted.status) && FileManager.default.fileExists(atPath: root.appendingPathComponent("pub/.git/HEAD").path), "\(deleted.status)")
    }

    @Test func aUsersFileThatOnlyLooksLikeALockIsAnsweredAndListed() throws {
        let (root, service) = try Self.served()
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(Self.send(service, "GET", "prv", "plain.txt", signed: true).status == 200)
        let mine = Self.send(service, "GET", "prv", "mylog.jsonl", signed: true)
        #expect(mine.status == 200 && mine.text.hasSuffix("line2\n"), "\(mine.status) \(mine.text)")
        let listed = Self.send(service, "GET", "prv", "", signed: true)
        #expect(listed.text.contains("<Key>mylog.jsonl</Key>"), "\(listed.text)")
        // The copy of a lock Derive wrote stays hidden, as before.
        #expect(Self.send(service, "GET", "prv", "backup/g.lock", signed: true).status == 404)
        #expect(!listed.text.contains("g.lock"), "\(listed.text)")
    }
}
