import Foundation
import Testing
import TestSupport
import ImageSimilarity
@testable import Imaging
import ImagingCore
import ProcessLanguage

/// Attack 14 M2: a JPEG source saved below q85 gets a JPEG default capped at its own quality, so
/// WebP (85) and AVIF (70) at the standing defaults came out larger than that JPEG fallback
/// (corpus Landscape_1, q73, at full size: AVIF 397 343 bytes, WebP 497 076, JPEG 394 430). Their
/// defaults now follow the source's quality (`Encoder.lowSourceQualities`, calibrated by
/// `Tests/Benchmarks/calibrate-quality --low`): smaller than the JPEG, at an SSIM no worse than
/// the JPEG's beyond `tolerance`, measured as the calibration does (half size, against the
/// lossless resize).
@Suite(.ownThreads)
struct LowQualitySourceDefaultsTests {
    /// How far below the JPEG's SSIM a WebP or AVIF default may be, for one photo (README,
    /// "Default quality per format"): the calibration matches the mean, photo by photo a little
    /// below or above it. The lowest is libvips/sample-xyb.jpg (jpegli's XYB tables, which the
    /// IJG estimate reads as q67): WebP 0.012 below its JPEG.
    static let tolerance = 0.015

    struct Measured: CustomStringConvertible {
        var bytes: [String: Int] = [:]
        var ssim: [String: Double] = [:]
        var description: String {
            ["jpg", "webp", "avif"].map { "\($0) \(bytes[$0] ?? 0) B SSIM \(String(format: "%.4f", ssim[$0] ?? 0))" }.joined(separator: ", ")
        }
    }

    static func rgb(_ raster: Raster) -> RGBPixels {
        var rgb: [UInt8] = []
        rgb.reserveCapacity(raster.width * raster.height * 3)
        for index in 0..<(raster.width * raster.height) {
            let pixel = raster.pixels[(index * raster.bands)..<(index * raster.bands + raster.bands)]
            let first = pixel[pixel.startIndex]
            if raster.bands < 3 { rgb += [first, first, first] } else { rgb += pixel.prefix(3) }
        }
        return RGBPixels(width: raster.width, height: raster.height, rgb: rgb)
    }

    /// Each format at its default (no `quality`), resized to half: bytes and SSIM against the lossless resize.
    static func measure(_ source: Data) throws -> Measured {
        let reference = rgb(try Fixtures.render(source, "image/resize,p_50/format,png").1)
        var measured = Measured()
        for format in ["jpg", "webp", "avif"] {
            let (output, raster) = try Fixtures.render(source, "image/resize,p_50/format,\(format)")
            measured.bytes[format] = output.bytes.count
            measured.ssim[format] = try Similarity(reference, rgb(raster)).ssim
        }
        return measured
    }

    static func expectSmallerAtTheJPEGsSSIM(_ measured: Measured, _ name: String, tiny: Bool = false) {
        for format in ["webp", "avif"] {
            // An AVIF's container alone is about 280 bytes: more than a whole JPEG of a few hundred pixels.
            if !(tiny && format == "avif") {
                #expect(measured.bytes[format]! < measured.bytes["jpg"]!, "\(name): \(format) not smaller than the JPEG: \(measured)")
            }
            #expect(measured.ssim[format]! >= measured.ssim["jpg"]! - tolerance, "\(name): \(format) SSIM below the JPEG's: \(measured)")
        }
    }

    static func quality(_ bytes: Data) -> Int? { bytes.withUnsafeBytes { JPEGQuality.estimate($0) } }

    /// Samples/landscape.jpg with a film grain (2×2 px grains, deviation 8, a fixed seed), saved
    /// at q60: made here, so the test always runs. The samples are smooth, where WebP and AVIF win
    /// at any default; with grain, JPEG at q60 (22 393 bytes at half size) beat WebP 85 (52 902)
    /// and AVIF 70 (43 312), as on the corpus's photos.
    static func grainyQ60() throws -> Data {
        let smooth = try Fixtures.render(try Fixtures.sample("landscape.jpg"), "image/format,png").1
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func uniform() -> Double {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Double(state >> 11) / Double(1 << 53)
        }
        let columns = (smooth.width + 1) / 2, rows = (smooth.height + 1) / 2
        // The sum of four uniforms, centred and scaled to a deviation of 8: near enough a Gaussian.
        let grain = (0..<(columns * rows)).map { _ in ((0..<4).map { _ in uniform() }.reduce(0, +) - 2) / (1.0 / 3.0).squareRoot() * 8 }
        var pixels = smooth.pixels
        for y in 0..<smooth.height {
            for x in 0..<smooth.width {
                let add = grain[(y / 2) * columns + x / 2]
                for band in 0..<min(3, smooth.bands) {
                    let at = (y * smooth.width + x) * smooth.bands + band
                    pixels[at] = UInt8(max(0, min(255, (Double(pixels[at]) + add).rounded())))
                }
            }
        }
        let png = try Raster(width: smooth.width, height: smooth.height, bands: smooth.bands, pixels: pixels).encoded(as: .png, quality: 95)
        return try QualityDefaultsTests.bytes(png, "image/quality,Q_60/format,jpg")
    }

