import Foundation
import Testing
import TestSupport

/// Attack 49b's F4 and F7: GIFs whose images reach past their logical screen. F4: a 2-frame GIF
/// whose 2nd frame is wider than its screen lost `animated` in the index (its size is taken as
/// unknown), so its `<picture>` offered a still AVIF first. F7: libvips grows the canvas for the
/// first frame only, but the limit check took the furthest reach of any frame: a 100x50 GIF
/// whose 2nd frame sits at x=29990 was refused as "30010x50", a size libvips never shows.
@Suite(.ownThreads) struct AnimatedGIFPastScreenRound49Tests {
    typealias Site = SiteRound11Tests.Site
    typealias Frame = GIFFrames.Frame

    static let manifest = """
        version: 1
        buckets: {src: {path: src}, out: {path: out, acl: public-read}}
        derivatives:
          - {name: pic, from: "src/*.gif", process: "image/resize,w_80/format,{f}", matrix: {f: [avif, webp, gif]}, to: "out/{name}.{f}", acl: public-read}
        index: out/index.json
        """

    static func put(_ gif: Data, at path: String, in site: Site) throws {
        try FileManager.default.createDirectory(at: site.url(path).deletingLastPathComponent(), withIntermediateDirectories: true)
        try gif.write(to: site.url(path))
    }

    /// F4: both GIFs are animations of 2 frames; the one whose 2nd frame is 120 px wide on a
    /// 100 px screen stays `animated` (its size, unknown to the planner, is left out), and its
    /// picture offers the animated WebP, never the still AVIF, as the other's does.
    @Test func anAnimationWhoseFrameReachesPastItsScreenStaysAnimated() throws {
        let site = try Site([:], manifest: Self.manifest)
        defer { site.remove() }
        try Self.put(GIFFrames.gif(screenWidth: 100, screenHeight: 50, [Frame(left: 0, top: 0, width: 100, height: 50, colour: 1),
                                                                      Frame(left: 0, top: 0, width: 100, height: 50, colour: 0)]),
                     at: "src/anim.gif", in: site)
        try Self.put(GIFFrames.gif(screenWidth: 100, screenHeight: 50, [Frame(left: 0, top: 0, width: 100, height: 50, colour: 1),
                                                                      Frame(left: 0, top: 0, width: 120, height: 50, colour: 0)]),
                     at: "src/wide.gif", in: site)
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let index = try SiteRound20Tests.json(site.url("out/index.json"))
        let sources = try #require(index["sources"] as? [String: Any])
        let anim = try #require(sources["src/anim.gif"] as? [String: Any])
        let wide = try #require(sources["src/wide.gif"] as? [String: Any])
        #expect(anim["animated"] as? Bool == true && anim["width"] as? Int == 100)
        #expect(wide["animated"] as? Bool == true, "\(wide.keys.sorted())")
        #expect(wide["width"] == nil && wide["height"] == nil)
        let pictures = try #require(wide["pictures"] as? [String: Any])
        let picture = try #require(pictures["pic"] as? [String: Any])
        let formats = try #require(picture["formats"] as? [[String: Any]])
        #expect(formats.map { $0["format"] as? String } == ["webp", "gif", "avif"])
        #expect(SiteRound20Tests.sourceTypes(try #require(picture["html"] as? String)) == ["image/webp"])
        for source in ["src/anim.gif", "src/wide.gif"] {
            let html = try site.run(["html", source, "--rule", "pic"])
            #expect(html.status == 0, "\(said(html))")
            #expect(SiteRound20Tests.sourceTypes(String(decoding: html.stdout, as: UTF8.self)) == ["image/webp"], "\(source): \(said(html))")
        }
        // The index written is the one a no-op build and `check` expect.
        #expect(try site.run(["check"]).status == 0)
    }

    /// F7: a later frame past the screen does not change the size libvips shows (100x50): the
    /// GIF is read and rendered at that size, not refused as 30010x50.
    @Test func aLaterFramePastTheScreenIsMeasuredAsLibvipsShowsIt() throws {
        let site = try Site([:], manifest: nil)
        defer { site.remove() }
        try Self.put(GIFFrames.gif(screenWidth: 100, screenHeight: 50, [Frame(left: 0, top: 0, width: 100, height: 50, colour: 1),
                                                                      Frame(left: 29_990, top: 0, width: 20, height: 20, colour: 0)]),
                     at: "far.gif", in: site)
        let info = try site.run(["info", "far.gif"])
        #expect(info.status == 0, "\(said(info))")
        let json = try #require(try JSONSerialization.jsonObject(with: info.stdout) as? [String: Any], "\(said(info))")
        #expect((json["ImageWidth"] as? [String: Any])?["value"] as? String == "100", "\(json)")
        #expect((json["ImageHeight"] as? [String: Any])?["value"] as? String == "50", "\(json)")
    }
}
