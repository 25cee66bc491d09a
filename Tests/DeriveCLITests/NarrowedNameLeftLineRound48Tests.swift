import Access
import DeriveServer
import Foundation
import Imaging
import Manifest
import Testing
import TestSupport
@testable import derive

/// Attack 48's F2: derive.yaml narrowed `w=960` of an 800 px source to `a-800.webp`; hero.yaml,
/// whose rule writes `a-800.webp`, took it over with `--overwrite` (the same bytes); then the
/// state was lost (`rm -rf .derive`). derive.yaml's next build, knowing `a-800.webp` only from its
/// lock, kept it as a private `left` line, and hero.yaml's serve answered its own public output
/// 403. A lock line of an output this manifest no longer produces, whose file another manifest of
/// the folder records as its output, is dropped: the file is that manifest's.
@Suite(.ownThreads) struct NarrowedNameLeftLineRound48Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(_ rule: String) -> String {
        """
        version: 1
        buckets:
          images: {path: images}
          site: {path: site, acl: public-read}
        derivatives:
        \(rule)
        """
    }

    @Test func aSiblingsOutputIsNotLeftAsThisManifestsAfterTheStateIsLost() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg"], manifest: Self.manifest("""
              - name: A
                from: images/*.jpg
                process: image/resize,w_{w}/format,webp
                matrix: {w: [480, 960]}
                to: site/{name}-{w}.webp
                acl: public-read

            """))
        defer { site.remove() }
        let first = try site.run(["build"])
        #expect(first.status == 0 && site.files("site") == ["a-480.webp", "a-800.webp"], "\(said(first)) \(site.files("site"))")
        try Data(Self.manifest(NarrowedNameTakenRound46Tests.hero + "    acl: public-read\n").utf8).write(to: site.url("hero.yaml"))
        let takeOver = try site.run(["build", "hero.yaml", "--overwrite"])
        #expect(takeOver.status == 0, "\(said(takeOver))")
        try site.freshClone()
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(said(build).contains("site/a-800.webp  dropped: in derive.lock, but no longer produced by the manifest, and hero.yaml records the file as its output"),
                "\(said(build))")
        #expect(!site.lock().contains("\"left\""), "\(site.lock())")
        let hero = try site.run(["build", "hero.yaml"])
        #expect(hero.status == 0, "\(said(hero))")
        #expect(site.files("site") == ["a-480.webp", "a-800.webp", "a-960.webp"], "\(site.files("site"))")
        // hero.yaml's serve answers its public output to anyone.
        let manifest = try #require(ManifestLoader().load(site.url("hero.yaml").path).manifest)
        let service = try ObjectService(manifest: manifest, verifier: Verifier(keys: [:], region: "cn-hangzhou"), engine: Engine(),
                                        cacheFolder: site.url("cache").path, recorded: BuiltOutputs(stateFolder: manifest.stateFolder, manifest: manifest))
        #expect(ServeRound3Tests.request(service, "GET", "/site/a-800.webp").status == 200)
    }
}
