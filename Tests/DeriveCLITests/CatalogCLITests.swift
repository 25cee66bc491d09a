import Foundation
import Testing
import TestSupport
import Imaging

/// `derive catalog` over a small project: two styles, two rules, three sources.
struct CatalogProject {
    let folder: URL

    static let manifest = """
    version: 1
    buckets:
      photos: {path: src}
      site: {path: out}
    styles:
      thumb: image/resize,m_fill,w_120,h_80/quality,q_80
      square: image/resize,m_fill,w_50,h_50/format,png
    derivatives:
      - name: gallery
        from: photos/*.jpg
        styles: [thumb]
        to: site/{name}.{style}.{ext}
      - name: logos
        from: photos/*.png
        process: image/resize,w_40
        to: site/logos/{name}.png

    """

    init(_ manifest: String = CatalogProject.manifest) throws {
        folder = try CLI.temporaryFolder()
        let src = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: src, withIntermediateDirectories: true)
        for name in ["landscape.jpg", "portrait.jpg", "logo-alpha.png"] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: src.appendingPathComponent(name))
        }
        try Data(manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
    }

    func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: folder) }
    func remove() { try? FileManager.default.removeItem(at: folder) }
}

@Suite(.ownThreads, .serialized) struct CatalogCLITests {
    /// Default samples: the first source (in key order) of each rule; every style on each, with
    /// its canonical string, size, format and bytes; nothing written anywhere.
    @Test func textListsEveryStyleOnTheFirstSourceOfEachRule() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        let result = try project.run(["catalog"])
        #expect(result.status == 0, "\(result.stderr)")
        let text = String(decoding: result.stdout, as: UTF8.self)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == "derive catalog derive.yaml: 2 styles and 1 rule recipe × 2 samples (the first source of each rule)")
        #expect(lines[1] == "style 'square': image/resize,m_fill,w_50,h_50,limit_1,color_FFFFFF/format,png")
        #expect(lines[2].hasPrefix("  photos/landscape.jpg  50x50 png  ") && lines[2].hasSuffix(" bytes"), "\(text)")
        #expect(lines[3].hasPrefix("  photos/logo-alpha.png  50x50 png  "), "\(text)")
        #expect(lines[4] == "style 'thumb': image/resize,m_fill,w_120,h_80,limit_1,color_FFFFFF/quality,q_80")
        #expect(lines[5].hasPrefix("  photos/landscape.jpg  120x80 jpg  "), "\(text)")
        #expect(lines[6].hasPrefix("  photos/logo-alpha.png  120x80 png  "), "\(text)")
        // A rule's own `process:` is part of the catalogue too.
        #expect(lines[7] == "rule 'logos': image/resize,m_lfit,w_40,limit_1,color_FFFFFF")
        #expect(lines[8].hasPrefix("  photos/landscape.jpg  40x") && lines[9].hasPrefix("  photos/logo-alpha.png  40x40 png  "), "\(text)")
        #expect(lines[10].hasPrefix("Total: 6 renders, ") && lines.count == 11, "\(text)")
        let names = try FileManager.default.contentsOfDirectory(atPath: project.folder.path).sorted()
        #expect(names == ["derive.yaml", "src"])
    }

    /// `catalog.samples` chooses the samples; --json has the same content, bytes that add up.
    @Test func samplesFromTheManifestAndJSON() throws {
        let project = try CatalogProject(CatalogProject.manifest + "catalog:\n  samples: [photos/portrait.jpg]\n")
        defer { project.remove() }
        let result = try project.run(["catalog", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(object["samples"] as? [String] == ["photos/portrait.jpg"])
        #expect(object["samplesFrom"] as? String == "catalog.samples")
        let styles = try #require(object["styles"] as? [[String: Any]])
        #expect(styles.map { $0["name"] as? String } == ["square", "thumb", "rule 'logos'"])
        #expect(styles.map { $0["rule"] as? String } == [nil, nil, "logos"])
        let cells = styles.flatMap { $0["cells"] as? [[String: Any]] ?? [] }
        #expect(cells.count == 3)
        let thumb = cells[1]
        #expect(thumb["width"] as? Int == 120 && thumb["height"] as? Int == 80 && thumb["format"] as? String == "jpg")
        #expect(thumb["image"] == nil)
        let sum = cells.reduce(0) { $0 + (($1["bytes"] as? Int) ?? 0) }
        #expect(sum > 0 && object["bytes"] as? Int == sum)
    }

    /// --html: renders in DIR/images whose bytes and sizes are what the page says; a report
    /// folder inside a bucket (or reached through a link into one) is refused, writing nothing.
    @Test func htmlWritesRendersIntoTheReportFolderOnly() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        let report = project.folder.appendingPathComponent("report")
        let result = try project.run(["catalog", "--html", report.path, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let cells = (object["styles"] as? [[String: Any]] ?? []).flatMap { $0["cells"] as? [[String: Any]] ?? [] }
        #expect(cells.count == 6)
        for cell in cells {
            let image = try #require(cell["image"] as? String)
            let bytes = try Data(contentsOf: report.appendingPathComponent(image))
            #expect(bytes.count == cell["bytes"] as? Int)
            let raster = try Raster.decode(bytes)
            #expect(raster.width == cell["width"] as? Int && raster.height == cell["height"] as? Int)
        }
        let page = try String(contentsOf: report.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(page.contains("<img src=\"images/001-001.png\""))
        #expect(page.contains("image/resize,m_fill,w_120,h_80,limit_1,color_FFFFFF/quality,q_80"))
        #expect(!page.contains("http://") && !page.contains("https://") && !page.contains("src=\"/"))
        #expect(!FileManager.default.fileExists(atPath: project.folder.appendingPathComponent("out").path))

        let inside = try project.run(["catalog", "--html", "src/sheet"])
        #expect(inside.status == 1)
        #expect(inside.stderr.contains("is inside bucket 'photos'"), "\(inside.stderr)")
        try FileManager.default.createSymbolicLink(atPath: project.folder.appendingPathComponent("link").path, withDestinationPath: "src")
        let linked = try project.run(["catalog", "--html", "link/sheet"])
        #expect(linked.status == 1)
        #expect(linked.stderr.contains("is inside bucket 'photos'"))
        let sheet = project.folder.appendingPathComponent("sheet")
        try FileManager.default.createDirectory(at: sheet, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: sheet.appendingPathComponent("images").path, withDestinationPath: "../src")
        let imagesLink = try project.run(["catalog", "--html", "sheet"])
        #expect(imagesLink.status == 1)
        #expect(imagesLink.stderr.contains("images is a symbolic link (to ../src), not a folder"), "\(imagesLink.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: project.folder.appendingPathComponent("src").path).sorted()
                == ["landscape.jpg", "logo-alpha.png", "portrait.jpg"])
    }

    /// Inline recipes with a matrix: one row per combination (at most 24 per rule, the rest
    /// counted); failed renders are counted apart from renders (attack 12, L2).
    @Test func ruleRecipesWithAMatrixAndFailedRenders() throws {
        let project = try CatalogProject("""
        version: 1
        buckets:
          photos: {path: src}
          site: {path: out}
        styles:
          marked: image/resize,w_60/watermark,image_bm9wZS5wbmc
        derivatives:
          - name: widths
            from: photos/landscape.jpg
            process: image/resize,w_{w}
            matrix:
              w: [\((1...30).map(String.init).joined(separator: ", "))]
            to: site/{name}-{w}.jpg

        """)
        defer { project.remove() }
        let result = try project.run(["catalog"])
        #expect(result.status == 1)   // the watermark object is missing
        let text = String(decoding: result.stdout, as: UTF8.self)
        #expect(text.hasPrefix("derive catalog derive.yaml: 1 style and 24 rule recipes × 1 sample"), "\(text)")
        #expect(text.contains("rule 'widths' (w=7): image/resize,m_lfit,w_7,limit_1,color_FFFFFF\n  photos/landscape.jpg  7x"), "\(text)")
        #expect(!text.contains("(w=25)"))
        #expect(text.contains("Total: 24 renders, 1 failed, "), "\(text)")
        #expect(text.contains("Left out: 6 matrix combinations of rules beyond the first 24 of each."), "\(text)")
    }

    /// Ownership of a report folder: a folder holding a user's files (and no record of Derive's)
    /// is refused and left as it was; a report folder Derive made is rewritten; a user's file put
    /// at a name the report writes, or a report file edited by hand, is kept and named.
    @Test func aReportNeverReplacesAUsersFile() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        let site = project.folder.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: site, withIntermediateDirectories: true)
        try Data("my page".utf8).write(to: site.appendingPathComponent("index.html"))
        let refused = try project.run(["catalog", "--html", "docs"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("already holds files Derive did not write (index.html)"), "\(refused.stderr)")
        #expect(try String(contentsOf: site.appendingPathComponent("index.html"), encoding: .utf8) == "my page")
        #expect(try FileManager.default.contentsOfDirectory(atPath: site.path) == ["index.html"])

        let report = project.folder.appendingPathComponent("sheet")
        #expect(try project.run(["catalog", "--html", "sheet"]).status == 0)
        #expect(try project.run(["catalog", "--html", "sheet"]).status == 0, "a report folder Derive made is Derive's to rewrite")
        let first = report.appendingPathComponent("images/001-001.png")
        try FileManager.default.removeItem(at: first)
        try Data("a user's file".utf8).write(to: first)
        try Data("edited".utf8).write(to: report.appendingPathComponent("index.html"))
        let kept = try project.run(["catalog", "--html", "sheet"])
        #expect(kept.status == 1)
        #expect(try String(contentsOf: first, encoding: .utf8) == "a user's file")
        #expect(try String(contentsOf: report.appendingPathComponent("index.html"), encoding: .utf8) == "edited")
        #expect(kept.stderr.contains("index.html exists and is not a file this report wrote; it is kept"), "\(kept.stderr)")
    }

    /// A sample that is not a source it may read: a manifest error, or a failed cell and exit 1.
    @Test func badSamplesAreClearErrors() throws {
        let unknownBucket = try CatalogProject(CatalogProject.manifest + "catalog:\n  samples: [nowhere/a.jpg]\n")
        defer { unknownBucket.remove() }
        let invalid = try unknownBucket.run(["catalog"])
        #expect(invalid.status == 1)
        #expect(invalid.stderr.contains("derive.yaml is not valid"), "\(invalid.stderr)")
        #expect(try unknownBucket.run(["validate"]).stderr.contains("unknown bucket 'nowhere' in 'catalog.samples'"))

        let escape = try CatalogProject(CatalogProject.manifest + "catalog:\n  samples: [photos/missing.jpg, 'photos/../derive.yaml']\n")
        defer { escape.remove() }
        let failed = try escape.run(["catalog"])
        #expect(failed.status == 1)
        let text = String(decoding: failed.stdout, as: UTF8.self)
        #expect(text.contains("  photos/missing.jpg  failed: "), "\(text)")
        #expect(text.contains("  photos/../derive.yaml  failed: "), "\(text)")
        // Said as every command's errors are (attack 41b's L3): `derive: error:` and the fix.
        #expect(failed.stderr.contains("derive: error: 6 renders of the catalogue failed") && failed.stderr.contains("run derive catalog again"), "\(failed.stderr)")
    }
}
