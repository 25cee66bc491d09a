import Foundation
import Testing
import TestSupport

/// Attack 16 (static) V6: a watermark object the manifest draws is an input like a source, but
/// only sources and control files were kept from a lock line's deletion: in a fresh clone one
/// hostile line (its digest stated, its path one a rule's `to:` can give) deleted the watermark,
/// and every later build failed. An object a rule reads is never deleted or written over.
@Suite(.ownThreads, .serialized) struct WatermarkObjectProtectionTests {
    typealias Site = SiteRound11Tests.Site
    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    static let manifest = """
        version: 1
        buckets:
          site: {path: site}
        derivatives:
          - name: hero
            from: site/photos/*.jpg
            process: image/resize,w_60/watermark,image_d20tbG9nby5wbmc/format,{f}
            matrix: {v: [w60], f: [webp]}
            to: site/{name}-{v}.{f}

        """

    @Test func aHostileLockLineNeverDeletesTheWatermarkObject() throws {
        let site = try Site(["site/photos/lake.jpg": "landscape.jpg", "site/wm-logo.png": "logo-alpha.png"], manifest: Self.manifest)
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(first.stderr)")
        let logo = try Data(contentsOf: site.url("site/wm-logo.png"))
        try site.freshClone()
        try LockOwnershipRound13Tests.addLockLines(site, [("site/wm-logo.png", "png", "site/wm-logo.png")])
        let plan = try site.run(["plan"])
        #expect(!(Self.text(plan.stdout) + plan.stderr).contains("- site/wm-logo.png"), "\(Self.text(plan.stdout)) \(plan.stderr)")
        _ = try site.run(["build"])
        #expect(try Data(contentsOf: site.url("site/wm-logo.png")) == logo, "build deleted the watermark object")
        try LockOwnershipRound13Tests.addLockLines(site, [("site/wm-logo.png", "png", "site/wm-logo.png")])
        try? site.freshClone()
        _ = try site.run(["clean"])
        #expect(try Data(contentsOf: site.url("site/wm-logo.png")) == logo, "clean deleted the watermark object")
    }
}
