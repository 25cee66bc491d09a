import Foundation
import Testing
import TestSupport

/// Issue 15's leftover (round 39): `derive validate` said a style's problem once at the style and
/// again at each rule whose process is `style/NAME` (a watermark text no font draws, a font not
/// installed), or called the style missing there when it did not load ("The specified style
/// 'bad' does not exist"). Each problem is said once, at the style's line, naming its rules.
@Suite(.ownThreads) struct StyleProblemsOnceRound39Tests {
    static let manifest = """
        version: 1
        buckets:
          photos: {path: photos}
          out: {path: out}
        styles:
          pua: image/watermark,text_7oCA7oCB
          font: image/watermark,text_SGVsbG8,type_Tm9TdWNoRm9udFhZWg
          bad: image/rezise,w_100
        derivatives:
          - from: photos/*.jpg
            process: style/pua
            to: out/a/{name}.jpg
          - name: second
            from: photos/*.jpg
            process: style/pua
            to: out/b/{name}.jpg
          - from: photos/*.jpg
            process: style/font
            to: out/c/{name}.jpg
          - name: fourth
            from: photos/*.jpg
            process: style/font
            to: out/d/{name}.jpg
          - from: photos/*.jpg
            process: style/bad
            to: out/e/{name}.jpg
          - name: sixth
            from: photos/*.jpg
            styles: [bad]
            to: out/f/{name}.jpg

        """

    @Test func aBrokenStyleUsedByTwoRulesIsOneDiagnosticAtTheStyle() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        let json = try CLI.run(["validate", "--json"], in: folder)
        #expect(json.status == 1, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        let diagnostics = try #require(object["diagnostics"] as? [[String: Any]])
        let shown = diagnostics.map { "\($0["line"] ?? ""): \($0["message"] ?? "")" }
        func about(_ text: String) -> [[String: Any]] { diagnostics.filter { ($0["message"] as? String)?.contains(text) == true } }
        // The text no font draws: once, at style 'pua' (line 6), naming both rules.
        let pua = about("U+E001")
        #expect(pua.count == 1, "\(shown)")
        #expect(pua.first?["line"] as? Int == 6, "\(shown)")
        #expect((pua.first?["message"] as? String)?.contains("rule at derive.yaml:10 and rule 'second'") == true, "\(shown)")
        // The font not installed: once, at style 'font' (line 7).
        let font = about("NoSuchFontXYZ")
        #expect(font.count == 1, "\(shown)")
        #expect(font.first?["line"] as? Int == 7, "\(shown)")
        #expect((font.first?["message"] as? String)?.contains("rule at derive.yaml:17 and rule 'fourth'") == true, "\(shown)")
        // The style that does not parse: once, at its line, and never "does not exist" at a rule.
        let bad = about("rezise")
        #expect(bad.count == 1 && bad.first?["line"] as? Int == 8, "\(shown)")
        #expect((bad.first?["message"] as? String)?.contains("rule at derive.yaml:24 and rule 'sixth'") == true, "\(shown)")
        #expect(about("does not exist").isEmpty, "\(shown)")
        #expect(object["errors"] as? Int == 3, "\(shown)")
        // The text output says the same, once each.
        let plain = try CLI.run(["validate"], in: folder)
        #expect(plain.status == 1)
        let lines = String(decoding: plain.stdout, as: UTF8.self).split(separator: "\n") + plain.stderr.split(separator: "\n")
        #expect(lines.filter { $0.contains("U+E001") }.count == 1, "\(lines)")
        #expect(lines.filter { $0.contains("NoSuchFontXYZ") }.count == 1, "\(lines)")
    }
}
