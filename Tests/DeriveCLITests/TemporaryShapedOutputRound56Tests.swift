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

    @Test func anOutputOfATemporarysShapeIsNeverSwept() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data(Self.manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        let output = root.appendingPathComponent("out/t/.a.webp.99999.1.derive-tmp")
        let first = try CLI.run(["build", "-q"], in: root, environment: environment)
        #expect(first.status == 0 && fm.fileExists(atPath: output.path), "\(said(first))")
        // Twice, the second after the witness settles: neither removes it, and check agrees.
        for pause in [0, 1_200_000] as [useconds_t] {
            usleep(pause)
            let build = try CLI.run(["build"], in: root, environment: environment)
            #expect(build.status == 0 && !said(build).contains("temporary") && fm.fileExists(atPath: output.path), "\(said(build))")
        }
        let check = try CLI.run(["check"], in: root, environment: environment)
        #expect(check.status == 0 && fm.fileExists(atPath: output.path), "\(said(check))")
    }

    /// A build that removed a temporary saves no no-op witness: its snapshot, taken before the
    /// sweep, saw what the sweep then removed (attack 56a's F1 turned that into "Up to date" over
    /// a missing output). The next command plans in full.
    @Test func aBuildThatSweptSavesNoWitness() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
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
