import Foundation
import Imaging
import Testing
import TestSupport

/// Attack 48's F4: a GIF whose logical screen is narrower than its images was taken for the
/// screen's width, which libvips does not show (it loads the images' size): `spinner.gif` (160 px
/// images) with its screen set to 64 px was planned as one output `s-64.webp`, drawn 64 px wide
/// by `resize,w_64`, for the variants w=100 and w=200. Such a GIF's size is unknown to the
/// planner: every variant is planned as written.
@Suite(.ownThreads) struct NarrowedGIFScreenRound48Tests {
    typealias Site = SiteRound11Tests.Site

    @Test func aGIFWhoseImagesReachPastItsScreenIsPlannedAsWritten() throws {
        let site = try Site([:], manifest: NarrowedNameTakenRound46Tests.manifest("""
              - name: A
                from: images/*.gif
                process: image/resize,w_{w}/format,webp
                matrix: {w: [100, 200]}
                to: site/{name}-{w}.webp

            """, index: false))
        defer { site.remove() }
        var gif = try Data(contentsOf: CLI.samples.appendingPathComponent("spinner.gif"))
        #expect(gif[6] == 160 && gif[7] == 0)
        gif[6] = 64   // the logical screen's width, little-endian
        try FileManager.default.createDirectory(at: site.url("images"), withIntermediateDirectories: true)
        try gif.write(to: site.url("images/s.gif"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(try NarrowedNameTakenRound46Tests.widths(site) == ["s-100.webp": 100, "s-200.webp": 160])
    }
}
