import Access
import DeriveServer
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import derive

/// Attack 49b's F1, F2, F3, F8: derive.yaml narrowed `w=960` of an 800 px source to `a-800.webp`,
/// and hero.yaml beside it took that name over with `--overwrite`. While hero's lock cannot be
/// read (a merge-conflict marker, a truncated file) and its state is lost, whose the file is
/// stays in doubt: derive.yaml's build keeps it as left in place (private) even where git proves
/// the bytes committed (git proves they are recoverable, not whose they are), its serve answers
/// it privately, and plan, check and explain say why. Once hero's lock reads again, check fails
/// as `plan --detailed-exitcode` does until the build drops the line.
@Suite(.ownThreads) struct NarrowedNameNeighbourInDoubtRound50Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(_ rule: String, siteACL: String = "") -> String {
        """
        version: 1
        buckets:
          images: {path: images}
          site: {path: site\(siteACL)}
        derivatives:
        \(rule)
        """
    }

    /// A `w: [480, 960]` set: for portrait.jpg (800 px) `w=960` is built as `a-800.webp`.
    static func widths(acl: String = "") -> String {
        """
          - name: A
            from: images/*.jpg
            process: image/resize,w_{w}/format,webp
            matrix: {w: [480, 960]}
            to: site/{name}-{w}.webp\(acl)

        """
    }

    /// hero.yaml's rule writes `a-800.webp` (the same bytes as derive.yaml's narrowed output
    /// unless `quality` says otherwise).
    static func hero(quality: String = "", acl: String = "") -> String {
        """
          - name: B
            from: images/*.jpg
            process: image/resize,w_800\(quality)/format,webp
            to: site/{name}-800.webp\(acl)

        """
    }

    /// derive.yaml built, then hero.yaml built over its narrowed output with `--overwrite`.
    static func takenOver(quality: String = "", siteACL: String = "", ruleACL: String = "", heroSiteACL: String = "", heroACL: String = "") throws -> Site {
        let site = try Site(["images/a.jpg": "portrait.jpg"], manifest: Self.manifest(Self.widths(acl: ruleACL), siteACL: siteACL))
        let first = try site.run(["build"])
        #expect(first.status == 0 && site.files("site") == ["a-480.webp", "a-800.webp"], "\(said(first)) \(site.files("site"))")
        try Data(Self.manifest(Self.hero(quality: quality, acl: heroACL), siteACL: heroSiteACL).utf8).write(to: site.url("hero.yaml"))
        let takeOver = try site.run(["build", "hero.yaml", "--overwrite"])
        #expect(takeOver.status == 0, "\(said(takeOver))")
        return site
    }

    /// F1 and F8: git proves derive.yaml's lock line (the bytes are committed at HEAD), but
    /// hero.lock cannot be read: the build keeps the file, and plan, check and explain say why.
    @Test func gitProofDoesNotDeleteANarrowedNameWhileTheNeighboursLockCannotBeRead() throws {
        let site = try Self.takenOver()
        defer { site.remove() }
        try GitProofCLITests.commitAll(site.root)
        try site.freshClone()
        let heroLock = try Data(contentsOf: site.url("hero.lock"))
        try heroLock.prefix(150).write(to: site.url("hero.lock"))
        let plan = try site.run(["plan"])
        #expect(plan.status == 0, "\(said(plan))")
        #expect(!said(plan).contains("site/a-800.webp  delete") && said(plan).contains("0 to delete"), "\(said(plan))")
        #expect(said(plan).contains("site/a-800.webp  left: known only from derive.lock"), "\(said(plan))")
        #expect(said(plan).contains("hero.lock cannot be read"), "\(said(plan))")
        let check = try site.run(["check"])
        #expect(said(check).contains("site/a-800.webp  left: known only from derive.lock") && said(check).contains("hero.lock cannot be read"), "\(said(check))")
        let explain = try site.run(["explain", "site/a-800.webp"])
        #expect(said(explain).contains("hero.lock cannot be read"), "\(said(explain))")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(site.exists("site/a-800.webp"), "\(said(build)) \(site.files("site"))")
        #expect(site.lock().contains("\"left\":\"site/a-800.webp\""), "\(site.lock())")
        #expect(said(build).contains("hero.lock cannot be read"), "\(said(build))")
    }

    /// F1: hero.lock reads, but hero.yaml's rule writes that very name: its rule, not a lock,
    /// says the file may be hero's; git proof does not make it derive.yaml's to delete.
    @Test func gitProofDoesNotDeleteANameALoadingNeighboursRuleWrites() throws {
        let site = try Self.takenOver()
        defer { site.remove() }
        try GitProofCLITests.commitAll(site.root)
        try site.freshClone()
        try FileManager.default.removeItem(at: site.url("hero.lock"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(site.exists("site/a-800.webp"), "\(said(build)) \(site.files("site"))")
        #expect(said(build).contains("hero.yaml's rule 'B' writes"), "\(said(build))")
    }

    /// F2: hero.yaml and hero.lock with merge markers, hero's state gone: derive.yaml's state
    /// records `a-800.webp` public, but the file there is hero's private output (other bytes, another
    /// file): derive.yaml's serve answers it privately, and leaves it out of anonymous listings.
    @Test func serveAnswersANeighboursOutputPrivatelyWhileItIsInDoubt() throws {
        let site = try Self.takenOver(quality: "/quality,q_30", siteACL: ", acl: public-read", ruleACL: "\n    acl: public-read",
                                      heroSiteACL: ", acl: private", heroACL: "\n    acl: private")
        defer { site.remove() }
        for name in ["hero.yaml", "hero.lock"] {
            let text = try String(contentsOf: site.url(name), encoding: .utf8)
            try Data("<<<<<<< HEAD\n\(text)=======\n\(text)>>>>>>> other\n".utf8).write(to: site.url(name))
        }
        try FileManager.default.removeItem(at: site.url(".derive/hero"))
        #expect(try Self.anonymous(site, "GET", "/site/a-480.webp").status == 200)
        #expect(try Self.anonymous(site, "GET", "/site/a-800.webp").status == 403)
        let listing = String(decoding: try Self.anonymous(site, "GET", "/site/").body, as: UTF8.self)
        #expect(listing.contains("<Key>a-480.webp</Key>") && !listing.contains("<Key>a-800.webp</Key>"), "\(listing)")
        // Its lock cut short, no line of it left to read: still in doubt, still private.
        let heroLock = try Data(contentsOf: site.url("hero.lock"))
        try heroLock.prefix(40).write(to: site.url("hero.lock"))
        #expect(try Self.anonymous(site, "GET", "/site/a-800.webp").status == 403)
        #expect(try Self.anonymous(site, "GET", "/site/a-480.webp").status == 200)
    }

    /// F3: after hero.lock is repaired, derive.yaml's lock keeps a `left` line the build drops:
    /// check fails as `plan --detailed-exitcode` does, until the build rewrites the lock.
    @Test func checkFailsWhileTheBuildWouldDropALeftLineTheNeighbourNowRecords() throws {
        let site = try Self.takenOver()
        defer { site.remove() }
        let heroLock = try Data(contentsOf: site.url("hero.lock"))
        try (Data("<<<<<<< HEAD\n".utf8) + heroLock + Data(">>>>>>> x\n".utf8)).write(to: site.url("hero.lock"))
        try site.freshClone()
        let doubt = try site.run(["build"])
        #expect(doubt.status == 0 && site.lock().contains("\"left\":\"site/a-800.webp\""), "\(said(doubt)) \(site.lock())")
        // F8: hero's output is not offered for release while hero.lock cannot be read.
        #expect(said(doubt).contains("hero.lock cannot be read") && !said(doubt).contains("derive release site/a-800.webp"), "\(said(doubt))")
        try heroLock.write(to: site.url("hero.lock"))
        let plan = try site.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 2, "\(said(plan))")
        let check = try site.run(["check"])
        #expect(check.status == 1, "\(said(check))")
        #expect(said(check).contains("site/a-800.webp") && said(check).contains("hero.yaml records the file"), "\(said(check))")
        let build = try site.run(["build"])
        #expect(build.status == 0 && !site.lock().contains("\"left\""), "\(said(build)) \(site.lock())")
        let again = try site.run(["check"])
        #expect(again.status == 0, "\(said(again))")
    }

    /// An anonymous request to derive.yaml's serve.
    static func anonymous(_ site: Site, _ method: String, _ target: String) throws -> ServiceResponse {
        let manifest = try #require(ManifestLoader().load(site.url("derive.yaml").path).manifest)
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: [:], region: "cn-hangzhou"), engine: Engine(),
                                        cacheFolder: site.url("cache").path, recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest))
        return ServeRound3Tests.request(service, method, target)
    }
}
