import Foundation
import ProcessLanguage
import ImagingCore

/// What libvips' loader itself costs for a source, read from the file's own header bytes before
/// libvips opens it. Some loaders hold the whole image however the chain streams, and some do it
/// while reading the header, so these are checked before `dv_header`:
/// - BMP goes through ImageMagick, whose header step decodes the whole image into its pixel
///   cache (about 10 bytes a pixel at Q16), which libvips then copies (4 more);
/// - WebP: libwebp decodes a whole frame at once (4 bytes a pixel); an animation's canvas is
///   allocated when the header is read;
/// - an interlaced (Adam7) PNG is decoded whole, at its stored bands and bit depth;
/// - TIFF: libvips reads every directory (page) of the chain to count them, for every open.
struct LoaderFootprint: Equatable {
    /// Bytes the loader allocates at once besides what the chain holds.
    var memory: Double = 0
    /// Work (units of `WorkEstimate`) the loader spends besides streaming the pixels the chain reads.
    var work: Double = 0
    /// Pages (TIFF directories) counted; 1 when not paged.
    var pages: Int = 1
    /// The side and pixel size the header claims, when it was read (checked against the limits).
    var width: Int?
    var height: Int?
    /// What the loader allocates while libvips reads the header (an animated WebP's canvas, a
    /// BMP's whole ImageMagick decode): checked before the header is read.
    var allocatedAtHeader: Double = 0
    /// Whether the loader holds a scaled frame (WebP decodes at the shrink-on-load scale).
    var scalesWithShrink = false

    /// ImageMagick's side limit (policy.xml, and `WorkerTemporaryFolder`'s environment): a BMP
    /// source or output with a longer side cannot be read or written.
    static let imageMagickMaxSide = 16_000
    /// Bytes a pixel a BMP render holds: ImageMagick's Q16 pixel cache (a 8000×8000 8-bit BMP
    /// made a 640 MB cache file: 10), libvips' copy (4) and the render's own (measured: a worker
    /// rendering a 5000×5000 RLE BMP peaked at 584 MB, 23 a pixel with its idle 19 MB).
    static let bmpBytesPerPixel: Double = 20
    /// Work a pixel of ImageMagick's BMP decode (CPU time of `vipsheader` on a 3000×3000 RLE and
    /// a 24-bit BMP: 35 to 50 ns a pixel), done once for the header and once more for the pixels.
    static let bmpDecodeWeight: Double = 60
    /// Work a TIFF directory costs libvips to count (CPU time of `vipsheader` on a chain of 20 000
    /// 1×1 pages: 23 µs a page), for each of the header read, the decode and the checks.
    static let tiffPageWeight: Double = 25_000 * 3

    /// Reads the footprint of `source` in `format`; throws the limits' errors for what is over
    /// them (side, pixels, pages, memory), before any pixel or header read by libvips.
    static func check(_ source: UnsafeRawBufferPointer, format: SourceFormat, limits: Limits, resizing: Bool) throws -> LoaderFootprint {
        let bytes = SourceHeader.Bytes(source)
        var footprint = LoaderFootprint()
        switch format {
        case .bmp:
            guard bytes.matches(0, "BM"), let header = SourceHeader.bmp(bytes) else { break }
            footprint.width = header.width
            footprint.height = header.height
            try limits.checkSource(width: header.width, height: header.height, frames: 1, resizing: resizing)
            if max(header.width, header.height) > imageMagickMaxSide {
                throw ProcessError(.imageTooLarge, ec: resizing ? "0040-00000009" : "0040-00000012",
                                   "the source is a \(header.width)x\(header.height) BMP; ImageMagick, which reads BMP, takes at most \(imageMagickMaxSide) px a side (convert it to PNG or TIFF first)")
            }
            let pixels = Double(header.width) * Double(header.height)
            footprint.memory = pixels * bmpBytesPerPixel
            footprint.allocatedAtHeader = footprint.memory
            footprint.work = pixels * bmpDecodeWeight * 2
        case .png:
            guard let header = bytes.png(), header.interlaced else { break }
            footprint.width = header.width
            footprint.height = header.height
            try limits.checkSource(width: header.width, height: header.height, frames: 1, resizing: resizing)
            footprint.memory = Double(header.width) * Double(header.height) * Double(header.channels) * Double(header.bitDepth > 8 ? 2 : 1)
        case .webp:
            guard let header = bytes.webp() else { break }
            footprint.width = header.width
            footprint.height = header.height
            if header.animated {
                // The canvas is allocated (4 bytes a pixel) while libvips reads the header, and
                // again for every frame it composes.
                try limits.checkSource(width: header.width, height: header.height, frames: 1, resizing: resizing)
                footprint.allocatedAtHeader = Double(header.width) * Double(header.height) * 4
                footprint.memory = footprint.allocatedAtHeader * 2
            } else {
                try limits.checkSource(width: header.width, height: header.height, frames: 1, resizing: resizing)
                footprint.memory = Double(header.width) * Double(header.height) * 4
                // Lossy frames decode at the shrink-on-load scale; lossless ones whole.
                footprint.scalesWithShrink = !header.lossless
            }
        case .tiff:
            guard let pages = bytes.tiffPages(upTo: limits.maxFrames + 1) else { break }
            footprint.pages = pages
            if pages > limits.maxFrames {
                throw ProcessError(.imageTooLarge, ec: resizing ? "0040-00000009" : "0040-00000012",
                                   "the source has more than \(limits.maxFrames) pages (TIFF directories); the limit is \(limits.maxFrames)")
            }
            footprint.work = Double(pages) * tiffPageWeight
        default:
            break
        }
        return footprint
    }

