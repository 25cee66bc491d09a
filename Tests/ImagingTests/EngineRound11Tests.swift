import CVipsShim
import Foundation
import Testing
import TestSupport
@testable import Imaging
import ImagingCore
import ProcessLanguage

/// Issue #10, round 11 (attack 10's N1–N3): what libvips' WebP loader really allocates is
/// costed before it allocates it, and running out of memory or of ImageMagick's caps is a
/// resource refusal, never "corrupt or truncated".
@Suite(.ownThreads) struct EngineRound11Tests {
    /// A lossy WebP with an alpha plane (VP8X + ALPH + VP8), as `vips webpsave` writes it.
    static func lossyAlphaWebP(_ side: Int) throws -> Data {
        var pixels = [UInt8](repeating: 0, count: side * side * 4)
        for index in stride(from: 3, to: pixels.count, by: 4) { pixels[index] = UInt8(truncatingIfNeeded: 128 + index / (side * 16)) }   // varying alpha: kept
        return try Raster(width: side, height: side, bands: 4, pixels: pixels).encoded(as: .webp)
    }

    /// Private data (what RLIMIT_DATA counts, as a worker's cap) of this process, in bytes.
    static func privateData() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmData:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kilobytes * 1024
    }

    /// N1: libvips' WebP loader allocates its RGBA frame while reading the header (549 MB for a
    /// 12000² file of 3 KB) and keeps it while the header image lives; the engine reads a
    /// still's header at a tiny scale instead, with the stored size.
    @Test func aStillWebPHeaderHoldsNoFrame() throws {
        try Vips.start()
        let side = 3000   // a 36 MB frame at full size
        let source = try Self.lossyAlphaWebP(side)
        try source.withUnsafeBytes { raw in
            let footprint = try LoaderFootprint.check(raw, format: .webp, limits: .oss, resizing: true)
            let scale = try #require(footprint.headerScale)
            #expect(scale < 0.01)
            // libvips' tracked allocations (the frame is one), the least of three reads: other
            // tests run in parallel in this process.
            var held = Int.max
            for _ in 0..<3 {
                let before = Int(vips_tracked_get_mem())
                let header = try Render.readHeader(raw, footprint, "reading the image header")
                held = min(held, Int(vips_tracked_get_mem()) - before)
                #expect(header.width == side && header.height == side && header.bands == 4)
            }
            #expect(held < 1 << 20, "the header holds \(held) bytes")
        }
    }

    /// N1: the footprint of a still WebP is what libwebp holds whatever the scale (an alpha
    /// plane, a lossless image whole) plus frames at the decode's scale, read from one parse.
    @Test func stillWebPFootprintCostsAlphaAndFramesAtScale() throws {
        let source = try Self.lossyAlphaWebP(1000)
        let header = try #require(source.withUnsafeBytes { SourceHeader.WebPHeader(SourceHeader.Bytes($0)) })
        #expect(header.width == 1000 && header.height == 1000 && header.alpha && !header.lossless && !header.animated)
        #expect(SourceHeader.read(source) == SourceHeader(width: 1000, height: 1000, frames: 1))
        let footprint = try source.withUnsafeBytes { try LoaderFootprint.check($0, format: .webp, limits: .oss, resizing: true) }
        #expect(footprint.memory == 1_000_000 * LoaderFootprint.webpAlphaBytesPerPixel)
        #expect(footprint.memory(shrink: 8) == 1_000_000 * LoaderFootprint.webpAlphaBytesPerPixel + 1_000_000 * LoaderFootprint.webpFrameBytesPerPixel / 64)
        #expect(footprint.allocatedAtHeader == 0)
        let lossless = Bombs.losslessWebPHeader(2000, 1000)
        let whole = try lossless.withUnsafeBytes { try LoaderFootprint.check($0, format: .webp, limits: .oss, resizing: true) }
        #expect(whole.memory == 2_000_000 * LoaderFootprint.webpLosslessBytesPerPixel)
        let opaque = try Fixtures.solid(800, 600, Fixtures.red, as: .webp)
        let plain = try opaque.withUnsafeBytes { try LoaderFootprint.check($0, format: .webp, limits: .oss, resizing: true) }
        #expect(plain.memory == 0 && plain.scaledMemory == 480_000 * LoaderFootprint.webpFrameBytesPerPixel)
    }

    /// N1: with a memory limit below what the alpha plane needs, the refusal is ImageTooLarge
    /// naming the limit, from the file's header (attack: EC 0005 "vips_tracked: out of
    /// memory" from libvips' header read); within it, the file renders.
    @Test func aLossyAlphaWebPRendersOrIsRefusedForMemory() throws {
        let source = try Self.lossyAlphaWebP(2000)
        var tight = Limits()
        tight.maxMemory = 1
        let refused = try #require(EngineAttackTests.error(source, "image/resize,w_10", limits: tight))
        #expect(refused.code == .imageTooLarge && refused.message.contains("--max-memory"), "\(refused)")
        #expect(!refused.message.contains("corrupt"))
        var enough = Limits()
        enough.maxMemory = 64 << 20   // 2000² × 6 (alpha) + frames at 1/8
        let output = try Engine(limits: enough).render(source, try Pipeline.parse("image/resize,w_10/format,png"))
        #expect(output.width == 10 && output.height == 10)
    }

    /// N1, N3: libvips, its codecs and ImageMagick report running out of memory or caps as a
    /// failed decode; the engine reports a resource limit, never a corrupt source.
    @Test func runningOutOfMemoryOrCapsIsNotCorruption() throws {
        let memory = ProcessError(.badRequest, ec: "0040-00000005",
                                  "the source image is corrupt or truncated: reading the image header failed: vips_tracked: out of memory --- size == 549MB")
        let mapped = try #require(ResourceExhaustion.error(for: memory, limits: .oss))
        #expect(mapped.code == .imageTooLarge && mapped.message.contains("--max-memory") && mapped.message.contains("out of memory"), "\(mapped)")
        #expect(!mapped.message.contains("corrupt"))
        let cache = ProcessError(.badRequest, ec: "0040-00000005",
                                 "the source image is corrupt or truncated: decoding the source failed: magick2vips: libMagick error: cache resources exhausted `' @ error/cache.c/OpenPixelCache/4125")
        let capped = try #require(ResourceExhaustion.error(for: cache, limits: .oss))
        #expect(capped.code == .imageTooLarge && capped.message.contains("MAGICK_DISK_LIMIT=1GiB") && capped.message.contains("cache resources exhausted"), "\(capped)")
        let corrupt = ProcessError(.badRequest, ec: "0040-00000005", "the source image is corrupt or truncated: webp2vips: unable to read pixels")
        #expect(ResourceExhaustion.error(for: corrupt, limits: .oss) == nil)
    }

    /// Interlaced PNGs are decoded whole at their stored depth, then copied to 8-bit RGBA: a
    /// 7000² 16-bit RGBA one (costed 373.8 MiB, 8 bytes a pixel) peaked at 584 MB of private
    /// data rendered to JPEG. It is costed 12 bytes a pixel, over the default 384 MiB.
    @Test func a16BitInterlacedPNGIsCostedWithItsCopy() throws {
        let png = Bombs.interlacedPNG(300, 200, depth: 16)
        let footprint = try png.withUnsafeBytes { try LoaderFootprint.check($0, format: .png, limits: .oss, resizing: false) }
        #expect(footprint.memory == 60_000 * 12)
        let eight = Bombs.interlacedPNG(300, 200, depth: 8)
        let smaller = try eight.withUnsafeBytes { try LoaderFootprint.check($0, format: .png, limits: .oss, resizing: false) }
        #expect(smaller.memory == 60_000 * 8)
        // 7000² at 12 bytes: 560.7 MiB, refused by default (a render of it passed 500 MB).
        #expect(7000.0 * 7000 * 12 > Double(Limits.defaultMaxMemory))
    }
}
