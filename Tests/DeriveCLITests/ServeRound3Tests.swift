import Access
import Builder
import DeriveServer
import Foundation
import GRDB
import Imaging
import Manifest
import Planner
import ProcessLanguage
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
@testable import derive

/// Third attack on `derive serve` (issue #11): without a readable state of this manifest, what a
/// rule may write is private and never written anonymously; nor is it written anonymously with
/// a good state (an anonymous object there would block the next build).
@Suite(.ownThreads) struct ServeRound3Tests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Samples")

    static let yaml = """
        version: 1
        buckets:
          priv: {path: b/priv, acl: private}
          ovr:
            path: b/ovr
            acl: private
            objects:
              - match: "t/**"
                acl: public-read
          pub: {path: b/pub, acl: public-read}
          out: {path: b/out, acl: public-read-write}
        derivatives:
          - name: thumbs
            from: priv/*.jpg
            process: image/resize,w_100
            to: ovr/t/{name}.{ext}
          - name: pubthumbs
            from: pub/*.jpg
            process: image/resize,w_100
            to: out/t/{name}.{ext}

        """

    /// A project whose thumbnails exist on disk (as a build left them), with no state yet.
    final class Project {
        let folder = ((try? ScratchFolder.make("derive-r3")) ?? FileManager.default.temporaryDirectory.appendingPathComponent("derive-r3-\(UUID().uuidString)"))
        var manifest: Manifest!

        init() throws {
            // The manifest is loaded before the private source exists: the leak guard (which
            // would stop `derive serve`) is tested on its own below.
            for name in ["b/priv", "b/ovr/t", "b/pub", "b/out/t"] {
                try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: true)
            }
            try Data(ServeRound3Tests.yaml.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
            let loaded: Manifest = try #require(ManifestLoader().load(folder.appendingPathComponent("derive.yaml").path).manifest)
            manifest = loaded
            for path in ["b/priv/secret.jpg", "b/ovr/t/secret.jpg", "b/pub/pub.jpg", "b/out/t/pub.jpg", "b/out/src.jpg"] {
                try FileManager.default.copyItem(at: ServeRound3Tests.samples.appendingPathComponent("portrait.jpg"),
                                                 to: folder.appendingPathComponent(path))
            }
            try Data("readme".utf8).write(to: folder.appendingPathComponent("b/ovr/t/readme.txt"))
        }

        deinit { try? FileManager.default.removeItem(at: folder) }

        func service() throws -> ObjectService {
            try ObjectService(manifest: manifest, verifier: Verifier(keys: [:], region: "cn-hangzhou"), engine: Engine(),
                              cacheFolder: folder.appendingPathComponent("cache").path,
                              recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest))
        }

        /// A state with records for both thumbnails (the ACLs a build gives them), owned by `owner`.
        func state(owner: String?) throws {
            let store = try StateStore(folder: manifest.stateFolder, owner: owner)
            try store.queue.write { db in
                let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(outputs)").map { $0["name"] as String }
                for (path, acl) in [("ovr/t/secret.jpg", "private"), ("out/t/pub.jpg", "public-read")] {
                    let values = columns.map { name -> String in
                        switch name {
                        case "path": return "'\(path)'"
                        case "acl": return "'\(acl)'"
                        default: return "0"
                        }
                    }
                    try db.execute(sql: "INSERT INTO outputs (\(columns.joined(separator: ", "))) VALUES (\(values.joined(separator: ", ")))")
                }
            }
        }
    }

    static func request(_ service: ObjectService, _ method: String, _ target: String, body: String = "") -> ServiceResponse {
        service.handle(ServiceRequest(method: method, target: target, headers: ["host": "127.0.0.1:9000"], body: Data(body.utf8)))
    }

    // MARK: 1. A private derivative stays private without a state

    @Test func aThumbnailUnderAPublicObjectRuleIsPrivateWithoutState() throws {
        let project = try Project()
        let service = try project.service()
        #expect(Self.request(service, "GET", "/ovr/t/secret.jpg").status == 403)
        #expect(Self.request(service, "HEAD", "/ovr/t/secret.jpg").status == 403)
        #expect(Self.request(service, "GET", "/ovr/t/secret.jpg?x-oss-process=image%2Fresize%2Cw_10").status == 403)
        // What no rule writes keeps its object ACL.
        #expect(Self.request(service, "GET", "/ovr/t/readme.txt").status == 200)
    }

    @Test func aThumbnailUnderAPublicObjectRuleIsPrivateWithACorruptState() throws {
        let project = try Project()
        try FileManager.default.createDirectory(atPath: project.manifest.stateFolder, withIntermediateDirectories: true)
        try Data(String(repeating: "junk ", count: 900).utf8).write(to: URL(fileURLWithPath: project.manifest.stateFolder + "/state.sqlite"))
        let service = try project.service()
        #expect(Self.request(service, "GET", "/ovr/t/secret.jpg").status == 403)
        #expect(Self.request(service, "GET", "/ovr/t/secret.jpg").status == 403, "the fresh empty state proves nothing either")
    }

    @Test func aThumbnailUnderAPublicObjectRuleIsPrivateWithAnotherManifestsState() throws {
        let project = try Project()
        try project.state(owner: "/elsewhere/derive.yaml")
        let service = try project.service()
        #expect(Self.request(service, "GET", "/ovr/t/secret.jpg").status == 403)
    }

    @Test func aGoodStateDecides() throws {
        let project = try Project()
        try project.state(owner: BuildSession.ownerName(project.manifest.file))
        let service = try project.service()
        #expect(Self.request(service, "GET", "/ovr/t/secret.jpg").status == 403)
        #expect(Self.request(service, "GET", "/out/t/pub.jpg").status == 200)
    }

    @Test func ruleOutputsMatchOnlyWhatTheTemplateGives() throws {
        let project = try Project()
        let outputs = RuleOutputs(project.manifest)
        #expect(outputs.mayProduce(bucket: "ovr", key: "t/secret.jpg"))
        #expect(outputs.mayProduce(bucket: "out", key: "t/other.png"))
        #expect(!outputs.mayProduce(bucket: "ovr", key: "t/readme.txt"))
        #expect(!outputs.mayProduce(bucket: "ovr", key: "t/a/b.jpg"))
        #expect(!outputs.mayProduce(bucket: "priv", key: "t/secret.jpg"))
        #expect(outputs.buckets == ["ovr", "out"])
    }

    // MARK: 2. No anonymous write over a derivative without a state

    @Test func anonymousWritesToDerivativesAreRefusedWithoutState() throws {
        let project = try Project()
        let service = try project.service()
        let put = Self.request(service, "PUT", "/out/t/pub.jpg", body: "hello")
        #expect(put.status == 403)
        #expect(String(decoding: put.body, as: UTF8.self).contains("<Code>AccessDenied</Code>"))
        #expect(try Data(contentsOf: project.folder.appendingPathComponent("b/out/t/pub.jpg")).count > 5, "the thumbnail is untouched")
        // Save-as onto it from an object of the same bucket.
        let saveAs = "x-oss-process=image/resize,w_10|sys/saveas,o_\(Base64URL.encode("t/pub.jpg"))"
        #expect(Self.request(service, "POST", "/out/src.jpg?x-oss-process", body: saveAs).status == 403)
        // A key no rule writes stays writable.
        #expect(Self.request(service, "PUT", "/out/free.txt", body: "hello").status == 200)
    }

    @Test func keysTheLockListsAreNotWrittenAnonymously() throws {
        let project = try Project()
        let entry = LockFile.Entry(path: "out/old/gone.jpg", actionKey: "k", digest: "d", width: 1, height: 1, bytes: 1, format: "jpeg")
        try Data(LockFile(entries: [entry]).text.utf8).write(to: URL(fileURLWithPath: project.manifest.lockFile))
        let service = try project.service()
        #expect(Self.request(service, "PUT", "/out/old/gone.jpg", body: "hello").status == 403)
        #expect(Self.request(service, "PUT", "/out/old/other.txt", body: "hello").status == 200)
    }

    // MARK: 3. Nor with a good state, built or not yet built

    @Test func anonymousWritesToUnbuiltOutputsAreRefusedWithAGoodState() throws {
        let project = try Project()
        try project.state(owner: BuildSession.ownerName(project.manifest.file))
        let service = try project.service()
        #expect(Self.request(service, "PUT", "/out/t/pub.jpg", body: "hello").status == 403)
        #expect(Self.request(service, "PUT", "/out/t/notyet.jpg", body: "hello").status == 403)
        #expect(!FileManager.default.fileExists(atPath: project.folder.appendingPathComponent("b/out/t/notyet.jpg").path))
        #expect(Self.request(service, "PUT", "/out/t/notes.txt", body: "hello").status == 200)
    }
}

