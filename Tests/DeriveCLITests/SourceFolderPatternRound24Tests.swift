import Foundation
import Testing
import TestSupport

/// Attack round 24's M3: `from: photos/**` and `from: photos/**/*` match folders too, and every
/// sub-folder was taken as a source whose render failed, so `derive build` exited 1 on every run.
/// Sources are files: a folder the pattern walks into is a folder, its files are the sources.
@Suite(.ownThreads, .serialized) struct SourceFolderPatternRound24Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(_ from: String) -> String {
        """
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: _site, acl: public-read}
        derivatives:
          - {name: all, from: "\(from)", process: "image/resize,w_16/format,webp", to: "site/{key}.webp", acl: public-read}
        """
    }

    @Test(arguments: ["photos/**", "photos/**/*"])
    func foldersThePatternWalksIntoAreNoSources(from: String) throws {
        let site = try Site(["photos/a.jpg": "orientation-1.jpg", "photos/sub/b.jpg": "orientation-1.jpg",
                             "photos/sub/deeper/c.jpg": "orientation-1.jpg"], manifest: Self.manifest(from))
        defer { site.remove() }
        try FileManager.default.createDirectory(at: site.url("photos/empty"), withIntermediateDirectories: true)
        let plan = try site.run(["plan"])
        #expect(plan.status == 0, "\(from) plan: \(plan.stderr)")
        let planned = String(decoding: plan.stdout, as: UTF8.self)
        #expect(!plan.stderr.contains("failure") && !planned.contains("not a regular file"), "\(from) plan: \(planned)\(plan.stderr)")
        #expect(planned.contains("a.jpg.webp") && planned.contains("sub/deeper/c.jpg.webp"), "\(from) plan: \(planned)")
        for _ in 0..<2 {
            let build = try site.run(["build"])
            #expect(build.status == 0, "\(from) build: \(build.stderr)")
            #expect(!build.stderr.contains("failure"), "\(from) build: \(build.stderr)")
        }
        #expect(site.files("_site") == ["a.jpg.webp", "sub"], "\(site.files("_site"))")
        #expect(site.files("_site/sub") == ["b.jpg.webp", "deeper"], "\(site.files("_site/sub"))")
        #expect(site.files("_site/sub/deeper") == ["c.jpg.webp"], "\(site.files("_site/sub/deeper"))")
        #expect(!site.exists("_site/empty.webp") && !site.exists("_site/sub.webp"))
    }
}
