import Foundation
import Testing
import TestSupport

/// Attack 37b on `derive init` (issue #13): it wrote manifests whose first build failed, though
/// README promises init leaves out everything the first build would fail on, and that build exits 0.
@Suite(.ownThreads) struct InitFirstBuildRound37bTests {
    /// A folder with `photos/ok.jpg` beside the manifest's future place.
    static func project() throws -> (folder: URL, photos: URL) {
        let folder = try CLI.temporaryFolder()
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("ok.jpg"))
        return (folder, photos)
    }

    /// F3: a link to a folder inside DIR was neither counted nor excluded; the build failed on it.
    @Test func aLinkToAFolderInsideTheImagesIsExcludedAndNamedAndTheBuildExitsZero() throws {
        let (folder, photos) = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let external = folder.appendingPathComponent("ext")
        try FileManager.default.createDirectory(at: external, withIntermediateDirectories: true)
        let elsewhere = try Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg"))
        try elsewhere.write(to: external.appendingPathComponent("b.jpg"))
        try FileManager.default.createSymbolicLink(atPath: photos.appendingPathComponent("more").path, withDestinationPath: "../ext")

        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(text(result.stdout).contains("for 1 image in photos"), "\(result.stdout)")
        let line = result.stderr.split(separator: "\n").first { $0.contains("photos/more ") }
        #expect(line?.contains("symbolic link to a folder") == true, "\(result.stderr)")
        let manifest = try String(contentsOf: folder.appendingPathComponent("derive.yaml"), encoding: .utf8)
        #expect(manifest.contains("\"images/more/**\""), "\(manifest)")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(try Data(contentsOf: external.appendingPathComponent("b.jpg")) == elsewhere)
    }

    /// F5: a file at the index path the manifest declares (left from an earlier project, or the
    /// user's) made the first build refuse everything: init refuses first, naming it, and writes nothing.
    @Test func aFileAtTheIndexPathIsNamedAndInitWritesNothing() throws {
        let (folder, _) = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let site = folder.appendingPathComponent("_site")
        try FileManager.default.createDirectory(at: site, withIntermediateDirectories: true)
        let mine = Data("{\"mine\": true}\n".utf8)
        try mine.write(to: site.appendingPathComponent("derive-index.json"))

        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status != 0)
        #expect(result.stderr.contains("_site/derive-index.json"), "\(result.stderr)")
        #expect(result.stderr.contains("Move or rename"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        #expect(try Data(contentsOf: site.appendingPathComponent("derive-index.json")) == mine)
    }

    /// F11: without a render worker every build fails: init refuses, says how to fix, writes nothing.
    @Test func withoutARenderWorkerInitRefusesAndWritesNothing() throws {
        let (folder, _) = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLI.run(["init", "photos"], in: folder, environment: ["DERIVE_RENDER_WORKER": folder.appendingPathComponent("no-worker").path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("render worker"), "\(result.stderr)")
        #expect(result.stderr.contains("run derive init again"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("_site").path))
    }

    /// F4: an image in a folder so deep that its outputs' keys are over 1023 bytes was counted,
    /// and the first build failed on it: init leaves it out by the build's own key rule.
    @Test func anImageWhoseOutputKeysWouldBeTooLongIsExcludedAndTheBuildExitsZero() throws {
        let (folder, photos) = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Five folders of 200 bytes: the source key is 1011 bytes, its outputs' over 1023.
        let deep = (1...5).map { String(repeating: Character(String($0)), count: 200) }.joined(separator: "/")
        try FileManager.default.createDirectory(at: photos.appendingPathComponent(deep), withIntermediateDirectories: true)
        // Written, not copied: FileManager's copyItem made nothing at this depth, and said nothing.
        let portrait = try Data(contentsOf: CLI.samples.appendingPathComponent("portrait.jpg"))
        try portrait.write(to: photos.appendingPathComponent(deep + "/a.jpg"))
        #expect(try Data(contentsOf: photos.appendingPathComponent(deep + "/a.jpg")) == portrait)
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(text(result.stdout).contains("for 1 image in photos"), "\(text(result.stdout))")
        let line = result.stderr.split(separator: "\n").first { $0.contains("/a.jpg is not counted") }
        #expect(line?.contains("over the 1023 an object key may hold") == true, "\(result.stderr)")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
    }

    /// F4: a small PNG whose header is sound but whose pixel data is damaged was counted, and the
    /// first build failed decoding it: init decodes small files whole with the first chain.
    @Test func aSmallImageWithDamagedPixelDataIsExcludedAndTheBuildExitsZero() throws {
        let (folder, photos) = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        // A 64×64 header over an empty zlib stream: no rows at all.
        let damaged = InitBuildChecksRound37Tests.pngHeader(width: 64, height: 64)
        try damaged.write(to: photos.appendingPathComponent("damaged.png"))

        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(text(result.stdout).contains("for 1 image in photos"), "\(text(result.stdout))")
        #expect(result.stderr.contains("photos/damaged.png is not counted"), "\(result.stderr)")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(try Data(contentsOf: photos.appendingPathComponent("damaged.png")) == damaged)
    }
}
