import ProcessLanguage

/// Source and output limits, checked from the header before any pixel is decoded.
/// The defaults are OSS's (spec §4.1).
public struct Limits: Sendable, Hashable {
    /// Largest source object, in bytes.
    public var maxBytes: Int = 20 * 1024 * 1024
    /// Largest source side, in pixels.
    public var maxSide: Int = 30_000
    /// Largest source pixel count, frames included.
    public var maxPixels: Int = 250_000_000
    /// Largest output side, in pixels.
    public var maxOutputSide: Int = 16_384

    public init(maxBytes: Int? = nil, maxSide: Int? = nil, maxPixels: Int? = nil, maxOutputSide: Int? = nil) {
        if let maxBytes { self.maxBytes = maxBytes }
        if let maxSide { self.maxSide = maxSide }
        if let maxPixels { self.maxPixels = maxPixels }
        if let maxOutputSide { self.maxOutputSide = maxOutputSide }
    }

    public static let oss = Limits()

    func checkBytes(_ count: Int) throws {
        guard count <= maxBytes else {
            throw ProcessError(.imageTooLarge,
                               "the source is \(count) bytes; the limit is \(maxBytes) bytes (raise it with --max-bytes)")
        }
    }

    func checkSource(width: Int, height: Int, frames: Int, resizing: Bool) throws {
        let pixels = width * height * max(1, frames)
        let ec = resizing ? "0040-00000009" : "0040-00000012"
        if width > maxSide || height > maxSide {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "the source is \(width)x\(height); each side may be at most \(maxSide) px (raise it with --max-side)")
        }
        if pixels > maxPixels {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "the source has \(pixels) pixels (\(width)x\(height)\(frames > 1 ? "x\(frames) frames" : "")); the limit is \(maxPixels) (raise it with --max-pixels)")
        }
    }

    func checkOutput(width: Int, height: Int, format: Format.Kind) throws {
        let limit = format == .webp ? min(maxOutputSide, 16_383) : maxOutputSide
        if width > limit || height > limit {
            throw ProcessError(.imageTooLarge, ec: "0040-00000007",
                               "the result is \(width)x\(height); each side of a \(format.rawValue) output may be at most \(limit) px")
        }
    }
}
