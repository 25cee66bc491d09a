import Access
import DeriveServer
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import derive

/// Attack 48a's F2: as in `NarrowedNameLeftLineRound48Tests`, but hero.lock held a merge-conflict
/// marker during derive.yaml's first build after the state was lost. In doubt the build keeps
/// `a-800.webp` as a private `left` line; once hero.lock reads again (no file the witness stats
/// changed) the next build must drop it, and hero.yaml's serve must answer its public output.
/// Plan and build name the file left with one wording ("known only from …, changed since").
@Suite(.ownThreads) struct NarrowedNameLeftLineUnreadableNeighbourRound49Tests {
    typealias Site = SiteRound11Tests.Site

    /// Both buckets private (as the attack's); hero's rule publishes its output.
    static func manifest(_ rule: String) -> String {
        """
        version: 1
        buckets:
          images: {path: images}
          site: {path: site}
        derivatives:
        \(rule)
        """
    }

    static let hero = """
      - name: B
        from: images/*.jpg
        process: image/resize,w_800/quality,q_50/format,webp
        to: site/{name}-800.webp
        acl: public-read

    """

    @Test func aLeftLineWrittenWhileTheNeighboursLockWasUnreadableGoesOnceItReads() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg"], manifest: Self.manifest("""
              - name: A
                from: images/*.jpg
                process: image/resize,w_{w}/format,webp
                matrix: {w: [480, 960]}
                to: site/{name}-{w}.webp

            """))
        defer { site.remove() }
        let first = try site.run(["build"])
        #expect(first.status == 0 && site.files("site") == ["a-480.webp", "a-800.webp"], "\(said(first)) \(site.files("site"))")
        try Data(Self.manifest(Self.hero).utf8).write(to: site.url("hero.yaml"))
        let takeOver = try site.run(["build", "hero.yaml", "--overwrite"])
        #expect(takeOver.status == 0, "\(said(takeOver))")
        try site.freshClone()
        let heroLock = try Data(contentsOf: site.url("hero.lock"))
        try Data("<<<<<<< HEAD\n".utf8).write(to: site.url("hero.lock"))
        // In doubt (hero.lock unreadable): left, private; plan and build say it alike.
        let plan = try site.run(["plan"])
        #expect(said(plan).contains("site/a-800.webp  left: known only from derive.lock, changed since"), "\(said(plan))")
        let doubt = try site.run(["build"])
        #expect(doubt.status == 0 && said(doubt).contains("left in place (known only from the lock, changed since)"), "\(said(doubt))")
        #expect(site.lock().contains("\"left\":\"site/a-800.webp\""), "\(site.lock())")
        // The conflict resolved and hero.yaml built: its serve answers its public output to anyone
        // at once (hero.lock records the bytes the file holds), and derive.yaml's next build drops the line.
        try heroLock.write(to: site.url("hero.lock"))
        let hero = try site.run(["build", "hero.yaml"])
        #expect(hero.status == 0, "\(said(hero))")
        #expect(try Self.heroGet(site) == 200)
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(said(build).contains("site/a-800.webp  no longer left in place: hero.yaml records the file as its output"), "\(said(build))")
        #expect(!site.lock().contains("\"left\""), "\(site.lock())")
        #expect(try Self.heroGet(site) == 200)
    }

    /// The status hero.yaml's serve answers an anonymous GET of its output with.
    static func heroGet(_ site: Site) throws -> Int {
        let manifest = try #require(ManifestLoader().load(site.url("hero.yaml").path).manifest)
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: [:], region: "cn-hangzhou"), engine: Engine(),
                                        cacheFolder: site.url("cache").path, recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest))
        return Int(ServeRound3Tests.request(service, "GET", "/site/a-800.webp").status)
    }
}
