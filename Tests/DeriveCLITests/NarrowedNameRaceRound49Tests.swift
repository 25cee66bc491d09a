import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Attack 48a's F4: two manifests of one folder whose narrowing gives one name (`a-800.webp`,
/// derive.yaml from w=960, b.yaml from w=1600, of an 800 px source), built at once. The loser
/// was told the file "was not written by Derive" and to move it or pass --overwrite, which would
/// break or take the other manifest's output; building again is what is right (it then plans
/// its variant under its name as written). The hook pauses derive.yaml's build just before it
/// installs `a-800.webp`, and b.yaml builds in that instant.
@Suite(.ownThreads) struct NarrowedNameRaceRound49Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(width: Int, quality: Int) -> String {
        """
        version: 1
        buckets:
          images: {path: images}
          site: {path: site}
        derivatives:
          - name: R\(width)
            from: images/*.jpg
            process: image/resize,w_{w}/quality,q_\(quality)/format,webp
            matrix: {w: [\(width)]}
            to: site/{name}-{w}.webp

        """
    }

    @Test func theLoserOfARaceForANarrowedNameIsToldToBuildAgain() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg"], manifest: Self.manifest(width: 960, quality: 90))
        defer { site.remove() }
        try Data(Self.manifest(width: 1600, quality: 20).utf8).write(to: site.url("b.yaml"))
        let marker = site.url("install.marker")
        var raced: CLI.Result?
        let (paused, run) = try CLI.runPaused(["build", "--jobs", "1"], in: site.root, environment: [
            "XDG_STATE_HOME": CLI.userStateHome.path, "DERIVE_TEST_BEFORE_INSTALL": "a-800.webp=\(marker.path)",
        ], marker: marker) { _ in
            // b.yaml builds its narrowed a-800.webp while derive.yaml is about to install its own.
            raced = try site.run(["build", "b.yaml"])
        }
        let other = try #require(raced)
        let loser = said(run)
        try #require(paused, "the build did not stop before installing a-800.webp: \(loser)")
        #expect(other.status == 0 && site.files("site") == ["a-800.webp"], "\(said(other)) \(site.files("site"))")
        let written = try Data(contentsOf: site.url("site/a-800.webp"))
        #expect(run.status != 0)
        #expect(loser.contains("b.yaml, another manifest of this folder, wrote it meanwhile"), "\(loser)")
        #expect(loser.contains("build again (derive build), which plans this variant under its name as written"), "\(loser)")
        #expect(!loser.contains("not written by Derive") && !loser.contains("--overwrite"), "\(loser)")
        // The advice works: built again, derive.yaml plans w=960 as written; b.yaml's file is kept.
        let again = try site.run(["build"])
        #expect(again.status == 0, "\(said(again))")
        #expect(site.files("site") == ["a-800.webp", "a-960.webp"], "\(site.files("site"))")
        #expect(try Data(contentsOf: site.url("site/a-800.webp")) == written)
    }
}
