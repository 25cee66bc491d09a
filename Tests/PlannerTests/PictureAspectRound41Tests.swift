import Foundation
import Testing
import TestSupport
@testable import Builder
import Manifest
import Planner

/// Attack 41b's L7: `resize,m_fill,w_{w},h_{w}` at 480, 960 and 1600 on a 1200×800 source writes
/// a 480×480 crop and, not enlarged (`limit_1`), the 1200×800 source twice; the picture put the
/// square and the 3:2 image in one `srcset`, as if they were one image at two sizes. A picture's
/// candidates share one shape (the narrowest's), each real width once.
@Suite(.ownThreads) struct PictureAspectRound41Tests {
    static func manifest() throws -> Manifest {
        let project = try Project("""
        version: 1
        buckets:
          images:
            path: images
          site:
            path: out
        derivatives:
          - name: hero
            from: images/*.jpg
            process: image/resize,m_fill,w_{w},h_{w}/format,{f}
            matrix: {w: [480, 960, 1600], f: [webp, jpg]}
            to: site/{name}-{w}.{f}

        """)
        return try #require(ManifestLoader().load(project.manifestPath).manifest)
    }

    static func record(_ matrixWidth: Int, _ format: String, width: Int, height: Int) -> OutputRecord {
        OutputRecord(path: "site/landscape-\(matrixWidth).\(format)", rule: "hero", source: "images/landscape.jpg", style: nil, matrix: "f=\(format),w=\(matrixWidth)",
                     engine: "e", pipeline: "p", sourceDigest: "s", dependencies: "", encoder: "e", actionKey: "k\(matrixWidth)\(format)", acl: "",
                     outputDigest: "d\(width)x\(height)\(format)", size: 10, width: width, height: height, format: format, builtAt: 0, folder: "out")
    }

    @Test func onlyCandidatesOfTheNarrowestsShapeAreListed() throws {
        let records = ["webp", "jpg"].flatMap { format in
            [Self.record(480, format, width: 480, height: 480), Self.record(960, format, width: 1200, height: 800), Self.record(1600, format, width: 1200, height: 800)]
        }
        let picture = try #require(Picture.sets(records, manifest: try Self.manifest()).first)
        for group in picture.formats {
            #expect(group.candidates.map(\.width) == [480] && group.candidates.map(\.height) == [480], "\(group.candidates)")
        }
        #expect(picture.fallback.srcset == "/landscape-480.jpg 480w", "\(picture.fallback.srcset)")
        let html = picture.html()
        #expect(html.contains("width=\"480\" height=\"480\"") && !html.contains("1200"), "\(html)")
    }

    @Test func sizesRoundedToAPixelKeepOneShape() throws {
        // resize,w_N of a 1200×801 source: 480×321 (rounded), 960×641, and the source at 1200.
        let records = [Self.record(480, "jpg", width: 480, height: 321), Self.record(960, "jpg", width: 960, height: 641),
                       Self.record(1600, "jpg", width: 1200, height: 801)]
        let picture = try #require(Picture.sets(records, manifest: try Self.manifest()).first)
        #expect(picture.fallback.srcset == "/landscape-480.jpg 480w, /landscape-960.jpg 960w, /landscape-1600.jpg 1200w", "\(picture.fallback.srcset)")
    }
}
