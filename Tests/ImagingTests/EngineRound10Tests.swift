import Foundation
import Testing
import TestSupport
@testable import Imaging
import ProcessLanguage

/// A black `side`×`side` 1-bit PNG, written without libvips (its pixels are never in memory):
/// one zlib stream of fixed-Huffman deflate, a literal zero then back-references of 258 zeros,
/// so 15 800² is about 200 KB (the attacker's was 30 KB with a better compressor).
func bilevelPNG(side: Int) -> Data {
    var bits = BitWriter()
    bits.write(1, count: 1)   // BFINAL
    bits.write(1, count: 2)   // BTYPE 01: fixed Huffman codes (written LSB first)
    let total = side * (1 + (side + 7) / 8)   // each row: filter byte 0, then the packed bits
    bits.huffman(0x30, count: 8)   // literal 0
    var left = total - 1
    while left >= 258 {
        bits.huffman(0xC5, count: 8)   // length 258 (symbol 285)
        bits.huffman(0, count: 5)      // distance 1
        left -= 258
    }
    for _ in 0..<left { bits.huffman(0x30, count: 8) }
    bits.huffman(0, count: 7)      // end of block (symbol 256)
    let adler = UInt32(total % 65521) << 16 | 1   // every byte is 0
    let zlib = [0x78, 0x01] + bits.finished + [UInt8(adler >> 24), UInt8(adler >> 16 & 0xFF), UInt8(adler >> 8 & 0xFF), UInt8(adler & 0xFF)]
    func be32(_ n: Int) -> [UInt8] { [UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] }
    func chunk(_ tag: String, _ payload: [UInt8]) -> [UInt8] {
        let body = Array(tag.utf8) + payload
        return be32(payload.count) + body + be32(Int(crc32(body)))
    }
    let header = be32(side) + be32(side) + [1, 0, 0, 0, 0]   // 1 bit, grey, deflate, no filter choice, no interlace
    return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", zlib) + chunk("IEND", []))
}

struct BitWriter {
    var bytes: [UInt8] = []
    var current: UInt32 = 0
    var used = 0

    mutating func write(_ value: UInt32, count: Int) {
        for i in 0..<count { push(value >> UInt32(i) & 1) }
    }

    /// Huffman codes go most significant bit first.
    mutating func huffman(_ code: UInt32, count: Int) {
        for i in (0..<count).reversed() { push(code >> UInt32(i) & 1) }
    }

    private mutating func push(_ bit: UInt32) {
        current |= bit << UInt32(used)
        used += 1
        if used == 8 { bytes.append(UInt8(current)); current = 0; used = 0 }
    }

    /// The bytes with the last partial byte flushed.
    var finished: [UInt8] { used > 0 ? bytes + [UInt8(current)] : bytes }
}

func crc32(_ bytes: [UInt8]) -> UInt32 {
    var table = [UInt32](repeating: 0, count: 256)
    for n in 0..<256 {
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        table[n] = c
    }
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
}

/// Issue #10, round 10: average-hue's cost, sizes in messages, the WebP frame cap on watermark
/// images, text marks near Cairo's and rotate's limits.
@Suite(.ownThreads) struct EngineRound10Tests {
    /// The work estimate the engine computed for `process` on `source` (from its refusal
    /// under a limit of 1 unit).
    static func estimate(_ source: Data, _ process: String) throws -> Double {
        let error = try #require(EngineAttackTests.error(source, process, limits: Limits(maxWork: 1)))
        let message = error.message
        let start = try #require(message.range(of: "work estimate for this image is ")).upperBound
        let digits = message[start...].prefix { $0.isNumber }
        return try #require(Double(digits), "\(message)")
    }

    @Test func theBilevelPNGIsWhatItClaims() throws {
        let small = bilevelPNG(side: 300)
        let (output, raster) = try Fixtures.render(small, "image/format,png")
        #expect(output.width == 300 && output.height == 300)
        #expect(raster.pixels.allSatisfy { $0 == 0 } || raster.pixels.enumerated().allSatisfy { $0.offset % raster.bands == raster.bands - 1 || $0.element == 0 })
    }

