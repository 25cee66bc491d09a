import Foundation
import ProcessLanguage
import ImagingCore

/// What libvips' loader itself costs for a source, read from the file's own header bytes before
/// libvips opens it. Some loaders hold the whole image however the chain streams, and some do it
/// while reading the header, so these are checked before `dv_header`:
/// - BMP goes through ImageMagick, whose header step decodes the whole image into its pixel
///   cache (about 10 bytes a pixel at Q16), which libvips then copies (4 more);
/// - WebP: libvips' loader allocates its RGBA frame while reading the header (at the load's
///   scale) and keeps it while the image lives; libwebp decodes a lossless (VP8L) image, and a
///   lossy one's alpha plane, whole whatever the scale; an animation's canvas is allocated when
///   the header is read. A still's header is therefore read at a tiny scale (`headerScale`);
/// - an interlaced (Adam7) PNG is decoded whole, at its stored bands and bit depth;
/// - TIFF: libvips reads every directory (page) of the chain to count them, for every open.
struct LoaderFootprint: Equatable {
    /// Bytes the loader allocates at once besides what the chain holds, whatever the decode scale.
    var memory: Double = 0
    /// Bytes the loader allocates at a full-size decode that shrink on load divides (a WebP's
    /// RGBA frames at the scale it decodes).
    var scaledMemory: Double = 0
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
    /// The scale a still WebP's header is read at (its frame allocated at that scale), nil to
    /// read it at full size.
    var headerScale: Double?

    /// ImageMagick's side limit (policy.xml, and `WorkerTemporaryFolder`'s environment): a BMP
    /// source or output with a longer side cannot be read or written.
    static let imageMagickMaxSide = 16_000
    /// Bytes a pixel a BMP decode holds: ImageMagick's Q16 pixel cache (a 8000×8000 8-bit BMP
    /// made a 640 MB cache file: 10) and libvips' reading of it. The header image, whose read
    /// holds a whole decode too, is dropped before the pixels are decoded (it was not: a
    /// 4400² RLE BMP peaked at 464 MB, a 4470² one as a watermark at 616 MB). Measured since
    /// (`Tests/Benchmarks/bench-limits`): 4400² 274 MB peak RSS, 262 MB private data, with the
    /// worker's own 19 MB: 12.5 a pixel.
    static let bmpBytesPerPixel: Double = 13
    /// Work a pixel of ImageMagick's BMP decode (CPU time of `vipsheader` on a 3000×3000 RLE and
    /// a 24-bit BMP: 35 to 50 ns a pixel), done once for the header and once more for the pixels.
    static let bmpDecodeWeight: Double = 60
    /// Work a TIFF directory costs libvips to count (CPU time of `vipsheader` on a chain of 20 000
    /// 1×1 pages: 23 µs a page), for each of the header read, the decode and the checks.
    static let tiffPageWeight: Double = 25_000 * 3
    /// Bytes a pixel an interlaced PNG's render holds besides libpng's whole image: an 8-bit
    /// RGBA copy (measured 3.5 a pixel for a 16-bit RGBA one rendered to JPEG).
    static let interlacedCopyBytesPerPixel: Double = 4
    /// Bytes a decoded pixel of a still WebP costs libvips' loader at its scale: two RGBA frames
    /// (its header read's and its load's, both alive during the decode) and the sequential
    /// copy. Measured (peak private data, `Tests/Benchmarks/bench-limits`): 12000² lossy at
    /// scale 1 2.1 GB (14.6 a pixel with the 3-band result), at 1/8 66 MB; 4000² 301 MB.
    static let webpFrameBytesPerPixel: Double = 14
    /// Bytes a source pixel of a lossy WebP's alpha costs, at any scale: libwebp decodes the
    /// ALPH plane whole (1 byte) through a VP8L decoder holding the whole plane again (1 byte,
    /// or 4 when the alpha stream is not palette-coded). Measured: a 4000² gradient alpha
    /// 5.75 a pixel over the same image without alpha, a 12000² flat one 2.05.
    static let webpAlphaBytesPerPixel: Double = 6
    /// Bytes a source pixel of a lossless WebP costs, at any scale: libwebp's VP8L decoder
    /// holds the whole ARGB image (4) before scaling. Measured: 4000² noise 5.2 a pixel at
    /// scale 1, 3.3 at 1/8.
    static let webpLosslessBytesPerPixel: Double = 5

