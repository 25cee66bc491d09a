import Foundation

/// The displayed size of an image from its first bytes, in pure Swift (the planner never starts
/// libvips): JPEG (with its EXIF orientation, which the engine applies by default), PNG, GIF and
/// WebP. Other formats, and anything it cannot read, give nil: the planner then plans every
/// derivative as asked.
public enum ImageHeader {
    /// Formats whose size is read here: a cache record of one without a size (from before sizes
    /// were kept) is hashed again once.
    static let sized: Set<String> = ["jpg", "png", "gif", "webp"]

    public static func size(_ data: Data) -> (width: Int, height: Int)? {
        let bytes = [UInt8](data.prefix(1 << 20))
        switch ContentDigests.sniff(data) {
        case "png": return png(bytes)
        case "gif": return gif(bytes)
        case "webp": return webp(bytes)
        case "jpg": return jpeg(bytes)
        default: return nil
        }
    }

    static func be16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
    static func le16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i + 1]) << 8 | Int(b[i]) }
    static func be32(_ b: [UInt8], _ i: Int) -> Int { be16(b, i) << 16 | be16(b, i + 2) }
    static func le24(_ b: [UInt8], _ i: Int) -> Int { Int(b[i + 2]) << 16 | le16(b, i) }

    static func valid(_ width: Int, _ height: Int) -> (width: Int, height: Int)? {
        width > 0 && height > 0 ? (width, height) : nil
    }

    static func png(_ b: [UInt8]) -> (width: Int, height: Int)? {
        guard b.count >= 24, Array(b[12..<16]) == Array("IHDR".utf8) else { return nil }
        return valid(be32(b, 16), be32(b, 20))
    }

    static func gif(_ b: [UInt8]) -> (width: Int, height: Int)? {
        guard b.count >= 10 else { return nil }
        return valid(le16(b, 6), le16(b, 8))
    }

    static func webp(_ b: [UInt8]) -> (width: Int, height: Int)? {
        guard b.count >= 30 else { return nil }
        switch String(decoding: b[12..<16], as: UTF8.self) {
        case "VP8 ": return valid(le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF)
        case "VP8L":
            let bits = UInt32(b[21]) | UInt32(b[22]) << 8 | UInt32(b[23]) << 16 | UInt32(b[24]) << 24
            return valid(Int(bits & 0x3FFF) + 1, Int((bits >> 14) & 0x3FFF) + 1)
        case "VP8X": return valid(le24(b, 24) + 1, le24(b, 27) + 1)
        default: return nil
        }
    }

    /// SOF gives the stored size; an EXIF orientation of 5 to 8 swaps the sides.
    static func jpeg(_ b: [UInt8]) -> (width: Int, height: Int)? {
        var i = 2
        var orientation = 1
        while i + 4 <= b.count {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            if marker == 0xFF { i += 1; continue }
            if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 { i += 2; continue }
            let length = be16(b, i + 2)
            guard length >= 2 else { return nil }
            let body = i + 4
            if marker == 0xE1, body + 6 <= b.count, Array(b[body..<body + 6]) == [0x45, 0x78, 0x69, 0x66, 0, 0] {
                orientation = exifOrientation(b, tiff: body + 6, end: min(b.count, i + 2 + length)) ?? orientation
            }
            // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                guard body + 5 <= b.count else { return nil }
                let height = be16(b, body + 1), width = be16(b, body + 3)
                return (5...8).contains(orientation) ? valid(height, width) : valid(width, height)
            }
            i += 2 + length
        }
        return nil
    }

    /// Tag 0x0112 of IFD0.
    static func exifOrientation(_ b: [UInt8], tiff: Int, end: Int) -> Int? {
        guard tiff + 8 <= end else { return nil }
        let little = b[tiff] == 0x49
        func u16(_ at: Int) -> Int? { at + 2 <= end ? (little ? le16(b, at) : be16(b, at)) : nil }
        func u32(_ at: Int) -> Int? {
            guard at + 4 <= end, let low = u16(little ? at : at + 2), let high = u16(little ? at + 2 : at) else { return nil }
            return high << 16 | low
        }
        guard let offset = u32(tiff + 4), let count = u16(tiff + offset) else { return nil }
        for entry in 0..<min(count, 256) {
            let at = tiff + offset + 2 + entry * 12
            guard let tag = u16(at) else { return nil }
            if tag == 0x0112 { return u16(at + 8) }
        }
        return nil
    }
}
