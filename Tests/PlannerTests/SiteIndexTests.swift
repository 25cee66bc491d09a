import Foundation
import Testing
import TestSupport
import Builder
import ImagingCore
import Manifest
import Planner
import ProcessLanguage

/// A PNG header of the given size: enough for the planner's header reader (the fake renderers
/// never decode it).
func pngHeader(_ width: Int, _ height: Int, tag: String = "") -> Data {
    var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
    for value in [width, height] { bytes += [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    bytes += [8, 2, 0, 0, 0, 0, 0, 0, 0] + Array(tag.utf8)
    return Data(bytes)
}

/// Outputs as wide as the chain's `resize,w_N` (never wider than the source), so the index's
/// widths are real; the bytes name the pipeline and the source.
struct SizingRenderer: DerivativeRenderer {
    var hues: Box? = nil

    final class Box: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.withLock { count } }
        func add() { lock.withLock { count += 1 } }
    }

    /// The placeholder this renderer draws: a RIFF/WEBP container holding a tag of the source, of
    /// the shape Derive adopts from an index (`SummaryShape`), as the engine's WebP is.
    static func tinyWebP(_ source: Data) -> Data {
        func le32(_ value: Int) -> Data { Data((0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }) }
        let payload = Data("tiny \(ContentDigests.digest(source).prefix(9))".utf8)   // even: no padding byte
        let chunk = Data("VP8 ".utf8) + le32(payload.count) + payload
        return Data("RIFF".utf8) + le32(4 + chunk.count) + Data("WEBP".utf8) + chunk
    }

    func render(_ source: Data, _ pipeline: Pipeline, bucketPath: String) throws -> Rendered {
        if case .averageHue = pipeline.actions.last {
            hues?.add()
            // A colour from the source's bytes: sources that differ have different colours.
            let hex = String(ContentDigests.digest(source).prefix(6)).uppercased()
            return Rendered(bytes: Data("{\"RGB\": \"0x\(hex)\"}".utf8), width: 0, height: 0, format: "json")
        }
        if pipeline.canonical == (try Pipeline.parse(Placeholder.pixels)).canonical {
            return Rendered(bytes: bmp24(32, 24, ThumbHashTests.gradient), width: 32, height: 24, format: "bmp")
        }
        if pipeline.canonical == (try Pipeline.parse(Placeholder.image)).canonical {
            return Rendered(bytes: Self.tinyWebP(source), width: 32, height: 16, format: "webp")
        }
        let size = SourceHeader.displayedSize(source) ?? (width: 1000, height: 500)
        var width = size.width
        for case .resize(let resize) in pipeline.actions { if let w = resize.width, w < width { width = w } }
        let height = max(1, (size.height * width + size.width / 2) / size.width)
        let text = "\(pipeline.canonical)\n\(ContentDigests.digest(source))\n"
        return Rendered(bytes: Data(text.utf8), width: width, height: height, format: pipeline.outputFormat?.rawValue ?? "png")
    }

    func memoryEstimate(_ source: Data) -> Int { 1 << 20 }
}

let heroManifest = """
version: 1
buckets:
  photos:
    path: photos
  site:
    path: site
  data:
    path: data
derivatives:
  - name: hero
    from: photos/*.png
    process: image/resize,w_{w}/format,{f}
    matrix:
      w: [100, 200, 400]
      f: [webp, avif, jpg]
    to: site/{name}-{w}.{f}

"""

