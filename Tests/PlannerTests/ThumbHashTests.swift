import Foundation
import Testing
import TestSupport
import Builder

/// RGBA pixels from a formula, row by row.
func pixels(_ width: Int, _ height: Int, _ f: (Int, Int) -> [Int]) -> [UInt8] {
    var bytes: [UInt8] = []
    for y in 0..<height { for x in 0..<width { bytes += f(x, y).map { UInt8($0) } } }
    return bytes
}

/// A 24-bit bottom-up BMP (BITMAPINFOHEADER) of opaque pixels.
func bmp24(_ width: Int, _ height: Int, _ rgba: [UInt8]) -> Data {
    let stride = (width * 3 + 3) & ~3
    func le(_ value: Int, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(value >> (8 * $0) & 0xFF) } }
    var bytes: [UInt8] = Array("BM".utf8) + le(54 + stride * height, 4) + le(0, 4) + le(54, 4)
    bytes += le(40, 4) + le(width, 4) + le(height, 4) + le(1, 2) + le(24, 2) + le(0, 4) + le(stride * height, 4) + le(2835, 4) + le(2835, 4) + le(0, 8)
    for y in (0..<height).reversed() {
        var row: [UInt8] = []
        for x in 0..<width { let at = (y * width + x) * 4; row += [rgba[at + 2], rgba[at + 1], rgba[at]] }
        bytes += row + [UInt8](repeating: 0, count: stride - row.count)
    }
    return Data(bytes)
}

@Suite(.ownThreads) struct ThumbHashTests {
    /// Reference values computed with the `thumbhash` package from PyPI (0.1.2, a Python port of
    /// the author's encoder), on the same pixels:
    /// `base64.b64encode(bytes(thumbhash.rgba_to_thumb_hash(w, h, rgba)))`.
    static let gradient = pixels(32, 24) { x, y in [x * 8 % 256, y * 10 % 256, (x + y) * 4 % 256, 255] }
    static let stripes = pixels(40, 40) { x, y in [(x / 5) % 2 == 1 ? 250 : 20, y < 20 ? 200 : 60, (x * 6) % 256, 255] }
    static let pattern = pixels(17, 40) { x, y in [(x * 37 + y * 11) % 256, (x * x + y * 3) % 256, (y * y * 5) % 256, 255] }

    @Test func theEncoderMatchesAnIndependentImplementation() throws {
        #expect(ThumbHash.encode(width: 32, height: 24, rgba: Self.gradient).map { Data($0).base64EncodedString() } == "XRgODZpwd4eBiIiHiHiIh3iACPeI")
        #expect(ThumbHash.encode(width: 40, height: 40, rgba: Self.stripes).map { Data($0).base64EncodedString() } == "XwgOVxZwdXV9eIh3iGiIeIiJ98iHhYAH")
        #expect(ThumbHash.encode(width: 17, height: 40, rgba: Self.pattern).map { Data($0).base64EncodedString() } == "HCgGEwpDU3mHcHRUEDX5vYw=")
    }

    @Test func alphaSetsItsFlagAndAddsAByte() throws {
        let opaque = try #require(ThumbHash.encode(width: 20, height: 20, rgba: pixels(20, 20) { x, y in [200, 100, 50, 255] }))
        let clear = try #require(ThumbHash.encode(width: 20, height: 20, rgba: pixels(20, 20) { x, y in [200, 100, 50, x < 10 ? 255 : 0] }))
        #expect(opaque[2] & 0x80 == 0 && clear[2] & 0x80 != 0)
        #expect(clear.count > opaque.count)
    }

    @Test func refusesWhatItCannotEncode() {
        #expect(ThumbHash.encode(width: 101, height: 10, rgba: [UInt8](repeating: 0, count: 101 * 10 * 4)) == nil)
        #expect(ThumbHash.encode(width: 10, height: 10, rgba: [1, 2, 3]) == nil)
        #expect(ThumbHash.encode(width: 0, height: 10, rgba: []) == nil)
    }

    @Test func bmpPixelsReadBottomUpRowsAndBitFields() throws {
        let read = try #require(BMPPixels.rgba(bmp24(32, 24, Self.gradient)))
        #expect(read.width == 32 && read.height == 24 && read.rgba == Self.gradient)
        // 32 bits, top-down, with BITMAPV4 masks in an unusual order (A R G B from the low byte).
        let width = 3, height = 2
        func le(_ value: Int, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(value >> (8 * $0) & 0xFF) } }
        var bytes: [UInt8] = Array("BM".utf8) + le(0, 4) + le(0, 4) + le(14 + 108, 4)
        bytes += le(108, 4) + le(width, 4) + le(-height & 0xFFFF_FFFF, 4) + le(1, 2) + le(32, 2) + le(3, 4) + le(0, 4) + le(0, 8) + le(0, 8)
        bytes += le(0xFF00, 4) + le(0xFF0000, 4) + le(0xFF00_0000, 4) + le(0xFF, 4)   // R G B A masks
        bytes += [UInt8](repeating: 0, count: 108 - 56)
        let expected = pixels(width, height) { x, y in [x * 50, y * 100, 7, 128 + x] }
        for at in stride(from: 0, to: expected.count, by: 4) {
            bytes += [expected[at + 3], expected[at], expected[at + 1], expected[at + 2]]
        }
        let fields = try #require(BMPPixels.rgba(Data(bytes)))
        #expect(fields.width == width && fields.height == height && fields.rgba == expected)
        #expect(BMPPixels.rgba(Data("BM not really".utf8)) == nil)
    }
}
