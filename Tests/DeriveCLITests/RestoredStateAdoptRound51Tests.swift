import Foundation
import Testing
import TestSupport

/// Issue #9, attack 50c's M4: after an older `.derive` was restored, a plain build rendered each
/// output the lock lists again, found the file holding exactly those bytes, and still wrote it
/// again (a new inode and time, "built 1"), though README says it "adopts the file when the bytes
/// are the same (recorded, not written again)". It is adopted now: the file stays as it is.
@Suite(.ownThreads) struct RestoredStateAdoptRound51Tests {
    static let manifest = "version: 1\nbuckets:\n  src: {path: a}\n  out: {path: out}\nderivatives:\n  - name: t\n    from: src/*.jpg\n    process: image/resize,w_16\n    to: out/{name}.jpg\n"

    @Test func aBuildAfterAnOlderStateRestoredAdoptsTheRightBytesInsteadOfWritingThemAgain() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = folder.appendingPathComponent("derive.yaml")
        try Data(Self.manifest.utf8).write(to: manifest)
        try copySample("landscape.jpg", to: folder.appendingPathComponent("a/a.jpg"))
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let state = folder.appendingPathComponent(".derive/derive/state.sqlite")
        let backup = try Data(contentsOf: state)
        try Data(Self.manifest.replacingOccurrences(of: "w_16", with: "w_12").utf8).write(to: manifest)
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        try backup.write(to: state)   // the older state restored
        let output = folder.appendingPathComponent("out/a.jpg")
        let before = try FileManager.default.attributesOfItem(atPath: output.path)
        let bytes = try Data(contentsOf: output)

        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(said(build))")
        #expect(!said(build).contains("built 1"), "\(said(build))")
        let after = try FileManager.default.attributesOfItem(atPath: output.path)
        #expect(after[.systemFileNumber] as? Int == before[.systemFileNumber] as? Int, "the file was written again: \(said(build))")
        #expect(after[.modificationDate] as? Date == before[.modificationDate] as? Date)
        #expect(try Data(contentsOf: output) == bytes)
        let check = try CLI.run(["check"], in: folder)
        #expect(check.status == 0 && !said(check).contains("unverified"), "\(said(check))")
        let plan = try CLI.run(["plan", "--detailed-exitcode"], in: folder)
        #expect(plan.status == 0, "\(said(plan))")
    }
}
