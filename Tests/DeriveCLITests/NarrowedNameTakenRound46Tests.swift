import Foundation
import Imaging
import Testing
import TestSupport

/// Attack 46's M2: "widths are not repeated" renamed `w=960` of an 800 px source to
/// `{name}-800.webp`, a name a second rule (a hero image, `resize,w_800` to `{name}-800.webp`)
/// writes too: the planner called its own rename a collision ("site/a-800.webp would be written
/// twice: by A (w=800) ... and by B"), and every build of the site was refused. Across two
/// manifests in one folder the renamed name was the other manifest's recorded output, refused
/// the same way. A narrowed variant never takes a name another derivative writes, or another
/// manifest records: it is planned as written (`a-960.webp`, an 800 px image).
@Suite(.ownThreads) struct NarrowedNameTakenRound46Tests {
    static let widths = """
      - name: A
        from: images/*.jpg
        process: image/resize,w_{w}/format,webp
        matrix: {w: [480, 960]}
        to: site/{name}-{w}.webp

    """
    static let hero = """
      - name: B
        from: images/*.jpg
        process: image/resize,w_800/format,webp
        to: site/{name}-800.webp

    """
    static func manifest(_ rules: String, index: Bool = true) -> String {
        """
        version: 1
        buckets:
          images: {path: images}
          site: {path: site}
        derivatives:
        \(rules)\(index ? "index: site/index.json\n" : "")
        """
    }

    typealias Site = SiteRound11Tests.Site

    /// Each `.webp` of the site folder with its width in pixels.
    static func widths(_ site: Site) throws -> [String: Int] {
        var result: [String: Int] = [:]
        for name in site.files("site") where name.hasSuffix(".webp") {
            result[name] = try Raster.decode(try Data(contentsOf: site.url("site/" + name))).width
        }
        return result
    }

