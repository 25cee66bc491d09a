import Foundation
import ImagingCore
import Testing

/// Issue #13 after attack 20 (static): an animated GIF showed as a still on the page `derive init`
/// writes (A1: the picture offered the still AVIF first, its WebP was animated).
@Suite(.serialized) struct SiteRound20Tests {
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
}
