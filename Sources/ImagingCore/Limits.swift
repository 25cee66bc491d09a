import Foundation
import ProcessLanguage

/// Source and output limits, checked from the header before any pixel is decoded.
/// The defaults are OSS's (spec §4.1).
public struct Limits: Sendable, Hashable {
    /// Largest source object, in bytes; at most `renderBytes`, whatever is set.
    public var maxBytes: Int = 20 * 1024 * 1024 {
        didSet { maxBytes = min(maxBytes, Limits.renderBytes) }
    }
    /// What one render may send its worker: the source and its watermark images travel in one
    /// message of at most 1 GiB (`Wire`), less room for the rest of the request. A larger byte
    /// limit is this one, so a file over it is refused from its size before it is read (a
    /// 1.2 GB source was read whole, 2.5 GB of memory, before the message's cap refused it).
    public static let renderBytes = (1 << 30) - (1 << 20)
    /// Largest source side, in pixels.
    public var maxSide: Int = 30_000
    /// Largest source pixel count, frames included.
    public var maxPixels: Int = 250_000_000
    /// Largest output side, in pixels.
    public var maxOutputSide: Int = 16_384
    /// Wall-clock deadline of one render, in seconds: past it libvips stops evaluating and the
    /// render fails with `RequestTimeout`. 0 means none.
    public var renderSeconds: Double = Limits.defaultRenderSeconds
    /// Largest work estimate of one render (`WorkEstimate`, in units of about a nanosecond of one
    /// core), checked from the header before any pixel is decoded.
    public var maxWork: Int = Limits.defaultMaxWork
    /// Largest memory estimate of one render in bytes (pixels Derive holds at once: frames of an
    /// animation, images rotated in memory), checked with the work estimate.
    public var maxMemory: Int = Limits.defaultMaxMemory
    /// Most frames of an animated source (libvips' GIF loader stops quietly past 4 097).
    public var maxFrames: Int = 4096
    /// Where the user sets these limits, so messages name what they can change: the flags of
    /// `derive process`, or the manifest's `limits:` keys (`derive build` and `serve`).
    public var setBy: Setting = .flags

    public enum Setting: UInt8, Sendable, Hashable { case flags, manifest }

    /// 20 s. Test hook, inert unless set: `DERIVE_TEST_RENDER_SECONDS` (1…3 600) stands in for
    /// it, so a test suite running six builds at once on two cores does not fail ordinary renders
    /// on the wall clock (an `init` site's first build took 50 s of wall clock for 1 s of CPU at
    /// load 30); the tests of the deadline itself set theirs explicitly.
    public static let defaultRenderSeconds: Double = {
        guard let value = ProcessInfo.processInfo.environment["DERIVE_TEST_RENDER_SECONDS"].flatMap(Double.init),
              (1...3_600).contains(value) else { return 20 }
        return value
    }()
    public static let defaultMaxWork = 4_000_000_000
    public static let defaultMaxMemory = 384 << 20

    public init(maxBytes: Int? = nil, maxSide: Int? = nil, maxPixels: Int? = nil, maxOutputSide: Int? = nil,
                renderSeconds: Double? = nil, maxWork: Int? = nil, maxMemory: Int? = nil, setBy: Setting = .flags) {
        self.setBy = setBy
        if let maxBytes { self.maxBytes = min(maxBytes, Limits.renderBytes) }
        if let maxSide { self.maxSide = maxSide }
        if let maxPixels { self.maxPixels = maxPixels }
        if let maxOutputSide { self.maxOutputSide = maxOutputSide }
        if let renderSeconds { self.renderSeconds = renderSeconds }
        if let maxWork { self.maxWork = maxWork }
        if let maxMemory { self.maxMemory = maxMemory }
    }

    public static let oss = Limits()

    /// How to change the limit of manifest key `key` (`work`, `output_side`, ...) where these
    /// limits come from: the flag, or the manifest key.
    public func setting(_ key: String) -> String {
        switch setBy {
        case .manifest: return "limits: \(key) in the manifest"
        case .flags:
            let flags = ["bytes": "--max-bytes", "side": "--max-side", "pixels": "--max-pixels", "output_side": "--max-output-side",
                         "work": "--max-work", "memory": "--max-memory", "render_seconds": "--render-seconds"]
            return flags[key] ?? "limits: \(key)"
        }
    }

    /// The product of header numbers, saturated at `Int.max`: a product past Int's range is over
    /// every limit, not an overflow trap (defensive: libvips' sides are at most 10 million).
    package static func product(_ factors: Int...) -> Int {
        var result = 1
        for factor in factors {
            let (next, overflow) = result.multipliedReportingOverflow(by: max(0, factor))
            if overflow { return Int.max }
            result = next
        }
        return result
    }

