import CVipsShim
import Foundation
import ProcessLanguage

/// Writes the final image in the chosen format, without metadata.
enum Encoder {
    /// Quality used when the chain has no `quality` action, per output format (OSS does not
    /// publish its own). JPEG stays at 85; WebP and AVIF are calibrated on the corpus
    /// (Tests/Benchmarks/calibrate-quality, quality-table.md): the lowest quality of a 5-step grid
    /// whose mean SSIM is at least JPEG 85's with fewer bytes (WebP 85: 83% of JPEG's bytes; AVIF
    /// 70: 69%). HEIC (x265 at its fastest preset) keeps 85; TIFF is deflate, which ignores it.
    /// Changing any bumps `Engine.renderVersion`.
    static let defaultQualities: [Format.Kind: Int] = [.jpg: 85, .webp: 85, .avif: 70, .heic: 85, .tiff: 85]

    static func defaultQuality(for format: Format.Kind) -> Int { defaultQualities[format] ?? 85 }

    /// WebP and AVIF defaults for a JPEG source saved below JPEG's default (85), whose JPEG
    /// default is capped at its own quality (so its JPEG fallback is smaller than one at 85): rows
    /// of (source quality, WebP, AVIF) calibrated by `Tests/Benchmarks/calibrate-quality --low`
    /// (quality-table-low.md): photos re-saved at each level, and at each the lowest quality whose
    /// mean SSIM is at least the capped JPEG's, with fewer bytes. Linear between rows and from
    /// the top row up to (85, 85, 70); below the lowest row, scaled down with the source's quality.
    /// Changing any bumps `Engine.renderVersion`.
    static let lowSourceQualities: [(source: Int, webp: Int, avif: Int)] = [(50, 45, 50), (60, 55, 55), (70, 70, 55), (80, 80, 65)]

    /// The quality a chain without `quality` is encoded at, given the estimated quality of a JPEG
    /// source (nil: not a JPEG, or not estimated). JPEG: its default, at most the source's; WebP
    /// and AVIF: from `lowSourceQualities` when the source is below JPEG's default; else the format's default.
    static func defaultQuality(for format: Format.Kind, jpegSourceQuality source: Int?) -> Int {
        let standing = defaultQuality(for: format), jpeg = defaultQuality(for: .jpg)
        switch format {
        case .jpg:
            return min(standing, source ?? Int.max)
        case .webp, .avif:
            guard let source, source < jpeg else { return standing }
            let rows = lowSourceQualities.map { ($0.source, format == .webp ? $0.webp : $0.avif) } + [(jpeg, standing)]
            // Integer arithmetic, rounding halves up: the calibration script computes the same.
            guard source > rows[0].0 else { return max(1, (rows[0].1 * source * 2 + rows[0].0) / (2 * rows[0].0)) }
            for (low, high) in zip(rows, rows.dropFirst()) where source <= high.0 {
                let span = high.0 - low.0
                return low.1 + ((high.1 - low.1) * (source - low.0) * 2 + span) / (2 * span)
            }
            return standing
        default:
            return standing
        }
    }

    /// `jpg:85,webp:…`: the defaults as the encoder settings of every fingerprint name them.
    static var defaultQualitySettings: String {
        defaultQualities.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue):\($0.value)" }.joined(separator: ",")
    }

    /// `50:45/50,…`: the rows of `lowSourceQualities` (source: WebP/AVIF), as fingerprints name them.
    static var lowSourceQualitySettings: String {
        lowSourceQualities.map { "\($0.source):\($0.webp)/\($0.avif)" }.joined(separator: ",")
    }

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
        case .heic: status = dv_save_heic_fast(image.pointer, &buffer, &length, q)
        case .avif: status = dv_save_heif(image.pointer, &buffer, &length, q, 1)
        case .bmp: status = dv_save_bmp(image.pointer, &buffer, &length)
        }
        guard status == 0, let buffer else {
            if let buffer { dv_free(buffer) }
            // Decoding is lazy, so a corrupt or truncated source surfaces here.
            throw ProcessError(.badRequest, ec: "0040-00000005",
                               "could not produce \(format.rawValue) output; the source is corrupt or truncated, or the format cannot hold this image: \(Vips.firstReason(Vips.takeError()))",
                               action: Format.name)
        }
        defer { dv_free(buffer) }
        let bytes = Data(bytes: buffer, count: length)
        // libvips 8.14's WebP saver writes an EXIF chunk (orientation, resolution) even when
        // told to strip: outputs carry no metadata, so it is cut out of the container.
        return format == .webp ? WebPContainer.withoutMetadata(bytes) : bytes
    }
}

/// The RIFF container of WebP files, just enough to drop metadata chunks.
enum WebPContainer {
    /// `data` without its EXIF and XMP chunks (and their VP8X flags); unchanged if not a WebP.
    static func withoutMetadata(_ data: Data) -> Data {
        let bytes = [UInt8](data)
        guard bytes.count >= 20, bytes[0..<4] == [0x52, 0x49, 0x46, 0x46][...], bytes[8..<12] == [0x57, 0x45, 0x42, 0x50][...] else {
            return data
        }
        var kept: [UInt8] = []
        var offset = 12
        var dropped = false
        while offset + 8 <= bytes.count {
            let fourCC = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            let size = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16 | Int(bytes[offset + 7]) << 24
            let end = min(bytes.count, offset + 8 + size + (size & 1))
            if fourCC == "EXIF" || fourCC == "XMP " {
                dropped = true
            } else {
                var chunk = Array(bytes[offset..<end])
                // VP8X flags: 0x08 EXIF, 0x04 XMP.
                if fourCC == "VP8X", chunk.count > 8 { chunk[8] &= ~UInt8(0x0C) }
                kept += chunk
            }
            offset = end
        }
        guard dropped else { return data }
        let riffSize = UInt32(kept.count + 4)
        let header: [UInt8] = [0x52, 0x49, 0x46, 0x46, UInt8(riffSize & 0xFF), UInt8((riffSize >> 8) & 0xFF),
                               UInt8((riffSize >> 16) & 0xFF), UInt8(riffSize >> 24), 0x57, 0x45, 0x42, 0x50]
        return Data(header + kept)
    }
}
