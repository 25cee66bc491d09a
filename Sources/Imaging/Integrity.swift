import CVipsShim
import Foundation
import ProcessLanguage

/// Checks that refuse corrupt sources before or besides decoding (README, "Corrupt input").
/// Decoding itself fails on libvips' `fail_on` (see `Render.failOn(_:)`).
enum Integrity {
    static func corrupt(_ detail: String) -> ProcessError {
        ProcessError(.badRequest, ec: "0040-00000005", "the source image is corrupt or truncated: " + detail)
    }

    /// Header claims the bytes cannot back:
    /// - a JPEG needs at least one bit per 8x8 luma block even in its most compressed scan, so
    ///   a header claiming more blocks than the file has bits lies about its size (the data
    ///   would decode to grey);
    /// - a GIF ends with its trailer byte (0x3B); one cut short loses its last frames silently.
    static func checkHeader(_ source: UnsafeRawBufferPointer, format: SourceFormat, width: Int, height: Int) throws {
        switch format {
        case .jpeg:
            let blocks = ((width + 7) / 8) * ((height + 7) / 8)
            if source.count * 8 < blocks {
                throw corrupt("the header says \(width)x\(height), more than its \(source.count) bytes can hold")
            }
        case .gif:
            // Padding after the trailer (zeros, a newline) is common and harmless.
            let end = source.lastIndex { ![0x00, 0x0A, 0x0D, 0x20].contains($0) }
            if end.map({ source[$0] }) != 0x3B {
                throw corrupt("the GIF does not end with its trailer (it was cut short)")
            }
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
}
