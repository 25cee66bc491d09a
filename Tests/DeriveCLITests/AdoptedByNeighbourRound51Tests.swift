import Foundation
import Testing
import TestSupport

/// Issue #9, attack 50b's H2, M2, L3, L7, L8. derive.yaml narrows `w=960` of an 800 px source to
/// `a-800.webp`; hero.yaml beside it writes that very name (the same bytes unless `quality` says
/// otherwise) and took the file over. When hero's build took it over by adoption (hero.lock came
/// with a pull), the file is still the one derive.yaml installed (same inode), so derive.yaml's
/// state called it its own: once hero's state was lost, derive.yaml's build and clean deleted it
/// although hero.lock and hero's rule still named it (H2), and in a fresh clone without hero.yaml
/// the name narrowed again and clean deleted the file hero.lock records (M2). A neighbour's lock
/// line for the file plus its rule writing the name (or its lock alone, its manifest gone) puts
/// the file in doubt: never deleted, named.
@Suite(.ownThreads) struct AdoptedByNeighbourRound51Tests {
    typealias Site = SiteRound11Tests.Site
    typealias Shape = NarrowedNameNeighbourInDoubtRound50Tests

    /// derive.yaml built; then hero.yaml arrives with the hero.lock its build wrote in another
    /// folder (a pull), and `build --overwrite hero.yaml` adopts derive.yaml's `a-800.webp`.
    static func adoptedByHero() throws -> Site {
        let site = try Site(["images/a.jpg": "portrait.jpg"], manifest: Shape.manifest(Shape.widths()))
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0 && site.files("site") == ["a-480.webp", "a-800.webp"], "\(said(first)) \(site.files("site"))")
        let hero = Shape.manifest(Shape.hero())
        let elsewhere = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        try FileManager.default.createDirectory(at: elsewhere.appendingPathComponent("images"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: site.url("images/a.jpg"), to: elsewhere.appendingPathComponent("images/a.jpg"))
        try Data(hero.utf8).write(to: elsewhere.appendingPathComponent("hero.yaml"))
        let pulled = try CLI.run(["build", "-q", "hero.yaml"], in: elsewhere)
        #expect(pulled.status == 0, "\(said(pulled))")
        try FileManager.default.copyItem(at: elsewhere.appendingPathComponent("hero.lock"), to: site.url("hero.lock"))
        try Data(hero.utf8).write(to: site.url("hero.yaml"))
        let adopted = try site.run(["build", "--overwrite", "hero.yaml"])
        #expect(adopted.status == 0 && said(adopted).contains("adopted 1 from hero.lock"), "\(said(adopted))")
        return site
    }

