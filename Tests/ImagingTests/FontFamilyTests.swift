import Foundation
import Testing
import TestSupport
import ProcessLanguage
@testable import Imaging

/// Watermark `type` may name any installed fontconfig family (#13): Derive's answer to "is it
/// installed?" agrees with `fc-list`, and unknown families are refused, never substituted.
@Suite(.ownThreads) struct FontFamilyTests {
    @Test func everyFamilyFcListNamesIsInstalledAndOthersAreNot() throws {
        guard let fcList = ExternalTool.path("fc-list"), let listing = ExternalTool.run(fcList, [":", "family"]) else { return }
        // Each line lists a face's family names, the first one its own.
        let families = Set(listing.split(separator: "\n").compactMap { $0.split(separator: ",").first.map(String.init) })
            .filter { Watermark.isFamilyName($0) }
        #expect(!families.isEmpty)
        for family in families {
            #expect(FontCatalog.isInstalled(family: family), "\(family)")
            #expect((try? FontCatalog.file(for: family)) != nil, "\(family)")
        }
        for missing in ["No Such Family Sans", "DejaVu Sans Bold Extra Nope"] {
            #expect(!FontCatalog.isInstalled(family: missing))
            #expect { try FontCatalog.file(for: missing) } throws: { error in
                (error as? ProcessError)?.message.contains("font family '\(missing)' is not installed (list the installed families with: fc-list : family)") == true
            }
        }
        // The seven OSS names keep their mapping (not fontconfig's reading of the name).
        #expect(FontCatalog.family(for: "wqy-zenhei") == "WenQuanYi Zen Hei")
        #expect(FontCatalog.description(for: "wqy-zenhei", size: 40) == "WenQuanYi Zen Hei 40")
        #expect(FontCatalog.description(for: "DejaVu Sans Condensed", size: 40) == "DejaVu Sans Condensed, 40")
    }
}