    static func put(_ sample: String, at path: String, in site: Site) throws {
        try? FileManager.default.removeItem(at: site.url(path))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(sample), to: site.url(path))
    }

    /// portrait.jpg is 800 px wide, landscape.jpg 1 200, orientation-1.jpg 300.
    @Test func aNarrowedVariantIsPlannedAsWrittenWhereAnotherRuleWritesItsNewName() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg", "images/b.jpg": "landscape.jpg"], manifest: Self.manifest(Self.widths + Self.hero))
        defer { site.remove() }
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(!said(build).contains("written twice"), "\(said(build))")
        #expect(try Self.widths(site) == ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 800,
                                          "b-480.webp": 480, "b-800.webp": 800, "b-960.webp": 960])
        let explain = try site.run(["explain", "site/a-960.webp"])
        #expect(explain.status == 0 && said(explain).contains("recipe       A (w=960)"), "\(said(explain))")
        #expect(said(explain).contains("narrowed     its source images/a.jpg is 800 px wide, narrower than 960 px: drawn at 800 px, under its name as written, "
            + "since site/a-800.webp, the name that width would give it, is B's output"), "\(said(explain))")
        let hero = try site.run(["explain", "site/a-800.webp"])
        #expect(said(hero).contains("rule         B"), "\(said(hero))")
        let again = try site.run(["build"])
        #expect(again.status == 0 && said(again).contains("Nothing to do"), "\(said(again))")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }

    /// Re-exported narrower, wider, and narrower again (a at 800/1 200, c at 300/1 200): every
    /// build succeeds with exactly the files of the source's width now, the old ones removed,
    /// and a second build finds nothing to do.
    @Test func aSourceGettingNarrowerAndWiderBetweenBuilds() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg", "images/c.jpg": "orientation-1.jpg"], manifest: Self.manifest(Self.widths + Self.hero))
        defer { site.remove() }
        let narrow = ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 800, "c-300.webp": 300, "c-800.webp": 300]
        let wide = ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 960, "c-480.webp": 480, "c-800.webp": 800, "c-960.webp": 960]
        for (step, wideNow) in [false, true, false, true].enumerated() {
            if step > 0 {
                try Self.put(wideNow ? "landscape.jpg" : "portrait.jpg", at: "images/a.jpg", in: site)
                try Self.put(wideNow ? "landscape.jpg" : "orientation-1.jpg", at: "images/c.jpg", in: site)
            }
            let build = try site.run(["build"])
            #expect(build.status == 0, "step \(step): \(said(build))")
            #expect(try Self.widths(site) == (wideNow ? wide : narrow), "step \(step)")
            #expect(site.files("site") == ((wideNow ? wide : narrow).keys.sorted() + ["index.json"]).sorted(), "step \(step): \(site.files("site"))")
            let again = try site.run(["build"])
            #expect(again.status == 0 && said(again).contains("Nothing to do"), "step \(step): \(said(again))")
        }
    }

    /// The hero rule in a second manifest of the same folder, writing into the same bucket
    /// folder: built first, its `a-800.webp` is its recorded output, and derive.yaml's `w=960`
    /// of the 800 px source is planned as written beside it. Both build again to nothing to do.
    @Test func anotherManifestsRecordedOutputIsNeverANarrowedName() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg", "images/b.jpg": "landscape.jpg"], manifest: Self.manifest(Self.widths, index: false))
        defer { site.remove() }
        try Data(Self.manifest(Self.hero, index: false).utf8).write(to: site.url("hero.yaml"))
        let hero = try site.run(["build", "hero.yaml"])
        #expect(hero.status == 0, "\(said(hero))")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(try Self.widths(site) == ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 800,
                                          "b-480.webp": 480, "b-800.webp": 800, "b-960.webp": 960])
        for arguments in [["build"], ["build", "hero.yaml"]] {
            let again = try site.run(arguments)
            #expect(again.status == 0 && said(again).contains("Nothing to do"), "\(arguments): \(said(again))")
        }
        let lock = try String(contentsOf: site.url("derive.lock"), encoding: .utf8)
        #expect(lock.contains("site/a-960.webp") && !lock.contains("site/a-800.webp"), "\(lock)")
    }

    /// The other order: derive.yaml built first never takes `a-800.webp`, which hero.yaml's rule
    /// writes (it renamed `w=960` so, and hero.yaml's build was refused: "site/a-800.webp is an
    /// output of derive.yaml").
    @Test func aNeighbourManifestsRuleNameIsNeverANarrowedName() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg", "images/b.jpg": "landscape.jpg"], manifest: Self.manifest(Self.widths, index: false))
        defer { site.remove() }
        try Data(Self.manifest(Self.hero, index: false).utf8).write(to: site.url("hero.yaml"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(try Self.widths(site) == ["a-480.webp": 480, "a-960.webp": 800, "b-480.webp": 480, "b-960.webp": 960])
        let hero = try site.run(["build", "hero.yaml"])
        #expect(hero.status == 0, "\(said(hero))")
        #expect(try Self.widths(site) == ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 800,
                                          "b-480.webp": 480, "b-800.webp": 800, "b-960.webp": 960])
        for arguments in [["build"], ["build", "hero.yaml"]] {
            let again = try site.run(arguments)
            #expect(again.status == 0 && said(again).contains("Nothing to do"), "\(arguments): \(said(again))")
        }
    }
}

/// Attack 46's low "upw": `derive explain site/p-960.webp` said only "is not an output" for a
/// width a narrower source folds away; it names the source's width and the output built instead.
@Suite(.ownThreads) struct NarrowedExplainRound46Tests {
    @Test func explainNamesTheOutputAFoldedWidthIsBuiltAs() throws {
        let site = try SiteRound11Tests.Site(["images/p.jpg": "portrait.jpg"], manifest: NarrowedNameTakenRound46Tests.manifest("""
              - name: A
                from: images/*.jpg
                process: image/resize,w_{w}/format,webp
                matrix: {w: [480, 960, 1600]}
                to: site/{name}-{w}.webp

            """))
        defer { site.remove() }
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(site.files("site") == ["index.json", "p-480.webp", "p-800.webp"])
        for width in ["960", "1600"] {
            let explain = try site.run(["explain", "site/p-\(width).webp"])
            #expect(explain.status == 1)
            #expect(explain.stderr.contains("site/p-\(width).webp is not built (not an output of derive.yaml): its source images/p.jpg is 800 px wide, "
                + "narrower than the \(width) px the variant w=\(width) of rule A asks for, so that variant is drawn at the source's own width and built as site/p-800.webp"),
                "\(explain.stderr)")
        }
        // A name no variant gives is still just not an output.
        let other = try site.run(["explain", "site/q-960.webp"])
        #expect(other.status == 1 && other.stderr.contains("site/q-960.webp is not an output of derive.yaml") && !other.stderr.contains("px wide"), "\(other.stderr)")
    }
}
