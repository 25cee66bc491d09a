import CVipsShim
import Foundation
import ProcessLanguage

/// The formats Derive accepts as sources (spec §4.1: JPG, PNG, BMP, GIF, WebP, TIFF, HEIC, AVIF),
/// recognised by content, never by file name.
public enum SourceFormat: String, Sendable {
    case jpeg, png, gif, webp, tiff, heic, avif, bmp

    /// The `info` name (spec §3.1) and the default output format.
    public var outputFormat: Format.Kind {
        switch self {
        case .jpeg: return .jpg
        case .png: return .png
        case .gif: return .gif
        case .webp: return .webp
        case .tiff: return .tiff
        case .heic: return .heic
        case .avif: return .avif
        case .bmp: return .bmp
        }
    }

    var canAnimate: Bool { self == .gif || self == .webp }

    /// Picks the format from the bytes and the loader libvips would use. Loaders outside this
    /// list (SVG, PDF, JPEG 2000, FITS, ...) are refused, so is ImageMagick for anything but BMP.
    static func detect(_ bytes: UnsafeRawBufferPointer) throws -> SourceFormat {
        var unsupported = ProcessError(.badRequest, ec: "0040-00000005",
                                       "the source is not an image in a supported format (JPEG, PNG, GIF, WebP, TIFF, HEIC, AVIF, BMP)")
        guard bytes.count >= 2, let base = bytes.baseAddress else { throw unsupported }
        // libvips' TIFF sniffer reads past the signature (a cut TIFF goes to ImageMagick or to
        // no loader): a file that starts like an accepted format is damaged, not "another format".
        if let name = signature(bytes) {
            unsupported = ProcessError(.badRequest, ec: "0040-00000005",
                                       "the source starts like a \(name) file but cannot be read: it is damaged or cut short")
        }
        guard let loaderPointer = dv_loader_for_buffer(base, bytes.count) else { throw unsupported }
        let loader = String(cString: loaderPointer)
        switch loader {
        case "VipsForeignLoadJpegBuffer": return .jpeg
        case "VipsForeignLoadPngBuffer": return .png
        case "VipsForeignLoadNsgifBuffer": return .gif
        case "VipsForeignLoadWebpBuffer": return .webp
        case "VipsForeignLoadTiffBuffer": return .tiff
        case "VipsForeignLoadHeifBuffer":
            // ftyp brand: 'avif'/'avis' for AV1, anything else (heic, mif1, ...) for HEVC.
            if bytes.count >= 12 {
                let brand = String(decoding: bytes[8..<12], as: UTF8.self)
                if brand == "avif" || brand == "avis" { return .avif }
            }
            return .heic
        case "VipsForeignLoadMagickBuffer":
            if bytes[0] == UInt8(ascii: "B"), bytes[1] == UInt8(ascii: "M") { return .bmp }
            throw unsupported
        default:
            throw unsupported
        }
    }

    /// The accepted format whose signature the bytes start with, if any.
    static func signature(_ bytes: UnsafeRawBufferPointer) -> String? {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && zip(bytes[offset..<(offset + prefix.count)], prefix).allSatisfy { $0 == $1 }
        }
        if starts([0xFF, 0xD8, 0xFF]) { return "JPEG" }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "PNG" }
        if starts(Array("GIF8".utf8)) { return "GIF" }
        if starts(Array("RIFF".utf8)), starts(Array("WEBP".utf8), at: 8) { return "WebP" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "TIFF" }
        if starts(Array("ftyp".utf8), at: 4) { return "HEIF" }
        return nil
    }
}
