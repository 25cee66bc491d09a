import Foundation
import Testing
import TestSupport

/// Attack round 28, finding 2: Foundation expands a leading `~` or `~user` in a file path to a
/// home folder from passwd, so a bucket `path: "~"` listed the home folder's files and the
/// MANIFEST argument `~/derive.yaml` was looked for in the home folder. Derive's paths are
/// relative to their manifest or the working folder: `~` is a folder named so, there.
@Suite(.ownThreads) struct TildePathRound28Tests {
    static func project() throws -> URL {
        let folder = try CLI.temporaryFolder()
        let tilde = folder.appendingPathComponent("~")
        try FileManager.default.createDirectory(at: tilde, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: tilde.appendingPathComponent("a.jpg"))
        let manifest = "version: 1\nbuckets:\n  photos: {path: \"~\"}\n  site: {path: site}\n"
            + "derivatives:\n  - name: r\n    from: photos/*.jpg\n    process: image/resize,w_60\n    to: site/{name}.{ext}\n"
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    @Test func aBucketNamedTildeIsTheFolderOfThatNameBesideTheManifest() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plan = try CLI.run(["plan"], in: folder)
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(text(plan.stdout).contains("site/a.jpg"), "\(text(plan.stdout))")
        let build = try CLI.run(["build", "-q"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let made = folder.appendingPathComponent("site/a.jpg").path
        #expect(FileManager.default.fileExists(atPath: made))
    }

    @Test func aManifestArgumentStartingWithTildeIsReadWhereItIsNamed() throws {
        let folder = try Self.project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let moved = folder.appendingPathComponent("~/derive.yaml")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("~/img"), withIntermediateDirectories: true)
        let manifest = "version: 1\nbuckets:\n  photos: {path: img}\n  site: {path: site}\n"
            + "derivatives:\n  - name: r\n    from: photos/*.jpg\n    process: image/resize,w_60\n    to: site/{name}.{ext}\n"
        try Data(manifest.utf8).write(to: moved)
        let result = try CLI.run(["validate", "~/derive.yaml"], in: folder)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("no such file"), "\(result.stderr)")
    }
}
