import Foundation
import Testing
import TestSupport

/// Attack 39b's M2: in an init project, a `landscape.png` added beside `landscape.jpg` (both
/// named by {name}) gave one "would be written twice" error per output (eleven lines) and
/// "nothing was built": an unrelated new photo was not built either. README: build errors are
/// grouped by source, and a bad input fails its own outputs and refuses nothing else.
@Suite(.ownThreads) struct SourceCollisionRound39Tests {
    @Test func twoSourcesOfOneNameFailTheirOwnOutputsOnlyOneLineEach() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        for name in ["landscape.jpg", "portrait.jpg"] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: photos.appendingPathComponent(name))
        }
        let made = try CLI.run(["init", "photos"], in: folder)
        #expect(made.status == 0, "\(made.stderr)")
        let first = try CLI.run(["build", "-q"], in: folder)
        #expect(first.status == 0, "\(first.stderr)")
        let png = try CLI.run(["process", "photos/landscape.jpg", "image/format,png", "-o", "photos/landscape.png"], in: folder)
        #expect(png.status == 0, "\(png.stderr)")
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-3.jpg"), to: photos.appendingPathComponent("new.jpg"))

        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 1, "\(build.stderr)")
        #expect(!build.stderr.contains("nothing was built"), "\(build.stderr)")
        #expect(!build.stderr.contains("would be written twice"), "\(build.stderr)")
        let lines = build.stderr.split(separator: "\n").filter { $0.contains("would be written over those of") }
        #expect(lines.count == 2, "\(build.stderr)")
        #expect(lines.contains { $0.contains("images/landscape.png: ") && $0.contains("those of images/landscape.jpg") && $0.contains("{key}") && $0.contains("exclude") },
                "\(build.stderr)")
        #expect(lines.contains { $0.contains("images/landscape.jpg: ") && $0.contains("those of images/landscape.png") }, "\(build.stderr)")
        #expect(lines.allSatisfy { $0.contains("derivatives not built") }, "\(build.stderr)")
        // The unrelated new photo is built.
        let site = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("_site").path)
        #expect(site.contains { $0.hasPrefix("new.thumb.") } && site.contains { $0.hasPrefix("new-300.") }, "\(site.sorted())")
        // Without one of the two the build is whole again.
        try FileManager.default.removeItem(at: photos.appendingPathComponent("landscape.png"))
        let again = try CLI.run(["build"], in: folder)
        #expect(again.status == 0, "\(again.stderr)")
    }

    /// The same flood for an output folder replaced by a symbolic link: one line for the link.
    @Test func outputsBelowALinkAreOneLineForTheLink() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("landscape.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: photos.appendingPathComponent("sub/portrait.jpg"))
        #expect(try CLI.run(["init", "photos"], in: folder).status == 0)
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let sub = folder.appendingPathComponent("_site/sub"), elsewhere = folder.appendingPathComponent("elsewhere")
        try FileManager.default.moveItem(at: sub, to: elsewhere)
        try FileManager.default.createSymbolicLink(atPath: sub.path, withDestinationPath: "../elsewhere")

        let build = try CLI.run(["build"], in: folder)
        #expect(build.status != 0)
        #expect(!build.stderr.contains("leads through"), "\(build.stderr)")
        let lines = build.stderr.split(separator: "\n").filter { $0.contains("symbolic link") }
        #expect(lines.count == 1, "\(build.stderr)")
        #expect(lines.first?.contains("_site/sub is a symbolic link") == true, "\(build.stderr)")
        #expect(lines.first?.contains("more) can be written") == true, "\(build.stderr)")
    }
}
