import Foundation
import Testing
import TestSupport
import Imaging

/// The demo page (`Samples/site/index.html`, built by `Manifests/page.yaml`): what README's demo
/// command ends with. Its pictures are what `derive html` prints, and every address in them is a
/// built file of the size its descriptor says.
@Suite(.ownThreads, .serialized) struct DemoPageTests {
    static let pictures = [("samples/landscape.jpg", "A red house on green hills under a blue sky (landscape sample)"), ("samples/portrait.jpg", "The same scene, taller (portrait sample)")]
    static let sizes = "(min-width: 50em) 50vw, 100vw"

    @Test func theDemoPageShowsBuiltPicturesOfTheRightSizes() throws {
        let demo = try DemoCopy()
        defer { demo.remove() }
        let project = CLI.samples.deletingLastPathComponent()
        try FileManager.default.copyItem(at: project.appendingPathComponent("Manifests/page.yaml"),
                                         to: demo.root.appendingPathComponent("Manifests/page.yaml"))
        let manifest = demo.root.appendingPathComponent("Manifests/page.yaml").path
        let build = try demo.run(["build", manifest])
        #expect(build.status == 0, "\(build.stderr)")
        // 2 sources x 3 widths x 3 formats; portrait.jpg (800 px) gives 800 for 1280, not a copy.
        #expect(String(decoding: build.stdout, as: UTF8.self).contains("built 18"), "\(String(decoding: build.stdout, as: UTF8.self))")
        let out = demo.root.appendingPathComponent("Samples/site/pictures")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("portrait-800.avif").path))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("portrait-1280.avif").path))
        #expect(String(decoding: try demo.run(["build", manifest]).stdout, as: UTF8.self).contains("Nothing to do"))

        // The index gives each source's dominant colour: what `derive process … average-hue` answers.
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("derive-index.json"))) as? [String: Any]
        let landscape = (index?["sources"] as? [String: Any])?["samples/landscape.jpg"] as? [String: Any]
        let hue = try demo.run(["process", demo.root.appendingPathComponent("Samples/landscape.jpg").path, "average-hue"])
        let answer = try JSONSerialization.jsonObject(with: hue.stdout) as? [String: String]
        let rgb = try #require(answer?["RGB"])
        #expect(landscape?["color"] as? String == "#" + rgb.dropFirst(2).lowercased(), "\(String(describing: landscape?["color"])) vs \(rgb)")

        // The placeholder: a WebP data URI at most 32 px a side, and a ThumbHash of a landscape image.
        let placeholder = try #require(landscape?["placeholder"] as? [String: String])
        let uri = try #require(placeholder["src"])
        #expect(uri.hasPrefix("data:image/webp;base64,"))
        let webp = try #require(Data(base64Encoded: String(uri.dropFirst("data:image/webp;base64,".count))))
        let tiny = try Raster.decode(webp)
        #expect(tiny.width == 32 && tiny.height == 21, "\(tiny.width)x\(tiny.height)")
        let thumbhash = try #require(placeholder["thumbhash"])
        let hash = try #require(Data(base64Encoded: thumbhash))
        #expect(hash.count >= 10 && hash[4] & 0x80 != 0, "a landscape hash has its landscape bit set")
        #expect(hash[2] & 0x80 == 0, "an opaque JPEG has no alpha")

        let pageURL = demo.root.appendingPathComponent("Samples/site/index.html")
        let page = try String(contentsOf: pageURL, encoding: .utf8)
        for (source, alt) in Self.pictures {
            let html = try demo.run(["html", source, "--manifest", manifest, "--alt", alt, "--sizes", Self.sizes])
            #expect(html.status == 0, "\(html.stderr)")
            let printed = String(decoding: html.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(printed.hasPrefix("<picture><source type=\"image/avif\"") && printed.contains("loading=\"lazy\" decoding=\"async\""))
            #expect(page.contains(printed), "the page no longer shows what derive html prints for \(source):\n\(printed)")
        }

        // Every address resolves from the page to a built file as wide as its descriptor says.
        let folder = pageURL.deletingLastPathComponent()
        var checked = 0
        for match in page.matches(of: /srcset="([^"]*)"/) {
            for candidate in match.1.split(separator: ",") {
                let parts = candidate.split(separator: " ")
                let file = folder.appendingPathComponent(String(parts[0])).standardizedFileURL
                let image = try Raster.decode(try Data(contentsOf: file))
                #expect("\(image.width)w" == parts[1], "\(file.path)")
                checked += 1
            }
        }
        #expect(checked == 18)   // 2 pictures x 3 formats x 3 widths, in <source> or <img>
        for match in page.matches(of: /<img src="([^"]*)"[^>]* width="(\d+)" height="(\d+)"/) {
            let image = try Raster.decode(try Data(contentsOf: folder.appendingPathComponent(String(match.1)).standardizedFileURL))
            #expect(image.width == Int(match.2) && image.height == Int(match.3))
        }
        #expect(page.matches(of: /<img src=/).count == 2)
    }
}
