import Foundation
import ImagingCore

/// ThumbHash (Evan Wallace's image placeholder format), the encoder, from its published
/// description: the image (at most 100x100, RGBA) composited over its average colour, turned into
/// luminance, yellow-blue and red-green channels (and alpha when any pixel is not opaque), each
/// reduced by a DCT to a DC term and a few normalised AC terms, quantised into a header and
/// 4-bit factors. Rounding follows the reference (JavaScript's `Math.round`: halves up).
public enum ThumbHash {
    public static let maxSide = 100

    /// The hash bytes, or nil when the image is empty, larger than 100x100 or the bytes do not match.
    public static func encode(width w: Int, height h: Int, rgba: [UInt8]) -> [UInt8]? {
        guard w > 0, h > 0, w <= maxSide, h <= maxSide, rgba.count == w * h * 4 else { return nil }
        func round(_ value: Double) -> Int { Int((value + 0.5).rounded(.down)) }
        var averageR = 0.0, averageG = 0.0, averageB = 0.0, averageA = 0.0
        for i in 0..<(w * h) {
            let alpha = Double(rgba[i * 4 + 3]) / 255
            averageR += alpha / 255 * Double(rgba[i * 4])
            averageG += alpha / 255 * Double(rgba[i * 4 + 1])
            averageB += alpha / 255 * Double(rgba[i * 4 + 2])
            averageA += alpha
        }
        if averageA > 0 { averageR /= averageA; averageG /= averageA; averageB /= averageA }
        let hasAlpha = averageA < Double(w * h)
        let limit = hasAlpha ? 5.0 : 7.0
        let longest = Double(max(w, h))
        let lx = max(1, round(limit * Double(w) / longest))
        let ly = max(1, round(limit * Double(h) / longest))
        var l = [Double](repeating: 0, count: w * h), p = l, q = l, a = l
        for i in 0..<(w * h) {
            let alpha = Double(rgba[i * 4 + 3]) / 255
            let r = averageR * (1 - alpha) + alpha / 255 * Double(rgba[i * 4])
            let g = averageG * (1 - alpha) + alpha / 255 * Double(rgba[i * 4 + 1])
            let b = averageB * (1 - alpha) + alpha / 255 * Double(rgba[i * 4 + 2])
            l[i] = (r + g + b) / 3
            p[i] = (r + g) / 2 - b
            q[i] = r - g
            a[i] = alpha
        }

        func encodeChannel(_ channel: [Double], _ nx: Int, _ ny: Int) -> (dc: Double, ac: [Double], scale: Double) {
            var dc = 0.0, ac: [Double] = [], scale = 0.0
            var fx = [Double](repeating: 0, count: w)
            for cy in 0..<ny {
                var cx = 0
                while cx * ny < nx * (ny - cy) {
                    var f = 0.0
                    for x in 0..<w { fx[x] = cos(Double.pi / Double(w) * Double(cx) * (Double(x) + 0.5)) }
                    for y in 0..<h {
                        let fy = cos(Double.pi / Double(h) * Double(cy) * (Double(y) + 0.5))
                        for x in 0..<w { f += channel[x + y * w] * fx[x] * fy }
                    }
                    f /= Double(w * h)
                    if cx > 0 || cy > 0 {
                        ac.append(f)
                        scale = max(scale, abs(f))
                    } else {
                        dc = f
                    }
                    cx += 1
                }
            }
            if scale > 0 { ac = ac.map { 0.5 + 0.5 / scale * $0 } }
            return (dc, ac, scale)
        }

        let lum = encodeChannel(l, max(3, lx), max(3, ly))
        let yb = encodeChannel(p, 3, 3)
        let rg = encodeChannel(q, 3, 3)
        let alpha = hasAlpha ? encodeChannel(a, 5, 5) : nil
        let landscape = w > h
        let header24 = round(63 * lum.dc) | round(31.5 + 31.5 * yb.dc) << 6 | round(31.5 + 31.5 * rg.dc) << 12
            | round(31 * lum.scale) << 18 | (hasAlpha ? 1 : 0) << 23
        let header16 = (landscape ? ly : lx) | round(63 * yb.scale) << 3 | round(63 * rg.scale) << 9 | (landscape ? 1 : 0) << 15
        var hash: [Int] = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
        if let alpha { hash.append(round(15 * alpha.dc) | round(15 * alpha.scale) << 4) }
        let start = hash.count
        var index = 0
        for factors in [lum.ac, yb.ac, rg.ac] + (alpha.map { [$0.ac] } ?? []) {
            for factor in factors {
                let slot = start + (index >> 1)
                if slot == hash.count { hash.append(0) }
                hash[slot] |= round(15 * factor) << ((index & 1) << 2)
                index += 1
            }
        }
        return hash.map { UInt8(truncatingIfNeeded: $0) }
    }
}

