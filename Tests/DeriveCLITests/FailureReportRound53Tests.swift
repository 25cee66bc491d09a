import Foundation
import Testing
import TestSupport

/// Attack 52c's 2 and 3: what a build says of the outputs it does not build.
/// - 2: with a plan error (a file Derive did not write at an output's name), `build` named that
///   error alone; the outputs failing besides (a missing watermark object) showed one run later.
/// - 3: a reason shared by two outputs of a source named the first "(and 1 more)", and a source
///   with one reason named no output at all; the way to see every output was not said.
@Suite(.ownThreads) struct FailureReportRound53Tests {
    /// `src/a.jpg` and `src/b.jpg`, and `rules` (`name: process`), each to `out/<name>/{name}.jpg`.
    func project(_ rules: [(name: String, process: String)]) throws -> URL {
        let root = try CLI.temporaryFolder()
        try copySample("landscape.jpg", to: root.appendingPathComponent("src/a.jpg"))
        try copySample("portrait.jpg", to: root.appendingPathComponent("src/b.jpg"))
        let derivatives = rules.map { "  - {name: \($0.name), from: src/*.jpg, process: \"\($0.process)\", to: \"out/\($0.name)/{name}.jpg\"}\n" }.joined()
        try Data("version: 1\nbuckets: {src: {path: src}, out: {path: out}}\nderivatives:\n\(derivatives)".utf8)
            .write(to: root.appendingPathComponent("m.yaml"))
        return root
    }

    /// base64url of the watermark objects' names: gone.png, other.png.
    static let gone = "image/resize,w_24/watermark,image_Z29uZS5wbmc", other = "image/resize,w_24/watermark,image_b3RoZXIucG5n"
    static let goneMessage = "the watermark object 'gone.png' does not exist in bucket 'src'"

    func failureLines(_ stderr: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("derive: failure:") || $0.hasPrefix("  ") }
    }

    /// 52c's 2: the plan error, the other failures grouped by source with their outputs, and what
    /// waits; nothing written.
    @Test func aBuildWithAPlanErrorNamesTheOutputsThatFailBesides() throws {
        let root = try project([("t", "image/resize,w_16"), ("w", Self.gone)])
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("out/t"), withIntermediateDirectories: true)
        try Data("mine\n".utf8).write(to: root.appendingPathComponent("out/t/a.jpg"))
        let build = try CLI.run(["build", "m.yaml"], in: root)
        #expect(build.status == 1, "\(said(build))")
        #expect(build.stderr.contains("out/t/a.jpg exists and was not written by Derive"), "\(build.stderr)")
        #expect(failureLines(build.stderr) == [
            "derive: failure: src/a.jpg: \(Self.goneMessage), 1 derivative not built: out/w/a.jpg",
            "derive: failure: src/b.jpg: \(Self.goneMessage), 1 derivative not built: out/w/b.jpg",
        ], "\(build.stderr)")
        // b.jpg's small copy is what waits (a.jpg's name is taken): nothing was built.
        #expect(build.stderr.contains("nothing was built: a plan with errors builds nothing (1 output to create or rebuild waits; see derive plan)"),
                "\(build.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("out/t/b.jpg").path))
        // --verbose lists each output below its source here too.
        let verbose = try CLI.run(["build", "--verbose", "m.yaml"], in: root)
        #expect(verbose.stderr.contains("\n  out/w/b.jpg: \(Self.goneMessage)\n"), "\(verbose.stderr)")
    }

    /// 52c's 3, as the attack ran it: two reasons for a.jpg, one of them shared by two outputs.
    /// Each output is named; none stands behind "(and 1 more)".
    @Test func everyOutputOfAReasonIsNamed() throws {
        let root = try project([("t", "image/resize,w_16"), ("w", Self.gone), ("v", Self.other), ("x", Self.gone + ",g_se")])
        defer { try? FileManager.default.removeItem(at: root) }
        let build = try CLI.run(["build", "m.yaml"], in: root)
        #expect(build.status == 1, "\(said(build))")
        let lines = failureLines(build.stderr)
        #expect(lines.contains("derive: failure: src/a.jpg: 3 derivatives not built, for 2 reasons:"), "\(build.stderr)")
        #expect(lines.contains("  out/w/a.jpg, out/x/a.jpg: \(Self.goneMessage)"), "\(build.stderr)")
        #expect(lines.contains("  out/v/a.jpg: the watermark object 'other.png' does not exist in bucket 'src'"), "\(build.stderr)")
        #expect(!build.stderr.contains("more)"), "\(build.stderr)")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("out/t/a.jpg").path), "the rest is built")
    }

    /// Past the bound a line names three outputs and says how to see the rest; that way names
    /// each.
    @Test func aLargeGroupSaysHowToSeeEveryOutputAndThatWayNamesEach() throws {
        let rules = (1...5).map { (name: "g\($0)", process: Self.gone + ",x_\($0)") }
        let root = try project(rules)
        defer { try? FileManager.default.removeItem(at: root) }
        let build = try CLI.run(["build", "m.yaml"], in: root)
        #expect(build.status == 1, "\(said(build))")
        #expect(failureLines(build.stderr).contains(
            "derive: failure: src/a.jpg: \(Self.goneMessage), 5 derivatives not built: out/g1/a.jpg, out/g2/a.jpg, out/g3/a.jpg and 2 more (derive build --verbose names each)"),
            "\(build.stderr)")
        let verbose = try CLI.run(["build", "--verbose", "m.yaml"], in: root)
        #expect(verbose.status == 1, "\(said(verbose))")
        let listed = failureLines(verbose.stderr)
        for rule in rules {
            #expect(listed.contains("  out/\(rule.name)/a.jpg: \(Self.goneMessage)"), "\(rule.name): \(verbose.stderr)")
        }
        #expect(!verbose.stderr.contains("more (derive build --verbose"), "\(verbose.stderr)")
    }
}
