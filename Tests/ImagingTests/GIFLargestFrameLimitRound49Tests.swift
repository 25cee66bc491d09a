import Foundation
@testable import Imaging
import ImagingCore
import ProcessLanguage
import Testing
import TestSupport

/// Attack 48a's check: the side and pixel limits read a GIF's size from its logical screen, but
/// libvips shows a GIF as large as its furthest image reaches. A 1x1 screen holding one frame
/// that declares 60000x60000 (a few dozen bytes) passed the limits before decode. The check
/// before libvips reads the header takes the largest frame's reach.
@Suite(.ownThreads) struct GIFLargestFrameLimitRound49Tests {
    /// A GIF of a `screen`x`screen` logical screen and one image of `frame`x`frame` at 0,0, whose
    /// data is one pixel (the decode would fail on it; nothing may get that far).
    static func gif(screen: Int, frame: Int) -> Data {
        func le16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
        var bytes = Array("GIF89a".utf8) + le16(screen) + le16(screen) + [0x80, 0, 0]   // a 2-colour global table
        bytes += [0xFF, 0, 0, 0, 0, 0xFF]
        bytes += [0x2C] + le16(0) + le16(0) + le16(frame) + le16(frame) + [0]
        bytes += [2, 2, 0x44, 0x01, 0]   // LZW, minimum code size 2: clear, index 0, end
        return Data(bytes + [0x3B])
    }

    @Test func aTinyScreenWithAHugeFrameIsRefusedByTheSideLimitBeforeLibvipsReadsIt() throws {
        let source = Self.gif(screen: 1, frame: 60_000)
        #expect(source.count < 100)
        // The header Derive reads (the build's memory estimate, the pre-decode check) is the frame's.
        #expect(SourceHeader.read(source) == SourceHeader(width: 60_000, height: 60_000, frames: 1))
        // Refused by the footprint check, made before libvips opens the file.
        let footprint = source.withUnsafeBytes { raw in
            Result { try LoaderFootprint.check(UnsafeRawBufferPointer(raw), format: .gif, limits: .oss, resizing: true) }
        }
        guard case .failure(let error as ProcessError) = footprint else {
            Issue.record("a 60000x60000 frame in a 1x1 screen passed the check before the header: \(footprint)")
            return
        }
        #expect(error.code == .imageTooLarge && error.message.hasPrefix("the source is 60000x60000; each side may be at most 30000 px"),
                "\(error)")
        // And by the render, with the documented limit error.
        #expect { try Engine(limits: .oss).render(source, try Pipeline.parse("image/resize,w_100/format,webp")) } throws: {
            ($0 as? ProcessError)?.code == .imageTooLarge && ($0 as? ProcessError)?.message.contains("each side may be at most 30000 px") == true
        }
        // Within the side limit but over the pixel limit (20000² = 400 M > 250 M): the pixel limit.
        let wide = Self.gif(screen: 1, frame: 20_000)
        #expect { try Engine(limits: .oss).render(wide, try Pipeline.parse("image/resize,w_100/format,webp")) } throws: {
            ($0 as? ProcessError)?.code == .imageTooLarge && ($0 as? ProcessError)?.message.contains("the limit is 250000000") == true
        }
    }

    @Test func aFrameWithinItsScreenKeepsTheScreensSize() {
        #expect(SourceHeader.read(Self.gif(screen: 40, frame: 10)) == SourceHeader(width: 40, height: 40, frames: 1))
    }
}