    @Test func aGrainyQ60JPEGGetsWebPAndAVIFSmallerThanItsJPEGAtItsSSIM() throws {
        let source = try Self.grainyQ60()
        #expect(Self.quality(source) == 60)
        Self.expectSmallerAtTheJPEGsSSIM(try Self.measure(source), "grainy landscape.jpg at q60")
    }

    /// Every JPEG of the corpus saved below q85 that decodes (cut and corrupt files are other tests').
    @Test(.enabled(if: Fixtures.corpusAvailable, "../shared/corpus is not present"))
    func corpusJPEGsBelowQ85GetWebPAndAVIFSmallerThanTheirJPEG() throws {
        let files = (FileManager.default.enumerator(atPath: Fixtures.corpus.path)?.compactMap { $0 as? String } ?? [])
            .filter { $0.lowercased().hasSuffix(".jpg") || $0.lowercased().hasSuffix(".jpeg") }.sorted()
        var measuredCount = 0
        for path in files {
            let source = try Fixtures.corpusFile(path)
            guard let quality = Self.quality(source), quality < 85 else { continue }
            guard let measured = try? Self.measure(source) else { continue }   // truncated: not a photo to calibrate
            measuredCount += 1
            // thumbor/grayscale-icc.jpg, 50×50: its JPEG at half size is 271 bytes, its AVIF 297 at any quality.
            let tiny = (SourceHeader.displayedSize(source).map { $0.width * $0.height } ?? 0) < 64 * 64
            Self.expectSmallerAtTheJPEGsSSIM(measured, "\(path) (q\(quality))", tiny: tiny)
        }
        #expect(measuredCount >= 20, "\(measuredCount) corpus JPEGs below q85 measured")
    }

    /// The mapping: 85 and above keep the calibrated defaults; below, WebP and AVIF follow the
    /// source's quality down (never up), and a chain's own `quality` still wins.
    @Test func theDefaultsFollowTheSourceQualityAndAnExplicitQualityWins() throws {
        #expect(Encoder.defaultQuality(for: .webp, jpegSourceQuality: 95) == 85)
        #expect(Encoder.defaultQuality(for: .avif, jpegSourceQuality: nil) == 70)
        #expect(Encoder.defaultQuality(for: .jpg, jpegSourceQuality: 73) == 73)
        var previous = (webp: 85, avif: 70)
        for quality in stride(from: 84, through: 1, by: -1) {
            let webp = Encoder.defaultQuality(for: .webp, jpegSourceQuality: quality)
            let avif = Encoder.defaultQuality(for: .avif, jpegSourceQuality: quality)
            #expect(webp <= previous.webp && avif <= previous.avif && webp >= 1 && avif >= 1, "q\(quality): webp \(webp), avif \(avif)")
            previous = (webp, avif)
        }
        let source = try QualityDefaultsTests.bytes(try Fixtures.sample("landscape.jpg"), "image/resize,w_480/quality,Q_60/format,jpg")
        for format in ["webp", "avif"] {
            let mapped = Encoder.defaultQuality(for: format == "webp" ? .webp : .avif, jpegSourceQuality: 60)
            let implicit = try QualityDefaultsTests.bytes(source, "image/format,\(format)")
            #expect(implicit == (try QualityDefaultsTests.bytes(source, "image/quality,Q_\(mapped)/format,\(format)")), "\(format) default is q\(mapped)")
            // An explicit quality is absolute for these formats, as before: Q_85 is 85, not capped.
            let explicit = try QualityDefaultsTests.bytes(source, "image/quality,Q_85/format,\(format)")
            #expect(explicit.count > implicit.count, "\(format): Q_85 \(explicit.count) vs default \(implicit.count)")
        }
    }
}
