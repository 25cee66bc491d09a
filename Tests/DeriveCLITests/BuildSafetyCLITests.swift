import Foundation
import Testing
import TestSupport

/// The build-safety rules end to end, through the binary with the real engine.
@Suite(.ownThreads, .serialized) struct BuildSafetyCLITests {
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// The reported disaster: `state: .` and `derive clean` deleted the whole project.
    @Test func cleanWithStateAtTheProjectFolderKeepsTheProject() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/landscape.jpg"))
        try Data("my notes".utf8).write(to: root.appendingPathComponent("notes.txt"))
        let manifest = """
        version: 1
        state: .
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - from: src/*.jpg
            process: image/resize,w_64
            to: out/{name}.{ext}

        """
        try Data(manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let build = try CLI.run(["build", "--quiet"], in: root)
        #expect(build.status == 0, "\(build.stderr)")
        let clean = try CLI.run(["clean"], in: root)
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(text(clean.stdout).contains("Removed 1 output") && !text(clean.stdout).contains("Removed 1 outputs"), "\(text(clean.stdout))")
        for kept in ["derive.yaml", "notes.txt", "src/landscape.jpg"] {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(kept).path), "\(kept) was removed")
        }
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("out/landscape.jpg").path))
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("state.sqlite").path))
    }

    @Test func aUserFileAtAnOutputPathStopsTheBuildNamingIt() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        let mine = demo.site.appendingPathComponent("thumbs/landscape.thumb.jpg")
        try FileManager.default.createDirectory(at: mine.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("my own thumbnail".utf8).write(to: mine)
        let build = try demo.run(["build", demo.manifest, "--quiet"])
        #expect(build.status == 1)
        #expect(build.stderr.contains("landscape.thumb.jpg exists and was not written by Derive; move it or pass --overwrite"), "\(build.stderr)")
        #expect(try Data(contentsOf: mine) == Data("my own thumbnail".utf8))
        let plan = try demo.run(["plan", demo.manifest])
        #expect(plan.status == 1)
    }

    @Test func aCorruptStateIsMovedAsideNamedAndRebuiltFromTheLock() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        #expect(try demo.run(["build", demo.manifest, "--quiet"]).status == 0)
        let database = demo.state.appendingPathComponent("state.sqlite")
        var bytes = try Data(contentsOf: database)
        bytes.replaceSubrange(0..<64, with: Data(repeating: 0x5A, count: 64))
        try bytes.write(to: database)
        let build = try demo.run(["build", demo.manifest, "--quiet"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stderr.contains("the build state was corrupt; moved it to") && build.stderr.contains("state.sqlite.corrupt-"), "\(build.stderr)")
        #expect(text(build.stdout).contains("built 0, adopted 35 from site.lock"), "\(text(build.stdout))")
        #expect(try demo.run(["check", demo.manifest]).status == 0)
    }

    /// `plan` never says "No changes" while exiting 1: the words agree with the exit code.
    @Test func planWithAnOwnershipErrorDoesNotSayNoChanges() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        #expect(try demo.run(["build", demo.manifest, "--quiet"]).status == 0)
        try Data("edited by the user".utf8).write(to: demo.site.appendingPathComponent("thumbs/landscape.thumb.jpg"))
        let plan = try demo.run(["plan", demo.manifest])
        #expect(plan.status == 1)
        #expect(!text(plan.stdout).contains("No changes"), "\(text(plan.stdout))")
        #expect(text(plan.stdout).contains("1 error (above)"), "\(text(plan.stdout))")
        #expect(plan.stderr.contains("landscape.thumb.jpg was changed since Derive wrote it"), "\(plan.stderr)")
        let check = try demo.run(["check", demo.manifest])
        #expect(check.status == 1)
        #expect(!text(check.stdout).contains("not produced by the manifest"), "\(text(check.stdout))")
    }

    /// `state:` naming a file is one clear message (what, where, how to fix), not a Cocoa error.
    @Test func stateNamingAFileIsOneClearMessage() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        let yaml = try String(contentsOfFile: demo.manifest, encoding: .utf8)
        let state = demo.root.appendingPathComponent("Manifests/notes.txt")
        try Data("mine".utf8).write(to: state)
        try Data(yaml.replacingOccurrences(of: "state: ../.build/demo/state", with: "state: notes.txt").utf8).write(to: URL(fileURLWithPath: demo.manifest))
        let build = try demo.run(["build", demo.manifest, "--quiet"])
        #expect(build.status == 1)
        #expect(build.stderr.contains("notes.txt is not a folder") && build.stderr.contains("set 'state:'"), "\(build.stderr)")
        #expect(!build.stderr.contains("NSCocoaErrorDomain") && !build.stderr.contains("CocoaError"), "\(build.stderr)")
        #expect(try Data(contentsOf: state) == Data("mine".utf8))
    }
}
