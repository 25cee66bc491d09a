import Foundation
import Testing
import TestSupport
import ImageSimilarity
import ProcessLanguage

/// The min_ssim reference: the same geometry, losslessly encoded.
@Suite(.ownThreads) struct ReferencePipelineTests {
    @Test func encoderSettingsGiveWayToPNG() throws {
        let pipeline = try Pipeline.parse("image/resize,m_fill,w_120,h_80/quality,q_5/rotate,90/format,webp/interlace,1")
        let reference = ImageComparison.referencePipeline(pipeline)
        #expect(reference.canonical == "image/resize,m_fill,w_120,h_80,limit_1,color_FFFFFF/rotate,90/format,png")
        let plain = ImageComparison.referencePipeline(try Pipeline.parse("image/crop,w_10,h_10"))
        #expect(plain.canonical.hasSuffix("/format,png"))
    }

    @Test func comparisonScalesBothToTheSecondShape() throws {
        // A stand-in scaler: hands back a fixed BMP per input, and records the pipeline asked for.
        var asked: [String] = []
        func bmp(_ value: UInt8) -> Data {
            var bytes = [UInt8](repeating: 0, count: 54)
            bytes[0] = 0x42; bytes[1] = 0x4D
            func put(_ v: UInt32, _ at: Int) { for i in 0..<4 { bytes[at + i] = UInt8((v >> (8 * UInt32(i))) & 0xFF) } }
            put(54, 10); put(40, 14); put(8, 18); put(8, 22); bytes[26] = 1; bytes[28] = 24
            bytes += [UInt8](repeating: value, count: 8 * 8 * 3)
            return Data(bytes)
        }
        let (same, _) = try ImageComparison.compare(Data([1]), Data([1]), secondWidth: 1024, secondHeight: 512) { input, pipeline in
            asked.append(pipeline.canonical)
            return bmp(input.first == 1 ? 100 : 0)
        }
        #expect(same.ssim == 1)
        #expect(asked.allSatisfy { $0.contains("w_512,h_256") && $0.hasSuffix("format,bmp") }, "\(asked)")
    }
}
