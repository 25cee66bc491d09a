import Foundation
import Testing
import TestSupport

/// Attack round 25 on `derive init` (static findings 3 and 8).
@Suite(.ownThreads) struct InitRound25Tests {
    func folderWithPhotos() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        return folder
    }

    /// Finding 3: init beside a `derive.yml` (or `derive.json`) wrote `derive.yaml` anyway; the two
    /// shared derive.lock and .derive/derive, so the user's working manifest stopped validating.
    @Test(arguments: ["derive.yml", "derive.json"])
    func initBesideAManifestOfTheSameStemRefuses(_ name: String) throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = name.hasSuffix(".json")
            ? #"{"version": 1, "buckets": {"photos": {"path": "photos"}}}"#
            : "version: 1\nbuckets:\n  photos: {path: photos}\n"
        try Data(manifest.utf8).write(to: folder.appendingPathComponent(name))
        #expect(try CLI.run(["validate", name], in: folder).status == 0)
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 1, "\(text(result.stdout))")
        #expect(result.stderr.contains(name) && result.stderr.contains("derive.lock"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        // The user's manifest still validates.
        #expect(try CLI.run(["validate", name], in: folder).status == 0)
    }

    /// A `derive.json` that is no manifest (yet): init cannot tell another tool's file from a
    /// manifest being written (`{}` is both), and a finished one would make both manifests
    /// invalid, so it refuses, naming the file and the way on (issue #13, `InitSiblingRound26Tests`).
    @Test func aDeriveJSONThatIsNoManifestYetIsNamed() throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(#"{"name": "derive", "private": true}"#.utf8).write(to: folder.appendingPathComponent("derive.json"))
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 1, "\(text(result.stdout))")
        #expect(result.stderr.contains("derive.json") && result.stderr.contains("move or rename it"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
    }

    /// Finding 8: init wrote its files in place, so a kill between create and write left an empty
    /// derive.yaml that blocked every re-run. Now the files appear whole (link of a written
    /// temporary file), and no temporary file is left behind.
    @Test func initLeavesOnlyWholeFiles() throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == [".gitattributes", ".gitignore", "_site", "derive.yaml", "photos"], "\(names)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("_site").path) == ["index.html"])
        #expect((try Data(contentsOf: folder.appendingPathComponent("derive.yaml"))).count > 100)
        #expect((try Data(contentsOf: folder.appendingPathComponent("_site/index.html"))).count > 100)
        // A second init refuses without touching anything.
        let again = try CLI.run(["init", "photos"], in: folder)
        #expect(again.status == 1 && again.stderr.contains("already exists"), "\(again.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == names)
    }
}
