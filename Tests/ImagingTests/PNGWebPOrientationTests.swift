import Foundation
import Imaging
import ProcessLanguage
import Testing
import TestSupport

/// Attack 15 M8: libvips applies the EXIF orientation of a PNG's eXIf chunk and of a WebP's
/// EXIF chunk, so the engine draws such a source rotated; the planner's header reader
/// (`SourceHeader`, no libvips) must give the same displayed size, or the index and width
/// dedup work from the stored size.
@Suite(.ownThreads) struct PNGWebPOrientationTests {
    static let raster = Raster(width: 37, height: 23, bands: 3) { x, y in [UInt8(x * 6), UInt8(y * 11), 128] }

    /// `data` with its EXIF Orientation set to `n` by exiftool (a PNG eXIf chunk, a WebP EXIF chunk).
    static func tagged(_ data: Data, _ format: Format.Kind, orientation n: Int) throws -> Data {
        let folder = try ExternalTool.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("o.\(format == .png ? "png" : "webp")")
        try data.write(to: file)
        try #require(ExternalTool.run(ExternalTool.exiftool!, ["-q", "-overwrite_original", "-Orientation#=\(n)", file.path]) != nil)
        return try Data(contentsOf: file)
    }

    @Test(.enabled(if: ExternalTool.exiftool != nil, "needs exiftool"), arguments: [Format.Kind.png, .webp], Array(1...8))
    func theHeaderGivesTheSizeTheEngineDraws(_ format: Format.Kind, _ n: Int) throws {
        let source = try Self.tagged(try Self.raster.encoded(as: format), format, orientation: n)
        let drawn = try Fixtures.render(source, "image/format,png").1
        let header = try #require(SourceHeader.displayedSize(source))
        #expect(drawn.width == ((5...8).contains(n) ? 23 : 37), "\(format) \(n): engine \(drawn.width)x\(drawn.height)")
        #expect(header.width == drawn.width && header.height == drawn.height,
                "\(format) \(n): header \(header.width)x\(header.height), engine \(drawn.width)x\(drawn.height)")
        #expect(SourceHeader.read(source)?.orientation == n, "\(format) \(n)")
    }

    // MARK: PNG eXIf chunks written by hand (what libpng accepts, what the engine leaves out)

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func be32(_ value: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8((value >> $0) & 0xFF) } }

    /// A little-endian TIFF structure with one IFD0 entry, Orientation `n` (a SHORT), padded to `size` bytes.
    static func exif(_ n: Int, size: Int = 26) -> [UInt8] {
        let tiff: [UInt8] = [0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, UInt8(n), 0, 0, 0, 0, 0, 0, 0]
        return tiff + [UInt8](repeating: 0, count: max(0, size - tiff.count))
    }

    /// The PNG `raster` with `chunks` (eXIf payloads) inserted before its first IDAT, or after its last when `afterData`.
    static func png(exif chunks: [[UInt8]], afterData: Bool = false) throws -> Data {
        let plain = [UInt8](try raster.encoded(as: .png))
        var out = Array(plain[0..<8]), offset = 8, inserted = false
        func insert() { for payload in chunks { let body = Array("eXIf".utf8) + payload; out += be32(payload.count) + body + be32(Int(crc32(body))) } }
        while offset + 12 <= plain.count {
            let length = plain[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            let type = String(decoding: plain[offset + 4..<offset + 8], as: UTF8.self)
            if !inserted, (!afterData && type == "IDAT") || (afterData && type == "IEND") { insert(); inserted = true }
            out += plain[offset..<offset + 12 + length]
            offset += 12 + length
        }
        return Data(out)
    }

    static func drawnAndHeader(_ source: Data) throws -> (drawn: [Int], header: [Int]) {
        let drawn = try Fixtures.render(source, "image/format,png").1
        let header = try #require(SourceHeader.displayedSize(source))
        return ([drawn.width, drawn.height], [header.width, header.height])
    }

    /// The engine leaves an eXIf chunk over 64 KiB out of what libvips reads (`PNGExif`): the
    /// PNG loses its orientation, in the header reader too; one of exactly 64 KiB keeps it.
    /// libpng keeps the first eXIf (a duplicate is ignored) and reads none after the image data.
    @Test func pngExifCasesAgreeWithTheEngine() throws {
        let cases: [(String, Data, [Int])] = [
            ("64 KiB", try Self.png(exif: [Self.exif(6, size: 65_536)]), [23, 37]),
            ("over 64 KiB", try Self.png(exif: [Self.exif(6, size: 65_537)]), [37, 23]),
            ("over 64 KiB, then a small one", try Self.png(exif: [Self.exif(8, size: 70_000), Self.exif(6)]), [23, 37]),
            ("duplicate", try Self.png(exif: [Self.exif(1), Self.exif(6)]), [37, 23]),
            ("after IDAT", try Self.png(exif: [Self.exif(6)], afterData: true), [37, 23]),
            ("Exif prefix", try Self.png(exif: [Array("Exif\0\0".utf8) + Self.exif(6)]), [37, 23]),
            ("orientation 9", try Self.png(exif: [Self.exif(9)]), [37, 23]),
        ]
        for (name, source, expected) in cases {
            let (drawn, header) = try Self.drawnAndHeader(source)
            #expect(drawn == expected, "\(name): engine \(drawn)")
            #expect(header == drawn, "\(name): header \(header), engine \(drawn)")
        }
    }
}
