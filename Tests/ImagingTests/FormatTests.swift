import Foundation
import Testing
import TestSupport
@testable import Imaging
import ProcessLanguage

@Suite(.ownThreads) struct FormatTests {
    @Test(arguments: Format.Kind.allCases)
    func everyFormatWrites(_ format: Format.Kind) throws {
        let source = try Fixtures.quadrants(64, 48)
        let (output, raster) = try Fixtures.render(source, "image/format,\(format.rawValue)")
        let expected = format == .gif ? "png" : format.rawValue   // GIF only for GIF sources
        #expect(Fixtures.magic(output.bytes) == expected)
        #expect(raster.width == 64 && raster.height == 48)
        let tolerance = [.jpg, .webp, .heic, .avif].contains(format) ? 40 : 0
        #expect(Fixtures.near(raster.pixel(8, 8), Fixtures.red, tolerance: tolerance), "\(format): \(raster.pixel(8, 8))")
    }

    @Test func alphaSurvivesOrIsFlattened() throws {
        let source = try Raster(width: 20, height: 20, bands: 4) { x, _ in x < 10 ? [255, 0, 0, 0] : [0, 0, 255, 255] }.encoded(as: .png)
        for format in ["png", "webp", "avif", "tiff"] {
            let raster = try Fixtures.render(source, "image/format,\(format)").1
            #expect(raster.bands == 4, "\(format)")
            #expect(raster.pixel(2, 2)[3] == 0, "\(format)")
        }
        let jpeg = try Fixtures.render(source, "image/format,jpg").1
        #expect(jpeg.bands == 3)
        #expect(Fixtures.near(jpeg.pixel(2, 2), [255, 255, 255], tolerance: 8))
    }

    @Test func defaultFormatIsTheSource() throws {
        #expect(try Fixtures.render(try Fixtures.quadrants(as: .jpg), "image/resize,w_50").0.kind == .image(.jpg))
        #expect(try Fixtures.render(try Fixtures.quadrants(as: .webp), "image/resize,w_50").0.kind == .image(.webp))
        let cmyk = try Fixtures.render(try Fixtures.sample("cmyk.jpg"), "image/resize,w_100").1
        #expect(cmyk.bands == 3)
    }

    @Test func extensionNeverDecides() throws {
        // PNG bytes whatever the name; the format comes from content.
        let source = try Fixtures.quadrants(as: .png)
        #expect(try Engine().render(source, try Pipeline.parse("image/resize,w_10")).kind == .image(.png))
    }

    @Test func interlace() throws {
        let source = try Fixtures.quadrants(as: .jpg)
        let progressive = try Fixtures.render(source, "image/interlace,1").0.bytes
        let baseline = try Fixtures.render(source, "image/interlace,0").0.bytes
        #expect(progressive.range(of: Data([0xFF, 0xC2])) != nil)
        #expect(baseline.range(of: Data([0xFF, 0xC2])) == nil)
    }

    @Test func metadataIsStripped() throws {
        let output = try Fixtures.render(try Fixtures.sample("orientation-6.jpg"), "image/resize,w_50").0
        #expect(output.bytes.range(of: Data("Exif".utf8)) == nil)
        let info = String(decoding: try Engine().info(output.bytes).bytes, as: UTF8.self)
        #expect(!info.contains("Orientation"))
    }
}

@Suite(.ownThreads) struct QualityTests {
    @Test(arguments: [50, 75, 80, 90, 95])
    func estimatesSourceQuality(_ quality: Int) throws {
        let data = try Fixtures.quadrants(64, 64, as: .jpg)
        let source = try Raster.decode(data).encoded(as: .jpg, quality: quality)
        let estimate = source.withUnsafeBytes { JPEGQuality.estimate($0) }
        #expect(estimate == quality)
    }

    @Test func relativeAndAbsolute() throws {
        let source = try Raster.decode(try Fixtures.sample("landscape.jpg")).encoded(as: .jpg, quality: 80)
        func quality(_ process: String) throws -> Int? {
            try Fixtures.render(source, process).0.bytes.withUnsafeBytes { JPEGQuality.estimate($0) }
        }
        #expect(try quality("image/quality,q_50") == 40)     // 80 × 50 %
        #expect(try quality("image/quality,Q_95") == 80)     // never above the source
        #expect(try quality("image/quality,Q_60") == 60)
        #expect(try quality("image/quality,q_50,Q_70") == 70) // Q wins
        #expect(try quality("image/resize,w_100") == 80)     // the default (85), never above the source either
        let webp = try Fixtures.render(source, "image/quality,q_30/format,webp").0.bytes.count
        let webpHigh = try Fixtures.render(source, "image/quality,q_90/format,webp").0.bytes.count
        #expect(webp < webpHigh)
    }
}

@Suite(.ownThreads) struct AnimationTests {
    @Test func gifStaysAnimated() throws {
        let (output, raster) = try Fixtures.render(try Fixtures.sample("spinner.gif"), "image/resize,w_80")
        #expect(output.kind == .image(.gif))
        #expect(output.frames == 8 && raster.frames == 8)
        #expect(raster.width == 80 && raster.frameHeight == 60)
        // The square turns: frames differ.
        let frameBytes = raster.width * raster.frameHeight * raster.bands
        #expect(raster.pixels[0..<frameBytes] != raster.pixels[frameBytes..<2 * frameBytes])
    }

    @Test func gifToWebPStaysAnimated() throws {
        let (output, raster) = try Fixtures.render(try Fixtures.sample("spinner.gif"), "image/crop,w_100,h_100,g_center/format,webp")
        #expect(Fixtures.magic(output.bytes) == "webp")
        #expect(raster.frames == 8 && raster.width == 100 && raster.frameHeight == 100)
    }

    @Test func stillFormatsTakeTheFirstFrame() throws {
        let (output, raster) = try Fixtures.render(try Fixtures.sample("spinner.gif"), "image/format,png")
        #expect(output.frames == 1 && raster.height == 120)
        // GIF + p makes a still image (spec §2.1).
        let percent = try Fixtures.render(try Fixtures.sample("spinner.gif"), "image/resize,p_50").0
        #expect(percent.frames == 1)
    }

    @Test func gifIsNeverEnlarged() throws {
        let raster = try Fixtures.render(try Fixtures.sample("spinner.gif"), "image/resize,w_400,limit_0").1
        #expect(raster.width == 160)
    }
}
