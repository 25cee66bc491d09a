import Foundation
import Imaging
import Testing
import TestSupport

/// Attack 48's F1: narrowing a variant to its source's width (`w=960` of an 800 px source built
/// as `a-800.webp`) set the width of EVERY resize of the chain, and renamed the variant whatever
/// else the chain did with `{w}`: `resize,m_fixed,h_100` further down became `w_800,h_100` (an
/// 800x100 image where the chain as written gives 100x100), `resize,p_50` an InternalError, a
/// second `resize,w_{w},limit_0` (which enlarges to 960) and `circle,r_{w}` were renamed to
/// `-800`. Only the leading resize is set to the source's width, and only when `{w}` is used
/// nowhere else in the chain; otherwise the variant is planned as written.
@Suite(.ownThreads) struct NarrowedChainRound48Tests {
    typealias Site = SiteRound11Tests.Site

    /// portrait.jpg is 800x1200.
    @Test func onlyTheLeadingResizeIsNarrowedAndOnlyWhenTheWidthIsUsedNowhereElse() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg"], manifest: NarrowedNameTakenRound46Tests.manifest("""
              - name: fixed
                from: images/*.jpg
                process: image/resize,w_{w}/resize,m_fixed,h_100/format,webp
                matrix: {w: [480, 960]}
                to: site/{name}-{w}.webp
              - name: half
                from: images/*.jpg
                process: image/resize,w_{w}/resize,p_50/format,webp
                matrix: {w: [960]}
                to: site/{name}-p{w}.webp
              - name: enlarged
                from: images/*.jpg
                process: image/resize,w_{w}/resize,w_{w},limit_0/format,webp
                matrix: {w: [960]}
                to: site/{name}-l{w}.webp
              - name: circle
                from: images/*.jpg
                process: image/resize,w_{w}/circle,r_{w}/format,webp
                matrix: {w: [960]}
                to: site/{name}-c{w}.webp

            """, index: false))
        defer { site.remove() }
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        var sizes: [String: [Int]] = [:]
        for name in site.files("site") {
            let raster = try Raster.decode(try Data(contentsOf: site.url("site/" + name)))
            sizes[name] = [raster.width, raster.height]
        }
        // Narrowed: the later resize as written (m_fixed with h only: 100x100, as for w=480), halved.
        // As written: the second resize uses {w} (enlarges to 960), the circle's radius is {w}.
        #expect(sizes == ["a-480.webp": [100, 100], "a-800.webp": [100, 100], "a-p800.webp": [400, 600],
                          "a-l960.webp": [960, 1440], "a-c960.webp": [799, 799]], "\(sizes)")
        let explain = try site.run(["explain", "site/a-800.webp"])
        #expect(said(explain).contains("image/resize,m_lfit,w_800,limit_1,color_FFFFFF/resize,m_fixed,h_100"), "\(said(explain))")
        let again = try site.run(["build"])
        #expect(again.status == 0 && said(again).contains("Nothing to do"), "\(said(again))")
    }
}
