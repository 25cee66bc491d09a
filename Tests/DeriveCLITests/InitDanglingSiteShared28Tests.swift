import Foundation
import Testing
import TestSupport

/// Attack 27w's finding 8: `derive init` beside an `_site` that is a symbolic link to nothing
/// said "_site/index.html was not written: something is there already", exit 0; the build then
/// dumped a Foundation error ("NSCocoaErrorDomain Code=516") and a summary that both rewrote
/// the lock and wrote no lock. init refuses it, naming the link and the fix, and writes nothing.
@Suite(.ownThreads) struct InitDanglingSiteShared28Tests {
    @Test func initRefusesADanglingSiteLink() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("images"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("images/a.jpg"))
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("_site").path, withDestinationPath: "not-yet/public")
        let result = try CLI.run(["init", "images"], in: folder)
        #expect(result.status == 1, "\(text(result.stdout))")
        #expect(result.stderr.contains("_site") && result.stderr.contains("symbolic link") && result.stderr.contains("not-yet/public"), "\(result.stderr)")
        #expect(!result.stderr.contains("NSCocoaErrorDomain") && !text(result.stdout).contains("NSCocoaErrorDomain"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        // Once the folder it leads to is made, init goes ahead, and its build exits 0.
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("not-yet/public"), withIntermediateDirectories: true)
        let again = try CLI.run(["init", "images"], in: folder)
        #expect(again.status == 0, "\(again.stderr)")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(!build.stderr.contains("NSCocoaErrorDomain"))
    }

    /// The build of a manifest whose bucket is such a link names the link, never a Foundation dump.
    @Test func aBucketThatIsADanglingLinkIsNamedWithoutAFoundationDump() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("images"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("images/a.jpg"))
        #expect(try CLI.run(["init", "images"], in: folder).status == 0)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("_site"))
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("_site").path, withDestinationPath: "not-yet/public")
        let build = try CLI.run(["build"], in: folder)
        #expect(!build.stderr.contains("NSCocoaErrorDomain") && !text(build.stdout).contains("NSCocoaErrorDomain"), "\(build.stderr)")
        #expect(build.stderr.contains("_site") && build.stderr.contains("symbolic link"), "\(build.stderr)")
    }
}
