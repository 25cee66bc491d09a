import ImagingCore
import Foundation
import Testing
import TestSupport
@testable import Imaging
import ProcessLanguage

/// Small generated sources for the ninth attack on issue #10: each is a few bytes to a few
/// hundred KB on disk (or in memory) but claims a size whose decode is expensive.
enum Bombs {
    static func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xFF) } }
    static func le16(_ value: Int) -> [UInt8] { (0..<2).map { UInt8((value >> (8 * $0)) & 0xFF) } }
    static func be32(_ value: Int) -> [UInt8] { le32(value).reversed() }

    /// A valid 8-bit RLE BMP of `width`×`height`, all black (runs of 255 px).
    static func rleBMP(_ width: Int, _ height: Int) -> Data {
        var row: [UInt8] = []
        var left = width
        while left > 0 { let run = min(255, left); row += [UInt8(run), 0]; left -= run }
        row += [0, 0]
        var pixels: [UInt8] = []
        pixels.reserveCapacity(row.count * height + 2)
        for _ in 0..<height { pixels += row }
        pixels += [0, 1]
        let palette = [UInt8](repeating: 0, count: 256 * 4)
        let dib = le32(40) + le32(width) + le32(height) + le16(1) + le16(8) + le32(1) + le32(pixels.count)
            + le32(2835) + le32(2835) + le32(256) + le32(0)
        let offset = 14 + dib.count + palette.count
        let file = Array("BM".utf8) + le32(offset + pixels.count) + le32(0) + le32(offset)
        return Data(file + dib + palette + pixels)
    }

    /// A 1×1 grey TIFF whose directory chain has `pages` directories (all the same 1×1 page).
    static func tiffChain(_ pages: Int) -> Data {
        func entry(_ tag: Int, _ type: Int, _ value: Int) -> [UInt8] {
            le16(tag) + le16(type) + le32(1) + (type == 4 ? le32(value) : le16(value) + [0, 0])
        }
        let directorySize = 2 + 9 * 12 + 4
        var bytes: [UInt8] = Array("II".utf8) + [42, 0] + le32(10) + [0x80, 0]
        bytes.reserveCapacity(10 + pages * directorySize)
        for index in 0..<pages {
            let at = 10 + index * directorySize
            let next = index < pages - 1 ? at + directorySize : 0
            bytes += le16(9)
            bytes += entry(256, 4, 1) + entry(257, 4, 1) + entry(258, 3, 8) + entry(259, 3, 1) + entry(262, 3, 1)
            bytes += entry(273, 4, 8) + entry(277, 3, 1) + entry(278, 4, 1) + entry(279, 4, 1)
            bytes += le32(next)
        }
        return Data(bytes)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(data.count) + body + be32(Int(crc32(body)))
    }

    /// zlib data in stored (uncompressed) deflate blocks.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            let final: UInt8 = offset + length == data.count ? 1 : 0
            out += [final] + le16(length) + le16(~length & 0xFFFF) + data[offset..<offset + length]
            offset += length
        } while offset < data.count
        var a = 1, b = 0
        for byte in data { a = (a + Int(byte)) % 65_521; b = (b + a) % 65_521 }
        return out + be32(b << 16 | a)
    }

    /// A valid Adam7-interlaced RGBA PNG of `width`×`height` at `depth` bits, all zero.
    static func interlacedPNG(_ width: Int, _ height: Int, depth: Int) -> Data {
        let bytesPerPixel = 4 * depth / 8
        let passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        var raw: [UInt8] = []
        for (x0, y0, dx, dy) in passes {
            let passWidth = width > x0 ? (width - x0 + dx - 1) / dx : 0
            let passHeight = height > y0 ? (height - y0 + dy - 1) / dy : 0
            guard passWidth > 0, passHeight > 0 else { continue }
            raw += [UInt8](repeating: 0, count: (1 + passWidth * bytesPerPixel) * passHeight)
        }
        let header = be32(width) + be32(height) + [UInt8(depth), 6, 0, 0, 1]
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + pngChunk("IHDR", header)
            + pngChunk("IDAT", zlibStored(raw)) + pngChunk("IEND", []))
    }

    /// A lossless still WebP whose header claims `width`×`height` (VP8L header only: the
    /// footprint is read from the header; libvips never gets to the data).
    static func losslessWebPHeader(_ width: Int, _ height: Int) -> Data {
        let bits = (width - 1) | (height - 1) << 14 | 1 << 28
        let payload: [UInt8] = [0x2F] + le32(bits) + [0, 0, 0]
        let chunk = Array("VP8L".utf8) + le32(payload.count) + payload
        return Data(Array("RIFF".utf8) + le32(4 + chunk.count) + Array("WEBP".utf8) + chunk)
    }

    /// An animated WebP: one 1×1 lossless frame on a `width`×`height` canvas.
    static func animatedWebPCanvas(_ width: Int, _ height: Int) throws -> Data {
        let pixel = try Fixtures.solid(1, 1, Fixtures.red, as: .webp)
        var bitstream: [UInt8] = []
        var offset = 12
        let bytes = [UInt8](pixel)
        while offset + 8 <= bytes.count {
            let size = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16 | Int(bytes[offset + 7]) << 24
            let tag = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            if tag == "VP8L" || tag == "VP8 " { bitstream = Array(bytes[offset..<min(bytes.count, offset + 8 + size + (size & 1))]) }
            offset += 8 + size + (size & 1)
        }
        func chunk(_ tag: String, _ payload: [UInt8]) -> [UInt8] {
            Array(tag.utf8) + le32(payload.count) + payload + (payload.count & 1 == 1 ? [0] : [])
        }
        func le24(_ value: Int) -> [UInt8] { Array(le32(value).prefix(3)) }
        let vp8x = chunk("VP8X", [0x12, 0, 0, 0] + le24(width - 1) + le24(height - 1))
        let anim = chunk("ANIM", le32(0) + le16(0))
        let anmf = chunk("ANMF", le24(0) + le24(0) + le24(0) + le24(0) + le24(0) + [0] + bitstream)
        let body = Array("WEBP".utf8) + vp8x + anim + anmf
        return Data(Array("RIFF".utf8) + le32(body.count) + body)
    }
}

