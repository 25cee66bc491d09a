import Foundation
import Testing
import TestSupport

/// Attack 53c's F4: a source that fails before anything is rendered (here not an image) was one
/// line naming the source and a count (`src/bad.jpg: …, 5 derivatives not built`) in `build`,
/// `build --verbose`, `plan` and `plan --json`, never its outputs nor how to see them; and
/// `explain` of one of them said it "is not an output", which is false: it is the rule's output
/// and it failed. No render runs here: the one source fails before rendering.
@Suite(.ownThreads) struct SourceFailureOutputsRound54Tests {
    static let outputs = [100, 200, 300, 400, 500].map { "out/bad-\($0).webp" }

    /// `src/bad.jpg` (not an image) under a rule of five widths to `out/bad-{w}.webp`.
    func project() throws -> URL {
        let root = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try Data("junk\n".utf8).write(to: root.appendingPathComponent("src/bad.jpg"))
        try Data(("version: 1\nbuckets: {src: {path: src}, out: {path: out}}\nderivatives:\n"
            + "  - {name: t, from: src/*.jpg, process: \"image/resize,w_{w}/format,webp\", matrix: {w: [100, 200, 300, 400, 500]}, to: \"out/{name}-{w}.webp\"}\n").utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        return root
    }

    @Test func theOutputsOfAFailedSourceAreNamed() throws {
        let root = try project()
        defer { try? FileManager.default.removeItem(at: root) }
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        let named = "5 derivatives not built: out/bad-100.webp, out/bad-200.webp, out/bad-300.webp and 2 more"

        let build = try CLI.run(["build"], in: root, environment: environment)
        #expect(build.status == 1, "\(said(build))")
        #expect(build.stderr.contains("derive: failure: src/bad.jpg: ") && build.stderr.contains(named + " (derive build --verbose names each)"), "\(build.stderr)")
        let verbose = try CLI.run(["build", "--verbose"], in: root, environment: environment)
        for output in Self.outputs { #expect(verbose.stderr.contains("\n  \(output): "), "\(output): \(verbose.stderr)") }

        let plan = try CLI.run(["plan"], in: root, environment: environment)
        #expect(plan.status == 1 && said(plan).contains(named + " (derive plan --verbose names each)"), "\(said(plan))")
        let planVerbose = try CLI.run(["plan", "-v"], in: root, environment: environment)
        for output in Self.outputs { #expect(said(planVerbose).contains("  \(output): "), "\(output): \(said(planVerbose))") }
        let json = try CLI.run(["plan", "--json"], in: root, environment: environment)
        let object = try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any]
        let failed = (object?["failedOutputs"] as? [[String: String]] ?? [])
        #expect(failed.map { $0["output"] ?? "" } == Self.outputs, "\(text(json.stdout))")
        #expect(failed.first?["source"] == "src/bad.jpg" && failed.first?["recipe"] == "t (w=100)", "\(text(json.stdout))")
        // The failures keep their shape (subject and message, both strings).
        #expect((object?["failures"] as? [[String: String]])?.count == 1, "\(text(json.stdout))")

        let explain = try CLI.run(["explain", "out/bad-200.webp"], in: root, environment: environment)
        #expect(explain.status == 1, "\(said(explain))")
        #expect(said(explain).contains("out/bad-200.webp is an output of rule t (w=200) from src/bad.jpg, which failed: the source is not an image"), "\(said(explain))")
        #expect(!said(explain).contains("is not an output"), "\(said(explain))")
    }
}
