import Foundation
import Testing
import TestSupport
@testable import DeriveServer

/// Issue #9, attack 42d's N1 and N2: a bucket holding a built project deeper than its own folder
/// (`projects/P`, `a/b/c/P`): anonymous writers to a public-read-write bucket (signed writers to
/// a private one alike: the refusal is whoever asks) replaced, appended to and deleted that
/// project's outputs, which its lock names but which no manifest beside the bucket declares.
/// Every file in a folder holding another manifest is that project's: serve never writes there.
@Suite(.ownThreads, .serialized) struct NestedProjectServeRound43Tests {
    static func request(_ service: ObjectService, _ method: String, _ target: String, body: String = "", headers: [String: String] = [:]) -> ServiceResponse {
        service.handle(ServiceRequest(method: method, target: target, headers: ["host": "127.0.0.1:9000"].merging(headers) { $1 }, body: Data(body.utf8)))
    }

    @Test(arguments: ["projects/P", "projects/a/b/c/P"])
    func aProjectDeepInABucketIsNeverWrittenBySomeoneElse(project: String) throws {
        let (root, service) = try CrossManifestServeRound42Tests.served("projects", project: project)
        defer { try? FileManager.default.removeItem(at: root) }
        let inner = String(project.dropFirst("projects/".count))
        let output = root.appendingPathComponent(project + "/pub/t/a1.jpg")
        let before = try Data(contentsOf: output)
        let key = "/upl/\(inner)/pub/t/a1.jpg"
        for (method, target, headers) in [("PUT", key, [:]), ("DELETE", key, [:]), ("POST", key + "?append&position=0", [:]),
                                          ("PUT", key, ["x-oss-copy-source": "/upl/mine.txt"]),
                                          ("PUT", "/upl/\(inner)/pub/t/new.jpg", [:]), ("PUT", "/upl/\(inner)/src/a1.jpg", [:]),
                                          ("DELETE", "/upl/\(inner)/src/a2.jpg", [:])] as [(String, String, [String: String])] {
            if headers["x-oss-copy-source"] != nil { #expect(Self.request(service, "PUT", "/upl/mine.txt", body: "mine").status == 200) }
            let answer = Self.request(service, method, target, body: "written by anyone", headers: headers)
            // The project's recorded output is private to anonymous callers too (round 45): the
            // write ACL refuses it first.
            let said = String(decoding: answer.body, as: UTF8.self)
            #expect(answer.status == 403 && (said.contains("the folder of another project") || (target.hasPrefix(key) && said.contains("its ACL is not public-read-write"))),
                    "\(method) \(target) \(headers): \(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
        }
        #expect(try Data(contentsOf: output) == before)
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent(project + "/pub/t/new.jpg").path))
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(project + "/src/a2.jpg").path))
        // Outside that project's folder, the bucket takes writes as before.
        #expect(Self.request(service, "PUT", "/upl/other/x.txt", body: "x").status == 200)
        #expect(Self.request(service, "DELETE", "/upl/other/x.txt").status == 204)
    }
}