/// Issue #10, ninth attack: what libvips' loaders hold or read whatever the chain streams is
/// costed from the file's own header, before libvips reads it, and refused as too large (never
/// "corrupt"); encoders' own size caps are checked before encoding.
@Suite(.ownThreads)
struct LoaderFootprintTests {
    static func refusal(_ source: Data, _ process: String, limits: Limits = .oss) -> ProcessError? {
        do {
            _ = try Engine(limits: limits).render(source, try Pipeline.parse(process))
            return nil
        } catch let error as ProcessError {
            return error
        } catch {
            return ProcessError(.internalError, "\(error)")
        }
    }

    /// Finding 1: a 8000×8000 RLE BMP (a few hundred KB) is refused from its header in well
    /// under a second (ImageMagick would decode it whole into a 640 MB pixel cache first).
    @Test func bmpIsCostedBeforeImageMagickDecodes() throws {
        let bomb = Bombs.rleBMP(8000, 8000)
        #expect(bomb.count < 600_000)
        let started = Date()
        let error = Self.refusal(bomb, "image/resize,w_200")
        #expect(Date().timeIntervalSince(started) < 1.0)
        #expect(error?.code == .imageTooLarge, "\(String(describing: error))")
        #expect(error?.message.contains("corrupt") == false)
        #expect(error?.message.contains("--max-work") == true, "\(String(describing: error?.message))")
        // Memory too (ImageMagick's cache and libvips' copy: 1.2 GB), when work is raised.
        var raisedWork = Limits()
        raisedWork.maxWork = 1 << 50
        let memory = Self.refusal(bomb, "image/resize,w_200", limits: raisedWork)
        #expect(memory?.code == .imageTooLarge && memory?.message.contains("--max-memory") == true, "\(String(describing: memory?.message))")
        // Work alone, when memory is raised (about 8 s of ImageMagick).
        var raised = Limits()
        raised.maxMemory = 4 << 30
        let work = Self.refusal(bomb, "image/resize,w_200", limits: raised)
        #expect(work?.code == .imageTooLarge && work?.message.contains("--max-work") == true, "\(String(describing: work?.message))")
    }

    /// Finding 3: a BMP side over ImageMagick's 16 000 px is refused as too large, naming the cap.
    @Test func bmpSideOverImageMagickLimitIsTooLarge() throws {
        let tall = Bombs.rleBMP(300, 20_000)
        let error = Self.refusal(tall, "image/resize,w_100")
        #expect(error?.code == .imageTooLarge, "\(String(describing: error))")
        #expect(error?.ec == "0040-00000009")
        #expect(error?.message.contains("16000") == true, "\(String(describing: error?.message))")
        // A small BMP still renders.
        let small = Bombs.rleBMP(300, 200)
        let out = try Engine().render(small, try Pipeline.parse("image/resize,w_100/format,png"))
        #expect(out.width == 100 && out.height == 67)
    }

