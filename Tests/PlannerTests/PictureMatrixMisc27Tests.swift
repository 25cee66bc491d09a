import Foundation
import Testing
import TestSupport
@testable import Builder
import Manifest
import Planner

/// Attack 13b's finding 7: a rule with a matrix variable besides the width (quality, crop) has
/// several outputs of one format and width; the picture took the one whose name sorted first, so
/// which variant a page got depended on names (and on the files recorded), not on the manifest.
/// Now it is the manifest's: for each width, the output of the other variables' first values in
/// manifest order (the first combination that has one).
@Suite(.ownThreads) struct PictureMatrixMisc27Tests {
    static func manifest(_ matrix: String) throws -> Manifest {
        let project = try Project("""
        version: 1
        buckets:
          images:
            path: images
          site:
            path: out
        derivatives:
          - name: q
            from: images/*.jpg
            process: image/quality,q_{q}/resize,w_{w}/format,webp
            matrix: \(matrix)
            to: site/{name}-{w}-q{q}.webp

        """)
        return try #require(ManifestLoader().load(project.manifestPath).manifest)
    }

    static func records(_ qualities: [String]) -> [OutputRecord] {
        [100, 200].flatMap { width in
            qualities.map { q in
                OutputRecord(path: "site/landscape-\(width)-q\(q).webp", rule: "q", source: "images/landscape.jpg", style: nil, matrix: "q=\(q),w=\(width)",
                             engine: "e", pipeline: "p", sourceDigest: "s", dependencies: "", encoder: "e", actionKey: "k\(width)\(q)", acl: "",
                             outputDigest: "d", size: 10, width: width, height: width / 2, format: "webp", builtAt: 0, folder: "out")
            }
        }
    }

    @Test func theFirstValueOfTheOtherVariablesInManifestOrderIsTaken() throws {
        // q: [90, 50]: the picture holds the q90 outputs, though "q50" sorts first.
        let first = try #require(Picture.sets(Self.records(["50", "90"]), manifest: try Self.manifest("{w: [100, 200], q: [90, 50]}")).first)
        #expect(first.fallback.srcset == "/landscape-100-q90.webp 100w, /landscape-200-q90.webp 200w", "\(first.fallback.srcset)")
        // The variables' order does not matter, only each one's values' order.
        let swapped = try #require(Picture.sets(Self.records(["50", "90"]), manifest: try Self.manifest("{q: [90, 50], w: [100, 200]}")).first)
        #expect(swapped.fallback.srcset == first.fallback.srcset)
        let fifty = try #require(Picture.sets(Self.records(["50", "90"]), manifest: try Self.manifest("{w: [100, 200], q: [50, 90]}")).first)
        #expect(fifty.fallback.srcset == "/landscape-100-q50.webp 100w, /landscape-200-q50.webp 200w", "\(fifty.fallback.srcset)")
    }
}
