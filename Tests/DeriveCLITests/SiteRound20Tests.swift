import Foundation
import ImagingCore
import Testing
import TestSupport

/// Issue #13 after attack 20 (static): an animated GIF showed as a still on the page `derive init`
/// writes (A1: the picture offered the still AVIF first, its WebP was animated); that page
/// over-downloaded and logged a 404 (L1, L3); `derive html` printed relative addresses silently (L5).
@Suite(.ownThreads, .serialized) struct SiteRound20Tests {
    static func json(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// The picture entry `responsive` of `source` in the index at `index`.
    static func picture(_ index: [String: Any], _ source: String) throws -> (entry: [String: Any], picture: [String: Any]) {
        let sources = try #require(index["sources"] as? [String: Any])
        let entry = try #require(sources[source] as? [String: Any], "\(sources.keys.sorted())")
        let pictures = try #require(entry["pictures"] as? [String: Any])
        return (entry, try #require(pictures["responsive"] as? [String: Any]))
    }

    /// The `<source type>`s of a `<picture>`, in order.
    static func sourceTypes(_ html: String) -> [String] {
        html.components(separatedBy: "<source type=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
    }

    // MARK: A1: an animation stays animated on the page

    /// Attack 20's A1: `derive init` over a folder holding an animated GIF; the index's picture
    /// and `derive html` offered `image/avif` (the first frame) before the animated WebP, so a
    /// browser showed a still. They now offer the WebP, whose file has every frame, and no still
    /// AVIF before it; a photo's picture still offers AVIF first.
    @Test func anAnimatedSourcesPictureOffersTheAnimationFirst() throws {
        let folder = try SiteConventionsTests.project(["photos/spinner.gif": "spinner.gif", "photos/lake.jpg": "landscape.jpg"])
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["init", "photos"], in: folder).status == 0)
        let build = try CLI.run(["build", "--quiet"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
        let site = folder.appendingPathComponent("_site")
        let index = try Self.json(site.appendingPathComponent("derive-index.json"))

        let (entry, picture) = try Self.picture(index, "images/spinner.gif")
        #expect(entry["animated"] as? Bool == true)
        let formats = try #require(picture["formats"] as? [[String: Any]])
        #expect(formats.map { $0["format"] as? String } == ["webp", "avif", "jpg"])
        let html = try #require(picture["html"] as? String)
        #expect(Self.sourceTypes(html) == ["image/webp"], "\(html)")
        // What the browser takes: the first candidate of the first <source>, a WebP of 8 frames.
        let candidates = try #require(formats.first?["candidates"] as? [[String: Any]])
        let url = try #require(candidates.first?["url"] as? String)
        let webp = try Data(contentsOf: site.appendingPathComponent(String(url.drop { $0 == "." || $0 == "/" })))
        #expect(WebPChunks.frameCount(webp) == 8, "\(url)")
        // The AVIF is a still (its first frame): it is listed, never offered before the animation.
        #expect(formats.contains { $0["format"] as? String == "avif" })

        let still = try Self.picture(index, "images/lake.jpg")
        #expect(still.entry["animated"] == nil)
        #expect(Self.sourceTypes(try #require(still.picture["html"] as? String)) == ["image/avif", "image/webp"])

        // `derive html` prints the same picture.
        let printed = try CLI.run(["html", "photos/spinner.gif", "--rule", "responsive"], in: folder)
        #expect(printed.status == 0, "\(printed.stderr)")
        let text = String(decoding: printed.stdout, as: UTF8.self)
        #expect(Self.sourceTypes(text) == ["image/webp"], "\(text)")
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == html)
        // A no-op and `check` agree with the index written.
        #expect(try CLI.run(["check"], in: folder).status == 0)
    }

    // MARK: L1, L3: the page init writes

    /// Attack 20's L1 and L3: the page `derive init` writes showed each picture in its 60em
    /// column with the index's full-width `sizes` (a 1280 px window downloaded the 1600 px file
    /// for a 960 px box), and had no icon (every load logged a 404 for /favicon.ico). It now
    /// gives the pictures its column's sizes and an empty icon.
    @Test func theInitPageGivesItsColumnsSizesAndAnIcon() throws {
        let folder = try SiteConventionsTests.project(["photos/lake.jpg": "landscape.jpg"])
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["init", "photos"], in: folder).status == 0)
        let page = try String(contentsOf: folder.appendingPathComponent("_site/index.html"), encoding: .utf8)
        #expect(page.contains("<link rel=\"icon\" href=\"data:,\">"), "\(page)")
        #expect(page.contains("const sizes = \"(max-width: 62em) calc(100vw - 2em), 60em\";"), "\(page)")
        #expect(page.contains("max-width:60em;padding:0 1em"), "the column the sizes describe: \(page)")
        // The index's html carries the default sizes the page replaces, written exactly once per element.
        #expect(try CLI.run(["build", "--quiet"], in: folder).status == 0)
        let index = try Self.json(folder.appendingPathComponent("_site/derive-index.json"))
        let (_, picture) = try Self.picture(index, "images/lake.jpg")
        let html = try #require(picture["html"] as? String), sizes = try #require(picture["sizes"] as? String)
        #expect(page.contains("picture.html.split('sizes=\"' + picture.sizes + '\"').join('sizes=\"' + sizes + '\"')"), "\(page)")
        #expect(html.components(separatedBy: "sizes=\"\(sizes)\"").count - 1 == 3, "\(html)")
    }

    // MARK: L5: relative addresses from derive html

    /// Attack 20's L5: with init's `url: .`, `derive html` printed `./NAME` addresses, which break
    /// in a page anywhere but `_site/` itself, and said nothing. The HTML is unchanged (a page in
    /// `_site/` uses it) and standard error says what the addresses resolve against; a root
    /// `url:` prints no note.
    @Test func derivesHtmlSaysWhenItsAddressesAreRelative() throws {
        let folder = try SiteConventionsTests.project(["photos/lake.jpg": "landscape.jpg"])
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CLI.run(["init", "photos"], in: folder).status == 0)
        #expect(try CLI.run(["build", "--quiet"], in: folder).status == 0)
        let relative = try CLI.run(["html", "photos/lake.jpg", "--rule", "responsive"], in: folder)
        #expect(relative.status == 0, "\(relative.stderr)")
        #expect(String(decoding: relative.stdout, as: UTF8.self).contains("src=\"./lake-"))
        #expect(relative.stderr.contains("the addresses are relative (./lake-"), "\(relative.stderr)")
        #expect(relative.stderr.contains("set the bucket's url: to where its folder is served from the site's root"), "\(relative.stderr)")
        let manifest = folder.appendingPathComponent("derive.yaml")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        try Data(text.replacingOccurrences(of: "url: .  ", with: "url: /site").utf8).write(to: manifest)
        #expect(try CLI.run(["build", "--quiet"], in: folder).status == 0)
        let rooted = try CLI.run(["html", "photos/lake.jpg", "--rule", "responsive"], in: folder)
        #expect(rooted.status == 0, "\(rooted.stderr)")
        #expect(String(decoding: rooted.stdout, as: UTF8.self).contains("src=\"/site/lake-"))
        #expect(rooted.stderr.isEmpty, "\(rooted.stderr)")
    }
}
