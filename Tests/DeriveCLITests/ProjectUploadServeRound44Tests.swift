import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 44's finding 3 as reported, against a running `derive serve`: one anonymous PUT of a
/// three-line manifest at the root of a public-read-write bucket was answered 200, and within two
/// seconds every request to every bucket was 503 and the site's own `derive validate` failed
/// ("bucket 'upl' (pub) holds the manifest pub/foo.yaml … another project"). The PUT is refused
/// now, and serve and validate go on. One serve for the suite.
@Suite(.ownThreads, .serialized) struct ProjectUploadServeRound44Tests {
    static func send(_ serve: ServeSession, _ method: String, _ target: String, body: String = "") throws -> (status: Int, text: String) {
        let connection = try ServeConnectionTests.Connection(port: serve.port)
        connection.send("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let answer = try #require(connection.response())
        return (answer.status, String(decoding: answer.body, as: UTF8.self))
    }

    @Test func anAnonymousManifestUploadNeitherStopsServeNorTheSite() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try CrossManifestBucketRound42Tests.project(in: root, lines: "")
        let manifest = root.appendingPathComponent("derive.yaml")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        try text.replacingOccurrences(of: "  out: {path: out}\n", with: "  out: {path: out}\n  upl: {path: pub, acl: public-read-write}\n")
            .write(to: manifest, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        let before = try CLI.run(["validate"], in: root)
        #expect(before.status == 0, "\(before.stderr)")
        let serve = try ServeSession(in: root)
        defer { serve.stop() }
        let upload = try Self.send(serve, "PUT", "/upl/foo.yaml", body: "version: 1\nbuckets: {}\nderivatives: []\n")
        #expect(upload.status == 403 && upload.text.contains("AccessDenied") && upload.text.contains("another project"), "\(upload.status) \(upload.text)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("pub/foo.yaml").path))
        // Serve looks for new projects at most every second: past that, it still answers.
        usleep(2_500_000)
        #expect(try Self.send(serve, "PUT", "/upl/notes.txt", body: "hello").status == 200)
        #expect(try Self.send(serve, "GET", "/upl/notes.txt").status == 200)
        let after = try CLI.run(["validate"], in: root)
        #expect(after.status == 0, "\(after.stderr)")
    }
}
