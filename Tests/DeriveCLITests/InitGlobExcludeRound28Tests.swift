import Foundation
import Testing
import TestSupport

/// Attack round 28, finding 4: `derive init` wrote a `?` for each glob character of a non-image's
/// name, and when that pattern would also take a real image (`x?.jpg` takes `xa.jpg`) it wrote no
/// `exclude:` at all, so the first build failed on the file. The glob language's classes write a
/// glob character exactly (`x[*].jpg`, `bad[[]1].jpg`): the file is excluded alone, the count init
/// prints is what the first build builds, and that build exits 0.
@Suite(.ownThreads) struct InitGlobExcludeRound28Tests {
    @Test func aNonImageWithGlobCharactersIsExcludedAloneAndTheBuildExitsZero() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-1.jpg"), to: photos.appendingPathComponent("xa.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-2.jpg"), to: photos.appendingPathComponent("bada1b.jpg"))
        // Each non-image's `?` pattern (`x?.jpg`, `bad?1?.jpg`, `q??.jpg`) takes a real image.
        let strange = ["x*.jpg", "bad[1].jpg", "q?].jpg"]
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-3.jpg"), to: photos.appendingPathComponent("qab.jpg"))
        for name in strange { try Data("not an image\n".utf8).write(to: photos.appendingPathComponent(name)) }
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(text(result.stdout).contains("for 3 images in photos"), "\(text(result.stdout))")
        #expect(!result.stderr.contains("will fail"), "\(result.stderr)")
        let manifest = try String(contentsOf: folder.appendingPathComponent("derive.yaml"), encoding: .utf8)
        for pattern in ["images/x[*].jpg", "images/bad[[]1].jpg", "images/q[?]].jpg"] {
            #expect(manifest.components(separatedBy: "\"\(pattern)\"").count == 3, "\(pattern) not in both rules: \(manifest)")
        }
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let site = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("_site").path)
        for stem in ["xa", "bada1b", "qab"] {
            #expect(site.contains { $0.hasPrefix(stem + ".thumb.") }, "\(stem) not built: \(site.sorted())")
        }
        #expect(site.filter { $0.contains(".thumb.") }.count == 3, "\(site.sorted())")
        for name in strange {
            #expect(try Data(contentsOf: photos.appendingPathComponent(name)) == Data("not an image\n".utf8), "\(name) touched")
        }
    }

    /// A `{` cannot be written exactly (braces expand before classes are read): when its `?` would
    /// take a real image too, the warning says so and how to fix it, not that no pattern exists.
    @Test func aBraceThatCannotBeWrittenExactlyIsNamedWithTheFix() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-1.jpg"), to: photos.appendingPathComponent("ya.jpg"))
        try Data("not an image\n".utf8).write(to: photos.appendingPathComponent("y{.jpg"))
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("photos/y{.jpg is not counted, and the first build will fail on it"), "\(result.stderr)")
        #expect(result.stderr.contains("'{'") && result.stderr.contains("rename it or move it out of photos"), "\(result.stderr)")
        #expect(!result.stderr.contains("no 'exclude:' pattern takes it alone"), "\(result.stderr)")
    }
}
