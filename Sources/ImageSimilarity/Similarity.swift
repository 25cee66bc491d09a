import Foundation

/// An 8-bit RGB raster decoded in Swift (derive links no libvips: the render worker scales both
/// images to one size and writes them as uncompressed BMP, which is read here).
public struct RGBPixels: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// `width * height * 3` bytes, rows top to bottom.
    public var rgb: [UInt8]

    public init(width: Int, height: Int, rgb: [UInt8]) { self.width = width; self.height = height; self.rgb = rgb }

    public struct DecodeError: Error, CustomStringConvertible { public var description: String }

    /// Uncompressed 24- or 32-bit BMP (BI_RGB, or BI_BITFIELDS with byte-aligned masks), bottom-up
    /// or top-down; at most `maxPixels`. Anything else is an error, never a crash.
    public static func bmp(_ data: Data, maxPixels: Int = 16 << 20) throws -> RGBPixels {
        let bytes = [UInt8](data)
        func u16(_ at: Int) -> Int { at + 2 <= bytes.count ? Int(bytes[at]) | Int(bytes[at + 1]) << 8 : -1 }
        func u32(_ at: Int) -> UInt32 {
            at + 4 <= bytes.count ? UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24 : 0
        }
        guard bytes.count >= 54, bytes[0] == 0x42, bytes[1] == 0x4D else { throw DecodeError(description: "not a BMP file") }
        let offset = Int(u32(10)), headerSize = Int(u32(14))
        let width = Int(Int32(bitPattern: u32(18))), rawHeight = Int(Int32(bitPattern: u32(22)))
        let bits = u16(28), compression = u32(30)
        let height = abs(rawHeight)
        guard width > 0, height > 0, width * height <= maxPixels else { throw DecodeError(description: "BMP of \(width)x\(rawHeight) is out of range") }
        guard bits == 24 || bits == 32 else { throw DecodeError(description: "BMP of \(bits) bits per pixel is not read") }
        // Channel byte positions: BGR(A) unless bit fields say otherwise.
        var red = 2, green = 1, blue = 0
        if compression == 3 || compression == 6 {
            guard bits == 32, headerSize >= 52 else { throw DecodeError(description: "BMP bit fields are not read here") }
            func position(_ mask: UInt32) throws -> Int {
                switch mask {
                case 0x0000_00FF: return 0
                case 0x0000_FF00: return 1
                case 0x00FF_0000: return 2
                case 0xFF00_0000: return 3
                default: throw DecodeError(description: "BMP bit field mask \(String(mask, radix: 16)) is not byte aligned")
                }
            }
            red = try position(u32(54)); green = try position(u32(58)); blue = try position(u32(62))
        } else if compression != 0 {
            throw DecodeError(description: "compressed BMP (\(compression)) is not read")
        }
        let step = bits / 8
        let stride = (width * step + 3) & ~3
        guard offset >= 0, offset + stride * height <= bytes.count else { throw DecodeError(description: "BMP is truncated") }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let row = rawHeight > 0 ? height - 1 - y : y
            let base = offset + row * stride
            for x in 0..<width {
                let p = base + x * step, q = (y * width + x) * 3
                rgb[q] = bytes[p + red]; rgb[q + 1] = bytes[p + green]; rgb[q + 2] = bytes[p + blue]
            }
        }
        return RGBPixels(width: width, height: height, rgb: rgb)
    }

    /// Luma (BT.601), one value per pixel.
    var luma: [Double] {
        var values = [Double](repeating: 0, count: width * height)
        for i in 0..<values.count {
            values[i] = 0.299 * Double(rgb[3 * i]) + 0.587 * Double(rgb[3 * i + 1]) + 0.114 * Double(rgb[3 * i + 2])
        }
        return values
    }
}

/// Structural similarity of two rasters of one size, on luma, over 8×8 windows moved by 4
/// pixels (Wang et al. 2004 with a box window): 1 for identical images, lower the more they
/// differ. Also a map of each window's dissimilarity for the heat map.
public struct Similarity: Sendable {
    public var ssim: Double
    /// Per window `1 - ssim`, clamped to 0...1, `columns × rows` values.
    public var map: [Double]
    public var columns: Int
    public var rows: Int