    /// Point 1: average-hue samples the image down to 128 px, work the estimate did not count
    /// (the 15 800² 1-bit PNG was estimated below `resize,w_128` and ran to the deadline).
    /// It now reads the source as `resize,m_lfit,w_128,h_128` does and is costed as that.
    @Test func averageHueIsCostedAtLeastAsItsSampling() throws {
        let bomb = bilevelPNG(side: 15_800)
        let sampling = try Self.estimate(bomb, "image/resize,m_lfit,w_128,h_128/format,png")
        let answer = try Self.estimate(bomb, "image/average-hue")
        // The same work but the PNG encoding of the 128² sample, which average-hue does not do.
        #expect(answer + WorkEstimate.encodeWeight(.png) * 128 * 128 >= sampling, "average-hue \(answer) < its sampling \(sampling)")
        // After other actions the answer still samples their result: counted too.
        let big = try Fixtures.solid(2000, 1500, [10, 200, 30], as: .png)
        let rotated = try Self.estimate(big, "image/rotate,90/average-hue")
        let rotatedSample = try Self.estimate(big, "image/rotate,90/resize,m_lfit,w_128,h_128/format,png")
        #expect(rotated + WorkEstimate.encodeWeight(.png) * 96 * 128 >= rotatedSample, "\(rotated) < \(rotatedSample)")
    }

    /// The bomb itself, under the default limits: answered (black), not stopped at the deadline.
    @Test func averageHueOfTheBilevelBombAnswers() throws {
        let bomb = bilevelPNG(side: 15_800)
        let output = try Engine().render(bomb, try Pipeline.parse("image/average-hue"))
        #expect(String(decoding: output.bytes, as: UTF8.self) == "{\"RGB\": \"0x000000\"}")
    }

