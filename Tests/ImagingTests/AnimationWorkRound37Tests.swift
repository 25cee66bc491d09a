import Foundation
@testable import Imaging
import ImagingCore
import ProcessLanguage
import Testing
import TestSupport

/// Attack 36a's M2: a small animated GIF (151 frames of 400×300, 80 KB) was refused as a WebP by
/// the default work limit ("about 7.9 s"), while its renders took 0.5 s of CPU each. The estimate
/// charged a resize that leaves the size as it is (a GIF is never enlarged) and every frame's
/// encode as if it were noise; a GIF's bytes bound how much its frames hold. A real bomb (many
/// frames, few bytes) is still refused before any pixel is decoded.
@Suite(.ownThreads) struct AnimationWorkRound37Tests {
    /// A `width`×`height` GIF of `frames` frames, each a one-pixel patch over the canvas, red and
    /// blue by turns: a few bytes a frame, however large the canvas.
    static func gif(width: Int, height: Int, frames: Int) -> Data {
        func le16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
        var bytes = Array("GIF89a".utf8) + le16(width) + le16(height) + [0x80, 0, 0]   // a 2-colour global table
        bytes += [0xFF, 0, 0, 0, 0, 0xFF]
        bytes += [0x21, 0xFF, 11] + Array("NETSCAPE2.0".utf8) + [3, 1, 0, 0, 0]
        for frame in 0..<frames {
            bytes += [0x21, 0xF9, 4, 0x04, 2, 0, 0, 0]   // keep the canvas, 20 ms
            bytes += [0x2C] + le16(0) + le16(0) + le16(1) + le16(1) + [0]
            // LZW, minimum code size 2: clear (4), the pixel's index, end (5), 3 bits each.
            bytes += [2, 2, frame % 2 == 0 ? 0x44 : 0x4C, 0x01, 0]
        }
        return Data(bytes + [0x3B])
    }

    static let webp = try! Pipeline.parse("image/resize,w_1600/format,webp")

    @Test func aSmallAnimationBuildsAsAnimatedWebPUnderTheDefaultLimits() throws {
        let source = Self.gif(width: 400, height: 300, frames: 151)
        let output = try Engine(limits: .oss).render(source, Self.webp)
        #expect(output.frames > 1)
        #expect(output.width == 400 && output.height == 300)
    }

    @Test func aBombOfManyFramesIsStillRefusedByTheWorkEstimate() throws {
        let source = Self.gif(width: 400, height: 300, frames: 2000)
        #expect(source.count < 50_000)
        do {
            _ = try Engine(limits: .oss).render(source, Self.webp)
            Issue.record("2000 frames of 400x300 rendered")
        } catch let error as ProcessError {
            #expect(error.code == .imageTooLarge && error.message.contains("work estimate"), "\(error)")
        }
    }
}
