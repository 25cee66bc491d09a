import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

/// Real-world files from ../shared/corpus (never copied into the project); skipped when absent.
@Suite(.ownThreads, .enabled(if: Fixtures.corpusAvailable, "../shared/corpus is not present"))
struct CorpusTests {
    /// Mean absolute difference per channel between two rasters of the same size.
    static func difference(_ a: Raster, _ b: Raster) -> Double {
        guard a.width == b.width, a.height == b.height, a.bands == b.bands else { return .infinity }
        var total = 0
        for (x, y) in zip(a.pixels, b.pixels) { total += abs(Int(x) - Int(y)) }
        return Double(total) / Double(a.pixels.count)
    }

    static func thumbnail(_ path: String, _ process: String = "image/resize,w_200/format,png") throws -> Raster {
        try Fixtures.render(try Fixtures.corpusFile(path), process).1
    }

    @Test(arguments: ["Landscape", "Portrait"])
    func everyOrientationIsUpright(_ kind: String) throws {
        let reference = try Self.thumbnail("exif-orientation-examples/\(kind)_1.jpg")
        #expect(kind == "Landscape" ? reference.width > reference.height : reference.height > reference.width)
        for n in [0, 2, 3, 4, 5, 6, 7, 8] {
            for process in ["image/resize,w_200/format,png", "image/format,png/crop,w_5000/resize,w_200"] {
                let raster = try Self.thumbnail("exif-orientation-examples/\(kind)_\(n).jpg", process)
                let difference = Self.difference(raster, reference)
                #expect(difference < 6, "\(kind)_\(n) \(process): differs from \(kind)_1 by \(difference)")
            }
        }
    }

    /// The shrink-on-load path and the full decode path colour-manage alike.
    @Test(arguments: ["thumbor/Giunchedi_Filippo_January_2015_01-cmyk.jpg", "thumbor/cmyk-icc.jpg",
                      "generated/landscape-cmyk-icc.jpg", "generated/landscape-displayp3.jpg",
                      "libvips/sample.jpg", "libvips/sample-xyb.jpg", "sharp/p3.png"])
    func colourManagedToSRGB(_ path: String) throws {
        let fast = try Self.thumbnail(path, "image/resize,w_80/format,png")
        let full = try Self.thumbnail(path, "image/rotate,0/resize,w_80/format,png")
        #expect(fast.bands == 3 || fast.bands == 4)
        #expect(Self.difference(fast, full) < 4, "\(path): \(Self.difference(fast, full))")
    }

    @Test func cmykMatchesItsRGBOriginal() throws {
        let rgb = try Self.thumbnail("thumbor/Giunchedi_Filippo_January_2015_01.jpg")
        let cmyk = try Self.thumbnail("thumbor/Giunchedi_Filippo_January_2015_01-cmyk.jpg")
        #expect(cmyk.bands == 3)
        #expect(Self.difference(rgb, cmyk) < 35, "\(Self.difference(rgb, cmyk))")
    }

    @Test(arguments: [("libvips/sample.png", 290, 442), ("thumbor/16bit.png", 100, 100), ("sharp/tbgn2c16.png", 32, 32),
                      ("libvips/sample.tif", 290, 442), ("thumbor/gradient_lsb_16bperchannel.tif", 100, 100),
                      ("generated/landscape-16bit-alpha.png", 900, 600)])
    func sixteenBitBecomesEightBit(_ path: String, _ w: Int, _ h: Int) throws {
        let (output, raster) = try Fixtures.render(try Fixtures.corpusFile(path), "image/format,jpg")
        #expect(output.kind == .image(.jpg))
        #expect(raster.width == w && raster.height == h && raster.bands == 3)
        let webp = try Fixtures.render(try Fixtures.corpusFile(path), "image/resize,w_20/format,webp").1
        #expect(webp.width == 20)
    }

    @Test(arguments: [("libvips/cogs.gif", 5, "gif"), ("thumbor/Rotating_earth_large.gif", 44, "gif"),
                      ("sharp/rotating-squares.gif", 30, "gif"), ("libvips/dispose-background.gif", 3, "gif"),
                      ("libvips/big-height.webp", 99, "webp"), ("thumbor/animated.gif", 2, "gif")])
    func animationsKeepTheirFrames(_ path: String, _ frames: Int, _ format: String) throws {
        let source = try Fixtures.corpusFile(path)
        let (output, raster) = try Fixtures.render(source, "image/resize,w_40")
        #expect(Fixtures.magic(output.bytes) == format)
        #expect(output.frames == frames && raster.frames == frames, "\(path): \(output.frames)")
        // Never enlarged (GIFs), otherwise exactly 40 wide.
        let original = try Raster.decode(source).width
        #expect(raster.width == min(40, original), "\(path): \(raster.width) from \(original)")
    }