    static let window = 8, step = 4

    public init(_ a: RGBPixels, _ b: RGBPixels) throws {
        guard a.width == b.width, a.height == b.height else {
            throw RGBPixels.DecodeError(description: "SSIM needs images of one size, got \(a.width)x\(a.height) and \(b.width)x\(b.height)")
        }
        let width = a.width, height = a.height
        let window = min(Self.window, width, height)
        let columns = (width - window) / Self.step + 1, rows = (height - window) / Self.step + 1
        self.columns = columns; self.rows = rows
        if a.rgb == b.rgb {
            ssim = 1; map = [Double](repeating: 0, count: columns * rows)
            return
        }
        let x = a.luma, y = b.luma
        let c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255)
        let n = Double(window * window)
        var map = [Double](repeating: 0, count: columns * rows)
        var total = 0.0
        for row in 0..<rows {
            for column in 0..<columns {
                var sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0
                for j in 0..<window {
                    let base = (row * Self.step + j) * width + column * Self.step
                    for i in 0..<window {
                        let p = x[base + i], q = y[base + i]
                        sx += p; sy += q; sxx += p * p; syy += q * q; sxy += p * q
                    }
                }
                let mx = sx / n, my = sy / n
                let vx = max(0, sxx / n - mx * mx), vy = max(0, syy / n - my * my), cov = sxy / n - mx * my
                let value = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
                total += value
                map[row * columns + column] = min(1, max(0, 1 - value))
            }
        }
        ssim = min(1, total / Double(columns * rows))
        self.map = map
    }

    /// A heat map of `width × height`: black where the images agree, through red to yellow
    /// where they differ most (scaled so that a dissimilarity of 0.5 is full yellow).
    public func heatMap(width: Int, height: Int) -> RGBPixels {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let row = min(rows - 1, max(0, (y - Self.window / 2) / Self.step))
            for x in 0..<width {
                let column = min(columns - 1, max(0, (x - Self.window / 2) / Self.step))
                let level = min(1, map[row * columns + column] * 2)
                let q = (y * width + x) * 3
                rgb[q] = UInt8(min(255, level * 2 * 255))
                rgb[q + 1] = UInt8(max(0, min(255, (level * 2 - 1) * 255)))
                rgb[q + 2] = 0
            }
        }
        return RGBPixels(width: width, height: height, rgb: rgb)
    }
}

/// PNG writer for the heat maps: 8-bit RGB, deflate "stored" blocks (no compression library is
/// linked into derive; heat maps are small).
public enum PNGWriter {
    public static func encode(_ pixels: RGBPixels) -> Data {
        var raw = [UInt8]()
        raw.reserveCapacity((pixels.width * 3 + 1) * pixels.height)
        for y in 0..<pixels.height {
            raw.append(0)   // filter: none
            raw.append(contentsOf: pixels.rgb[(y * pixels.width * 3)..<((y + 1) * pixels.width * 3)])
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let count = min(65535, raw.count - offset)
            let last: UInt8 = offset + count >= raw.count ? 1 : 0
            zlib.append(last)
            zlib.append(UInt8(count & 0xFF)); zlib.append(UInt8(count >> 8))
            zlib.append(UInt8(~count & 0xFF)); zlib.append(UInt8((~count >> 8) & 0xFF))
            zlib.append(contentsOf: raw[offset..<(offset + count)])
            offset += count
        } while offset < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        zlib.append(contentsOf: bigEndian((b << 16) | a))
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = bigEndian(UInt32(pixels.width)) + bigEndian(UInt32(pixels.height))
        header += [8, 2, 0, 0, 0]
        chunk("IHDR", header, into: &png)
        chunk("IDAT", zlib, into: &png)
        chunk("IEND", [], into: &png)
        return Data(png)
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }

    static func chunk(_ type: String, _ body: [UInt8], into png: inout [UInt8]) {
        png += bigEndian(UInt32(body.count))
        let typed = Array(type.utf8) + body
        png += typed
        png += bigEndian(crc32(typed))
    }

    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes { c = table[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
