import Foundation
import Testing
import TestSupport

/// Attack 48a's F3: as in `NarrowedNameRefusalRound48Tests`, but hero.yaml's rule reads another
/// source folder (`images2/a.jpg`), which derive.yaml's narrowing does not weigh. The refusal
/// still said "build derive.yaml first", which answers "Nothing to do" and changes nothing: that
/// advice is given only when derive.yaml has a rule over the very source hero.yaml renders.
@Suite(.ownThreads) struct NarrowedNameRefusalOtherSourceRound49Tests {
    typealias Site = SiteRound11Tests.Site

    static let hero = """
        version: 1
        buckets:
          images2: {path: images2}
          site: {path: site}
        derivatives:
          - name: B
            from: images2/*.jpg
            process: image/resize,w_800/format,webp
            to: site/{name}-800.webp

        """

    @Test func theRefusalDoesNotAdviseBuildingTheSiblingFirstWhenItsRuleReadsAnotherSource() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg", "images2/a.jpg": "landscape.jpg"],
                            manifest: NarrowedNameTakenRound46Tests.manifest(NarrowedNameTakenRound46Tests.widths, index: false))
        defer { site.remove() }
        let first = try site.run(["build"])
        #expect(first.status == 0 && site.files("site") == ["a-480.webp", "a-800.webp"], "\(said(first))")
        try Data(Self.hero.utf8).write(to: site.url("hero.yaml"))
        let refused = try site.run(["build", "hero.yaml"])
        #expect(refused.status != 0, "\(said(refused))")
        #expect(said(refused).contains("site/a-800.webp is an output of") && said(refused).contains("not of this manifest; give this manifest a bucket folder of its own, or pass --overwrite"),
                "\(said(refused))")
        #expect(!said(refused).contains("build derive.yaml first"), "\(said(refused))")
        // Building derive.yaml first indeed changes nothing.
        let sibling = try site.run(["build"])
        #expect(sibling.status == 0 && site.files("site") == ["a-480.webp", "a-800.webp"], "\(said(sibling)) \(site.files("site"))")
    }
}
