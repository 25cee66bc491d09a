import Foundation
import Testing
import TestSupport

/// Attack round 28, finding 3: an output bucket whose path is a user's regular file (`_site`)
/// passed validate and plan ("to create"); the build then failed every output with a raw
/// Foundation error. A bucket a rule writes into must be a folder, or not exist yet (the build
/// makes it), as a bucket a rule reads must be a folder: validate says so at the rule, plan and
/// build refuse, and the user's file is left byte for byte.
@Suite(.ownThreads) struct OutputBucketFileRound28Tests {
    @Test func anOutputBucketThatIsAFileIsRefusedBeforeAnythingIsWritten() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        let user = Data("the user's own notes\n".utf8)
        try user.write(to: folder.appendingPathComponent("_site"))
        let manifest = "version: 1\nbuckets:\n  photos: {path: photos}\n  site: {path: _site}\n"
            + "derivatives:\n  - name: r\n    from: photos/*.jpg\n    process: image/resize,w_60\n    to: site/{name}.{ext}\n"
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let validate = try CLI.run(["validate"], in: folder)
        #expect(validate.status == 1, "\(validate.stderr)")
        #expect(validate.stderr.contains("derive.yaml:6:") && validate.stderr.contains("bucket 'site', whose folder _site is not a folder"), "\(validate.stderr)")
        let plan = try CLI.run(["plan"], in: folder)
        #expect(plan.status != 0, "\(text(plan.stdout))")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status != 0)
        #expect(!build.stderr.contains("NSCocoaErrorDomain"), "\(build.stderr)")
        #expect(try Data(contentsOf: folder.appendingPathComponent("_site")) == user)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.lock").path))
    }

    /// A bucket folder not made yet is no error: the build makes it.
    @Test func anOutputBucketNotMadeYetIsFine() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        let manifest = "version: 1\nbuckets:\n  photos: {path: photos}\n  site: {path: _site/deep}\n"
            + "derivatives:\n  - name: r\n    from: photos/*.jpg\n    process: image/resize,w_60\n    to: site/{name}.{ext}\n"
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        #expect(try CLI.run(["validate"], in: folder).status == 0)
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("_site/deep/a.jpg").path))
    }
}
