import Foundation
@testable import Imaging
import ImagingCore
import ProcessLanguage
import Testing
import TestSupport

/// Attack 49b's F7: libvips 8.14 grows a GIF's canvas for its first image only, but the limit
/// check took the furthest reach of any image, refusing a 100x50 GIF as "30010x50". The size
/// checked is now the one libvips shows; a later image is still bounded by its own size, which
/// its decode costs whether or not it falls on the canvas.
@Suite(.ownThreads) struct GIFLaterFrameLimitRound49Tests {
    typealias Frame = GIFFrames.Frame

    static func footprint(_ source: Data) -> Result<LoaderFootprint, any Error> {
        source.withUnsafeBytes { raw in
            Result { try LoaderFootprint.check(UnsafeRawBufferPointer(raw), format: .gif, limits: .oss, resizing: true) }
        }
    }

    @Test func aLaterFramePastTheScreenKeepsTheSizeLibvipsShows() throws {
        let far = GIFFrames.gif(screenWidth: 100, screenHeight: 50, [Frame(left: 0, top: 0, width: 100, height: 50, colour: 1),
                                                                    Frame(left: 29_990, top: 0, width: 20, height: 20, colour: 0)])
        #expect(SourceHeader.read(far) == SourceHeader(width: 100, height: 50, frames: 2))
        let footprint = try Self.footprint(far).get()
        #expect(footprint.width == 100 && footprint.height == 50)
        // libvips renders it at that size, both frames.
        let output = try Engine(limits: .oss).render(far, try Pipeline.parse("image/format,gif"))
        #expect(output.width == 100 && output.height == 50 && output.frames == 2)
        // The first image still grows the canvas, as libvips does.
        let first = GIFFrames.gif(screenWidth: 100, screenHeight: 50, [Frame(left: 0, top: 0, width: 350, height: 250, colour: 1),
                                                                      Frame(left: 0, top: 0, width: 10, height: 10, colour: 0)])
        #expect(SourceHeader.read(first) == SourceHeader(width: 350, height: 250, frames: 2))
    }

    /// The descriptor alone (its data is a few bytes; the check comes before any decode).
    static func gif(screen: Int, later width: Int, _ height: Int) -> Data {
        var source = GIFFrames.gif(screenWidth: screen, screenHeight: screen, [Frame(left: 0, top: 0, width: screen, height: screen, colour: 1),
                                                                              Frame(left: 0, top: 0, width: 1, height: 1, colour: 0)])
        // The 2nd image descriptor's width and height (little-endian), after its 0x2C and left, top.
        let descriptor = try! #require(source.lastRange(of: Data([0x2C, 0, 0, 0, 0, 1, 0, 1, 0]))).lowerBound
        source.replaceSubrange(descriptor + 5..<descriptor + 9, with: [UInt8(width & 0xFF), UInt8(width >> 8), UInt8(height & 0xFF), UInt8(height >> 8)])
        return source
    }

    @Test func aLaterFrameLargerThanTheLimitsIsRefusedByItsOwnSize() {
        // 60000 px wide on a 10x10 canvas: the side limit, naming the frame.
        guard case .failure(let side as ProcessError) = Self.footprint(Self.gif(screen: 10, later: 60_000, 1)) else {
            Issue.record("a 60000 px later frame passed the check before the header")
            return
        }
        #expect(side.code == .imageTooLarge && side.message.hasPrefix("frame 2 of the source is 60000x1 (libvips shows 10x10"), "\(side)")
        #expect(side.message.contains("each side may be at most 30000 px"), "\(side)")
        // 20000x20000 (400 M pixels) within the side limit: the pixel limit, naming the frame.
        guard case .failure(let pixels as ProcessError) = Self.footprint(Self.gif(screen: 10, later: 20_000, 20_000)) else {
            Issue.record("a 20000x20000 later frame passed the check before the header")
            return
        }
        #expect(pixels.code == .imageTooLarge && pixels.message.hasPrefix("frame 2 of the source is 20000x20000"), "\(pixels)")
        #expect(pixels.message.contains("the limit is 250000000"), "\(pixels)")
    }
}