    /// The loader's memory for a decode shrunk by `shrink` (WebP decodes at the reduced size).
    func memory(shrink: Int) -> Double {
        scalesWithShrink && shrink > 1 ? memory / Double(shrink * shrink) : memory
    }
}

extension Limits {
    /// What a loader spends while libvips reads the header is refused before it reads it.
    func checkBeforeHeader(_ footprint: LoaderFootprint, resizing: Bool) throws {
        try checkEstimate(WorkEstimate(work: footprint.work, memory: footprint.allocatedAtHeader), resizing: resizing)
    }
}

/// The footprint's readings of headers, on ImagingCore's bounds-checked bytes.
extension SourceHeader.Bytes {
    func matches(_ offset: Int, _ text: String) -> Bool { matches(offset, Array(text.utf8)) }

    /// A PNG's IHDR: size, channels per colour type, bit depth, Adam7 interlacing.
    func png() -> (width: Int, height: Int, channels: Int, bitDepth: Int, interlaced: Bool)? {
        guard matches(12, "IHDR"), let w = u32(16, little: false), let h = u32(20, little: false),
              let depth = u8(24), let colour = u8(25), let interlace = u8(28) else { return nil }
        let channels: Int
        switch colour {
        case 0: channels = 1
        case 2: channels = 3
        case 3: channels = 3   // palette, expanded by the loader
        case 4: channels = 2
        case 6: channels = 4
        default: return nil
        }
        return (w, h, channels, depth, interlace == 1)
    }

    /// A WebP's canvas (VP8X) or frame size (VP8, VP8L) and whether it is animated.
    func webp() -> (width: Int, height: Int, animated: Bool, lossless: Bool)? {
        guard matches(0, "RIFF"), matches(8, "WEBP") else { return nil }
        if matches(12, "VP8X") {
            guard let flags = u8(20), let w = u24le(24), let h = u24le(27) else { return nil }
            // A still's image chunk follows VP8X (after ICCP, ALPH...): the first VP8 or VP8L.
            var offset = 30, lossless = false
            while let size = u32(offset + 4, little: true), offset < 1 << 16 {
                if matches(offset, "VP8L") { lossless = true; break }
                if matches(offset, "VP8 ") || matches(offset, "ANMF") { break }
                offset += 8 + size + (size & 1)
            }
            return (w + 1, h + 1, flags & 0x02 != 0, lossless)
        }
        if matches(12, "VP8L") {
            guard u8(20) == 0x2F, let a = u8(21), let b = u8(22), let c = u8(23), let d = u8(24) else { return nil }
            let bits = a | b << 8 | c << 16 | d << 24
            return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, false, true)
        }
        if matches(12, "VP8 ") {
            guard u8(23) == 0x9D, u8(24) == 0x01, u8(25) == 0x2A,
                  let w = u16(26, little: true), let h = u16(28, little: true) else { return nil }
            return (w & 0x3FFF, h & 0x3FFF, false, false)
        }
        return nil
    }

    /// How many directories (pages) a TIFF's chain has, counted up to `cap` (then `cap`): each
    /// directory is visited once (a chain that loops ends the walk, as libtiff refuses it), so
    /// the walk is bounded by `cap` and the file size. nil when the bytes are not a TIFF.
    func tiffPages(upTo cap: Int) -> Int? {
        let little: Bool
        if matches(0, "II") { little = true } else if matches(0, "MM") { little = false } else { return nil }
        guard let magic = u16(2, little: little) else { return nil }
        let big = magic == 43
        guard magic == 42 || big else { return nil }
        var offset = big ? u64(8, little: little) : u32(4, little: little)
        var visited = Set<Int>()
        var pages = 0
        while let at = offset, at >= 8, pages < cap, visited.insert(at).inserted {
            guard let entries = big ? u64(at, little: little) : u16(at, little: little), entries < 1 << 20 else { break }
            pages += 1
            let next = at + (big ? 8 + entries * 20 : 2 + entries * 12)
            offset = big ? u64(next, little: little) : u32(next, little: little)
            if offset == 0 { break }
        }
        return pages
    }
}
