import Foundation
import Testing
import TestSupport

/// Attack 42d's N8: a project in a sub-folder of this manifest's folder (`gallery/derive.yaml`
/// writing `../www/gallery`) was not found by the other-project checks: this manifest's rule onto
/// the gallery's recorded outputs was told "exists and was not written by Derive", and `--verify`
/// would have taken them. They are the gallery's outputs, named with their owner.
@Suite(.ownThreads) struct NestedOutsideBucketRound44Tests {
    @Test func theOutputsOfAProjectBelowThisOneAreNamedAsItsOwn() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let gallery = root.appendingPathComponent("gallery")
        for folder in ["src", "gallery/src"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/g1.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: gallery.appendingPathComponent("src/g1.jpg"))
        func manifest(_ out: String, _ to: String) -> String {
            "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: \(out)}\nderivatives:\n  - name: t\n    from: src/*.jpg\n    process: image/resize,w_16\n    to: \(to)\n"
        }
        try manifest("../www/gallery", "out/{name}.jpg").write(to: gallery.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        let built = try CLI.run(["build", "-q"], in: gallery)
        #expect(built.status == 0, "\(built.stderr)")
        let bytes = try Data(contentsOf: root.appendingPathComponent("www/gallery/g1.jpg"))
        try manifest("www", "out/gallery/{name}.jpg").write(to: root.appendingPathComponent("derive.yaml"), atomically: true, encoding: .utf8)
        for flags in [[], ["--verify"]] {
            let build = try CLI.run(["build"] + flags, in: root)
            #expect(build.status == 1, "\(flags): \(build.stderr)")
            #expect(build.stderr.contains("is an output of") && build.stderr.contains("gallery/derive.yaml"), "\(flags): \(build.stderr)")
            #expect(!build.stderr.contains("was not written by Derive"), "\(flags): \(build.stderr)")
        }
        #expect(try Data(contentsOf: root.appendingPathComponent("www/gallery/g1.jpg")) == bytes)
    }
}