extension Project {
    func writeData(_ relative: String, _ data: Data) throws {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    @discardableResult
    func buildSized(_ renderer: SizingRenderer = SizingRenderer()) throws -> BuildSession.BuildOutcome {
        try session().build(options: BuildOptions(jobs: 2, quiet: true)) { renderer }
    }

    func index(_ relative: String) throws -> [String: Any] {
        let data = try #require(FileManager.default.contents(atPath: path(relative)))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

func entry(_ index: [String: Any], _ source: String) -> [String: Any]? {
    (index["sources"] as? [String: Any])?[source] as? [String: Any]
}

func picture(_ index: [String: Any], _ source: String, _ name: String) -> [String: Any]? {
    (entry(index, source)?["pictures"] as? [String: Any])?[name] as? [String: Any]
}

@Suite(.ownThreads, .serialized) struct SiteIndexTests {
    @Test func aNarrowSourceGivesOneOutputAtItsOwnWidthAndTheIndexGroupsFormats() throws {
        let project = try Project(heroManifest + "index: site/derive-index.json\n")
        try project.writeData("photos/narrow.png", pngHeader(300, 150))
        try project.writeData("photos/wide.png", pngHeader(1000, 500))
        let outcome = try project.buildSized()
        #expect(outcome.plan.errors.isEmpty && outcome.report?.failed.isEmpty == true, "\(outcome.plan.errors)")
        for format in ["webp", "avif", "jpg"] {
            #expect(project.exists("site/narrow-100.\(format)") && project.exists("site/narrow-200.\(format)"))
            #expect(project.exists("site/narrow-300.\(format)") && !project.exists("site/narrow-400.\(format)"))
            #expect(project.exists("site/wide-400.\(format)") && !project.exists("site/wide-1000.\(format)"))
        }
        // The planned pipeline is the source's width, so explain and the bytes agree.
        #expect(project.read("site/narrow-300.webp")?.hasPrefix("image/resize,m_lfit,w_300,") == true, "\(project.read("site/narrow-300.webp") ?? "")")
        let index = try project.index("site/derive-index.json")
        #expect(index["version"] as? Int == 2)
        #expect(entry(index, "photos/narrow.png")?["width"] as? Int == 300 && entry(index, "photos/narrow.png")?["height"] as? Int == 150)
        // The dominant colour: the engine's average-hue answer for the source, as #rrggbb.
        #expect(entry(index, "photos/narrow.png")?["color"] as? String == "#" + ContentDigests.digest(pngHeader(300, 150)).prefix(6))
        let hero = try #require(picture(index, "photos/narrow.png", "hero"))
        let formats = try #require(hero["formats"] as? [[String: Any]])
        #expect(formats.map { $0["format"] as? String } == ["avif", "webp", "jpg"])
        #expect(formats.map { $0["type"] as? String } == ["image/avif", "image/webp", "image/jpeg"])
        #expect(formats[0]["srcset"] as? String == "/narrow-100.avif 100w, /narrow-200.avif 200w, /narrow-300.avif 300w")
        #expect(formats[2]["srcset"] as? String == "/narrow-100.jpg 100w, /narrow-200.jpg 200w, /narrow-300.jpg 300w")
        let img = try #require(hero["img"] as? [String: Any])
        #expect(img["src"] as? String == "/narrow-300.jpg" && img["width"] as? Int == 300 && img["height"] as? Int == 150)
        let html = try #require(hero["html"] as? String)
        #expect(html == "<picture>"
                + "<source type=\"image/avif\" srcset=\"/narrow-100.avif 100w, /narrow-200.avif 200w, /narrow-300.avif 300w\" sizes=\"(max-width: 300px) 100vw, 300px\">"
                + "<source type=\"image/webp\" srcset=\"/narrow-100.webp 100w, /narrow-200.webp 200w, /narrow-300.webp 300w\" sizes=\"(max-width: 300px) 100vw, 300px\">"
                + "<img src=\"/narrow-300.jpg\" srcset=\"/narrow-100.jpg 100w, /narrow-200.jpg 200w, /narrow-300.jpg 300w\" sizes=\"(max-width: 300px) 100vw, 300px\" "
                + "width=\"300\" height=\"150\" alt=\"\" loading=\"lazy\" decoding=\"async\"></picture>", "\(html)")
        let derivatives = try #require(entry(index, "photos/wide.png")?["derivatives"] as? [[String: Any]])
        let widest = try #require(derivatives.first { $0["path"] as? String == "site/wide-400.webp" })
        #expect(widest["url"] as? String == "/wide-400.webp" && widest["width"] as? Int == 400 && widest["height"] as? Int == 200
                && (widest["bytes"] as? Int ?? 0) > 0 && widest["format"] as? String == "webp")
        // A second build renders nothing and the plan is empty.
        let again = try project.buildSized()
        #expect(again.report?.built.isEmpty == true)
        #expect(try project.check().problems == [])
    }

    @Test func aSourceThatBecomesNarrowerDropsTheOutputsNoLongerPlanned() throws {
        let project = try Project(heroManifest + "index: site/derive-index.json\n")
        try project.writeData("photos/a.png", pngHeader(1000, 500))
        try project.buildSized()
        #expect(project.exists("site/a-400.webp"))
        try project.writeData("photos/a.png", pngHeader(300, 150, tag: "smaller"))
        let plan = try project.plan()
        #expect(plan.items.contains { $0.kind == .delete && $0.output == "site/a-400.webp" })
        #expect(plan.items.contains { $0.kind == .create && $0.output == "site/a-300.webp" })
        try project.buildSized()
        #expect(!project.exists("site/a-400.webp") && project.exists("site/a-300.webp"))
        #expect(try project.check().problems == [])
        // An output a user changed is left when it is no longer planned (the ownership rule).
        try project.writeData("photos/a.png", pngHeader(1000, 500))
        try project.buildSized()
        try project.write("site/a-400.jpg", "edited by hand")
        try project.writeData("photos/a.png", pngHeader(300, 150, tag: "smaller again"))
        try project.buildSized()
        #expect(project.read("site/a-400.jpg") == "edited by hand")
        #expect(!project.exists("site/a-400.webp"))
    }

    @Test func theDominantColourIsRenderedOncePerSourceContent() throws {
        let project = try Project(heroManifest + "index: site/derive-index.json\n")
        try project.writeData("photos/a.png", pngHeader(300, 150))
        try project.writeData("photos/b.png", pngHeader(600, 300))
        let renderer = SizingRenderer(hues: SizingRenderer.Box())
        try project.buildSized(renderer)
        #expect(renderer.hues?.value == 2)
        try project.buildSized(renderer)
        #expect(renderer.hues?.value == 2, "a no-op renders no colour")
        try project.writeData("photos/b.png", pngHeader(600, 300, tag: "new"))
        try project.buildSized(renderer)
        #expect(renderer.hues?.value == 3)
        let index = try project.index("site/derive-index.json")
        #expect(entry(index, "photos/b.png")?["color"] as? String == "#" + ContentDigests.digest(pngHeader(600, 300, tag: "new")).prefix(6))
        #expect(try project.check().problems == [])
        // Without an index no colour is rendered.
        let plain = try Project(heroManifest)
        try plain.writeData("photos/a.png", pngHeader(300, 150))
        let counted = SizingRenderer(hues: SizingRenderer.Box())
        try plain.buildSized(counted)
        #expect(counted.hues?.value == 0)
    }

    /// Attack 15's M1/F3 left states holding what an older Derive adopted from a planted index
    /// (`red;background:url(…)` as a colour, the index saying the same, recorded as Derive's).
    /// A state value not of Derive's shape is made again: the index is not up to date, and the
    /// build renders the colour and rewrites it.
    @Test func aStateColourNotOfDerivesShapeIsRenderedAgain() throws {
        let project = try Project(heroManifest + "index: site/derive-index.json\n")
        try project.writeData("photos/a.png", pngHeader(300, 150))
        try project.buildSized()
        let good = try #require(project.read("site/derive-index.json"))
        let colour = try #require(entry(try project.index("site/derive-index.json"), "photos/a.png")?["color"] as? String)
        let planted = "red;background:url(https://evil.example/t)"
        let poisoned = good.replacingOccurrences(of: "\"\(colour)\"", with: "\"\(planted)\"")
        try project.write("site/derive-index.json", poisoned)
        let session = try project.session()
        let store = try StateStore(folder: session.manifest.stateFolder, owner: BuildSession.ownerName(project.manifestPath))
        try store.saveSourceColour(digest: ContentDigests.digest(pngHeader(300, 150)), colour: planted)
        let indexRecord = try #require(try store.controlFiles().keys.first { $0.hasSuffix("derive-index.json") })
        try store.setControlFile(indexRecord, digest: ContentDigests.digest(Data(poisoned.utf8)))
        #expect(try project.check().problems != [], "a planted colour in the state is not up to date")
        let renderer = SizingRenderer(hues: SizingRenderer.Box())
        try project.buildSized(renderer)
        #expect(renderer.hues?.value == 1)
        #expect(project.read("site/derive-index.json") == good)
        #expect(try project.check().problems == [])
    }

    @Test func placeholdersAreInlinedForRulesThatAskForThem() throws {
        let yaml = heroManifest.replacingOccurrences(of: "    to: site/{name}-{w}.{f}\n", with: "    to: site/{name}-{w}.{f}\n    placeholder: true\n") + """
          - name: plain
            from: photos/other-*.gif
            process: image/resize,w_50
            to: site/plain/{name}.png
        index: site/derive-index.json

        """
        let project = try Project(yaml)
        try project.writeData("photos/a.png", pngHeader(300, 150))
        try project.writeData("photos/other-b.gif", pngHeader(80, 40))
        let outcome = try project.buildSized()
        #expect(outcome.plan.errors.isEmpty, "\(outcome.plan.errors)")
        let index = try project.index("site/derive-index.json")
        let placeholder = try #require(entry(index, "photos/a.png")?["placeholder"] as? [String: String])
        #expect(placeholder["src"] == "data:image/webp;base64," + SizingRenderer.tinyWebP(pngHeader(300, 150)).base64EncodedString())
        #expect(placeholder["thumbhash"] == "XRgODZpwd4eBiIiHiHiIh3iACPeI")   // the gradient's reference hash (ThumbHashTests)
        #expect(entry(index, "photos/other-b.gif")?["placeholder"] == nil, "only rules with placeholder: true")
        #expect(entry(index, "photos/other-b.gif")?["color"] != nil)
        // A no-op renders nothing, and the index survives a lost state (adopted, placeholders and all).
        let renderer = SizingRenderer(hues: SizingRenderer.Box())
        try project.buildSized(renderer)
        #expect(renderer.hues?.value == 0)
        let bytes = try #require(project.read("site/derive-index.json"))
        try project.remove(".derive")
        let adopted = try project.buildSized()
        #expect(adopted.plan.errors.isEmpty && adopted.report?.built.isEmpty == true, "\(adopted.plan.errors)")
        #expect(project.read("site/derive-index.json") == bytes)
        // A bad value is a validation error at its line.
        try project.write("derive.yaml", yaml.replacingOccurrences(of: "placeholder: true", with: "placeholder: blurry"))
        let result = ManifestLoader().load(project.manifestPath)
        #expect(result.diagnostics.errors.contains { $0.message.contains("'placeholder' must be true or false, got 'blurry'") }, "\(result.diagnostics.errors)")
    }

    @Test func bucketURLsAndAnIndexInAnotherBucket() throws {
        let yaml = heroManifest.replacingOccurrences(of: "    path: site\n", with: "    path: site\n    url: https://cdn.example.com/img/\n")
            + "index: data/derive-index.json\n"
        let project = try Project(yaml)
        try project.writeData("photos/my photo,1.png", pngHeader(150, 100))
        let outcome = try project.buildSized()
        #expect(outcome.plan.errors.isEmpty, "\(outcome.plan.errors)")
        let index = try project.index("data/derive-index.json")
        let hero = try #require(picture(index, "photos/my photo,1.png", "hero"))
        let formats = try #require(hero["formats"] as? [[String: Any]])
        #expect(formats[1]["srcset"] as? String
                == "https://cdn.example.com/img/my%20photo%2C1-100.webp 100w, https://cdn.example.com/img/my%20photo%2C1-150.webp 150w")
        let derivatives = try #require(entry(index, "photos/my photo,1.png")?["derivatives"] as? [[String: Any]])
        #expect(derivatives.contains { $0["url"] as? String == "https://cdn.example.com/img/my%20photo%2C1-150.jpg" })
        // Without url: the key from the site's root, in any bucket the index is in.
        try project.write("derive.yaml", heroManifest + "index: data/derive-index.json\n")
        try project.buildSized()
        let plain = try project.index("data/derive-index.json")
        #expect(((picture(plain, "photos/my photo,1.png", "hero")?["img"]) as? [String: Any])?["src"] as? String == "/my%20photo%2C1-150.jpg")
    }