/// 6. SIGTERM does not wait for a client stalled mid-PUT-body, and its upload leaves nothing.
@Suite(.ownThreads, .serialized) struct ServeRound3ShutdownTests {
    @Test func sigtermDoesNotWaitForAStalledUpload() throws {
        let server = try ServeConnectionTests.RunningServer()
        let connection = try ServeConnectionTests.Connection(port: server.port)
        connection.send("PUT /prw/stalled.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n" + String(repeating: "x", count: 1000))
        Thread.sleep(forTimeInterval: 0.5)
        let start = Date()
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        // The promise (the measured exit is tens of milliseconds; Tests/Interop/oss2-check reports it).
        #expect(Date().timeIntervalSince(start) < 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: server.folder.appendingPathComponent("prw").path).isEmpty)
    }

    /// #11 leftover (b): an idle server exits as soon as SIGTERM arrives (it waited 1.5 s for nothing).
    @Test(arguments: ["none", "plain", "render", "closed"])
    func sigtermOnAnIdleServerExitsAtOnce(_ before: String) throws {
        let server = try ServeConnectionTests.RunningServer()
        var connection: ServeConnectionTests.Connection?
        if before != "none" {
            connection = try ServeConnectionTests.Connection(port: server.port)
            connection?.send(ServeConnectionTests.get(before == "render" ? "/pubr/photo.jpg?x-oss-process=image%2Fresize%2Cw_40" : "/pubr/photo.jpg"))
            _ = try #require(connection?.response())
            if before == "closed" { connection = nil }
        }
        Thread.sleep(forTimeInterval: 0.2)
        let start = Date()
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        let seconds = Date().timeIntervalSince(start)
        withExtendedLifetime(connection) {}
        print("idle SIGTERM exit after \(before): \(Int(seconds * 1000)) ms")
        // An idle server exits at once; one that waits for a request it thinks is in flight is cut
        // off only after the watchdog's 1 s (`ShutdownWatchdog.cutoff`). Tens of ms when quiet,
        // 0.69 s seen at load 19: the bound is the cutoff, not a timing goal.
        #expect(seconds < 1, "idle exit took \(seconds) s: it waited for the cutoff")
    }
}

/// Issue #12: a ~100 KB URL gets OSS XML (the parser's limit was 80 KiB: a bare 400 with no body).
@Suite(.ownThreads, .serialized) struct ServeLongRequestTests {
    @Test func aHundredKilobyteURLGetsOSSXML() throws {
        let server = try ServeConnectionTests.RunningServer()
        let connection = try ServeConnectionTests.Connection(port: server.port)
        connection.send(ServeConnectionTests.get("/pubr/" + String(repeating: "k", count: 100_000)))
        let key = try #require(connection.response())
        let text = String(decoding: key.body, as: UTF8.self)
        #expect(key.status == 400 && text.contains("<Code>InvalidObjectName</Code>") && key.headers["x-oss-request-id"]?.count == 24, "\(key.status) \(text.prefix(300))")
        let process = "image/resize,w_10" + String(repeating: "/resize,w_10", count: 8_000)
        connection.send(ServeConnectionTests.get("/pubr/photo.jpg?x-oss-process=" + process))
        let long = try #require(connection.response())
        let body = String(decoding: long.body, as: UTF8.self)
        #expect(long.status == 400 && body.contains("<Code>") && long.headers["content-type"] == "application/xml", "\(long.status) \(body.prefix(300))")
    }
}
