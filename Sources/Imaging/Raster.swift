import CVipsShim
import Foundation
import ProcessLanguage

/// Plain 8-bit pixels in memory: how tests and tools build sources and inspect results
/// without reaching into libvips.
public struct Raster: Sendable, Hashable {
    public var width: Int
    public var height: Int
    public var bands: Int
    /// Row-major, `bands` bytes per pixel.
    public var pixels: [UInt8]
    /// Frames stacked vertically; `height / frames` is one frame's height.
    public var frames: Int = 1

    public init(width: Int, height: Int, bands: Int, pixels: [UInt8], frames: Int = 1) {
        precondition(pixels.count == width * height * bands, "pixel count does not match the size")
        self.width = width; self.height = height; self.bands = bands; self.pixels = pixels; self.frames = frames
    }

    /// A raster filled by `color(x, y)`, which returns `bands` values.
    public init(width: Int, height: Int, bands: Int, color: (Int, Int) -> [UInt8]) {
        var pixels = [UInt8]()
        pixels.reserveCapacity(width * height * bands)
        for y in 0..<height { for x in 0..<width { pixels += color(x, y).prefix(bands) } }
        self.init(width: width, height: height, bands: bands, pixels: pixels)
    }

    public func pixel(_ x: Int, _ y: Int) -> [UInt8] {
        let start = (y * width + x) * bands
        return Array(pixels[start..<start + bands])
    }

    public var frameHeight: Int { height / max(1, frames) }

    /// Decodes an encoded image as stored (no orientation applied), all frames when `allFrames`.
    public static func decode(_ data: Data, allFrames: Bool = false) throws -> Raster {
        try Vips.start()
        return try data.withUnsafeBytes { raw in
            let image = try VImage.make("decoding") { dv_load(raw.baseAddress, raw.count, allFrames ? 1 : 0, Render.failOn, $0) }
            let srgb = try Colour.toSRGB(image)
            let frames = allFrames ? srgb.height / (image.int("page-height") ?? srgb.height) : 1
            return Raster(width: srgb.width, height: srgb.height, bands: srgb.bands, pixels: try srgb.bytes(), frames: frames)
        }
    }

    /// Encodes the raster (1–4 bands) in `format` at `quality`; with `frames` > 1, as an animation.
    public func encoded(as format: Format.Kind, quality: Int = 90) throws -> Data {
        try Vips.start()
        var image = try VImage.fromBytes(pixels, width: width, height: height, bands: bands)
        image = try image.apply("tagging as sRGB") { dv_copy_srgb($0, $1) }
        if frames > 1 {
            // Frames stacked vertically: an animation for GIF and WebP.
            vips_image_set_int(image.pointer, "page-height", Int32(frameHeight))
            vips_image_set_int(image.pointer, "n-pages", Int32(frames))
            var delays = [Int32](repeating: 40, count: frames)
            delays.withUnsafeMutableBufferPointer {
                vips_image_set_array_int(image.pointer, "delay", $0.baseAddress, Int32(frames))
            }
        }
        return try Encoder.encode(image, as: format, quality: quality, interlace: false)
    }
}
