import Foundation
import Testing
import TestSupport
@testable import ImagingCore
import Imaging
import ProcessLanguage

/// Issue #10, round 11 (F4d): a damaged PNG's chunk type is printed escaped, never as raw bytes
/// (a type of four NULs was written to the terminal as NULs).
@Suite(.ownThreads) struct SourceEndMessageTests {
    @Test func aChunkTypeOfNULsIsPrintedEscaped() throws {
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        png.append(contentsOf: [0, 0, 0x10, 0, 0, 0, 0, 0, 1, 2, 3])   // 4096 bytes announced, 3 there
        let message = SourceEnd.truncation(png)
        #expect(message == "the PNG's \\x00\\x00\\x00\\x00 chunk runs past the end of the file (it was cut short)", "\(message ?? "nil")")
        #expect(message?.unicodeScalars.allSatisfy { $0.value >= 0x20 } == true)
    }
}

/// Issue #10, round 11 (F4c): a BMP whose width is negative is a damaged header (EC 0040-00000005),
/// not a 4294967196 px side.
@Suite(.ownThreads) struct NegativeBMPWidthTests {
    static func bmp(width: Int32, height: Int32) -> Data {
        var data = Data()
        func le<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        let rowBytes = 100 * 3, pixels = rowBytes * 100
        data.append(contentsOf: Array("BM".utf8)); le(UInt32(54 + pixels)); le(UInt32(0)); le(UInt32(54))
        le(UInt32(40)); le(width); le(height); le(UInt16(1)); le(UInt16(24)); le(UInt32(0)); le(UInt32(pixels))
        le(Int32(2835)); le(Int32(2835)); le(UInt32(0)); le(UInt32(0))
        data.append(Data(count: pixels))
        return data
    }

    @Test func aNegativeWidthIsCorruptNotHuge() throws {
        let header = Self.bmp(width: -100, height: 100).withUnsafeBytes { SourceHeader.bmp(SourceHeader.Bytes($0)) }
        #expect(header == nil)
        do {
            _ = try Engine().render(Self.bmp(width: -100, height: 100), try Pipeline.parse("image/resize,w_10"))
            Issue.record("rendered a BMP with a negative width")
        } catch let error as ProcessError {
            #expect(error.ec == "0040-00000005", "\(error)")
            #expect(!error.message.contains("4294967196"), "\(error)")
        }
        // A negative height is top-down rows: a valid image.
        #expect(try Engine().render(Self.bmp(width: 100, height: -100), try Pipeline.parse("image/resize,w_10")).width == 10)
    }
}

/// Issue #10, round 11 (F4b): a BMP watermark refused from its header speaks of the mark, and
/// never advises resizing earlier in the chain (which does not shrink the mark's decode).
@Suite(.ownThreads) struct WatermarkRefusalWordingTests {
    @Test func aBMPMarkRefusedFromItsHeaderNamesTheMark() throws {
        let bucket = FileManager.default.temporaryDirectory.appendingPathComponent("mark-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: bucket, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: bucket) }
        try NegativeBMPWidthTests.bmp(width: 6000, height: 6000).write(to: bucket.appendingPathComponent("m.bmp"))
        let source = try Engine().render(NegativeBMPWidthTests.bmp(width: 100, height: 100), try Pipeline.parse("image/format,png")).bytes
        let key = Data("m.bmp".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        do {
            _ = try Engine().render(source, try Pipeline.parse("image/watermark,image_\(key)"), resolver: FolderResolver(root: bucket.path))
            Issue.record("rendered a 6000x6000 BMP mark under the default memory limit")
        } catch let error as ProcessError {
            #expect(error.code == .imageTooLarge && error.ec == "0040-00000012", "\(error)")
            #expect(error.message.hasPrefix("watermark image 'm.bmp': "), "\(error.message)")
            #expect(!error.message.contains("resize earlier in the chain") && !error.message.contains("the chain"), "\(error.message)")
        }
    }
}
