import CVipsShim
import Foundation
import ProcessLanguage
import ImagingCore

/// Checks that refuse corrupt sources before or besides decoding (README, "Corrupt input").
/// Decoding itself fails on libvips' `fail_on` (see `Render.failOn(_:)`).
enum Integrity {
    static func corrupt(_ detail: String) -> ProcessError {
        ProcessError(.badRequest, ec: "0040-00000005", "the source image is corrupt or truncated: " + detail)
    }

    /// A PNG whose chunks run past its end, refused before libpng reads it, as `plan` and `build`
    /// refuse it (`SourceEnd`): a cut inside a chunk after the image data rendered in `process`
    /// and `serve`, and a damaged chunk type made libpng fail with no reason given.
    static func checkEnd(_ source: UnsafeRawBufferPointer, format: SourceFormat) throws {
        if format == .png, let cut = SourceEnd.pngTruncation(source) { throw corrupt(cut) }
    }

    /// Header claims the bytes cannot back:
    /// - a JPEG needs at least one bit per 8x8 luma block even in its most compressed scan, so
    ///   a header claiming more blocks than the file has bits lies about its size (the data
    ///   would decode to grey);
    /// - a HEIC or AVIF must have sound boxes and item extents, and a HEIC sound HEVC NAL units
    ///   (libde265 renders damaged data without an error; HEIFStructure).
    /// - a GIF's blocks reach its trailer byte (0x3B); one cut short loses its last frames silently.
    static func checkHeader(_ source: UnsafeRawBufferPointer, format: SourceFormat, width: Int, height: Int) throws {
        switch format {
        case .jpeg:
            let blocks = ((width + 7) / 8) * ((height + 7) / 8)
            if source.count * 8 < blocks {
                throw corrupt("the header says \(width)x\(height), more than its \(source.count) bytes can hold")
            }
        case .gif:
            // Bytes after a trailer the blocks reach are ignored, as libvips does (like bytes
            // after a JPEG's end-of-image); blocks that never reach one were cut or damaged.
            if GIFBlocks.frameCount(source) == nil {
                throw corrupt("the GIF's blocks end before its trailer (it was cut short or damaged)")
            }
        case .heic, .avif:
            if let problem = HEIFStructure.problem(source) { throw corrupt(problem) }
        default:
            break
        }
    }

    /// Decodes every frame once, keeping none, so a broken later frame is an error even when
    /// only the first is drawn.
    static func checkEveryFrame(_ source: UnsafeRawBufferPointer, format: SourceFormat) throws {
        let all = try Render.decoding {
            try VImage.make("decoding the source") {
                dv_load_stream(source.baseAddress, source.count, 0, -1, 1, 1.0, Render.failOn(format), $0)
            }
        }
        if dv_evaluate(all.pointer) != 0 {
            throw corrupt("a frame does not decode: \(Vips.takeError())")
        }
    }

    /// A JPEG's whole entropy-coded data decodes without a warning (libjpeg at 1/8 scale):
    /// zeroed, garbage or missing data is refused on every path, shrink-on-load and crops included.
    static func checkJPEG(_ source: UnsafeRawBufferPointer) throws {
        var message = [CChar](repeating: 0, count: 256)
        if dv_jpeg_verify(source.baseAddress, source.count, &message, message.count) != 0 {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw corrupt(reason.isEmpty ? "the JPEG data does not decode" : reason)
        }
    }

    /// A GIF's frames, counted by walking its blocks, must reach the trailer, stay within the
    /// frame limit and match what libvips announces (it stops quietly at damage and at 4 097).
    static func checkFrames(_ source: UnsafeRawBufferPointer, announced: Int, limits: Limits, resizing: Bool) throws {
        guard let frames = GIFBlocks.frameCount(source) else {
            throw corrupt("the GIF's blocks end before its trailer (it was cut short or damaged)")
        }
        try limits.checkFrames(frames, resizing: resizing)
        if frames != announced {
            throw corrupt("the GIF has \(frames) frames but only \(announced) decode")
        }
    }

    /// Whether the chain reads only part of a still (a crop) from a streamed loader, so corrupt
    /// data outside it would go unseen; JPEG has its own whole-file check.
    static func needsWholeDecode(format: SourceFormat, animate: Bool, drawn: [Action]) -> Bool {
        guard !animate, format != .jpeg else { return false }
        return drawn.contains {
            switch $0 {
            case .crop, .indexCrop, .circle: return true
            default: return false
            }
        }
    }
}
