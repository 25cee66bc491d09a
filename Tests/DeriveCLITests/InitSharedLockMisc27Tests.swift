import Foundation
import Testing
import TestSupport

/// Attack 13b's finding 6: `derive init` beside a manifest of another name (`site.yaml`) that
/// names `lock: derive.lock` (or `state: .derive/derive`) wrote `derive.yaml`, exit 0; then the
/// validator refused both projects (two manifests may not share a lock). init refuses whenever
/// the manifest it would write shares its lock or state with one already here, naming it, and
/// writes nothing.
@Suite(.ownThreads) struct InitSharedLockMisc27Tests {
    static let sharing: [(setting: String, shared: String)] = [
        ("lock: derive.lock\n", "derive.lock"),
        ("lock: ./derive.lock\n", "derive.lock"),
        ("state: .derive/derive\n", ".derive/derive"),
    ]

    static func project(_ setting: String) throws -> URL {
        let folder = try CLI.temporaryFolder()
        for sub in ["images", "other"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("images/a.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: folder.appendingPathComponent("other/b.jpg"))
        let site = "version: 1\n" + setting + "buckets:\n  other: {path: other}\n  pub: {path: pub, acl: public-read}\n"
            + "derivatives:\n  - name: r\n    from: other/*.jpg\n    process: image/resize,w_100\n    to: pub/{name}.{ext}\n    acl: public-read\n"
        try Data(site.utf8).write(to: folder.appendingPathComponent("site.yaml"))
        return folder
    }

    @Test(arguments: 0..<sharing.count)
    func initBesideAManifestUsingItsLockOrStateRefusesNamingIt(_ index: Int) throws {
        let (setting, shared) = Self.sharing[index]
        let folder = try Self.project(setting)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["build", "site.yaml", "-q"], in: folder).status == 0)
        let result = try CLI.run(["init", "images"], in: folder)
        #expect(result.status == 1, "\(text(result.stdout))")
        #expect(result.stderr.contains("site.yaml") && result.stderr.contains(shared), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("_site").path))
        // The project that worked still does.
        #expect(try CLI.run(["build", "site.yaml"], in: folder).status == 0)
    }

    /// A neighbour with its own lock and state is no obstacle.
    @Test func aNeighbourWithItsOwnControlFilesIsNoObstacle() throws {
        let folder = try Self.project("lock: site.lock\n")
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["init", "images"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try CLI.run(["validate"], in: folder).status == 0)
        #expect(try CLI.run(["validate", "site.yaml"], in: folder).status == 0)
    }
}
