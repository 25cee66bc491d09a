import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Issue #13 (attack 13's findings 5 and 6) on `derive init`: an `_site` that is a link into the
/// images' folder is refused as the reverse is, judged by real paths; and the count init prints
/// (and the manifest it writes) match what the first build builds: a mixed-case extension is
/// covered by the glob, and files the build would fail on are not counted, excluded, and named.
@Suite(.ownThreads) struct InitScanRound26Tests {
    func folderWithPhotos() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("images/web"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("images/a.jpg"))
        return folder
    }

    /// `_site` → images/web (made, or not yet made): the page and outputs would land in the sources.
    @Test(arguments: [true, false])
    func anOutputFolderLinkedIntoTheImagesIsRefused(_ targetExists: Bool) throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = targetExists ? "images/web" : "images/web/new"
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("_site").path, withDestinationPath: target)
        let result = try CLI.run(["init", "images"], in: folder)
        #expect(result.status == 1, "\(text(result.stdout))")
        #expect(result.stderr.contains("_site") && result.stderr.contains("images"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("images/web").path).isEmpty)
    }

    /// Every file init counts is built by the first build, which exits 0; the others are named.
    @Test func theCountIsWhatTheFirstBuildBuilds() throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("images")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: images.appendingPathComponent("Photo.Jpg"))
        try Data("not an image\n".utf8).write(to: images.appendingPathComponent("text.jpg"))
        #expect(mkfifo(images.appendingPathComponent("pipe.jpg").path, 0o644) == 0)
        try FileManager.default.createSymbolicLink(atPath: images.appendingPathComponent("link.jpg").path, withDestinationPath: "a.jpg")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-1.jpg"), to: images.appendingPathComponent("tab\there.jpg"))
        let result = try CLI.run(["init", "images"], in: folder)
        let said = text(result.stdout)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(said.contains("for 2 images in images"), "\(said)")
        // The tab shown as every terminal line shows controls (attack 40b L2: one escaping).
        for name in ["text.jpg", "pipe.jpg", "link.jpg", "tab\\u{9}here.jpg"] {
            #expect(result.stderr.contains(name), "\(name) not named: \(result.stderr)")
        }
        #expect(try CLI.run(["validate"], in: folder).status == 0)
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let site = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("_site").path)
        // Two thumbnails per counted image (thumb and large), nothing of the others.
        #expect(site.filter { $0.contains(".thumb.") }.count == 2, "\(site.sorted())")
        #expect(site.contains { $0.hasPrefix("Photo.thumb.") }, "\(site.sorted())")
    }
}