    /// A byte count for a message: MiB from 1 MiB, KiB from 1 KiB, else bytes; a whole number
    /// of the unit as such ("1 MiB"), anything else with one decimal rounded down ("1023.9 KiB"
    /// for 1 MiB − 1 byte, "1.9 MiB" for 2 MiB − 1 byte), so no value prints as a boundary it
    /// does not reach, and none loses more than a tenth of its unit.
    package static func size(_ bytes: Double) -> String {
        if !(bytes < 9.0e18) { return "more than \(Int.max) bytes" }
        let count = max(0, bytes)
        if count < 1024 {
            let whole = Int(count.rounded(.down))
            return whole == 1 ? "1 byte" : "\(whole) bytes"
        }
        let (unit, name) = count < 1_048_576 ? (1024.0, "KiB") : (1_048_576.0, "MiB")
        let value = count / unit
        if value == value.rounded(.down) { return "\(Int(value)) \(name)" }
        let tenths = Int((value * 10).rounded(.down))
        return "\(tenths / 10).\(tenths % 10) \(name)"
    }

    package func checkBytes(_ count: Int) throws {
        guard count <= maxBytes else {
            throw ProcessError(.imageTooLarge, "the source is \(count) bytes; the limit is \(maxBytes) bytes (\(raiseBytes))")
        }
    }

    /// How to get past the byte limit: raise it, unless it is at the render's own cap already.
    var raiseBytes: String {
        maxBytes >= Limits.renderBytes
            ? "one render takes at most \(Limits.renderBytes) bytes of source and watermark images, whatever \(setting("bytes")) says: use a smaller file"
            : "raise it with \(setting("bytes"))"
    }

    package func checkSource(width: Int, height: Int, frames: Int, resizing: Bool) throws {
        let pixels = Limits.product(width, height, max(1, frames))
        let ec = resizing ? "0040-00000009" : "0040-00000012"
        if width > maxSide || height > maxSide {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "the source is \(width)x\(height); each side may be at most \(maxSide) px (raise it with \(setting("side")))")
        }
        if pixels > maxPixels {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "the source has \(pixels) pixels (\(width)x\(height)\(frames > 1 ? "x\(frames) frames" : "")); the limit is \(maxPixels) (raise it with \(setting("pixels")))")
        }
    }

    /// A GIF's images by their own sizes: one past the canvas libvips shows (a later image past
    /// the screen does not grow it) is still decoded whole. Its sides take the side limit, and
    /// the most pixels of one image times the images read (what decoding every image costs at
    /// most) the pixel limit (attack 49b's F7).
    package func checkGIFFrames(_ extent: GIFBlocks.Extent, resizing: Bool) throws {
        let ec = resizing ? "0040-00000009" : "0040-00000012"
        if let frame = extent.longestSide, frame.width > maxSide || frame.height > maxSide {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "frame \(frame.number) of the source is \(frame.width)x\(frame.height) (libvips shows \(extent.width)x\(extent.height), but decodes each frame whole); "
                               + "each side may be at most \(maxSide) px (raise it with \(setting("side")))")
        }
        let frames = max(1, extent.framesRead)
        if let frame = extent.mostPixels, Limits.product(frame.width, frame.height, frames) > maxPixels {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "frame \(frame.number) of the source is \(frame.width)x\(frame.height) (libvips shows \(extent.width)x\(extent.height), but decodes each frame whole): "
                               + "\(Limits.product(frame.width, frame.height, frames)) pixels to decode at most for its \(frames) frames; "
                               + "the limit is \(maxPixels) (raise it with \(setting("pixels")))")
        }
    }

    package func checkFrames(_ frames: Int, resizing: Bool) throws {
        if frames > maxFrames {
            throw ProcessError(.imageTooLarge, ec: resizing ? "0040-00000009" : "0040-00000012",
                               "the source has \(frames) frames; the limit is \(maxFrames)")
        }
    }

    /// A watermark image is a source too: the same byte, side and pixel limits, checked from its
    /// header before it is decoded.
    package func checkWatermark(_ key: String, bytes: Int, width: Int, height: Int) throws {
        func refuse(_ what: String) -> ProcessError {
            ProcessError(.imageTooLarge, ec: "0040-00000012", "watermark: the image '\(key)' \(what)",
                         action: Watermark.name, parameter: "image")
        }
        if bytes > maxBytes { throw refuse("is \(bytes) bytes; the limit is \(maxBytes) bytes (\(raiseBytes))") }
        if width > maxSide || height > maxSide {
            throw refuse("is \(width)x\(height); each side may be at most \(maxSide) px (raise it with \(setting("side")))")
        }
        if Limits.product(width, height) > maxPixels {
            throw refuse("has \(Limits.product(width, height)) pixels (\(width)x\(height)); the limit is \(maxPixels) (raise it with \(setting("pixels")))")
        }
    }

    /// The output side cap applies to resize results (spec §4.1) and to WebP, whose format
    /// cannot hold more than 16 383 px a side; other outputs keep the source's size.
    package func checkOutput(width: Int, height: Int, format: Format.Kind, resized: Bool) throws {
        guard resized || format == .webp else { return }
        let limit = format == .webp ? (resized ? min(maxOutputSide, 16_383) : 16_383) : maxOutputSide
        if width > limit || height > limit {
            // WebP's own 16 383 cannot be raised; the output side limit can.
            let raise = limit < maxOutputSide ? "WebP cannot hold more; resize it first or choose another format"
                                              : "resize it first, or raise it with \(setting("output_side"))"
            throw ProcessError(.imageTooLarge, ec: "0040-00000007",
                               "the result is \(width)x\(height); each side of a \(format.rawValue) output may be at most \(limit) px (\(raise))")
        }
    }
}