    @Test(arguments: ["generated/empty.jpg", "generated/not-an-image.jpg", "thumbor/image_invalid.jpg",
                      "libvips/sRGB.icm", "libvips/truncated.jpg", "thumbor/BlueSquare_truncated.jpg",
                      "generated/truncated-half.png", "libvips/truncated.gif"])
    func brokenFilesAreCleanErrors(_ path: String) throws {
        // info reads only the header, which truncated files still have intact.
        for process in ["image/resize,w_100", "image/format,png", "image/info"] where !(process == "image/info" && path.contains("truncated")) {
            #expect("\(path) \(process)") { try Engine().render(try Fixtures.corpusFile(path), try Pipeline.parse(process)) } throws: {
                ($0 as? ProcessError)?.code == .badRequest && ($0 as? ProcessError)?.ec == "0040-00000005"
            }
        }
    }

    /// A GIF whose later frames are corrupt is refused, even for a still output that draws only
    /// the intact first frame: every frame of a GIF must decode.
    @Test func corruptLaterFrames() throws {
        let source = try Fixtures.corpusFile("libvips/invalid_multiframe.gif")
        for process in ["image/resize,w_100", "image/format,png"] {
            #expect { try Engine().render(source, try Pipeline.parse(process)) } throws: {
                ($0 as? ProcessError)?.ec == "0040-00000005"
            }
        }
    }

    @Test(arguments: ["thumbor/16384x16384.png", "generated/bomb-30000x30000-1bit.png"])
    func pixelBombsAreRefusedFromTheHeader(_ path: String) throws {
        let started = Date()
        #expect { try Engine().render(try Fixtures.corpusFile(path), try Pipeline.parse("image/resize,w_100")) } throws: {
            ($0 as? ProcessError)?.code == .imageTooLarge
        }
        #expect(Date().timeIntervalSince(started) < 1.5, "refusing must not decode the pixels")
    }

    @Test func hugeJPEGShrinksOnLoad() throws {
        let raster = try Self.thumbnail("thumbor/9643x10328.jpg")
        #expect(raster.width == 200 && raster.height == 214)
        let output = try Engine().render(try Fixtures.corpusFile("thumbor/9643x10328.jpg"), try Pipeline.parse("image/resize,w_200"))
        #expect((1205 * 1290...1206 * 1291).contains(output.decodedPixels), "decoded \(output.decodedPixels) pixels")   // 1/8 of each side of 99.6 MP
    }

    @Test(arguments: [("generated/png-named-as.jpg", "png"), ("libvips/looks-like-svg.webp", "webp"),
                      ("generated/landscape.heic", "heic"), ("generated/landscape.avif", "avif"),
                      ("thumbor/image.avif", "avif"), ("thumbor/image.heic", "heic"), ("libvips/indexed.png", "png"),
                      ("thumbor/paletted-transparent.png", "png"), ("thumbor/grayscale.jpg", "jpg"),
                      ("thumbor/grayscale-icc.jpg", "jpg"), ("libvips/ultra-hdr.jpg", "jpg"),
                      ("thumbor/broken-exif-tag.jpg", "jpg"), ("thumbor/invalid_quantization.jpg", "jpg"),
                      ("generated/landscape-progressive.jpg", "jpg"), ("generated/landscape-lossy.webp", "webp")])
    func formatsComeFromContent(_ path: String, _ format: String) throws {
        let (output, raster) = try Fixtures.render(try Fixtures.corpusFile(path), "image/resize,w_50")
        #expect(Fixtures.magic(output.bytes) == format, "\(path)")
        #expect(raster.width <= 50 && raster.width > 0)
        let info = String(decoding: try Engine().info(try Fixtures.corpusFile(path)).bytes, as: UTF8.self)
        #expect(info.contains("\"Format\": {\"value\": \"\(format)\"}"), "\(path): \(info)")
    }
}