    @Test func theIndexIsAdoptedFromTheLockWhenTheStateIsLost() throws {
        let project = try Project(heroManifest + "index: site/derive-index.json\n")
        try project.writeData("photos/a.png", pngHeader(300, 150))
        try project.buildSized()
        let index = try #require(project.read("site/derive-index.json"))
        try project.remove(".derive")
        let outcome = try project.buildSized()
        #expect(outcome.plan.errors.isEmpty && outcome.report?.built.isEmpty == true, "\(outcome.plan.errors)")
        #expect(project.read("site/derive-index.json") == index)
    }

    @Test func htmlEscapesAltSizesAndURLs() throws {
        let project = try Project(heroManifest.replacingOccurrences(of: "    path: site\n", with: "    path: site\n    url: /media\n"))
        try project.writeData("photos/a&b.png", pngHeader(300, 150))
        try project.buildSized()
        let session = try project.session()
        let plan = try session.readOnlyPlan()
        let pictures = session.pictures(of: "photos/a&b.png", records: plan.recorded)
        #expect(pictures.map(\.name) == ["hero"])
        let html = try #require(pictures.first).html(sizes: "(min-width: 40em) 50vw, 100vw", alt: "Tom & \"Jerry\" <b>'s</b>")
        #expect(html.contains(#"alt="Tom &amp; &quot;Jerry&quot; &lt;b&gt;&#39;s&lt;/b&gt;""#), "\(html)")
        #expect(html.contains(#"sizes="(min-width: 40em) 50vw, 100vw""#))
        #expect(html.contains(#"<img src="/media/a%26b-300.jpg""#), "\(html)")
    }

