import Foundation
import Testing
import TestSupport
import Imaging

/// Attack 59a's F1: the same user under a second state home (`sudo -E`, a CI runner without its
/// cache) restyles a rule. The refusal of the old output (its lock line names the old recipe) was
/// followed by the advice to run `derive build --verify`, which renders the new recipe, finds
/// other bytes and called the file "not Derive's output": advice that cannot help.
@Suite(.ownThreads) struct VerifyHintRound59Tests {
    @Test func aRestyleUnderAnotherStateHomeIsNotSentToVerify() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = root.appendingPathComponent("p")
        let manifest = "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_40\", to: \"out/t/{name}.jpg\"}\n"
        try makeSampleProject(project, manifest: manifest)
        let first = try CLI.run(["build", "-q"], in: project, environment: ["XDG_STATE_HOME": root.appendingPathComponent("home1").path])
        #expect(first.status == 0, "\(said(first))")
        try Data(manifest.replacingOccurrences(of: "w_40", with: "w_44").utf8).write(to: project.appendingPathComponent("derive.yaml"))
        let other = ["XDG_STATE_HOME": root.appendingPathComponent("home2").path]
        let refused = try CLI.run(["build"], in: project, environment: other)
        #expect(refused.status != 0 && refused.stderr.contains("lists it under another recipe"), "\(said(refused))")
        #expect(refused.stderr.contains("pass --overwrite") && !refused.stderr.contains("--verify"), "\(said(refused))")
        let verified = try CLI.run(["build", "--verify"], in: project, environment: other)
        #expect(verified.status != 0, "\(said(verified))")
        #expect(!verified.stderr.contains("not Derive's output") && verified.stderr.contains("not what the current recipe renders"), "\(said(verified))")
        // --overwrite settles it, as the refusal says.
        let overwritten = try CLI.run(["build", "--overwrite", "-q"], in: project, environment: other)
        #expect(overwritten.status == 0, "\(said(overwritten))")
        let raster = try Raster.decode(Data(contentsOf: project.appendingPathComponent("out/t/a.jpg")))
        #expect(raster.width == 44)
    }
}
