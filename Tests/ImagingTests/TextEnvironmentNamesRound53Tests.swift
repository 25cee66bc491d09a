import Imaging
import ImagingCore
import Testing
import TestSupport

/// Attack 52c's 4: which set variables a text watermark's fingerprint holds. A name of the text
/// libraries' families counts when a loaded library holds it (this process links them, as the
/// render worker does); a name none holds, or fontconfig's debug switches, change nothing drawn.
@Suite(.ownThreads) struct TextEnvironmentNamesRound53Tests {
    @Test func onlyNamesALoadedTextLibraryHoldsCount() {
        let environment = ["HB_FOO": "1", "HB_OPTIONS": "aat", "HB_SHAPER_LIST": "ot", "FC_DEBUG": "1", "FC_DBG_MATCH_FILTER": "family",
                           "FREETYPE_FOO": "1", "CAIRO_DEBUG": "xrender-version=0.0", "PANGO_FOO": "1", "PANGOCAIRO_BACKEND": "fc",
                           "CAIRO_FOO": "1", "LANG": "C"]
        let counted = Set(TextDrawing.drawingVariables(environment))
        for name in ["HB_OPTIONS", "HB_SHAPER_LIST", "CAIRO_DEBUG", "PANGOCAIRO_BACKEND", "FREETYPE_PROPERTIES", "LANG"] {
            #expect(counted.contains(name), "\(name): \(counted.sorted())")
        }
        for name in ["HB_FOO", "FC_DEBUG", "FC_DBG_MATCH_FILTER", "FREETYPE_FOO", "PANGO_FOO", "CAIRO_FOO"] {
            #expect(!counted.contains(name), "\(name): \(counted.sorted())")
        }
        #expect(TextDrawing.fingerprintWords(environment) == "CAIRO_DEBUG=xrender-version=0.0 HB_OPTIONS=aat HB_SHAPER_LIST=ot PANGOCAIRO_BACKEND=fc")
    }
}