    /// Bytes a pixel libheif holds decoding a HEIC or AVIF, per band: it decodes the whole image
    /// whatever the chain streams or shrinks (no shrink on load), into planes and then an
    /// interleaved copy that libvips reads. Measured: a 9000² 3-band AVIF rendering `resize,w_10`
    /// peaked at 578 MB (vipsthumbnail) and 597 MB in the worker, 7.1 a pixel; the chain's
    /// estimate, which streams, was 3 KiB, so the decode ran out of the worker's cap.
    static let heifBytesPerBandPixel: Double = 2.7

    /// What libheif holds for a `width`×`height` HEIC or AVIF of `bands` bands (0 for other formats).
    static func heifMemory(_ format: SourceFormat, width: Int, height: Int, bands: Int) -> Double {
        guard format == .heic || format == .avif else { return 0 }
        return Double(width) * Double(height) * Double(max(3, bands)) * heifBytesPerBandPixel
    }

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
            // libpng's whole image at its stored bands and depth, and an 8-bit RGBA copy of it
            // on the way out. Measured (bench-limits): a 7000² 16-bit RGBA interlaced PNG peaked
            // at 584 MB of private data with format,jpg (11.5 a pixel), costed 8 a pixel before.
            footprint.memory = Double(header.width) * Double(header.height)
                * (Double(header.channels) * Double(header.bitDepth > 8 ? 2 : 1) + interlacedCopyBytesPerPixel)
        case .webp:
            guard let header = SourceHeader.WebPHeader(bytes) else { break }
            footprint.width = header.width
            footprint.height = header.height
            try limits.checkSource(width: header.width, height: header.height, frames: 1, resizing: resizing)
            let pixels = Double(header.width) * Double(header.height)
            if header.animated {
                // The canvas is allocated (4 bytes a pixel) while libvips reads the header, and
                // again for every frame it composes.
                footprint.allocatedAtHeader = pixels * 4
                footprint.memory = footprint.allocatedAtHeader * 2
            } else {
                // Frames at the decode's scale; VP8L data and a lossy alpha plane whole.
                footprint.scaledMemory = pixels * webpFrameBytesPerPixel
                footprint.memory = pixels * (header.lossless ? webpLosslessBytesPerPixel : header.alpha ? webpAlphaBytesPerPixel : 0)
                // The header read allocates a frame too: read it with about 8 px on the short side.
                let shortSide = Double(max(1, min(header.width, header.height)))
                footprint.headerScale = shortSide > 8 ? 8 / shortSide : nil
            }
        case .tiff:
            guard let pages = bytes.tiffPages(upTo: limits.maxFrames + 1) else { break }
            footprint.pages = pages
            if pages > limits.maxFrames {
                throw ProcessError(.imageTooLarge, ec: resizing ? "0040-00000009" : "0040-00000012",
                                   "the source has more than \(limits.maxFrames) pages (TIFF directories); the limit is \(limits.maxFrames)")
            }
            footprint.work = Double(pages) * tiffPageWeight
        case .gif:
            // The size libvips will show, the first image's reach included (a 1x1 screen may
            // hold a 60000x60000 frame), and its frames: refused before libvips reads the header.
            // Every image is decoded at its own size, on the canvas or not: bounded too.
            guard let header = SourceHeader.gif(bytes), let extent = GIFBlocks.extent(bytes.raw) else { break }
            footprint.width = header.width
            footprint.height = header.height
            try limits.checkSource(width: header.width, height: header.height, frames: header.frames, resizing: resizing)
            try limits.checkGIFFrames(extent, resizing: resizing)
        default:
            break
        }
        return footprint
    }

    /// The loader's memory for a decode shrunk by `shrink` (WebP decodes at the reduced size).
    func memory(shrink: Int) -> Double {
        memory + scaledMemory / Double(max(1, shrink) * max(1, shrink))
    }
}

extension Limits {
    /// What a loader spends while libvips reads the header, and what it will hold whatever the
    /// chain's shrink, is refused before libvips reads the header.
    func checkBeforeHeader(_ footprint: LoaderFootprint, resizing: Bool) throws {
        try checkEstimate(WorkEstimate(work: footprint.work, memory: max(footprint.allocatedAtHeader, footprint.memory)), resizing: resizing)
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
