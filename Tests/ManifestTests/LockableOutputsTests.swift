import Foundation
import ProcessLanguage
import Testing
@testable import Manifest

/// Round 11, N2: the formats a lock line may claim are those its rule writes for that style.
struct LockableOutputsTests {
    func outputs(_ rules: String, styles: String = "") throws -> LockableOutputs {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.folder) }
        let result = try workspace.load(yaml: """
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
            \(styles)derivatives:
            \(rules)
            """, objects: [:])
        let manifest = try #require(result.manifest, "\(result.lines)")
        return LockableOutputs(manifest)
    }

    /// Round 11 (static), F1: an output named after the source's own width (`s-290.webp` for w
    /// 480) is one the planner could have written; a width at or above the largest value, text,
    /// a leading zero, or a chain whose resize does not see the displayed width are not.
    @Test func aSourceWidthBelowTheMatrixValueIsLockable() throws {
        let rules = try outputs("""
              - name: r
                from: src/*.jpg
                process: image/resize,w_{w}/format,webp
                matrix: {w: [480, 960]}
                to: out/{name}-{w}.{hash}.webp
              - name: stored
                from: src/*.jpg
                process: image/resize,w_{w}/auto-orient,0/format,webp
                matrix: {w: [480]}
                to: out/stored/{name}-{w}.webp
            """)
        #expect(rules.formats(bucket: "out", key: "s-290.19d468d1ab.webp") == [.webp])
        #expect(rules.formatsOfShape(bucket: "out", key: "s-290.19d468d1ab.webp") == [.webp])
        #expect(rules.formats(bucket: "out", key: "s-959.19d468d1ab.webp") == [.webp])
        #expect(rules.formats(bucket: "out", key: "s-960.19d468d1ab.webp") == [.webp], "a matrix value itself")
        #expect(rules.formats(bucket: "out", key: "s-961.19d468d1ab.webp").isEmpty)
        #expect(rules.formats(bucket: "out", key: "s-2000.19d468d1ab.webp").isEmpty)
        #expect(rules.formats(bucket: "out", key: "s-0290.19d468d1ab.webp").isEmpty)
        #expect(rules.formats(bucket: "out", key: "s-abc.19d468d1ab.webp").isEmpty)
        #expect(rules.formats(bucket: "out", key: "s-290.19d468d1ab.jpg").isEmpty)
        #expect(rules.formatsOfShape(bucket: "out", key: "s-abc.19d468d1ab.webp").isEmpty)
        #expect(rules.formats(bucket: "out", key: "stored/s-480.webp") == [.webp])
        #expect(rules.formats(bucket: "out", key: "stored/s-290.webp").isEmpty, "auto-orient,0: never collapsed")
    }

    @Test func aJPEGOnlyRuleWritesOnlyJPEG() throws {
        let rules = try outputs("""
              - name: t
                from: src/*.jpg
                styles: [a]
                to: out/{style}/{name}.{ext}
            """, styles: "styles:\n  a: image/resize,w_130\n  b: image/resize,w_20/format,webp\n")
        #expect(rules.formats(bucket: "out", key: "a/user.jpg") == [.jpg])
        #expect(rules.formats(bucket: "out", key: "a/user.png").isEmpty)
        #expect(rules.formats(bucket: "out", key: "a/user.webp").isEmpty)
        #expect(rules.formats(bucket: "out", key: "b/user.webp").isEmpty, "style b is not in the rule")
    }

    @Test func aFormatActionNamesTheOnlyFormatAndExtensionsPickSourceFormats() throws {
        let rules = try outputs("""
              - name: w
                from: src/*.{jpg,PNG}
                styles: [a, b]
                to: out/{style}/{name}.{ext}
              - name: any
                from: src/**
                process: image/resize,w_10
                to: out/any/{name}.{ext}
              - name: fixed
                from: src/*.jpg
                styles: [b]
                to: out/fixed/{name}.jpg
            """, styles: "styles:\n  a: image/resize,w_130\n  b: image/resize,w_20/format,webp\n")
        #expect(rules.formats(bucket: "out", key: "a/x.png") == [.png])
        #expect(rules.formats(bucket: "out", key: "a/x.jpg") == [.jpg])
        #expect(rules.formats(bucket: "out", key: "a/x.webp").isEmpty)
        #expect(rules.formats(bucket: "out", key: "b/x.webp") == [.webp])
        #expect(rules.formats(bucket: "out", key: "b/x.jpg").isEmpty)
        #expect(rules.formats(bucket: "out", key: "any/x.tiff") == [.tiff], "sources recognised by content: any format")
        #expect(rules.formats(bucket: "out", key: "fixed/x.jpg") == [.webp], "the key's name does not decide the format")
    }

    @Test func sourceFormatsFollowTheGlobsExtensions() throws {
        #expect(LockableOutputs.sourceFormats(of: try Glob("src/*.jpeg")) == [.jpg])
        #expect(LockableOutputs.sourceFormats(of: try Glob("**/*.{gif,tif}")) == [.gif, .tiff])
        #expect(LockableOutputs.sourceFormats(of: try Glob("src/*.[jJ]pg")) == Set(Format.Kind.allCases))
        #expect(LockableOutputs.sourceFormats(of: try Glob("src/*")) == Set(Format.Kind.allCases))
        #expect(LockableOutputs.sourceFormats(of: try Glob("src/*.raw")) == Set(Format.Kind.allCases))
        #expect(LockableOutputs.sourceFormats(of: try Glob("src/*.heic")) == [.heic, .avif])
    }
}