    /// Finding 3: BMP output over 16 000 px a side and HEIC output sizes x265 refuses are
    /// refused before encoding with the output EC, not "corrupt".
    @Test func encoderSizeCapsAreCheckedBeforeEncoding() throws {
        let tall = try Fixtures.solid(30, 16_100, Fixtures.red, as: .png)
        let error = Self.refusal(tall, "image/format,bmp")
        #expect(error?.code == .imageTooLarge && error?.ec == "0040-00000007", "\(String(describing: error))")
        #expect(error?.message.contains("16000") == true)
        // HEIC: very long thin results are refused before x265 fails on them.
        let thin = try Fixtures.solid(1, 8193, Fixtures.red, as: .png)
        let heic = Self.refusal(thin, "image/format,heic")
        #expect(heic?.code == .imageTooLarge && heic?.ec == "0040-00000007", "\(String(describing: heic))")
        let wide = try Fixtures.solid(8193, 1, Fixtures.red, as: .png)
        #expect(Self.refusal(wide, "image/format,heic")?.ec == "0040-00000007")
        let encodes = try Engine().render(try Fixtures.solid(32, 8193, Fixtures.red, as: .png), try Pipeline.parse("image/format,heic"))
        #expect(encodes.width == 32 && encodes.height == 8193)
        let fits = try Fixtures.solid(30, 16_000, Fixtures.red, as: .png)
        let out = try Engine().render(fits, try Pipeline.parse("image/format,bmp"))
        #expect(out.height == 16_000)
    }

    /// Finding 2a: a lossless still WebP is decoded whole (libwebp): its frame counts in the
    /// memory estimate, so `--max-memory` refuses it before decoding, with the memory error.
    @Test func losslessWebPFrameIsCosted() throws {
        let big = Bombs.losslessWebPHeader(12_000, 12_000)
        let error = Self.refusal(big, "image/resize,w_10")
        #expect(error?.code == .imageTooLarge, "\(String(describing: error))")
        // Memory or work, whichever estimate the engine checks first (both are from the header;
        // the memory one depends on the thread count other tests may set): never a decode.
        #expect(error?.message.contains("--max-memory") == true || error?.message.contains("--max-work") == true, "\(String(describing: error?.message))")
    }

    /// Finding 2b/2c: an animated WebP's canvas is checked (pixels, then memory) before libvips
    /// allocates it while reading the header.
    @Test func animatedWebPCanvasIsCheckedBeforeTheHeader() throws {
        let huge = try Bombs.animatedWebPCanvas(16_383, 16_383)
        let pixels = Self.refusal(huge, "image/resize,w_10")
        #expect(pixels?.code == .imageTooLarge && pixels?.message.contains("pixels") == true, "\(String(describing: pixels))")
        let big = try Bombs.animatedWebPCanvas(12_000, 12_000)
        let memory = Self.refusal(big, "image/resize,w_10")
        #expect(memory?.code == .imageTooLarge && memory?.message.contains("--max-memory") == true, "\(String(describing: memory))")
        var tiny = Limits()
        tiny.maxMemory = 1
        let small = try Bombs.animatedWebPCanvas(300, 300)
        let refused = Self.refusal(small, "image/resize,w_10", limits: tiny)
        #expect(refused?.code == .imageTooLarge && refused?.message.contains("--max-memory") == true, "\(String(describing: refused))")
        // Within the limits it renders.
        let out = try Engine().render(small, try Pipeline.parse("image/resize,w_10/format,png"))
        #expect(out.width == 10)
    }

    /// Finding 2d: an interlaced 16-bit PNG is decoded whole at 8 bytes a pixel: costed.
    @Test func interlacedPNGIsCostedWhole() throws {
        let png = Bombs.interlacedPNG(500, 500, depth: 16)
        var limits = Limits()
        limits.maxMemory = 1 << 20   // 500×500×8 = 1.9 MiB held by the loader
        let error = Self.refusal(png, "image/resize,w_100", limits: limits)
        #expect(error?.code == .imageTooLarge && error?.message.contains("--max-memory") == true, "\(String(describing: error))")
        // The same size not interlaced streams: it renders under that limit.
        let plain = try Fixtures.solid(500, 500, Fixtures.red, as: .png)
        let out = try Engine(limits: limits).render(plain, try Pipeline.parse("image/resize,w_100"))
        #expect(out.width == 100)
        // And the interlaced one renders with the default limits.
        let rendered = try Engine().render(png, try Pipeline.parse("image/resize,w_100"))
        #expect(rendered.width == 100 && rendered.height == 100)
        #expect(png.withUnsafeBytes { SourceHeader.Bytes($0).png()?.interlaced } == true)
    }

