import Foundation
import Manifest
import Testing
import TestSupport
@testable import derive

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

    /// Attack 46c's t32: derive.yaml renamed `w=960` to `a-800.webp`; hero.yaml, made later, was
    /// refused that name (derive.yaml's output) and took it over with `--overwrite` (other bytes:
    /// `q_50`). derive.yaml's every build was then refused ("an output of hero.yaml") for the
    /// delete of its old record's file. Now it drops only its record, keeps `w=960` as written,
    /// says so, and both manifests settle to nothing to do.
    @Test func aNeighbourTakingTheNameOverWithOverwriteSettles() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg"],
                            manifest: NarrowedNameTakenRound46Tests.manifest(NarrowedNameTakenRound46Tests.widths, index: false))
        defer { site.remove() }
        let first = try site.run(["build"])
        #expect(first.status == 0, "\(said(first))")
        #expect(try NarrowedNameTakenRound46Tests.widths(site) == ["a-480.webp": 480, "a-800.webp": 800])
        try Data(Self.hero(800).replacingOccurrences(of: "w_800/", with: "w_800/quality,q_50/").utf8).write(to: site.url("hero.yaml"))
        let refused = try site.run(["build", "hero.yaml"])
        #expect(refused.status != 0 && said(refused).contains("is an output of"), "\(said(refused))")
        let taken = try site.run(["build", "--overwrite", "hero.yaml"])
        #expect(taken.status == 0, "\(said(taken))")
        let heroBytes = try Data(contentsOf: site.url("site/a-800.webp"))
        let plan = try site.run(["plan"])
        #expect(plan.status == 0 && said(plan).contains("site/a-800.webp is now an output of hero.yaml"), "\(said(plan))")
        let build = try site.run(["build"])
        #expect(build.status == 0 && said(build).contains("kept 1 in place"), "\(said(build))")
        #expect(try NarrowedNameTakenRound46Tests.widths(site) == ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 800])
        #expect(try Data(contentsOf: site.url("site/a-800.webp")) == heroBytes)
        #expect(!site.lock().contains("site/a-800.webp"), "\(site.lock())")
        for arguments in [["build"], ["build", "hero.yaml"], ["check"], ["check", "hero.yaml"]] {
            let again = try site.run(arguments)
            #expect(again.status == 0, "\(arguments): \(said(again))")
            if arguments[0] == "build" { #expect(said(again).contains("Nothing to do"), "\(arguments): \(said(again))") }
        }
    }
}

/// Attack 46c's t15: `derive build --watch` did not notice a new manifest beside the watched one
/// (its events were not a file the manifest or the rules read), though it writes the name the
/// watched manifest's narrowing gave (`a-1200.webp` for `w=1600` of a 1 200 px source): the watch
/// rebuilds when a manifest in its folder is made, edited or removed, or a neighbour's lock changes.
@Suite(.ownThreads, .serialized) struct WatchNeighbourManifestRound47Tests {
    static let manifest = """
        version: 1
        buckets:
          photos: {path: photos}
        derivatives:
          - name: A
            from: photos/src/*.jpg
            process: image/resize,w_{w}/format,webp
            matrix: {w: [480, 1600]}
            to: photos/out/{name}-{w}.webp

        """
    static let hero = """
        version: 1
        buckets:
          photos: {path: photos}
        derivatives:
          - name: B
            from: photos/src/*.jpg
            process: image/resize,w_1200/format,webp
            to: photos/out/{name}-1200.webp

        """

    @Test func whichEventsBesideTheManifestAreChanges() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("derive.yaml").path
        try Data(Self.manifest.utf8).write(to: URL(literalFilePath: path))
        try Data(Self.hero.utf8).write(to: folder.appendingPathComponent("hero.yaml"))
        try Data("not a manifest\n".utf8).write(to: folder.appendingPathComponent("notes.yaml"))
        try Data("{\"name\": \"site\"}".utf8).write(to: folder.appendingPathComponent("package.json"))
        for lock in ["hero.lock", "yarn.lock"] { try Data("x\n".utf8).write(to: folder.appendingPathComponent(lock)) }
        let manifest = try #require(ManifestLoader().load(path).manifest)
        let watched = WatchMode.watched(manifest, manifestPath: path)
        let project = WatchMode.real(path) as NSString
        func relevant(_ name: String) -> Bool {
            let event = FolderWatcher.Event(path: project.deletingLastPathComponent + "/" + name, isFolder: false, appeared: false, moved: false, attributes: false)
            return WatchMode.isRelevant(event, watched: watched, written: [:], readability: WatchMode.Readability())
        }
        // A neighbour manifest, one removed (gone now), and the neighbour's lock.
        #expect(relevant("hero.yaml") && relevant("gone.yml") && relevant("hero.lock"))
        // Not a manifest, another tool's lock.
        #expect(!relevant("notes.yaml") && !relevant("package.json") && !relevant("yarn.lock"))
    }

    @Test func aNewNeighbourWritingTheNarrowedNameIsBuiltAtOnce() throws {
        let watch = try WatchSession(manifestText: Self.manifest)
        defer { watch.remove() }
        // The 1 200 px source: w=1600 is drawn at 1 200 px as a-1200.webp.
        #expect(watch.wait { watch.size("a-1200.webp")?.width == 1200 && watch.lines.count == 1 }, "\(watch.lines) \(watch.standardError)")
        let before = watch.lines.count
        try Data(Self.hero.utf8).write(to: watch.root.appendingPathComponent("hero.yaml"))
        // Planned as written now: a-1600.webp, a 1 200 px image; a-1200.webp is hero.yaml's to write.
        #expect(watch.wait(20) { watch.size("a-1600.webp")?.width == 1200 && watch.size("a-1200.webp") == nil && watch.lines.count > before },
                "\(watch.lines) \(watch.standardError)")
        #expect(watch.lines.dropFirst(before).first?.contains("hero.yaml") == true, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }
}