    @Test func urlMustBeAnAddressWithoutCharactersThatBreakSrcset() throws {
        for (url, words) in [("cdn.example.com", "must start with https://"), ("/a b", "space"), ("https://x/a,b", "','"), ("/x\"y", "'\"'")] {
            let project = try Project(heroManifest.replacingOccurrences(of: "    path: site\n", with: "    path: site\n    url: '\(url)'\n"))
            let result = ManifestLoader().load(project.manifestPath)
            #expect(result.diagnostics.errors.contains { $0.message.contains("url '\(url)'") && $0.message.contains(words) }, "\(url): \(result.diagnostics.errors)")
        }
        for url in ["https://cdn.example.com/img/", "/img", ".", "../../out", "./img"] {
            let project = try Project(heroManifest.replacingOccurrences(of: "    path: site\n", with: "    path: site\n    url: '\(url)'\n"))
            try project.writeData("photos/a.png", pngHeader(10, 10))
            let errors = ManifestLoader().load(project.manifestPath).diagnostics.errors
            #expect(errors.isEmpty, "\(url): \(errors)")
        }
    }

    /// Round 11 (static), L1 and L7: another host (`//host`), a doubled `/`, credentials are
    /// refused; an upper-case scheme is a scheme. `{hash:+8}`, `{hash:04}` and
    /// `placeholder: null` are refused, the last as the boolean it is.
    @Test func urlRefusesOtherHostsDoubledSlashesAndCredentials() throws {
        for (url, words) in [("//evil.example/x", "another host"), ("/img//", "//"), ("https://cdn.example.com//img", "//"),
                             ("https://user:pw@cdn.example.com/x", "user or password")] {
            let project = try Project(heroManifest.replacingOccurrences(of: "    path: site\n", with: "    path: site\n    url: '\(url)'\n"))
            let result = ManifestLoader().load(project.manifestPath)
            #expect(result.diagnostics.errors.contains { $0.message.contains("url '\(url)'") && $0.message.contains(words) }, "\(url): \(result.diagnostics.errors)")
        }
        for url in ["HTTPS://cdn.example.com/img", "https://cdn.example.com/a@b/img"] {
            let project = try Project(heroManifest.replacingOccurrences(of: "    path: site\n", with: "    path: site\n    url: '\(url)'\n"))
            try project.writeData("photos/a.png", pngHeader(10, 10))
            let errors = ManifestLoader().load(project.manifestPath).diagnostics.errors
            #expect(errors.isEmpty, "\(url): \(errors)")
        }
        for (to, words) in [("site/{name}-{w}.{hash:+8}.{f}", "hash length"), ("site/{name}-{w}.{hash:04}.{f}", "hash length")] {
            let project = try Project(heroManifest.replacingOccurrences(of: "site/{name}-{w}.{f}", with: to))
            let errors = ManifestLoader().load(project.manifestPath).diagnostics.errors
            #expect(errors.contains { $0.message.contains(words) }, "\(to): \(errors)")
        }
        let project = try Project(heroManifest.replacingOccurrences(of: "    to: site/{name}-{w}.{f}\n", with: "    to: site/{name}-{w}.{f}\n    placeholder: null\n"))
        let errors = ManifestLoader().load(project.manifestPath).diagnostics.errors
        #expect(errors.contains { $0.message.contains("'placeholder' must be true or false, got null") }, "\(errors)")
    }

