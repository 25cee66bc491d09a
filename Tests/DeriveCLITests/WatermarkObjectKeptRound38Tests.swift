import Foundation
import Testing
import TestSupport

/// Attack 37b's finding 12: an old output a new rule draws as its watermark object was kept
/// (right) but named "now a control file of this manifest"; it is a watermark object, read by
/// that rule: plan and build say so.
@Suite(.ownThreads, .serialized) struct WatermarkObjectKeptRound38Tests {
    typealias Site = SiteRound11Tests.Site

    static let head = """
        version: 1
        buckets:
          src: {path: src}
          gen: {path: gen}
          out: {path: out}
        derivatives:

        """
    /// Rule `logo` renders gen/logo.png; rule `stamped` reads it as its watermark (logo.png in gen).
    static let logo = head + """
          - name: logo
            from: src/logo.png
            process: image/resize,w_80
            to: gen/{name}.png

        """
    static let stamped = head + """
          - name: stamped
            from: gen/photos/*.jpg
            process: image/resize,w_200/watermark,image_bG9nby5wbmc,g_se
            to: out/{name}.jpg

        """

    @Test func anOldOutputNowAWatermarkObjectIsNamedAsOne() throws {
        let site = try Site(["src/logo.png": "logo-alpha.png", "gen/photos/lake.jpg": "landscape.jpg"], manifest: Self.logo)
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let logo = try Data(contentsOf: site.url("gen/logo.png"))
        try Data(Self.stamped.utf8).write(to: site.url("derive.yaml"))
        let plan = try site.run(["plan"])
        let said = text(plan.stdout) + plan.stderr
        #expect(said.contains("= gen/logo.png  kept: gen/logo.png is now the watermark object rule 'stamped' draws: the file stays, only its record as an output is dropped"), "\(said)")
        #expect(!said.contains("control file"), "\(said)")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("kept 1 in place"), "\(text(build.stdout))")
        #expect(try Data(contentsOf: site.url("gen/logo.png")) == logo, "the watermark object changed")
    }
}