    static func inode(_ site: Site, _ path: String) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: site.url(path).path))?[.systemFileNumber] as? UInt64
    }

    /// H2: hero's state lost (its lock readable, or holding a merge conflict); derive.yaml's plan
    /// planned the adopted file's deletion, and its build (or clean) deleted it. Now it is left in
    /// place in doubt, the very file, and every command names hero.lock.
    @Test(arguments: ["build", "clean", "conflicted lock, build"])
    func aFileANeighbourAdoptedIsNeverDeletedOnceItsStateIsLost(variant: String) throws {
        let site = try Self.adoptedByHero()
        defer { site.remove() }
        let inode = Self.inode(site, "site/a-800.webp"), bytes = try Data(contentsOf: site.url("site/a-800.webp"))
        try FileManager.default.removeItem(at: site.url(".derive/hero"))
        if variant.hasPrefix("conflicted") {
            let text = try String(contentsOf: site.url("hero.lock"), encoding: .utf8)
            try Data("<<<<<<< HEAD\n\(text)=======\n\(text)>>>>>>> other\n".utf8).write(to: site.url("hero.lock"))
        }
        let plan = try site.run(["plan"])
        #expect(!said(plan).contains("site/a-800.webp  delete"), "\(said(plan))")
        #expect(said(plan).contains("site/a-800.webp  left") && said(plan).contains("in doubt: hero.lock records the file"), "\(said(plan))")
        let acted = try site.run([variant.hasSuffix("clean") ? "clean" : "build"])
        #expect(acted.status == 0, "\(said(acted))")
        #expect(Self.inode(site, "site/a-800.webp") == inode, "\(variant) deleted or replaced hero's file: \(said(acted)) \(site.files("site"))")
        #expect((try? Data(contentsOf: site.url("site/a-800.webp"))) == bytes)
        #expect(said(acted).contains("in doubt: hero.lock records the file") && said(acted).contains("hero.yaml's rule 'B' writes that name"), "\(said(acted))")
        // Never offered for release while in doubt.
        #expect(!said(acted).contains("derive release site/a-800.webp"), "\(said(acted))")
    }

    /// M2 and L7: a fresh clone with hero.yaml removed and hero.lock kept. With the same bytes the
    /// name narrowed again, the file was adopted as derive.yaml's, and clean deleted it while
    /// saying hero.lock was "kept with what it records"; with other bytes the plan named hero.yaml
    /// as recording the file, though it is gone. Now w=960 is built as written, the file is left
    /// to hero.lock, named as the lock of a manifest no longer there, and neither build nor clean removes it.
    @Test(arguments: ["", "/quality,q_40"])
    func aGoneNeighboursLockKeepsItsFileInAFreshClone(quality: String) throws {
        let site = try Shape.takenOver(quality: quality)
        defer { site.remove() }
        let bytes = try Data(contentsOf: site.url("site/a-800.webp"))
        try site.freshClone()
        try FileManager.default.removeItem(at: site.url("hero.yaml"))
        let plan = try site.run(["plan"])
        #expect(plan.status == 0, "\(said(plan))")
        #expect(said(plan).contains("site/a-960.webp  create"), "\(said(plan))")
        #expect(said(plan).contains("hero.lock (the lock of hero.yaml, which is no longer there) records the file as its output"), "\(said(plan))")
        #expect(!said(plan).contains("and hero.yaml records the file"), "\(said(plan))")
        let clean = try site.run(["clean"])
        #expect((try? Data(contentsOf: site.url("site/a-800.webp"))) == bytes, "clean deleted hero.lock's file: \(said(clean)) \(site.files("site"))")
        #expect(String(decoding: try Data(contentsOf: site.url("hero.lock")), as: UTF8.self).contains("site/a-800.webp"))
        let build = try site.run(["build"])
        #expect(build.status == 0 && site.files("site") == ["a-480.webp", "a-800.webp", "a-960.webp"], "\(said(build)) \(site.files("site"))")
        #expect((try? Data(contentsOf: site.url("site/a-800.webp"))) == bytes, "\(said(build))")
    }

    /// L3: hero took the name over by rewriting the file (same bytes), then its lock and state were
    /// lost. clean called hero's file "a restored copy" and advised a build to record it, which
    /// left it in doubt instead: a circle. Now clean says it is in doubt, as the build does.
    @Test func cleanSaysAFileANeighboursRuleWritesIsInDoubtNotARestoredCopy() throws {
        let site = try Shape.takenOver()
        defer { site.remove() }
        try FileManager.default.removeItem(at: site.url("hero.lock"))
        try FileManager.default.removeItem(at: site.url(".derive/hero"))
        let clean = try site.run(["clean"])
        #expect(site.exists("site/a-800.webp"), "\(said(clean))")
        #expect(said(clean).contains("in doubt: hero.yaml's rule 'B' writes that name"), "\(said(clean))")
        #expect(!said(clean).contains("restored copy") && !said(clean).contains("derive release site/a-800.webp"), "\(said(clean))")
    }

    /// L8: an old output whose file is already gone: plan says only its record is dropped; check
    /// and explain said "delete". All three word it alike now.
    @Test func checkAndExplainSayAnAlreadyGoneFilesRecordIsOnlyDropped() throws {
        let rule = "  - {name: r, from: \"images/*.jpg\", process: \"image/resize,w_16/format,webp\", to: \"site/{name}.webp\"}\n"
        let site = try Site(["images/a.jpg": "orientation-1.jpg", "images/b.jpg": "orientation-1.jpg"], manifest: Shape.manifest(rule))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: site.url("images/b.jpg"))
        try FileManager.default.removeItem(at: site.url("site/b.webp"))
        let note = "site/b.webp  delete: no longer produced by the manifest (file already gone: only its record is dropped)"
        let plan = try site.run(["plan"])
        #expect(said(plan).contains(note), "\(said(plan))")
        let check = try site.run(["check"])
        #expect(check.status == 1 && said(check).contains(note.replacingOccurrences(of: "  delete", with: ": delete")), "\(said(check))")
        let explain = try site.run(["explain", "site/b.webp"])
        #expect(said(explain).contains("will be deleted: no longer produced by the manifest (file already gone: only its record is dropped)"), "\(said(explain))")
    }
}
