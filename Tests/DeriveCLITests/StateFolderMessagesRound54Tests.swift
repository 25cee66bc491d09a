import Foundation
import Testing
import TestSupport

/// Attack 53b's 5 and 6 (Low, messages). 5: any file in a `.derive` folder of a public bucket was
/// called "the state folder … of pub/notes.txt.yaml, another project, which is no longer there",
/// with the advice to put back a manifest that never existed. 6: `init` with `_site` a link to a
/// folder not yet made in another project's bucket said "Make the folder it leads to", which led
/// straight into the refusal naming that project.
@Suite(.ownThreads) struct StateFolderMessagesRound54Tests {
    func environment(_ root: URL) -> [String: String] { ["XDG_STATE_HOME": root.appendingPathComponent("home").path] }

    @Test func aFileInADotDeriveFolderIsNotNamedTheStateOfAManifestThatNeverExisted() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub/.derive"), withIntermediateDirectories: true)
        try Data("todo: buy milk\n".utf8).write(to: root.appendingPathComponent("pub/.derive/notes.txt"))
        try Data("version: 1\nbuckets:\n  pub: {path: pub, acl: public-read}\n".utf8).write(to: root.appendingPathComponent("p.yaml"))
        let validate = try CLI.run(["validate", "p.yaml"], in: root, environment: environment(root))
        #expect(validate.status != 0, "still refused (a .derive folder alone counts): \(validate.stderr)")
        #expect(!validate.stderr.contains("notes.txt.yaml"), "\(validate.stderr)")
        #expect(validate.stderr.contains("pub/.derive/notes.txt") && validate.stderr.contains("in a folder named .derive"), "\(validate.stderr)")
    }

    @Test func initWithSiteLinkingToNothingInAnotherProjectsBucketNamesThatProject() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        for folder in ["p/src", "p/out", "x/photos"] { try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true) }
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("x/photos/a.jpg"))
        try Data("version: 1\nbuckets:\n  src: {path: src, acl: private}\n  out: {path: out, acl: private}\nderivatives: []\n".utf8)
            .write(to: root.appendingPathComponent("p/p.yaml"))
        let built = try CLI.run(["build", "-q", "p.yaml"], in: root.appendingPathComponent("p"), environment: environment(root))
        #expect(built.status == 0, "\(built.stderr)")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("x/_site").path, withDestinationPath: root.appendingPathComponent("p/out/sub").path)
        let initRun = try CLI.run(["init", "photos"], in: root.appendingPathComponent("x"), environment: environment(root))
        #expect(initRun.status != 0)
        #expect(initRun.stderr.contains("another project") && initRun.stderr.contains("p.yaml"), "\(initRun.stderr)")
        #expect(!initRun.stderr.contains("Make the folder it leads to"), "\(initRun.stderr)")
        #expect(!fm.fileExists(atPath: root.appendingPathComponent("x/derive.yaml").path))
    }
}
