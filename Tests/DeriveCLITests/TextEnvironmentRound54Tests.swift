import Foundation
import Testing
import TestSupport

/// Attack 52c's 4: every variable whose name starts with `HB_`, `FC_`, `FREETYPE`, `CAIRO_` or
/// `PANGO` was in a text watermark's fingerprint, so `HB_FOO=1` (read by no library) and
/// fontconfig's debug switch `FC_DEBUG=1` rebuilt it with the same bytes. A name counts now when a
/// text library the render worker loaded holds it, and fontconfig's debug switches never; one a
/// library reads still rebuilds (`FontDrawingRound50Tests` draws other pixels under
/// `HB_SHAPER_LIST`). Finishes f53's attempt, which read `/proc/self/maps` by its said size (0),
/// found no library and so counted every name. One build, then full plans (`-v`: never the
/// no-op witness's answer).
@Suite(.ownThreads) struct TextEnvironmentRound54Tests {
    typealias Project = FontDrawingRound50Tests.Project

    @Test(.enabled(if: FontDrawingRound50Tests.hasFonts, "needs DejaVu Sans, WenQuanYi Zen Hei, AR PL UKai and UMing, and fontconfig's user configuration"))
    func onlyVariablesALoadedTextLibraryReadsRebuild() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        var project = try Project(root: root, configuration: nil)
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        let base = project.environment
        for (variable, value) in [("HB_FOO", "1"), ("FC_DEBUG", "1"), ("PANGO_FOO", "1")] {
            project.environment = base.merging([variable: value]) { $1 }
            let plan = try project.run(["plan", "-v", "--detailed-exitcode"])
            #expect(plan.status == 0 && !said(plan).contains("the environment text is drawn under changed"), "\(variable): \(said(plan).suffix(2_000))")
        }
        // A name HarfBuzz reads (its options) still counts.
        project.environment = base.merging(["HB_OPTIONS": "aat"]) { $1 }
        let plan = try project.run(["plan", "-v", "--detailed-exitcode"])
        #expect(plan.status == 2 && said(plan).contains("the environment text is drawn under changed"), "\(said(plan).suffix(2_000))")
    }
}