    /// Finding 4b: a TIFF's directory chain is counted with a bounded walk before libvips reads
    /// it: more than 4 096 pages is refused in well under a second; 4 096 is costed.
    @Test func longTIFFDirectoryChainIsCountedAndCapped() throws {
        let chain = Bombs.tiffChain(60_000)
        #expect(chain.count < 8_000_000)
        let started = Date()
        let error = Self.refusal(chain, "image/format,png")
        #expect(Date().timeIntervalSince(started) < 1.0, "took \(Date().timeIntervalSince(started)) s")
        #expect(error?.code == .imageTooLarge && error?.message.contains("pages") == true, "\(String(describing: error))")
        let counted = chain.withUnsafeBytes { SourceHeader.Bytes($0).tiffPages(upTo: 100_000) }
        #expect(counted == 60_000)
        // A loop in the chain ends the walk.
        var looped = [UInt8](Bombs.tiffChain(3))
        let lastNext = looped.count - 4
        looped.replaceSubrange(lastNext..<looped.count, with: Bombs.le32(10))
        #expect(Data(looped).withUnsafeBytes { SourceHeader.Bytes($0).tiffPages(upTo: 100) } == 3)
        // The page walk is part of the estimate: 4 096 pages with --max-work just under it.
        let most = Bombs.tiffChain(4096)
        var limits = Limits()
        limits.maxWork = 4096 * Int(LoaderFootprint.tiffPageWeight) - 1
        let work = Self.refusal(most, "image/format,png", limits: limits)
        #expect(work?.code == .imageTooLarge && work?.message.contains("--max-work") == true, "\(String(describing: work))")
        let page = try Engine().render(Bombs.tiffChain(3), try Pipeline.parse("image/format,png"))
        #expect(page.width == 1 && page.height == 1)
    }
}

/// Issue #10, ninth attack, finding 6: small things.
@Suite(.ownThreads)
struct EngineRound9SmallTests {
    /// A meta box whose size runs past the file is caught by Derive's own box walk (before
    /// libheif's "bad seek"), with its message.
    @Test func heifBoxPastTheFileIsCaughtByTheBoxWalk() throws {
        var bytes = [UInt8](try Fixtures.solid(16, 16, Fixtures.red, as: .heic))
        let ftyp = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        #expect(String(decoding: bytes[ftyp + 4..<ftyp + 8], as: UTF8.self) == "meta")
        bytes.replaceSubrange(ftyp..<ftyp + 4, with: [0x80, 0, 0, 0])
        let error = LoaderFootprintTests.refusal(Data(bytes), "image/resize,w_8")
        #expect(error?.ec == "0040-00000005")
        #expect(error?.message.contains("'meta' box") == true && error?.message.contains("past the end") == true,
                "\(String(describing: error?.message))")
    }

    /// A tiny work estimate refused by a tiny limit never says "about 0.0 s".
    @Test func tinyEstimateSaysUnderATenth() throws {
        let source = try Fixtures.solid(100, 100, Fixtures.red, as: .jpg)
        var limits = Limits()
        limits.maxWork = 1000
        let error = LoaderFootprintTests.refusal(source, "image/resize,w_50", limits: limits)
        #expect(error?.message.contains("under 0.1 s") == true, "\(String(describing: error?.message))")
        #expect(error?.message.contains("0.0 s") == false)
    }

    /// `info` shows a TIFF's Orientation tag, which the render applies.
    @Test func tiffOrientationIsInInfo() throws {
        // A 2×1 grey TIFF with Orientation = 6 (rotate 90° clockwise): displayed 1×2.
        func entry(_ tag: Int, _ type: Int, _ value: Int) -> [UInt8] {
            Bombs.le16(tag) + Bombs.le16(type) + Bombs.le32(1) + (type == 4 ? Bombs.le32(value) : Bombs.le16(value) + [0, 0])
        }
        var bytes: [UInt8] = Array("II".utf8) + [42, 0] + Bombs.le32(10) + [0x10, 0xF0]
        bytes += Bombs.le16(10) + entry(256, 4, 2) + entry(257, 4, 1) + entry(258, 3, 8) + entry(259, 3, 1)
            + entry(262, 3, 1) + entry(273, 4, 8) + entry(274, 3, 6) + entry(277, 3, 1) + entry(278, 4, 1) + entry(279, 4, 2)
            + Bombs.le32(0)
        let tiff = Data(bytes)
        let json = String(decoding: try Engine().info(tiff).bytes, as: UTF8.self)
        #expect(json.contains("Orientation"), "\(json)")
        #expect(json.replacingOccurrences(of: " ", with: "").contains("\"Orientation\":{\"value\":\"6\"}"), "\(json)")
        let rotated = try Engine().render(tiff, try Pipeline.parse("image/format,png"))
        #expect(rotated.width == 1 && rotated.height == 2)
    }
}
