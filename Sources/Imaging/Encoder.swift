import CVipsShim
import Foundation
import ProcessLanguage

/// Writes the final image in the chosen format, without metadata.
enum Encoder {
    /// Quality used when the chain has no `quality` action (OSS does not publish its own).
    static let defaultQuality = 85

    static func encode(_ image: VImage, as format: Format.Kind, quality: Int, interlace: Bool) throws -> Data {
        var buffer: UnsafeMutableRawPointer?
        var length = 0
        let q = Int32(quality), i: Int32 = interlace ? 1 : 0
        let status: Int32
        switch format {
        case .jpg: status = dv_save_jpeg(image.pointer, &buffer, &length, q, i)
        case .png: status = dv_save_png(image.pointer, &buffer, &length, i)
        case .webp: status = dv_save_webp(image.pointer, &buffer, &length, q)
        case .gif: status = dv_save_gif(image.pointer, &buffer, &length, i)
        case .tiff: status = dv_save_tiff(image.pointer, &buffer, &length, q)
        case .heic: status = dv_save_heif(image.pointer, &buffer, &length, q, 0)
        case .avif: status = dv_save_heif(image.pointer, &buffer, &length, q, 1)
        case .bmp: status = dv_save_bmp(image.pointer, &buffer, &length)
        }
        guard status == 0, let buffer else {
            if let buffer { dv_free(buffer) }
            // Decoding is lazy, so a corrupt or truncated source surfaces here.
            throw ProcessError(.badRequest, ec: "0040-00000005",
                               "could not produce \(format.rawValue) output; the source is corrupt or truncated, or the format cannot hold this image: \(Vips.takeError())",
                               action: Format.name)
        }
        defer { dv_free(buffer) }
        return Data(bytes: buffer, count: length)
    }
}
