import Foundation
import Testing
import TestSupport

/// Issue #9, attack 56a's F1: a rule writing a name of a temporary's shape
/// (`out/t/.{name}.webp.99999.1.derive-tmp`) beside one writing `out/t/{name}.webp` with the same
/// recipe. The next build's sweep took that output for a temporary of `a.webp` a killed build
/// left (a dead writer's pid, a.webp's recorded bytes) and removed it; a build after a pause
/// saved its witness from the snapshot taken before the sweep, so `check` said "Up to date" and
/// `build` "Nothing to do" while the output was missing.
@Suite(.ownThreads) struct TemporaryShapedOutputRound56Tests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - {name: t, from: src/*.jpg, process: "image/resize,w_64/format,webp", to: "out/t/{name}.webp"}
          - {name: u, from: src/*.jpg, process: "image/resize,w_64/format,webp", to: "out/t/.{name}.webp.99999.1.derive-tmp"}

        """

    /// Attack 56b's H5: such an output of another project in a shared folder was swept by this
    /// one's build. No rule writes a name of that shape: validate refuses one written in 'to:',
    /// and a name the variables give that shape (`to: out/.{name}`, a source `a.1.2.derive-tmp.jpg`)
    /// fails its source in plan and build, which write nothing for it.
    @Test func anOutputOfATemporarysShapeIsRefused() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try makeSampleProject(root, manifest: Self.manifest)
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        let validate = try CLI.run(["validate"], in: root, environment: environment)
        #expect(validate.status == 1 && said(validate).contains("derive.yaml:7:") && said(validate).contains("ends in '.derive-tmp'"), "\(said(validate))")
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: u, from: src/*.jpg, process: \"image/resize,w_8\", to: \"out/.{name}\"}\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/b.1.2.derive-tmp.jpg"))
        let build = try CLI.run(["build"], in: root, environment: environment)
        #expect(build.status != 0 && said(build).contains("shape of Derive's temporary files"), "\(said(build))")
        #expect(!fm.fileExists(atPath: root.appendingPathComponent("out/.b.1.2.derive-tmp").path))
        #expect(fm.fileExists(atPath: root.appendingPathComponent("out/.a").path), "the other source's output: \(said(build))")
    }

    /// A build that removed a temporary saves no no-op witness: its snapshot, taken before the
    /// sweep, saw what the sweep then removed (attack 56a's F1 turned that into "Up to date" over
    /// a missing output). The next command plans in full.
    @Test func aBuildThatSweptSavesNoWitness() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try makeSampleProject(root, manifest: nil)
        try Data("version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: src/*.jpg, process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n".utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        let first = try CLI.run(["build", "-q"], in: root, environment: environment)
        #expect(first.status == 0, "\(said(first))")
        // What a killed build leaves: a dead writer's temporary holding the output's bytes (and no witness).
        try fm.copyItem(at: root.appendingPathComponent("out/a.jpg"), to: root.appendingPathComponent("out/.a.jpg.2147483000.1.derive-tmp"))
        let witness = root.appendingPathComponent(".derive/derive/noop-witness")
        try? fm.removeItem(at: witness)
        usleep(1_200_000)   // every file out of the racy margin: a build would save its witness
        let swept = try CLI.run(["build"], in: root, environment: environment)
        #expect(swept.status == 0 && said(swept).contains("removed 1 temporary file"), "\(said(swept))")
        #expect(!fm.fileExists(atPath: witness.path), "the sweeping build saved a witness")
        usleep(1_200_000)
        let after = try CLI.run(["build"], in: root, environment: environment)
        #expect(after.status == 0 && said(after).contains("Nothing to do") && fm.fileExists(atPath: witness.path), "\(said(after))")
    }
}
