import Foundation
import ProcessLanguage
import Testing
import TestSupport
@testable import Manifest

/// Which lock lines a fresh clone may take as Derive's old outputs: a path one rule's `to:` can
/// give with `{style}` and the matrix variables standing for any value the syntax allows, `{hash}`
/// of any length holding the file's own digest, the extension naming the line's format.
@Suite(.ownThreads)
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

    static let digest = "19d468d1ab" + String(repeating: "0", count: 54)

    func written(_ rules: LockableOutputs, _ key: String, _ format: Format.Kind, digest: String = digest) -> Bool {
        rules.verdict(bucket: "out", key: key, digest: digest, format: format) == .written
    }

    /// Round 13 (static), N1: a width, a format or a style since dropped, any source width, a
    /// variable's value the syntax allows; never a value it does not allow, nor another shape.
    @Test func styleAndMatrixVariablesStandForAnyValueTheSyntaxAllows() throws {
        let rules = try outputs("""
              - name: r
                from: src/*.jpg
                process: image/resize,w_{w}/format,{f}
                matrix: {w: [480], f: [webp]}
                to: out/r/{name}-{w}.{f}
              - name: s
                from: src/*.jpg
                styles: [a]
                to: out/s/{name}.{style}.{ext}
            """, styles: "styles:\n  a: image/resize,w_130\n")
        #expect(written(rules, "r/x-480.webp", .webp))
        #expect(written(rules, "r/x-1600.webp", .webp), "a width since dropped")
        #expect(written(rules, "r/x-290.webp", .webp), "a source's own width")
        #expect(written(rules, "r/x-480.avif", .avif), "a format since dropped")
        #expect(written(rules, "r/x-big one.jpg", .jpg), "a matrix value may hold spaces")
        #expect(!written(rules, "r/x-480.avif", .webp), "the extension must name the format")
        #expect(!written(rules, "r/x.webp", .webp), "no '-' and width: another shape")
        #expect(!written(rules, "r/sub/x-480.webp", .webp), "a matrix value never holds '/'")
        #expect(!written(rules, "r/x-4,8.webp", .webp), "a matrix value never holds ','")
        #expect(written(rules, "s/x.large.webp", .webp), "a style since dropped, in its own format")
        #expect(!written(rules, "s/x.lar ge.jpg", .jpg), "a style name never holds a space")
        #expect(!written(rules, "s/x.jpg", .jpg), "no style: another shape")
        #expect(rules.verdict(bucket: "out", key: "t/x.jpg", digest: Self.digest, format: .jpg) == .noTemplate(skipped: nil))
        #expect(rules.verdict(bucket: "src", key: "x.jpg", digest: Self.digest, format: .jpg) == .noTemplate(skipped: nil))
        #expect(rules.verdict(bucket: "out", key: "s/x.a.png", digest: Self.digest, format: .jpg) == .extensionNotFormat)
        #expect(rules.verdict(bucket: "out", key: "s/._x.a.jpg", digest: Self.digest, format: .jpg) == .noTemplate(skipped: "._x.a.jpg"))
    }

    /// `{hash}` lines: one rule with plain lines; the slot holds the file's own digest, any length.
    @Test func aHashSlotHoldsTheFilesOwnDigestAtAnyLength() throws {
        let rules = try outputs("""
              - name: h
                from: src/*.jpg
                process: image/resize,w_{w}/format,webp
                matrix: {w: [480]}
                to: out/{name}-{w}.{hash:8}.webp
            """)
        #expect(written(rules, "x-480.19d468d1.webp", .webp))
        #expect(written(rules, "x-960.19d468d1ab.webp", .webp), "{hash} before {hash:8}, a width since dropped")
        #expect(rules.verdict(bucket: "out", key: "x-480.0123abcd.webp", digest: Self.digest, format: .webp) == .notItsHash)
        #expect(rules.verdict(bucket: "out", key: "x-480.holiday.webp", digest: Self.digest, format: .webp) == .noTemplate(skipped: nil))
    }

    /// `{ext}` is the extension the planner writes; a literal extension is its own.
    @Test func extIsThePlannersExtension() throws {
        let rules = try outputs("""
              - name: e
                from: src/*.tif
                process: image/resize,w_20
                to: out/e/{name}.{ext}
              - name: fixed
                from: src/*.jpg
                process: image/resize,w_20
                to: out/fixed/{name}.jpeg
            """)
        #expect(written(rules, "e/x.tiff", .tiff))
        #expect(rules.verdict(bucket: "out", key: "e/x.tif", digest: Self.digest, format: .tiff) == .noTemplate(skipped: nil), "{ext} writes tiff")
        #expect(written(rules, "fixed/x.jpeg", .jpg))
        #expect(rules.verdict(bucket: "out", key: "fixed/x.jpeg", digest: Self.digest, format: .webp) == .extensionNotFormat)
    }

    /// Attack 14's D1: a `*` that is a whole folder name is one folder, never none; a class
    /// admits only its scalars. `{dir}` gives exactly the folders `from:` can match.
    @Test func dirIsExactlyTheFoldersFromCanMatch() throws {
        let rules = try outputs("""
              - name: one
                from: src/*/*.jpg
                process: image/resize,w_20
                to: out/one/{dir}/{name}.{ext}
              - name: two
                from: src/*/*/*.jpg
                process: image/resize,w_20
                to: out/two/{dir}/{name}.{ext}
              - name: x
                from: src/*/x/*.jpg
                process: image/resize,w_20
                to: out/x/{dir}/{name}.{ext}
              - name: class
                from: src/[pq]*/*.jpg
                process: image/resize,w_20
                to: out/class/{dir}/{name}.{ext}
            """)
        #expect(written(rules, "one/photos/u.jpg", .jpg))
        #expect(!written(rules, "one/u.jpg", .jpg), "a '*' folder is never none")
        #expect(!written(rules, "one/a/b/u.jpg", .jpg), "a '*' folder is one folder")
        #expect(written(rules, "two/a/b/u.jpg", .jpg))
        #expect(!written(rules, "two/u.jpg", .jpg) && !written(rules, "two/p/u.jpg", .jpg))
        #expect(written(rules, "x/p/x/u.jpg", .jpg))
        #expect(!written(rules, "x/x/u.jpg", .jpg))
        #expect(written(rules, "class/pics/u.jpg", .jpg) && written(rules, "class/q/u.jpg", .jpg))
        #expect(!written(rules, "class/x/u.jpg", .jpg), "the class admits only p and q")
    }
}
