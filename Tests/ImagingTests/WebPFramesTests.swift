import Foundation
import Testing
import TestSupport
@testable import Imaging
import ProcessLanguage

/// An animated WebP of `frames` copies of one 1x1 lossless (VP8L) frame: VP8X, ANIM, then ANMF
/// chunks (the attack in issue #10, report 8, F1/F2).
func animatedWebP(frames: Int) -> Data {
    let vp8l: [UInt8] = [0x56, 0x50, 0x38, 0x4C, 0x0F, 0, 0, 0, 0x2F, 0, 0, 0, 0, 0x07, 0x10, 0xFD,
                         0x8F, 0xFE, 0x07, 0x22, 0xA2, 0xFF, 0x01, 0x00]   // 15-byte bitstream + pad
    func chunk(_ tag: String, _ payload: [UInt8]) -> [UInt8] {
        let n = UInt32(payload.count)
        return Array(tag.utf8) + [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
            + payload + (payload.count & 1 == 1 ? [0] : [])
    }
    let frame = chunk("ANMF", [UInt8](repeating: 0, count: 15) + [0] + vp8l)
    var body = Array("WEBP".utf8) + chunk("VP8X", [0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        + chunk("ANIM", [0, 0, 0, 0, 0, 0])
    body.reserveCapacity(body.count + frame.count * frames)
    for _ in 0..<frames { body += frame }
    let n = UInt32(body.count)
    return Data(Array("RIFF".utf8) + [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)] + body)
}

@Suite(.ownThreads) struct WebPFramesTests {
    @Test func chunkWalkCountsAnimationFrames() {
        #expect(WebPChunks.frameCount(animatedWebP(frames: 3)) == 3)
        #expect(WebPChunks.frameCount(animatedWebP(frames: 5000)) == 5000)
        #expect(WebPChunks.frameCount(Data("GIF89a".utf8)) == nil)
    }

    @Test func aSmallAnimationStillRenders() throws {
        let output = try Engine().info(animatedWebP(frames: 3))
        let json = String(decoding: output.bytes, as: UTF8.self)
        #expect(json.contains("\"FrameCount\": {\"value\": \"3\"}"), "\(json)")
    }

    /// Before the walk, 100 000 frames ran to the deadline (the header read alone) and 5 000
    /// were refused only by the work estimate after a header read of seconds.
    @Test(arguments: [5000, 100_000])
    func tooManyFramesAreRefusedBeforeLibvipsReadsThem(frames: Int) throws {
        let source = animatedWebP(frames: frames)
        for chain in ["info", "resize,w_10", "average-hue", "format,png"] {
            let pipeline = try Pipeline.parse("image/" + chain)
            let error = #expect(throws: ProcessError.self) { try Engine().render(source, pipeline) }
            #expect(error?.code == .imageTooLarge && error?.message.contains("\(frames) frames; the limit is 4096") == true,
                    "\(chain): \(String(describing: error))")
            #expect(error?.ec == (chain.hasPrefix("resize") ? "0040-00000009" : "0040-00000012"))
        }
        // The builder's memory estimate reads headers in-process: it must not read these frames.
        #expect(Engine().memoryEstimate(source) > 0)
    }
}
