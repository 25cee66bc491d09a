import Foundation
import Testing
import TestSupport
@testable import Builder
import Manifest
import Planner

/// Attack 13b's finding 3: with `f: [webp, jpg, gif]` the `.gif`-named copies of a JPEG or WebP
/// source (`format,gif` keeps a non-GIF source's format, so they hold JPEG or WebP bytes) were
/// taken as the picture's JPEG and WebP candidates over the real `.jpg` and `.webp` of the same
/// width (their names sort first), and serve sends them as `image/gif`. A candidate's format is
/// the format of the bytes recorded, and an output whose extension names another web format is
/// never a candidate.
@Suite(.ownThreads) struct PictureFormatMisc27Tests {
    static let yaml = """
    version: 1
    buckets:
      images:
        path: images
      site:
        path: out
    derivatives:
      - name: resp
        from: images/*
        process: image/resize,w_{w}/format,{f}
        matrix: {w: [320, 640], f: [webp, jpg, gif]}
        to: site/{name}-{w}.{f}

    """

    static func manifest() throws -> Manifest {
        let project = try Project(yaml)
        return try #require(ManifestLoader().load(project.manifestPath).manifest)
    }

    static func record(_ path: String, format: String, width: Int, matrix: String, source: String = "images/landscape.jpg") -> OutputRecord {
        OutputRecord(path: path, rule: "resp", source: source, style: nil, matrix: matrix, engine: "e", pipeline: "p", sourceDigest: "s",
                     dependencies: "", encoder: "q", actionKey: path, acl: "", outputDigest: "d", size: 100, width: width, height: width / 2,
                     format: format, builtAt: 0, folder: "out")
    }

    @Test func aGifNamedCopyOfAJPEGSourceIsNoCandidate() throws {
        var records: [OutputRecord] = []
        for width in [320, 640] {
            records.append(Self.record("site/landscape-\(width).webp", format: "webp", width: width, matrix: "f=webp,w=\(width)"))
            records.append(Self.record("site/landscape-\(width).jpg", format: "jpg", width: width, matrix: "f=jpg,w=\(width)"))
            // format,gif on a JPEG: JPEG bytes under a .gif name.
            records.append(Self.record("site/landscape-\(width).gif", format: "jpg", width: width, matrix: "f=gif,w=\(width)"))
        }
        let picture = try #require(Picture.sets(records, manifest: try Self.manifest()).first)
        #expect(picture.formats.map(\.format) == ["webp", "jpg"])
        #expect(picture.fallback.srcset == "/landscape-320.jpg 320w, /landscape-640.jpg 640w", "\(picture.fallback.srcset)")
        #expect(picture.img.url == "/landscape-640.jpg")
        #expect(picture.modernSources.map(\.srcset) == ["/landscape-320.webp 320w, /landscape-640.webp 640w"])
        #expect(!picture.html().contains(".gif"), "\(picture.html())")
    }

    @Test func aGifNamedCopyOfAWebPSourceIsNoWebPCandidate() throws {
        var records: [OutputRecord] = []
        for width in [320, 640] {
            records.append(Self.record("site/1-\(width).webp", format: "webp", width: width, matrix: "f=webp,w=\(width)", source: "images/1.webp"))
            records.append(Self.record("site/1-\(width).gif", format: "webp", width: width, matrix: "f=gif,w=\(width)", source: "images/1.webp"))
        }
        let picture = try #require(Picture.sets(records, manifest: try Self.manifest()).first)
        #expect(picture.formats.map(\.format) == ["webp"])
        #expect(picture.fallback.srcset == "/1-320.webp 320w, /1-640.webp 640w", "\(picture.fallback.srcset)")
        // Only a mis-named copy at a width: that width is left out, never served under the wrong type.
        let only = records.filter { $0.path != "site/1-640.webp" }
        let narrowed = try #require(Picture.sets(only, manifest: try Self.manifest()).first)
        #expect(narrowed.fallback.srcset == "/1-320.webp 320w")
    }

    /// A real GIF (a GIF source's `format,gif`) is a GIF candidate as before; `.jpeg` names JPEG.
    @Test func anOutputNamedByItsFormatIsACandidate() throws {
        let records = [Self.record("site/a-320.gif", format: "gif", width: 320, matrix: "f=gif,w=320", source: "images/a.gif"),
                       Self.record("site/a-320.jpeg", format: "jpg", width: 320, matrix: "f=jpg,w=320", source: "images/a.gif")]
        let picture = try #require(Picture.sets(records, manifest: try Self.manifest()).first)
        #expect(picture.formats.map(\.format) == ["jpg", "gif"])
    }
}
