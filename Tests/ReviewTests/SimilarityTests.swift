import Foundation
import Testing
import TestSupport
@testable import ImageSimilarity

@Suite(.ownThreads) struct SimilarityTests {
    /// A gradient with a square, so windows have structure.
    static func picture(width: Int = 64, height: Int = 48, shift: Int = 0, square: UInt8 = 200) -> RGBPixels {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let q = (y * width + x) * 3
                let inSquare = x >= 16 + shift && x < 40 + shift && y >= 12 && y < 36
                rgb[q] = inSquare ? square : UInt8(x * 4 % 256)
                rgb[q + 1] = UInt8(y * 5 % 256)
                rgb[q + 2] = 90
            }
        }
        return RGBPixels(width: width, height: height, rgb: rgb)
    }

    @Test func identicalImagesAreExactlyOne() throws {
        let a = Self.picture()
        let similarity = try Similarity(a, a)
        #expect(similarity.ssim == 1.0)
        #expect(similarity.map.allSatisfy { $0 == 0 })
    }

    @Test func changedImagesAreBelowOneAndOrdered() throws {
        let a = Self.picture()
        let small = try Similarity(a, Self.picture(square: 190)).ssim
        let large = try Similarity(a, Self.picture(shift: 8, square: 30)).ssim
        #expect(small < 1.0)
        #expect(large < small)   // the bigger change scores lower
        #expect(large > -1)
    }

    @Test func differentSizesAreAnError() {
        #expect(throws: RGBPixels.DecodeError.self) { try Similarity(Self.picture(), Self.picture(width: 32)) }
    }

    @Test func heatMapIsBrightOnlyWhereTheImagesDiffer() throws {
        let a = Self.picture(), b = Self.picture(shift: 8, square: 30)
        let heat = try Similarity(a, b).heatMap(width: 64, height: 48)
        #expect(heat.width == 64 && heat.height == 48)
        // Top-left corner: same in both (black); the moved square's edge: red or brighter.
        #expect(heat.rgb[0] == 0 && heat.rgb[1] == 0)
        let q = (24 * 64 + 18) * 3
        #expect(heat.rgb[q] > 100)
    }

    /// A 24-bit bottom-up BMP as libvips' magick saver writes it (BITMAPINFOHEADER, BI_RGB).
    static func bmp24(_ pixels: RGBPixels) -> Data {
        let stride = (pixels.width * 3 + 3) & ~3
        var bytes = [UInt8](repeating: 0, count: 54 + stride * pixels.height)
        func put32(_ at: Int, _ value: Int) { for i in 0..<4 { bytes[at + i] = UInt8((value >> (8 * i)) & 0xFF) } }
        bytes[0] = 0x42; bytes[1] = 0x4D
        put32(2, bytes.count); put32(10, 54); put32(14, 40); put32(18, pixels.width); put32(22, pixels.height)
        bytes[26] = 1; bytes[28] = 24
        for y in 0..<pixels.height {
            let row = 54 + (pixels.height - 1 - y) * stride
            for x in 0..<pixels.width {
                let q = (y * pixels.width + x) * 3
                bytes[row + 3 * x] = pixels.rgb[q + 2]; bytes[row + 3 * x + 1] = pixels.rgb[q + 1]; bytes[row + 3 * x + 2] = pixels.rgb[q]
            }
        }
        return Data(bytes)
    }

    @Test func bmpRoundTrip() throws {
        let a = Self.picture(width: 13, height: 7)   // odd width: rows are padded
        #expect(try RGBPixels.bmp(Self.bmp24(a)) == a)
    }

    @Test func badBMPIsAnErrorNotACrash() {
        var truncated = Self.bmp24(Self.picture())
        truncated.removeLast(100)
        #expect(throws: RGBPixels.DecodeError.self) { try RGBPixels.bmp(truncated) }
        #expect(throws: RGBPixels.DecodeError.self) { try RGBPixels.bmp(Data("BM".utf8)) }
        var huge = Self.bmp24(Self.picture())
        huge[18] = 0xFF; huge[19] = 0xFF; huge[20] = 0xFF; huge[21] = 0x00
        #expect(throws: RGBPixels.DecodeError.self) { try RGBPixels.bmp(huge) }
    }

    @Test func pngHasValidStructure() throws {
        let png = [UInt8](PNGWriter.encode(Self.picture(width: 5, height: 3)))
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // IHDR: width 5, height 3, 8-bit RGB; its CRC matches.
        #expect(Array(png[12..<16]) == Array("IHDR".utf8))
        #expect(Array(png[16..<24]) == [0, 0, 0, 5, 0, 0, 0, 3])
        #expect(png[24] == 8 && png[25] == 2)
        let crc = PNGWriter.crc32(Array(png[12..<29]))
        #expect(Array(png[29..<33]) == PNGWriter.bigEndian(crc))
        #expect(Array(png.suffix(12)) == [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82])
    }
}
