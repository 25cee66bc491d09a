import Access
import Foundation
import Imaging
import Manifest
import ProcessLanguage
import Testing
import TestSupport
@testable import DeriveServer
@testable import derive

/// Issue #9, attack 44's findings 3 and 5: a writer through serve created what Derive's project
/// discovery reads as a project. One anonymous PUT of a three-line manifest into a
/// public-read-write bucket's folder made the running serve answer 503 everywhere and stopped the
/// site's validate, plan and build; one into a sub-folder froze that folder for every writer; a
/// signed `derive.yml` in a private bucket whose folder is a project made that project invalid.
/// No writer (PUT, copy, append, multipart, save-as) creates a manifest, a `.derive`, a Derive
/// lock or a state database, decided by discovery's own definition (`ProjectMarkers`); ordinary
/// YAML and JSON still land. One service and one built project for the suite.
@Suite(.ownThreads, .serialized) struct ProjectMarkerWritesRound44Tests {
    static let manifest = "version: 1\nbuckets: {}\nderivatives: []\n"
    static let now = 1_700_000_000

    /// site.yaml serving `upl` (pub, public-read-write) and `prj` (P, private), P a built project.
    static func served() throws -> (root: URL, service: ObjectService) {
        let root = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("P"), withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: root.appendingPathComponent("P"))
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("pub/photo.jpg"))
        // A manifest's text put in the bucket by hand (not through serve), as a copy's source.
        try Data(manifest.utf8).write(to: root.appendingPathComponent("pub/stash.txt"))
        try Data("version: 1\nbuckets:\n  upl: {path: pub, acl: public-read-write}\n  prj: {path: P}\nderivatives: []\n".utf8)
            .write(to: root.appendingPathComponent("site.yaml"))
        let manifest = try #require(ManifestLoader().load(root.appendingPathComponent("site.yaml").path).manifest)
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: ["AKIDEXAMPLE": "secret"], region: "cn-hangzhou"), engine: Engine(),
                                        cacheFolder: root.appendingPathComponent("cache").path,
                                        recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest), clock: { now })
        return (root, service)
    }

    /// A request, V1-signed when `signed`.
    static func send(_ service: ObjectService, _ method: String, _ bucket: String, _ key: String, query: [(String, String?)] = [],
                     headers extra: [String: String] = [:], body: String = "", signed: Bool = false) -> (status: Int, text: String, etag: String?) {
        var headers = ["host": "127.0.0.1:9000"].merging(extra) { $1 }
        if signed {
            let date = HTTPDate.string(now)
            headers["date"] = date
            let stringToSign = OSSSignature.v1StringToSign(method: method, dateOrExpires: date, headers: headers, bucket: bucket, key: key,
                                                           query: query.map { OSSSignature.Parameter($0.0, $0.1) })
            headers["authorization"] = "OSS AKIDEXAMPLE:" + OSSSignature.v1Signature(secret: "secret", stringToSign: stringToSign)
        }
        let target = "/\(bucket)/\(key)" + (query.isEmpty ? "" : "?" + query.map { $0.0 + ($0.1.map { "=" + $0 } ?? "") }.joined(separator: "&"))
        let answer = service.handle(ServiceRequest(method: method, target: target, headers: headers, body: Data(body.utf8)))
        return (answer.status, String(decoding: answer.body, as: UTF8.self), answer.headers.first { $0.0.lowercased() == "etag" }?.1)
    }

    static func exists(_ root: URL, _ path: String) -> Bool {
        var info = stat()
        return lstat(root.appendingPathComponent(path).path, &info) == 0
    }

    @Test func noWriterCreatesAProject() throws {
        let (root, service) = try Self.served()
        defer { try? FileManager.default.removeItem(at: root) }
        func refused(_ answer: (status: Int, text: String, etag: String?), _ what: String) {
            #expect(answer.status == 403 && answer.text.contains("AccessDenied") && answer.text.contains("another project")
                        && answer.text.contains("put its files in place by hand"), "\(what): \(answer.status) \(answer.text)")
        }
        // PutObject, anonymous: a manifest at any name discovery reads one, one mid-edit at a
        // manifest's name, a lock, a state database, a `.derive`.
        for (key, body) in [("foo.yaml", Self.manifest), ("derive.yaml", Self.manifest), ("u/evil.yaml", Self.manifest), ("derive", Self.manifest),
                            ("u/half.yml", "version: 1\nbuckets: [src\n"), ("u/site.lock", #"{"format":"derive.lock/1","manifest":"gone.yaml"}"# + "\n"),
                            ("u/state.sqlite", "SQLite format 3\u{0}rest"), (".derive/derive/x.txt", "x"), ("u/.derive", "x")] {
            refused(Self.send(service, "PUT", "upl", key, body: body), "PUT \(key)")
            #expect(!Self.exists(root, "pub/" + key), "\(key) was written")
        }
        #expect(!Self.exists(root, "pub/.derive") && !Self.exists(root, "pub/u/.derive"))
        // The folder a refused manifest was aimed at takes everyone's uploads as before.
        #expect(Self.send(service, "PUT", "upl", "u/x.txt", body: "x").status == 200)
        #expect(Self.send(service, "DELETE", "upl", "u/x.txt").status == 204)
        // Ordinary YAML and JSON that are no manifests land, an empty YAML without a state beside it too.
        for (key, body) in [("config.yaml", "title: hello\nversion: 2\n"), ("data.json", #"{"version": 1, "items": []}"#), ("empty.yaml", ""),
                            ("u/notes.lock", "not a lock\n")] {
            let put = Self.send(service, "PUT", "upl", key, body: body)
            #expect(put.status == 200, "PUT \(key): \(put.status) \(put.text)")
            #expect(FileManager.default.contents(atPath: root.appendingPathComponent("pub/" + key).path) == Data(body.utf8))
        }
        // AppendObject: a YAML that the next append would make a manifest keeps its first bytes.
        #expect(Self.send(service, "POST", "upl", "app.yaml", query: [("append", nil), ("position", "0")], body: "version: 1\n").status == 200)
        refused(Self.send(service, "POST", "upl", "app.yaml", query: [("append", nil), ("position", "11")], body: "derivatives: []\n"), "append")
        #expect(FileManager.default.contents(atPath: root.appendingPathComponent("pub/app.yaml").path) == Data("version: 1\n".utf8))
        // CopyObject of a manifest's text put there by hand.
        refused(Self.send(service, "PUT", "upl", "copied.yaml", headers: ["x-oss-copy-source": "/upl/stash.txt"]), "copy")
        #expect(!Self.exists(root, "pub/copied.yaml"))
        // A multipart upload whose parts make a manifest.
        let initiated = Self.send(service, "POST", "upl", "mp.yaml", query: [("uploads", nil)])
        let id = try #require(initiated.text.components(separatedBy: "<UploadId>").dropFirst().first?.components(separatedBy: "</UploadId>").first, Comment(rawValue: initiated.text))
        let part = Self.send(service, "PUT", "upl", "mp.yaml", query: [("partNumber", "1"), ("uploadId", id)], body: Self.manifest)
        let etag = try #require(part.etag, Comment(rawValue: "\(part.status) \(part.text)"))
        let complete = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\(etag)</ETag></Part></CompleteMultipartUpload>"
        refused(Self.send(service, "POST", "upl", "mp.yaml", query: [("uploadId", id)], body: complete), "complete")
        #expect(!Self.exists(root, "pub/mp.yaml"))
        // Save-as into a `.derive` folder; and no symbolic link is made at all.
        let saveAs = "x-oss-process=image/resize,w_8|sys/saveas,o_\(Base64URL.encode("u/.derive/t.jpg"))"
        refused(Self.send(service, "POST", "upl", "photo.jpg", query: [("x-oss-process", nil)], body: saveAs), "save-as")
        #expect(Self.send(service, "PUT", "upl", "link.yaml", query: [("symlink", nil)], headers: ["x-oss-symlink-target": "stash.txt"]).status == 501)
        // Finding 5: the bucket's own folder is project P; a signed writer may not make it invalid.
        for key in ["derive.yml", "derive", "site.yaml"] {
            refused(Self.send(service, "PUT", "prj", key, body: Self.manifest, signed: true), "signed PUT \(key)")
            #expect(!Self.exists(root, "P/" + key))
        }
        // An empty file at a manifest's name beside P's state is a manifest mid-edit to discovery.
        refused(Self.send(service, "PUT", "prj", "new.yaml", body: "", signed: true), "signed empty new.yaml")
        #expect(Self.send(service, "PUT", "prj", "notes.yaml", body: "title: notes\n", signed: true).status == 200)
        // P's lock before its first build (deleted here): a file there would be taken for P's
        // lock, or stop P's build as a file Derive did not write; it is P's by its path alone.
        try FileManager.default.removeItem(at: root.appendingPathComponent("P/derive.lock"))
        let lock = Self.send(service, "PUT", "prj", "derive.lock", body: "x", signed: true)
        #expect(lock.status == 403 && lock.text.contains("is the lock of") && lock.text.contains("another project"), "\(lock.status) \(lock.text)")
        #expect(!Self.exists(root, "P/derive.lock"))
        // The site and P still validate (the report's 503s and refusals came from these files).
        let site = try CLI.run(["validate", "site.yaml"], in: root)
        #expect(site.status == 0, "\(site.stderr)")
        let project = try CLI.run(["validate"], in: root.appendingPathComponent("P"))
        #expect(project.status == 0, "\(project.stderr)")
    }

    /// Attack 44b's F4: an empty `derive.yaml` uploaded beside a retired project's `derive.lock`
    /// (discovery counts it: a manifest emptied beside its Derive lock) froze that folder for every
    /// writer. Refused as discovery would read it; beside no lock, an empty YAML still lands.
    @Test func anEmptyManifestBesideADeriveLockIsRefused() throws {
        let (root, service) = try Self.served()
        defer { try? FileManager.default.removeItem(at: root) }
        let retired = root.appendingPathComponent("pub/r")
        try FileManager.default.createDirectory(at: retired, withIntermediateDirectories: true)
        try Data((#"{"format":"derive.lock/2","manifest":"derive.yaml","note":"one output per line; written by derive build, do not edit"}"# + "\n").utf8)
            .write(to: retired.appendingPathComponent("derive.lock"))
        let answer = Self.send(service, "PUT", "upl", "r/derive.yaml", body: "")
        #expect(answer.status == 403 && answer.text.contains("Derive lock"), "\(answer.status) \(answer.text)")
        #expect(!Self.exists(root, "pub/r/derive.yaml"))
        #expect(Self.send(service, "PUT", "upl", "r/x.txt", body: "x").status == 200)
        #expect(Self.send(service, "PUT", "upl", "r/other.yaml", body: "").status == 200)
    }
}
