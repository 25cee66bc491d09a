import Foundation
import Testing
import TestSupport

/// Attack 36a's L1 and L2: what a build says of its failures, and what `html` says of a source.
/// - A missing watermark object gave one line per output (sources × styles), each naming the
///   output: README says one line per bad source.
/// - The summary's "N failed" counted a bad source once and a failed render once (mixed units),
///   and disagreed with the progress line; both now count derivatives not built.
/// - `derive html` said "run 'derive build' first" for a built source named through a link to
///   its bucket's folder, and for a file that does not exist.
@Suite(.ownThreads) struct FailureCountsRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    static let styles = """
        styles:
          a: image/resize,w_20/watermark,image_bG9nby5wbmc
          b: image/resize,w_30/watermark,image_bG9nby5wbmc
          c: image/resize,w_40/watermark,image_bG9nby5wbmc
        """

    /// `src/` holding landscape.jpg and orientation-1.jpg only.
    func twoSources(_ manifest: String) throws -> Project {
        let project = try Project(index: false)
        for name in project.outputs where name != "landscape.jpg" && name != "orientation-1.jpg" {
            try FileManager.default.removeItem(at: project.url("src/\(name)"))
        }
        try project.write("derive.yaml", manifest)
        return project
    }

    func failureLines(_ stderr: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("derive: failure:") }
    }

    @Test func aMissingWatermarkObjectIsOneLinePerSource() throws {
        let project = try twoSources("""
            version: 1
            buckets: {src: {path: src}, out: {path: out}}
            \(Self.styles)
            derivatives:
              - from: src/*.jpg
                styles: [a, b, c]
                to: out/{name}.{style}.{ext}

            """)
        defer { project.remove() }
        let build = try project.run(["build"])
        #expect(build.status == 1)
        let lines = failureLines(build.stderr)
        #expect(lines == [
            "derive: failure: src/landscape.jpg: the watermark object 'logo.png' does not exist in bucket 'src', 3 derivatives not built: out/landscape.a.jpg, out/landscape.b.jpg, out/landscape.c.jpg",
            "derive: failure: src/orientation-1.jpg: the watermark object 'logo.png' does not exist in bucket 'src', 3 derivatives not built: out/orientation-1.a.jpg, out/orientation-1.b.jpg, out/orientation-1.c.jpg",
        ], "\(build.stderr)")
        #expect(text(build.stdout).contains("6 failed"), "\(text(build.stdout))")
        // --verbose names each output below its source.
        let verbose = try project.run(["build", "--verbose"])
        #expect(verbose.stderr.contains("  out/landscape.a.jpg: the watermark object 'logo.png' does not exist in bucket 'src'"), "\(verbose.stderr)")
    }

    /// One good source and one that is no image, three styles each: 3 built, 3 not built, said
    /// alike by the progress line and the summary.
    @Test func theSummaryAndTheProgressLineCountDerivativesNotBuilt() throws {
        let project = try twoSources("""
            version: 1
            buckets: {src: {path: src}, out: {path: out}}
            styles:
              a: image/resize,w_20
              b: image/resize,w_30
              c: image/resize,w_40
            derivatives:
              - from: src/*.jpg
                styles: [a, b, c]
                to: out/{name}.{style}.{ext}

            """)
        defer { project.remove() }
        try Data("not a picture\n".utf8).write(to: project.url("src/orientation-1.jpg"))
        let build = try project.run(["build"])
        #expect(build.status == 1)
        #expect(failureLines(build.stderr).count == 1, "\(build.stderr)")
        #expect(build.stderr.contains("built 3/6, 3 failed"), "\(build.stderr)")
        #expect(text(build.stdout).contains("built 3,") && text(build.stdout).contains("3 failed"), "\(text(build.stdout))")
    }

    @Test func htmlFindsASourceNamedThroughALinkAndSaysWhenAFileIsMissing() throws {
        let project = try twoSources("""
            version: 1
            buckets: {src: {path: src}, out: {path: out}}
            derivatives:
              - name: pic
                from: src/*.jpg
                process: image/resize,w_{w}/format,webp
                matrix: {w: [20, 40]}
                to: out/{name}-{w}.webp

            """)
        defer { project.remove() }
        // Before the build, a source the rules take: built by the next build, as said before.
        let unbuilt = try project.run(["html", "src/landscape.jpg"])
        #expect(unbuilt.status == 1 && unbuilt.stderr.contains("run 'derive build' first"), "\(unbuilt.stderr)")
        try FileManager.default.createSymbolicLink(atPath: project.url("pics").path, withDestinationPath: "src")
        #expect(try project.run(["build", "-q"]).status == 0)
        let built = try project.run(["html", "src/landscape.jpg"])
        #expect(built.status == 0, "\(built.stderr)")
        let linked = try project.run(["html", "pics/landscape.jpg"])
        #expect(linked.status == 0, "\(linked.stderr)")
        #expect(linked.stdout == built.stdout)
        let missing = try project.run(["html", "src/no-such-file.jpg"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no such file"), "\(missing.stderr)")
        #expect(!missing.stderr.contains("derive build"), "\(missing.stderr)")
    }
}
