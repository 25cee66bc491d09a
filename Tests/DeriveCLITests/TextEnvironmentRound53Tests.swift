import Foundation
import Testing
import TestSupport

/// Attack 52c's 4: every variable whose name starts with `HB_`, `FC_`, `FREETYPE`, `CAIRO_` or
/// `PANGO` was in a text watermark's fingerprint, so `HB_FOO=1` (read by no library) and
/// fontconfig's debug switch `FC_DEBUG=1` rebuilt it with the same bytes. A name counts now when a
/// loaded text library holds it, and fontconfig's debug switches never; one a library reads still
/// rebuilds (`FontDrawingRound50Tests` draws other pixels under `HB_SHAPER_LIST` and
/// `FREETYPE_PROPERTIES`).
@Suite(.ownThreads, .serialized) struct TextEnvironmentRound53Tests {
    typealias Project = FontDrawingRound50Tests.Project
    static let hasFonts = FontDrawingRound50Tests.hasFonts

    /// Drawn under the variable and without it, fresh: the same pixels and the same lock; and an
    /// output built without it is up to date under it.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"),
          arguments: [("HB_FOO", "1"), ("FC_DEBUG", "1"), ("FC_DBG_MATCH_FILTER", "family"), ("PANGO_FOO", "1"), ("FREETYPE_FOO", "1")])
    func aVariableNoLibraryDrawsWithChangesNothing(variable: String, value: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        var without = try Project(root: root.appendingPathComponent("without"), configuration: nil)
        var with = try Project(root: root.appendingPathComponent("with"), configuration: nil)
        with.environment[variable] = value
        for project in [without, with] {
            let build = try project.run(["build", "-q"])
            #expect(build.status == 0, "\(said(build))")
        }
        let locks = try [without, with].map { try Data(contentsOf: $0.folder.appendingPathComponent("derive.lock")) }
        #expect(try without.output().pixels == with.output().pixels)
        #expect(locks[0] == locks[1], "\(variable): \(text(locks[0])) \(text(locks[1]))")

        without.environment[variable] = value
        let plan = try without.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 0, "\(variable): \(said(plan))")
        with.environment[variable] = nil
        let back = try with.run(["plan", "--detailed-exitcode"])
        #expect(back.status == 0, "\(variable): \(said(back))")
    }

    /// Names a loaded library holds still count, when in doubt: HarfBuzz's options, cairo's debug
    /// options (its X backends'), Pango's backend choice.
    @Test(.enabled(if: hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"),
          arguments: [("HB_OPTIONS", "aat"), ("CAIRO_DEBUG", "xrender-version=0.0"), ("PANGOCAIRO_BACKEND", "fc")])
    func aVariableALibraryReadsRebuilds(variable: String, value: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        var project = try Project(root: root, configuration: nil)
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        project.environment[variable] = value
        let plan = try project.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 2 && said(plan).contains("the environment text is drawn under changed"), "\(variable): \(said(plan))")
    }
}
