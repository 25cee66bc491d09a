import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
@testable import Builder

/// Attack 42a's L2: two names of one manifest file (`ln derive.yaml site.yaml`) built at once:
/// the loser named its own manifest as the one being built and said the holder's state folder
/// "was deleted or replaced", which it was not. The holder is named by its own command line.
@Suite(.ownThreads) struct ManifestLockHolderRound45Tests {
    @Test func aBuildRefusedByAHardLinkedManifestsBuildNamesWhatTheHolderRuns() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
        let manifest = "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - from: src/*.jpg\n    process: image/resize,w_20\n    to: out/{name}.jpg\n"
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        #expect(link(folder.appendingPathComponent("derive.yaml").path, folder.appendingPathComponent("site.yaml").path) == 0)
        // A line a killed build of derive.yaml left in its state names a process long gone.
        try FileManager.default.createDirectory(at: folder.appendingPathComponent(".derive/derive"), withIntermediateDirectories: true)
        try Data("pid 999999999 on vm, since 2026-01-01T00:00:00Z\n".utf8).write(to: folder.appendingPathComponent(".derive/derive/build.lock"))
        // This test process stands for `derive build site.yaml`: it holds the file's lock.
        let held = try PathLock.manifest(folder.appendingPathComponent("site.yaml").path,
                                         lockFile: folder.appendingPathComponent(".derive/site/build.lock").path)
        let refused = try CLI.run(["build"], in: folder)
        withExtendedLifetime(held) {}
        #expect(refused.status == 75, "\(said(refused))")
        #expect(refused.stderr.contains("pid \(getpid()) ("), "\(refused.stderr)")
        #expect(refused.stderr.contains("it builds this file under that name (a hard link or another path to it)"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("building derive.yaml") && !refused.stderr.contains("999999999"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/a.jpg").path))
    }
}
