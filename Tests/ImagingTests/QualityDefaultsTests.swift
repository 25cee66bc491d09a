import Foundation
import Testing
import TestSupport
import Imaging
import ImagingCore
import ProcessLanguage

/// Issue #13: a default quality per output format (Tests/Benchmarks/calibrate-quality), which a
/// chain's own `quality` still overrides.
@Suite(.ownThreads)
struct QualityDefaultsTests {
    static func bytes(_ source: Data, _ process: String) throws -> Data {
        try Engine().render(source, try Pipeline.parse(process)).bytes
    }

    @Test func eachFormatWithoutQualityIsWrittenAtItsCalibratedDefault() throws {
        let source = try Fixtures.sample("landscape.jpg")
        // A PNG source: `Q` is absolute, never capped by a source JPEG's own quality.
        let png = try Self.bytes(source, "image/resize,w_480/format,png")
        for (format, quality) in [("webp", 85), ("avif", 70), ("jpg", 85)] {
            let implicit = try Self.bytes(png, "image/format,\(format)")
            #expect(implicit == (try Self.bytes(png, "image/quality,Q_\(quality)/format,\(format)")), "\(format) default is q\(quality)")
            if quality != 85 {
                #expect(implicit != (try Self.bytes(png, "image/quality,Q_85/format,\(format)")), "\(format) no longer 85")
            }
        }
    }

    @Test func aQualityInTheChainStillWins() throws {
        let png = try Self.bytes(try Fixtures.sample("landscape.jpg"), "image/resize,w_480/format,png")
        for format in ["webp", "avif"] {
            let implicit = try Self.bytes(png, "image/format,\(format)")
            let high = try Self.bytes(png, "image/quality,Q_95/format,\(format)")
            #expect(high != implicit && high.count > implicit.count, "\(format): Q_95 \(high.count) vs default \(implicit.count)")
        }
    }

    @Test func webpAndAVIFDefaultsAreSmallerThanJPEGsOnThePhotoSamples() throws {
        for name in ["landscape.jpg", "portrait.jpg"] {
            let source = try Fixtures.sample(name)
            let jpeg = try Self.bytes(source, "image/resize,w_960/format,jpg").count
            let webp = try Self.bytes(source, "image/resize,w_960/format,webp").count
            let avif = try Self.bytes(source, "image/resize,w_960/format,avif").count
            #expect(webp < jpeg && avif < jpeg, "\(name): jpg \(jpeg), webp \(webp), avif \(avif)")
        }
    }

    @Test func theEncoderSettingsNameEveryDefaultAndTheRenderVersionMoved() {
        #expect(Engine.encoderSettings.contains("default-quality=avif:70,heic:85,jpg:85,tiff:85,webp:85;"), "\(Engine.encoderSettings)")
        #expect(Engine.encoderSettings.contains(";low-source-quality=50:45/50,60:55/55,70:70/55,80:80/65;"), "\(Engine.encoderSettings)")
        #expect(Engine.renderVersion == "8")
    }

    /// Attack 11 L2: a JPEG from a JPEG of lower quality was written at 85 without `quality`,
    /// bigger than any `quality,Q_` (capped at the source's quality) can give.
    @Test(.enabled(if: Fixtures.corpusAvailable, "../shared/corpus is not present"))
    func aJPEGFromALowerQualityJPEGIsNotWrittenAboveTheSourcesQuality() throws {
        let source = try Fixtures.corpusFile("exif-orientation-examples/Landscape_1.jpg")   // saved at about q73
        let implicit = try Self.bytes(source, "image/resize,w_600/format,jpg")
        let capped = try Self.bytes(source, "image/resize,w_600/quality,Q_85/format,jpg")
        #expect(implicit == capped, "default \(implicit.count) bytes, Q_85 \(capped.count)")
        #expect(implicit.count <= (try Self.bytes(source, "image/resize,w_600/quality,Q_100/format,jpg")).count)
        // A source above 85 keeps 85.
        let png = try Self.bytes(try Fixtures.sample("landscape.jpg"), "image/resize,w_480/format,png")
        let high = try Self.bytes(png, "image/quality,Q_95/format,jpg")
        #expect(try Self.bytes(high, "image/format,jpg") == (try Self.bytes(high, "image/quality,Q_85/format,jpg")))
    }
}

/// Issue #13 point 4: the planner's displayed size of TIFF, BMP, HEIC and AVIF sources, as the engine draws them.
@Suite(.ownThreads)
struct SiteSourceSizeTests {
    /// The engine's displayed size: what a plain re-encode draws.
    static func drawn(_ source: Data) throws -> (Int, Int) {
        let (_, raster) = try Fixtures.render(source, "image/format,png")
        return (raster.width, raster.height)
    }

    @Test(.enabled(if: Fixtures.corpusAvailable, "../shared/corpus is not present"))
    func corpusTIFFHEICAndAVIFSizesAreTheEngines() throws {
        for path in ["libvips/sample.tif", "thumbor/gradient_lsb_16bperchannel.tif", "generated/landscape.heic", "thumbor/image.heic",
                     "generated/landscape.avif", "thumbor/image.avif"] {
            let source = try Fixtures.corpusFile(path)
            let size = try #require(SourceHeader.displayedSize(source), "\(path)")
            let drawn = try Self.drawn(source)
            #expect(size.width == drawn.0 && size.height == drawn.1, "\(path): header \(size), engine \(drawn)")
        }
    }

    @Test func aBMPAndATIFFWithOrientationAreSizedAsDrawn() throws {
        let bmp = try QualityDefaultsTests.bytes(try Fixtures.sample("portrait.jpg"), "image/resize,w_90/format,bmp")
        let size = try #require(SourceHeader.displayedSize(bmp))
        let drawn = try Self.drawn(bmp)
        #expect(size.width == 90 && size.width == drawn.0 && size.height == drawn.1, "\(size) \(drawn)")
        // A 4x2 grey TIFF stored with Orientation 6 (a quarter turn): drawn 2x4, and so sized.
        let tiff = Self.tiff(width: 4, height: 2, orientation: 6)
        let oriented = try #require(SourceHeader.displayedSize(tiff))
        #expect(oriented.width == 2 && oriented.height == 4, "\(oriented)")
        let engine = try Self.drawn(tiff)
        #expect(engine.0 == 2 && engine.1 == 4, "\(engine)")
    }

    /// An uncompressed 8-bit greyscale little-endian TIFF with an Orientation tag.
    static func tiff(width: Int, height: Int, orientation: Int) -> Data {
        var bytes: [UInt8] = [0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0]
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16) }
        let entries: [(tag: Int, value: Int)] = [(256, width), (257, height), (258, 8), (259, 1), (262, 1), (273, 0),
                                                  (274, orientation), (277, 1), (278, height), (279, width * height)]
        let pixelsAt = 8 + 2 + entries.count * 12 + 4
        bytes += u16(entries.count)
        for entry in entries {
            let value = entry.tag == 273 ? pixelsAt : entry.value
            bytes += u16(entry.tag) + u16(entry.tag == 273 || entry.tag == 279 ? 4 : 3) + u32(1)
            bytes += entry.tag == 273 || entry.tag == 279 ? u32(value) : u16(value) + [0, 0]
        }
        bytes += u32(0)
        bytes += (0..<(width * height)).map { UInt8($0 * 255 / max(1, width * height - 1)) }
        return Data(bytes)
    }
}
