import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack 20's build L1: a rule whose outputs may land on the watermark image another rule reads
/// passed `derive validate` ("valid") and failed only when planned ("… is a source or a control
/// file …"). #9 asks for a validation error at its line.
@Suite(.ownThreads) struct ValidateWatermarkOutputTests {
    static let buckets = """
    version: 1
    buckets:
      src: {path: src}
      out: {path: out}

    """

    func load(_ rules: String) throws -> ManifestLoader.Result {
        let workspace = try Workspace()
        for folder in ["src", "out"] {
            try FileManager.default.createDirectory(atPath: workspace.path(folder), withIntermediateDirectories: true)
        }
        return try workspace.load(yaml: Self.buckets + rules, objects: ["src": ["logo-in.png", "a.jpg"], "out": []])
    }

    /// Rule `mk` writes `src/<folder>/{name}.png` from `src/logo-in.png`; rule `use` stamps
    /// `marks/logo-in.png` (base64url in the chain) on the JPEGs.
    func load(markFolder folder: String) throws -> ManifestLoader.Result {
        try load("""
        derivatives:
          - name: mk
            from: src/logo-in.png
            process: image/resize,w_120/format,png
            to: src/\(folder)/{name}.png
          - name: use
            from: src/*.jpg
            process: image/resize,w_300/watermark,image_bWFya3MvbG9nby1pbi5wbmc,g_se/format,png
            to: out/{name}.png
        """)
    }

    /// The attack's manifest (`r20/ch`): `mk`'s outputs land on the watermark image `use` reads.
    @Test func outputsOverAWatermarkImageAreAnErrorAtTheTemplate() throws {
        let result = try load(markFolder: "marks")
        let errors = result.lines.filter { $0.contains(": error: ") }
        #expect(errors.contains { $0.hasPrefix("9:") && $0.contains("outputs of rule 'mk' may overwrite the watermark image src/marks/logo-in.png that rule 'use' reads") },
                "\(result.lines)")
        #expect(result.manifest == nil || result.diagnostics.hasErrors)
    }

    /// Outputs elsewhere in the bucket, or a watermark image elsewhere, are fine.
    @Test func outputsBesideTheWatermarkImageAreFine() throws {
        let result = try load(markFolder: "small")
        #expect(!result.lines.contains { $0.contains("watermark image") }, "\(result.lines)")
    }
}
