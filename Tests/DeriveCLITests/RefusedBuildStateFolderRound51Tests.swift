import Foundation
import Testing
import TestSupport

/// Issue #9, attack 50c's L3: `derive build site.yaml` for `derive.yaml` renamed (refused: its
/// output is the gone manifest's) still made `.derive/site` (build.lock, clock-stamp, a 128 KiB
/// state.sqlite), which nothing ever removed once the advice was followed. A refused build leaves
/// no state folder it made.
@Suite(.ownThreads) struct RefusedBuildStateFolderRound51Tests {
    static let manifest = "version: 1\nbuckets:\n  src: {path: a}\n  out: {path: out}\nderivatives:\n  - name: t\n    from: src/*.jpg\n    process: image/resize,w_16\n    to: out/t/{name}.jpg\n"

    @Test func aRefusedBuildOfARenamedManifestLeavesNoStateFolder() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try copySample("landscape.jpg", to: folder.appendingPathComponent("a/a.jpg"))
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        try FileManager.default.moveItem(at: folder.appendingPathComponent("derive.yaml"), to: folder.appendingPathComponent("site.yaml"))
        let refused = try CLI.run(["build", "site.yaml"], in: folder)
        #expect(refused.status == 1, "\(said(refused))")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent(".derive/site").path), "\(said(refused))")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(".derive/derive/state.sqlite").path))
    }
}
