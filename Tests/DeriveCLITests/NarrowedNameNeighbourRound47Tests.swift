import Foundation
import Testing
import TestSupport

/// Attack 46c's t11: a narrowed name's fate (`a-800.webp` for `w=960` of an 800 px source, or
/// `a-960.webp` kept as written) depends on whether a manifest beside this one writes or records
/// that name. When the neighbour gave the name up (its rule changed, rebuilt), or took it, the
/// no-op witness, the touched-only path and the edited-sources path still answered from what
/// they knew: "No changes" while a fresh plan wanted `a-800.webp`. Each fast path must plan what
/// the full plan plans, on the same tree.
@Suite(.ownThreads) struct NarrowedNameNeighbourRound47Tests {
    typealias Site = SiteRound11Tests.Site

    static func hero(_ width: Int) -> String {
        NarrowedNameTakenRound46Tests.manifest("""
              - name: B
                from: images/*.jpg
                process: image/resize,w_\(width)/format,webp
                to: site/{name}-\(width).webp

            """, index: false)
    }

    static func text(_ result: CLI.Result) -> String { String(decoding: result.stdout, as: UTF8.self) }

    /// `plan` through whatever fast path the tree allows, then `plan` in full (the witness and
    /// its inputs' record moved aside, then back, so later steps keep their fast paths): the same
    /// lines, and they are not "no changes".
    static func fastPlanIsTheFullPlan(_ site: Site, _ step: String) throws {
        let fast = try site.run(["plan"])
        let witness = site.url(".derive/derive/noop-witness"), inputs = site.url(".derive/derive/noop-witness.inputs")
        #expect(FileManager.default.fileExists(atPath: witness.path), "\(step): no witness to test")
        let saved = [witness, inputs].filter { FileManager.default.fileExists(atPath: $0.path) }
        for file in saved { try FileManager.default.moveItem(at: file, to: file.appendingPathExtension("aside")) }
        let full = try site.run(["plan"])
        for file in saved { try FileManager.default.moveItem(at: file.appendingPathExtension("aside"), to: file) }
        #expect(fast.status == full.status && text(fast) == text(full), "\(step): fast\n\(said(fast))\nfull\n\(said(full))")
        #expect(!text(full).contains("No changes"), "\(step): \(said(full))")
    }

    static func buildsTo(_ site: Site, _ widths: [String: Int]) throws {
        for arguments in [["build"], ["build", "hero.yaml"]] {
            let build = try site.run(arguments)
            #expect(build.status == 0, "\(arguments): \(said(build))")
        }
        #expect(try NarrowedNameTakenRound46Tests.widths(site) == widths)
        #expect(site.files("site") == widths.keys.sorted(), "\(site.files("site"))")
        for arguments in [["build"], ["build", "hero.yaml"]] {
            let again = try site.run(arguments)
            #expect(again.status == 0 && said(again).contains("Nothing to do"), "\(arguments): \(said(again))")
        }
    }

    /// hero.yaml writes `a-800.webp`, so derive.yaml keeps `a-960.webp` as written; then hero.yaml
    /// gives the name up (`w_700` now) and is rebuilt. Plain no-op, a touched source (same bytes)
    /// and another source's bytes edited all plan `a-800.webp` as the full plan does, and the
    /// build folds `a-960.webp` into it.
    @Test func aNeighbourGivingTheNameUpFoldsTheVariantAgain() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg", "images/b.jpg": "orientation-1.jpg"],
                            manifest: NarrowedNameTakenRound46Tests.manifest(NarrowedNameTakenRound46Tests.widths, index: false))
        defer { site.remove() }
        try Data(Self.hero(800).utf8).write(to: site.url("hero.yaml"))
        try Self.buildsTo(site, ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 800, "b-300.webp": 300, "b-800.webp": 300])
        try Data(Self.hero(700).utf8).write(to: site.url("hero.yaml"))
        let hero = try site.run(["build", "hero.yaml"])
        #expect(hero.status == 0, "\(said(hero))")
        try Self.fastPlanIsTheFullPlan(site, "witness")
        // Same bytes, new stat: the touched-only path.
        let touched = try CLI.run(["-c", "touch images/a.jpg"], in: site.root, executable: "/bin/sh")
        #expect(touched.status == 0)
        try Self.fastPlanIsTheFullPlan(site, "touched")
        // Another source's bytes: the edited-sources path (a.jpg rebuilt from its records).
        try NarrowedNameTakenRound46Tests.put("orientation-3.jpg", at: "images/b.jpg", in: site)
        try Self.fastPlanIsTheFullPlan(site, "edited")
        try Self.buildsTo(site, ["a-480.webp": 480, "a-700.webp": 700, "a-800.webp": 800, "b-300.webp": 300, "b-700.webp": 300])
    }

    /// The other order: derive.yaml renamed `w=960` to `a-800.webp`; then hero.yaml takes that
    /// name (not built yet: its rule writes it). derive.yaml plans `a-960.webp` as written on
    /// every path, and both manifests build to their files.
    @Test func aNeighbourTakingTheNameUnfoldsTheVariant() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg", "images/b.jpg": "orientation-1.jpg"],
                            manifest: NarrowedNameTakenRound46Tests.manifest(NarrowedNameTakenRound46Tests.widths, index: false))
        defer { site.remove() }
        try Data(Self.hero(700).utf8).write(to: site.url("hero.yaml"))
        try Self.buildsTo(site, ["a-480.webp": 480, "a-700.webp": 700, "a-800.webp": 800, "b-300.webp": 300, "b-700.webp": 300])
        try Data(Self.hero(800).utf8).write(to: site.url("hero.yaml"))
        try Self.fastPlanIsTheFullPlan(site, "witness")
        let touched = try CLI.run(["-c", "touch images/a.jpg"], in: site.root, executable: "/bin/sh")
        #expect(touched.status == 0)
        try Self.fastPlanIsTheFullPlan(site, "touched")
        try Self.buildsTo(site, ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 800, "b-300.webp": 300, "b-800.webp": 300])
    }
}