    /// A JPEG is shrunk on load for average-hue, as for a resize to 128 px.
    @Test func averageHueShrinksJPEGsOnLoad() throws {
        let photo = try Fixtures.quadrants(2400, 1600, as: .jpg)
        let output = try Engine().render(photo, try Pipeline.parse("image/average-hue"))
        #expect(output.decodedPixels > 0 && output.decodedPixels <= 2400 * 1600 / 16, "decoded \(output.decodedPixels) px")
        // The answer is the one the full-size pixels give (salient quadrants, as before).
        let full = try Engine().render(try Fixtures.quadrants(240, 160, as: .png), try Pipeline.parse("image/average-hue"))
        let hex = { (data: Data) -> [Int] in
            let text = String(decoding: data, as: UTF8.self)
            let digits = text.components(separatedBy: "0x").last!.prefix(6)
            return stride(from: 0, to: 6, by: 2).map { Int(digits.dropFirst($0).prefix(2), radix: 16)! }
        }
        #expect(Fixtures.near(hex(output.bytes).map(UInt8.init), hex(full.bytes).map(UInt8.init), tolerance: 6),
                "\(String(decoding: output.bytes, as: UTF8.self)) vs \(String(decoding: full.bytes, as: UTF8.self))")
    }

    /// Point 2: sizes are exact in their unit or carry one decimal, rounded down, so a value
    /// just under a boundary never prints as the unit below it only (1 MiB − 1 byte was
    /// "1023 KiB", 2 MiB − 1 byte "1 MiB").
    @Test func sizesAreConsistentAtBoundaries() {
        #expect(Limits.size(1) == "1 byte")
        #expect(Limits.size(1023) == "1023 bytes")
        #expect(Limits.size(1024) == "1 KiB")
        #expect(Limits.size(1536) == "1.5 KiB")
        #expect(Limits.size(1_048_575) == "1023.9 KiB")
        #expect(Limits.size(1_048_576) == "1 MiB")
        #expect(Limits.size(1_048_577) == "1.0 MiB")
        #expect(Limits.size(2_097_151) == "1.9 MiB")
        #expect(Limits.size(Double(384 << 20)) == "384 MiB")
        #expect(Limits.size(Double(384 << 20) + 0.5 * 1_048_576) == "384.5 MiB")
        var limits = Limits.oss
        limits.maxMemory = 1_048_575
        let error = EngineAttackTests.error(try! Fixtures.quadrants(600, 600, as: .png), "image/rotate,45", limits: limits)
        #expect(error?.message.contains("the limit is 1023.9 KiB") == true, "\(String(describing: error))")
    }

    /// Point 5: the WebP frame cap holds for watermark images too, naming the watermark.
    @Test(arguments: [5000, 100_000])
    func aWatermarkWebPWithTooManyFramesIsRefused(frames: Int) throws {
        let main = try Fixtures.solid(100, 100, [255, 255, 255])
        let resolver = MemoryObjects(objects: ["anim.webp": animatedWebP(frames: frames)])
        for chain in ["image/watermark,image_\(Base64URL.encode("anim.webp"))",
                      "image/resize,w_50/watermark,image_\(Base64URL.encode("anim.webp?x-oss-process=image/resize,w_10")),g_se"] {
            let started = Date()
            let error = EngineAttackTests.error(main, chain, resolver: resolver)
            #expect(error?.code == .imageTooLarge, "\(chain): \(String(describing: error))")
            #expect(error?.message.contains("'anim.webp'") == true && error?.message.contains("\(frames) frames; the limit is 4096") == true,
                    "\(String(describing: error))")
            #expect(error?.action == "watermark" && error?.parameter == "image", "\(String(describing: error))")
            // Refused from the chunk walk: no header read of the frames (that took seconds at 5 000).
            #expect(Date().timeIntervalSince(started) < 5)
        }
    }

    static func textMark(_ text: String, size: Int, rotate: Int = 0) throws -> Watermark {
        let chain = "image/watermark,text_\(Base64URL.encode(text)),size_\(size)" + (rotate != 0 ? ",rotate_\(rotate)" : "")
        guard case .watermark(let mark)? = try Pipeline.parse(chain).actions.first else { throw ProcessError(.internalError, "no watermark") }
        return mark
    }

    /// Point 4: within 5 % of rotate's 4096 px, the up-front check decides as drawing does. A
    /// square block of text over 16 M px in that band was let through (laid out at its real
    /// size only when smaller) and then refused by drawing, after the chain was costed.
    @Test(.enabled(if: FontCatalog.isInstalled(family: "wqy-zenhei"), "needs fonts-wqy-zenhei"))
    func rotatedTextNearTheLimitIsDecidedUpFrontAsDrawn() throws {
        // 9 W × 6 lines: about square, so the probe's box passes 16 M px right at 4096 px wide.
        let block = Array(repeating: "WWWWWWWWW", count: 6).joined(separator: "\n")
        var verdicts: [Int: Bool] = [:]
        for size in [540, 558, 565, 600] {
            let mark = try Self.textMark(block, size: size, rotate: 45)
            let upFront = mark.textTooLargeToRotate() != nil
            var drawn = true
            do { _ = try mark.textImage(block) } catch let error as ProcessError {
                #expect(error.ec == "0040-00000006", "size_\(size): \(error)")
                drawn = false
            }
            #expect(upFront == !drawn, "size_\(size): refused up front \(upFront), drawn \(drawn)")
            verdicts[size] = drawn
        }
        // The band holds both outcomes (else it tests nothing).
        #expect(verdicts.values.contains(true) && verdicts.values.contains(false), "\(verdicts)")
    }

    /// Point 4, Cairo's 32767 px: text the probe puts within 5 % of it is laid out at its real
    /// size up front, so it is refused before the chain is costed exactly when drawing would fail.
    @Test(.enabled(if: FontCatalog.isInstalled(family: "wqy-zenhei"), "needs fonts-wqy-zenhei"))
    func wideTextNearCairosLimitIsDecidedUpFrontAsDrawn() throws {
        var verdicts: [Int: Bool] = [:]
        for count in [40, 41, 42] {
            let text = String(repeating: "W", count: count)
            let mark = try Self.textMark(text, size: 1000)
            var upFront = false
            do { try mark.checkTextFits() } catch let error as ProcessError {
                #expect(error.ec == "0040-00000259", "\(count): \(error)")
                upFront = true
            }
            var drawn = true
            do { _ = try mark.textImage(text) } catch let error as ProcessError {
                #expect(error.ec == "0040-00000259", "\(count): \(error)")
                drawn = false
            }
            #expect(upFront == !drawn, "\(count) W at size_1000: refused up front \(upFront), drawn \(drawn)")
            verdicts[count] = drawn
        }
        #expect(verdicts.values.contains(true) && verdicts.values.contains(false), "\(verdicts)")
    }
}
