import Foundation
import Imaging
import ProcessLanguage
import Testing
import TestSupport

/// The build reserves memory from `SourceHeader` (ImagingCore), read without libvips; it must
/// agree with the engine's own estimate from libvips' header.
@Suite(.ownThreads) struct SourceHeaderTests {
    static let raster = Raster(width: 37, height: 23, bands: 3) { x, y in [UInt8(x * 6), UInt8(y * 11), 128] }

    @Test(arguments: [Format.Kind.jpg, .png, .webp, .gif, .tiff, .bmp, .heic, .avif])
    func theHeaderOfEveryOutputFormat(_ format: Format.Kind) throws {
        let data = try Self.raster.encoded(as: format)
        let header = try #require(SourceHeader.read(data))
        if format == .heic || format == .avif {
            // The coded size may be larger (x265 pads 37x23; a 'clap' box crops it): the header
            // is the image's, the memory estimate the coded size's, never less than libvips'.
            #expect(header == SourceHeader(width: 37, height: 23, frames: 1), "\(header)")
            #expect(SourceHeader.memoryEstimate(data) >= Engine().memoryEstimate(data))
        } else {
            #expect(header == SourceHeader(width: 37, height: 23, frames: 1))
            #expect(SourceHeader.memoryEstimate(data) == Engine().memoryEstimate(data))
        }
    }

    /// Attack 18's S4: a HEIC with an odd side was measured from its coded extent (`ispe`:
    /// HEVC pads 500x333 to 500x334; the real size is in the `clap` box), so a fresh clone's
    /// lock, index and `check` disagreed with a normal build's. Every odd and even shape, HEIC
    /// and AVIF, against the size libvips decodes.
    @Test(arguments: [Format.Kind.heic, .avif])
    func oddSidesOfHEIFAreTheDecodedSize(_ format: Format.Kind) throws {
        for (width, height) in [(77, 51), (101, 67), (333, 222), (77, 116), (500, 333), (64, 64), (1, 3)] {
            let data = try Raster(width: width, height: height, bands: 3) { x, y in [UInt8(x & 255), UInt8(y & 255), 90] }.encoded(as: format)
            let decoded = try Engine().render(data, try Pipeline.parse("image/format,png"))
            #expect((decoded.width, decoded.height) == (width, height), "\(format) \(width)x\(height)")
            #expect(SourceHeader.read(data) == SourceHeader(width: width, height: height, frames: 1), "\(format) \(width)x\(height)")
            #expect(SourceHeader.displayedSize(data).map { [$0.width, $0.height] } == [width, height], "\(format) \(width)x\(height)")
            #expect(SourceHeader.memoryEstimate(data) >= Engine().memoryEstimate(data), "\(format) \(width)x\(height)")
        }
    }

    @Test func aLargeAnimationCountsEveryFrame() throws {
        let frames = 5
        let strip = Raster(width: 700, height: 500 * frames, bands: 3, color: { x, y in [UInt8(x & 255), UInt8(y & 255), 0] })
        for format in [Format.Kind.gif, .webp] {
            let animated = Raster(width: strip.width, height: strip.height, bands: strip.bands, pixels: strip.pixels, frames: frames)
            let data = try animated.encoded(as: format)
            #expect(SourceHeader.read(data) == SourceHeader(width: 700, height: 500, frames: frames), "\(format)")
            #expect(SourceHeader.memoryEstimate(data) == Engine().memoryEstimate(data), "\(format)")
        }
    }

    /// Every corpus image libvips can read: the same estimate (HEIF: at least libvips', from
    /// the largest 'ispe').
    @Test(.enabled(if: Fixtures.corpusAvailable, "needs the corpus"))
    func theCorpusAgreesWithLibvips() throws {
        let files = FileManager.default.enumerator(atPath: Fixtures.corpus.path)?.compactMap { $0 as? String } ?? []
        var compared = 0
        for name in files.sorted() {
            let path = Fixtures.corpus.appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: path), data.count > 12 else { continue }
            let engine = Engine(limits: Limits(maxBytes: Int.max)).memoryEstimate(data)
            guard engine != 16 << 20 || SourceHeader.read(data) != nil else { continue }   // neither reads it
            let probe = SourceHeader.memoryEstimate(data)
            if data[4..<8] == Data("ftyp".utf8) {
                #expect(probe >= engine, "\(name): \(probe) < \(engine)")
            } else {
                #expect(probe == engine, "\(name): \(probe) != \(engine)")
            }
            compared += 1
        }
        #expect(compared > 20)
    }

    /// Cut and damaged headers give nil or a size, never a trap.
    @Test func damagedHeadersNeverTrap() throws {
        var generator = SystemRandomNumberGenerator()
        for format in [Format.Kind.jpg, .png, .webp, .gif, .tiff, .bmp, .heic] {
            let data = try Self.raster.encoded(as: format)
            for length in 0..<min(data.count, 400) { _ = SourceHeader.read(data.prefix(length)) }
            for _ in 0..<200 {
                var damaged = data
                for _ in 0..<4 { damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
                _ = SourceHeader.memoryEstimate(damaged)
            }
        }
    }
}
