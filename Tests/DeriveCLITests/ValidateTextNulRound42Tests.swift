import Foundation
import Testing
import TestSupport

/// Attack 42b's M-a: a list-style watermark text holding U+0000 passed `derive validate` (the
/// text was asked of the render worker as a command-line argument, which ends at its first NUL:
/// `a` was checked, not `a\0b`), and `derive build` then refused it. validate now asks about the
/// whole text, so both say the same.
@Suite(.ownThreads) struct ValidateTextNulRound42Tests {
    static func project(text: String) throws -> URL {
        let folder = try CLI.temporaryFolder()
        for sub in ["img", "out"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("img/landscape.jpg"))
        try Data("""
        version: 1
        buckets:
          img: {path: img, acl: private}
          out: {path: out, acl: public-read}
        styles:
          b:
            - watermark: {text: "\(text)", size: 20}
        derivatives:
          - name: r
            from: img/*.jpg
            styles: [b]
            acl: public-read
            to: out/{name}.{style}.jpg

        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    @Test func aTextWithANulIsRefusedByValidateWhereTheBuildRefusesIt() throws {
        // `\u0000` is YAML's escape (a double-quoted scalar): the text is `a`, NUL, `b`.
        let folder = try Self.project(text: #"a\u0000b"#)
        defer { try? FileManager.default.removeItem(at: folder) }
        let build = try CLI.run(["build", "-q"], in: folder)
        #expect(build.status != 0 && said(build).contains("U+0000"), "\(said(build))")
        let validate = try CLI.run(["validate"], in: folder)
        #expect(validate.status == 1, "\(said(validate))")
        // At the action, with the character named.
        #expect(said(validate).contains("derive.yaml:7:") && said(validate).contains("U+0000"), "\(said(validate))")
        // A control character is in no font: the way out is removing it, not installing a font.
        #expect(said(validate).contains("U+0000, a control character, which no font draws") && !said(validate).contains("install a font"), "\(said(validate))")
        #expect(!said(build).contains("install a font"), "\(said(build))")
    }

    @Test func theSameTextWithoutItIsValid() throws {
        let folder = try Self.project(text: "ab")
        defer { try? FileManager.default.removeItem(at: folder) }
        let validate = try CLI.run(["validate"], in: folder)
        #expect(validate.status == 0, "\(said(validate))")
    }
}
