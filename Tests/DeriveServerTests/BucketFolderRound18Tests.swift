import Access
import Confinement
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 18's R1: while a public bucket's path link was flipped between its folder and a folder
/// inside a private bucket, a few anonymous requests got the private file (the identity serve
/// took for checked was one the loader had not seen: a flip away and back during the load).
/// Whatever the timing of the manifest's checks, the folder a request is answered from is
/// checked itself when it is opened: one that is another bucket's folder, lies inside one, or
/// holds one is never served (503).
@Suite(.ownThreads) struct BucketFolderRound18Tests {
    @Test func aBucketFolderThatSharesFilesWithAnotherBucketIsNeverServed() throws {
        let root = (try ScratchFolder.make("derive-r1"))
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("priv/sub"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("v1"), withIntermediateDirectories: true)
        try Data("TOPSECRET".utf8).write(to: root.appendingPathComponent("priv/sub/secret.txt"))
        try Data("TOPSECRET".utf8).write(to: root.appendingPathComponent("priv/secret.txt"))
        try Data("<h1>V1</h1>".utf8).write(to: root.appendingPathComponent("v1/index.html"))
        let link = root.appendingPathComponent("site").path
        func point(_ target: String) throws {
            let fresh = link + ".new"
            try? fm.removeItem(atPath: fresh)
            try fm.createSymbolicLink(atPath: fresh, withDestinationPath: target)
            #expect(rename(fresh, link) == 0)
        }
        try point("v1")
        try Data("""
            version: 1
            buckets:
              priv: {path: priv, acl: private}
              site: {path: site, acl: public-read}

            """.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let result = ManifestLoader().load(root.appendingPathComponent("derive.yaml").path)
        let manifest = try #require(result.manifest, "\(result.diagnostics.sorted)")
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: [:], region: "local"), engine: Engine(),
                                        cacheFolder: root.appendingPathComponent(".derive/cache").path)
        func get(_ target: String) -> ServiceResponse {
            service.handle(ServiceRequest(method: "GET", target: target, headers: ["host": "127.0.0.1:9000"]))
        }
        #expect(get("/site/index.html").status == 200)
        for (target, key) in [("priv/sub", "/site/secret.txt"), ("priv", "/site/secret.txt"), (".", "/site/priv/secret.txt")] {
            try point(target)
            let answer = get(key)
            #expect(answer.status != 200 && !answer.text.contains("TOPSECRET"), "site -> \(target): \(answer.status) \(answer.text)")
        }
        try point("v1")
        let back = get("/site/index.html")
        #expect(back.status == 200 && back.text.contains("V1"), "\(back.status) \(back.text)")
    }

    /// With a followed manifest (`derive serve`) the other buckets' folders are the ones its walks
    /// found at the start of the request (attack 18's P1: not resolved again at each open): a
    /// folder opened for `site` that is inside `priv`, is `priv`, or holds it is still refused.
    @Test func aFollowedManifestChecksTheOpenedFolderAgainstTheWalkedFolders() throws {
        let root = (try ScratchFolder.make("derive-r1f"))
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("priv/sub"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("v1"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("site").path, withDestinationPath: "v1")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("p1").path, withDestinationPath: "priv")
        let manifestPath = root.appendingPathComponent("derive.yaml").path
        try Data("""
            version: 1
            buckets:
              priv: {path: p1, acl: private}
              site: {path: site, acl: public-read}

            """.utf8).write(to: URL(fileURLWithPath: manifestPath))
        @Sendable func configuration() throws -> ServedConfiguration {
            let result = ManifestLoader().load(manifestPath)
            guard let manifest = result.manifest, !result.diagnostics.hasErrors else {
                throw ServedManifest.Unavailable("\(result.diagnostics.sorted)")
            }
            return ServedConfiguration(manifest: manifest, verifier: Verifier(keys: [:], region: "local"), recorded: NoRecordedOutputs())
        }
        let initial = try configuration()
        let served = ServedManifest(initial: initial, rootPath: manifestPath, cacheFolder: root.appendingPathComponent(".derive/cache").path) {
            try configuration()
        }
        let service = try ObjectService(manifest: initial.manifest, verifier: Verifier(keys: [:], region: "local"), engine: Engine(),
                                        cacheFolder: root.appendingPathComponent(".derive/cache").path, followed: served)
        let site = try #require(initial.manifest.bucket(named: "site"))
        for (folder, shares) in [("v1", false), ("priv/sub", true), ("priv", true), (".", true)] {
            let opened = try ConfinedFolder(path: root.appendingPathComponent(folder).path)
            #expect(service.sharesFiles(site, opened) == shares, "site opened at \(folder)")
        }
    }
}
