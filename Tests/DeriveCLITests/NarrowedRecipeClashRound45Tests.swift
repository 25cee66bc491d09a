import Foundation
import Imaging
import Testing
import TestSupport

/// Attack 45a's M1: "widths are not repeated" renamed the matrix value of a chain whose leading
/// `resize,w_{w}` covers a narrower source, but `{w}` was used again further down the chain
/// (`crop,w_{w}`): `-960` and `-1100` of a 600 px source both became `-600` with two recipes,
/// the planner called its own rename a collision, and every build of the site stopped. Such
/// variants are planned as written; the rule's other sources are unaffected.
@Suite(.ownThreads) struct NarrowedRecipeClashRound45Tests {
    static func manifest(_ chain: String) -> String {
        """
        version: 1
        buckets:
          images: {path: images}
          site: {path: site}
        derivatives:
          - name: banner
            from: images/*.jpg
            process: \(chain)
            matrix: {w: [480, 960, 1100]}
            to: site/{name}-{w}.webp

        """
    }

    @Test(arguments: ["image/resize,w_{w}/crop,w_{w},h_100,g_center/format,webp", "image/resize,w_{w}/circle,r_{w}/format,webp"])
    func aMatrixValueUsedAgainDownTheChainIsPlannedAsWritten(chain: String) throws {
        let site = try SiteRound11Tests.Site(["images/a.jpg": "landscape.jpg", "images/b.jpg": "cmyk.jpg"], manifest: Self.manifest(chain))
        defer { try? FileManager.default.removeItem(at: site.root) }
        let build = try CLI.run(["build"], in: site.root)
        #expect(build.status == 0, "\(said(build))")
        let names = try FileManager.default.contentsOfDirectory(atPath: site.url("site").path).sorted()
        #expect(names == ["a-1100.webp", "a-480.webp", "a-960.webp", "b-1100.webp", "b-480.webp", "b-960.webp"], "\(names)")
        // Drawn at the source's own width (600 px), under the names written.
        for name in ["b-960.webp", "b-1100.webp"] where chain.contains("crop") {
            let raster = try Raster.decode(try Data(contentsOf: site.url("site/" + name)))
            #expect(raster.width == 600, "\(name): \(raster.width)")
        }
        let check = try CLI.run(["check"], in: site.root)
        #expect(check.status == 0, "\(said(check))")
    }

    /// The plain chain still plans one output for the widths a narrower source leaves alone.
    @Test func aPlainResizeStillPlansOneOutputAtTheSourcesWidth() throws {
        let site = try SiteRound11Tests.Site(["images/b.jpg": "cmyk.jpg"], manifest: Self.manifest("image/resize,w_{w}/format,webp"))
        defer { try? FileManager.default.removeItem(at: site.root) }
        let build = try CLI.run(["build"], in: site.root)
        #expect(build.status == 0, "\(said(build))")
        let names = try FileManager.default.contentsOfDirectory(atPath: site.url("site").path).sorted()
        #expect(names == ["b-480.webp", "b-600.webp"], "\(names)")
    }
}
