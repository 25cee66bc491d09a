import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 43b's finding 1: a project deep in a public-read-write bucket whose manifest had a YAML
/// syntax error, or was empty, when serve first looked lost every protection: anyone replaced its
/// manifest, lock, sources and outputs and deleted its state database, and GET answered its lock
/// and state. A folder holding a manifest that does not parse, or Derive's state folder, is a
/// project's as one holding a manifest that loads is; its lock and state are no objects.
@Suite(.ownThreads, .serialized) struct NestedBrokenProjectServeRound43Tests {
    @Test(arguments: ["oops: [x\n", ""])
    func aNestedProjectWhoseManifestDoesNotLoadKeepsEveryFile(_ broken: String) throws {
        let (root, service) = try CrossManifestServeRound42Tests.served("projects", project: "projects/deep/P")
        defer { try? FileManager.default.removeItem(at: root) }
        let manifest = root.appendingPathComponent("projects/deep/P/derive.yaml")
        if broken.isEmpty {
            try Data().write(to: manifest)
        } else {
            let handle = try FileHandle(forWritingTo: manifest)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(broken.utf8))
            try handle.close()
        }
        let lock = try Data(contentsOf: root.appendingPathComponent("projects/deep/P/derive.lock"))
        let output = try Data(contentsOf: root.appendingPathComponent("projects/deep/P/pub/t/a1.jpg"))
        for key in ["deep/P/pub/t/a1.jpg", "deep/P/derive.lock", "deep/P/derive.yaml", "deep/P/src/a1.jpg", "deep/P/.derive/derive/state.sqlite"] {
            let put = NestedProjectServeRound43Tests.request(service, "PUT", "/upl/" + key, body: "x")
            #expect(put.status == 403, "PUT \(key): \(put.status) \(String(decoding: put.body, as: UTF8.self))")
            #expect(NestedProjectServeRound43Tests.request(service, "DELETE", "/upl/" + key).status == 403, "DELETE \(key)")
        }
        for key in ["deep/P/derive.lock", "deep/P/.derive/derive/state.sqlite"] {
            #expect(NestedProjectServeRound43Tests.request(service, "GET", "/upl/" + key).status == 404, "GET \(key)")
        }
        #expect(try Data(contentsOf: root.appendingPathComponent("projects/deep/P/derive.lock")) == lock)
        #expect(try Data(contentsOf: root.appendingPathComponent("projects/deep/P/pub/t/a1.jpg")) == output)
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("projects/deep/P/.derive/derive/state.sqlite").path))
        // Elsewhere in the bucket, writes go on.
        #expect(NestedProjectServeRound43Tests.request(service, "PUT", "/upl/other/x.txt", body: "x").status == 200)
    }
}