/// The pixels of an uncompressed BMP (what the engine's BMP encoder writes): 24 bits, or 32 bits
/// plain or with byte-aligned bit fields. Anything else gives nil.
public enum BMPPixels {
    public static func rgba(_ data: Data) -> (width: Int, height: Int, rgba: [UInt8])? {
        let b = [UInt8](data)
        guard b.count > 54, b[0] == 0x42, b[1] == 0x4D else { return nil }
        func u16(_ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
        func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }
        let offset = u32(10), header = u32(14)
        let width = Int(Int32(truncatingIfNeeded: u32(18))), stored = Int(Int32(truncatingIfNeeded: u32(22)))
        let bits = u16(28), compression = u32(30), height = abs(stored)
        guard width > 0, height > 0, width <= 4096, height <= 4096, bits == 24 || bits == 32, compression == 0 || compression == 3 else { return nil }
        // Byte positions of R, G, B (and A) inside a pixel.
        var shifts = (r: 16, g: 8, b: 0, a: bits == 32 && compression == 3 ? 24 : -1)
        if compression == 3 {
            guard bits == 32, header >= 40, 14 + header + 0 <= b.count else { return nil }
            let masksAt = header >= 52 ? 54 : 14 + header   // V4/V5 headers hold the masks; BITMAPINFOHEADER follows with them
            guard masksAt + 12 <= b.count else { return nil }
            func shift(_ mask: Int) -> Int? {
                guard mask != 0 else { return nil }
                let s = mask.trailingZeroBitCount
                return mask == 0xFF << s && s % 8 == 0 ? s : nil
            }
            guard let r = shift(u32(masksAt)), let g = shift(u32(masksAt + 4)), let bl = shift(u32(masksAt + 8)) else { return nil }
            let alphaMask = header >= 56 && masksAt + 16 <= b.count ? u32(masksAt + 12) : 0
            shifts = (r, g, bl, shift(alphaMask) ?? -1)
        }
        let bytesPerPixel = bits / 8
        let stride = (width * bytesPerPixel + 3) & ~3
        guard offset >= 14, offset + stride * height <= b.count else { return nil }
        var rgba = [UInt8](repeating: 255, count: width * height * 4)
        for y in 0..<height {
            let row = offset + (stored > 0 ? height - 1 - y : y) * stride
            for x in 0..<width {
                let at = row + x * bytesPerPixel
                let out = (y * width + x) * 4
                if bits == 24 {
                    rgba[out] = b[at + 2]; rgba[out + 1] = b[at + 1]; rgba[out + 2] = b[at]
                } else {
                    let value = u32(at)
                    rgba[out] = UInt8(value >> shifts.r & 0xFF)
                    rgba[out + 1] = UInt8(value >> shifts.g & 0xFF)
                    rgba[out + 2] = UInt8(value >> shifts.b & 0xFF)
                    if shifts.a >= 0 { rgba[out + 3] = UInt8(value >> shifts.a & 0xFF) }
                }
            }
        }
        return (width, height, rgba)
    }
}

/// The chains that draw a source's placeholder, through the engine like any derivative (so
/// their bytes are deterministic and covered by the render version).
public enum Placeholder {
    /// At most 32 px a side, blurred, as a small WebP: inlined in the index as a data URI.
    public static let image = "image/resize,m_lfit,w_32,h_32/blur,r_3,s_2/quality,q_60/format,webp"
    /// At most 100 px a side as uncompressed pixels: what the ThumbHash is computed from.
    public static let pixels = "image/resize,m_lfit,w_100,h_100/format,bmp"
    /// An animation's placeholder in two steps: its first frame at most 32 px a side as a still
    /// PNG (a PNG is never animated), then `stillImage` of that: `image`'s result for the first
    /// frame, where `image` itself would keep every frame.
    public static let firstFrame = "image/resize,m_lfit,w_32,h_32/format,png"
    public static let stillImage = "image/blur,r_3,s_2/quality,q_60/format,webp"

    /// Whether a placeholder's data URI holds an animated WebP (what Derive made of animations before).
    static func isAnimated(_ dataURI: String) -> Bool {
        let prefix = "data:image/webp;base64,"
        guard dataURI.hasPrefix(prefix), let bytes = Data(base64Encoded: String(dataURI.dropFirst(prefix.count))) else { return false }
        return (WebPChunks.frameCount(bytes) ?? 0) > 0
    }
}
