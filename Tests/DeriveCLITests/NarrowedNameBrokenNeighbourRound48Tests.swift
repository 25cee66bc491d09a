import Foundation
import Testing
import TestSupport

/// Attack 48's F3: a manifest beside this one that does not read (an editor's half-saved
/// hero.yaml, also under `build --watch`) was taken as writing no name, so `w=960` of an 800 px
/// source became `a-800.webp`, the name the hero writes once saved whole, and flipped back after.
/// While a neighbour cannot be read, every name narrowing would give is taken: the variant is
/// planned as written, and explain names the broken file with its line and column.
@Suite(.ownThreads) struct NarrowedNameBrokenNeighbourRound48Tests {
    typealias Site = SiteRound11Tests.Site

    static func planned(_ site: Site) throws -> String {
        let plan = try site.run(["plan"])
        #expect(plan.status == 0, "\(said(plan))")
        return String(decoding: plan.stdout, as: UTF8.self)
    }

    @Test func aHalfWrittenNeighbourTakesEveryNarrowedName() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg"],
                            manifest: NarrowedNameTakenRound46Tests.manifest(NarrowedNameTakenRound46Tests.widths, index: false))
        defer { site.remove() }
        let hero = NarrowedNameTakenRound46Tests.manifest(NarrowedNameTakenRound46Tests.hero, index: false)
        // Cut inside the process (it validates no more), then inside a flow list (no YAML at all).
        let cut = String(hero[..<hero.range(of: "w_800/")!.upperBound]) + "form"
        let unclosed = String(hero[..<hero.range(of: "from: ")!.lowerBound]) + "from: [images/*.jpg\n"
        for (text, place) in [(cut, "(hero.yaml:6:5: rule 'B' needs 'to'"), (unclosed, "(hero.yaml:8:1: YAML syntax error")] {
            try Data(text.utf8).write(to: site.url("hero.yaml"))
            let plan = try Self.planned(site)
            #expect(plan.contains("site/a-960.webp") && !plan.contains("site/a-800.webp"), "\(plan)")
            let explain = try site.run(["explain", "site/a-960.webp"])
            #expect(said(explain).contains("since site/a-800.webp, the name that width would give it, is taken while a manifest beside this one cannot be read")
                && said(explain).contains(place), "\(said(explain))")
        }
        // Whole again, writing another name: a-800.webp is free and the variant narrowed.
        try Data(hero.replacingOccurrences(of: "800", with: "700").utf8).write(to: site.url("hero.yaml"))
        let plan = try Self.planned(site)
        #expect(plan.contains("site/a-800.webp") && !plan.contains("site/a-960.webp"), "\(plan)")
    }
}