    @Test func headersGiveTheDisplayedSize() throws {
        let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Samples")
        func size(_ name: String) throws -> [Int]? {
            let data = try Data(contentsOf: samples.appendingPathComponent(name))
            return SourceHeader.displayedSize(data).map { [$0.width, $0.height] }
        }
        #expect(try size("landscape.jpg") == [1200, 800])
        #expect(try size("portrait.jpg") == [800, 1200])
        // Stored 200x300 with EXIF orientations 5-8: shown (and resized) as 300x200.
        for n in 1...8 { #expect(try size("orientation-\(n).jpg") == [300, 200], "orientation-\(n)") }
        #expect(try size("logo-alpha.png") == [400, 400])
        #expect(try size("spinner.gif") == [160, 120])
        #expect(try size("cmyk.jpg") == [600, 400])
        // WebP: lossy (VP8), lossless (VP8L), extended (VP8X).
        func riff(_ chunk: String, _ payload: [UInt8]) -> Data {
            Data(Array("RIFF".utf8) + [0, 0, 0, 0] + Array("WEBP".utf8) + Array(chunk.utf8) + [0, 0, 0, 0] + payload + [UInt8](repeating: 0, count: 16))
        }
        #expect(SourceHeader.displayedSize(riff("VP8 ", [0, 0, 0, 0x9D, 0x01, 0x2A, 0x2C, 0x01, 0xC8, 0x00])).map { [$0.width, $0.height] } == [300, 200])
        let bits = UInt32(299) | UInt32(199) << 14
        #expect(SourceHeader.displayedSize(riff("VP8L", [0x2F, UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]))
                .map { [$0.width, $0.height] } == [300, 200])
        #expect(SourceHeader.displayedSize(riff("VP8X", [0, 0, 0, 0, 0x2B, 0x01, 0x00, 0xC7, 0x00, 0x00])).map { [$0.width, $0.height] } == [300, 200])
        #expect(SourceHeader.displayedSize(Data("not an image".utf8)) == nil)
        #expect(SourceHeader.displayedSize(Data([0xFF, 0xD8, 0xFF, 0xE1, 0x00])) == nil)
    }
}
