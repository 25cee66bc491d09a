import Access
import DeriveServer
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import derive

/// Attack 42a's H1 and H2 at the request: what validate refuses is checked again when a request
/// reaches another project's file (a manifest that validation would refuse, loaded as is: the
/// defence behind it, as for a hard link or a project put in a bucket after serve started).
@Suite(.ownThreads, .serialized) struct CrossManifestServeRound42Tests {
    /// derive.yaml built into pub (private outputs pub/t/…) in `project` below the root, and
    /// site.yaml in the root whose bucket `upl` is `bucket`, public-read-write, served anonymously.
    static func served(_ bucket: String, project: String = "") throws -> (root: URL, service: ObjectService) {
        let root = try CLI.temporaryFolder()
        let folder = project.isEmpty ? root : root.appendingPathComponent(project)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try CrossManifestBucketRound42Tests.project(in: folder, outputs: "pub")
        try CrossManifestBucketRound42Tests.serveOnly(bucket).write(to: root.appendingPathComponent("site.yaml"))
        let manifest = try #require(ManifestLoader().load(root.appendingPathComponent("site.yaml").path).manifest)
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: [:], region: "cn-hangzhou"), engine: Engine(),
                                        cacheFolder: root.appendingPathComponent("cache").path,
                                        recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest))
        return (root, service)
    }

    @Test func anotherManifestsOutputsAreNeverReplacedOrDeleted() throws {
        let (root, service) = try Self.served("pub")
        defer { try? FileManager.default.removeItem(at: root) }
        let before = try Data(contentsOf: root.appendingPathComponent("pub/t/a1.jpg"))
        let put = ServeRound3Tests.request(service, "PUT", "/upl/t/a1.jpg", body: "overwritten by anyone")
        // Refused by its ACL first since round 46 (answered no more publicly than its builder,
        // which gives it private, gives it: no anonymous writer), else as another manifest's output.
        let refusal = String(decoding: put.body, as: UTF8.self)
        #expect(put.status == 403 && (refusal.contains("is an output of") || refusal.contains("You have no right to write this object")), "\(put.status) \(refusal)")
        let delete = ServeRound3Tests.request(service, "DELETE", "/upl/t/a1.jpg")
        #expect(delete.status == 403, "\(delete.status)")
        #expect(try Data(contentsOf: root.appendingPathComponent("pub/t/a1.jpg")) == before)
        // A key of its own in the same folder is still written.
        #expect(ServeRound3Tests.request(service, "PUT", "/upl/mine.txt", body: "mine").status == 200)
    }

    @Test func anotherProjectsControlFilesAreNoObjects() throws {
        let (root, service) = try Self.served("P", project: "P")
        defer { try? FileManager.default.removeItem(at: root) }
        let lock = try Data(contentsOf: root.appendingPathComponent("P/derive.lock"))
        for key in ["derive.lock", "derive.yaml", ".derive/derive/state.sqlite"] {
            #expect(ServeRound3Tests.request(service, "PUT", "/upl/" + key, body: "x").status == 403, "PUT \(key)")
        }
        // A hard link to derive.yaml's lock under another name: the file, not the name, decides.
        try FileManager.default.linkItem(at: root.appendingPathComponent("P/derive.lock"), to: root.appendingPathComponent("P/copy.txt"))
        #expect(ServeRound3Tests.request(service, "GET", "/upl/copy.txt").status == 404)
        #expect(ServeRound3Tests.request(service, "PUT", "/upl/copy.txt", body: "x").status == 403)
        #expect(try Data(contentsOf: root.appendingPathComponent("P/derive.lock")) == lock)
    }

    /// A project deeper in the bucket than its folder (validate does not walk the bucket): its
    /// lock and state are no objects either; its sources are.
    @Test func aProjectDeeperInTheBucketKeepsItsControlFiles() throws {
        let (root, service) = try Self.served("projects", project: "projects/P")
        defer { try? FileManager.default.removeItem(at: root) }
        for key in ["P/derive.lock", "P/derive.yaml", "P/.derive/derive/state.sqlite"] {
            #expect(ServeRound3Tests.request(service, "GET", "/upl/" + key).status == 404, "GET \(key)")
            #expect(ServeRound3Tests.request(service, "PUT", "/upl/" + key, body: "x").status == 403, "PUT \(key)")
        }
        #expect(ServeRound3Tests.request(service, "GET", "/upl/P/src/a1.jpg").status == 200)
    }
}
