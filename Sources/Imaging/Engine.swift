import CVipsShim
import Foundation
import ProcessLanguage

/// Renders `x-oss-process` pipelines with libvips.
///
/// Every call is synchronous and uses one libvips thread: callers that want throughput run
/// several renders at once on threads of their own, outside Swift's cooperative pool.
public struct Engine: Sendable {
    /// Bumped whenever the same pipeline on the same source may produce different bytes
    /// (2: liborc turned off, which changes resampling results slightly; 3: ICC transform to the
    /// sRGB profile, shrink-on-load leaving twice the target, streaming decode; 4: HEIC at x265's
    /// ultrafast preset through libheif, AVIF at aom speed 9, watermark images streamed; 5:
    /// average-hue samples through a resize to 128 px, shrunk on load; 6: default quality per
    /// output format, WebP and AVIF calibrated below JPEG's bytes at its SSIM; 7: a JPEG from a
    /// JPEG without `quality` capped at the source's estimated quality, as `quality,Q_` is; 8: WebP
    /// and AVIF from a JPEG saved below 85 without `quality` at a quality that follows the source's,
    /// `Encoder.lowSourceQualities`).
    public static let renderVersion = "8"

    public var limits: Limits

    public init(limits: Limits = .oss) {
        self.limits = limits
    }

    /// libvips' version, e.g. `8.14.1`.
    public static var libvipsVersion: String { Vips.version }

    /// Whether libvips' liborc vectorisation is on, after starting libvips (it is kept off).
    public static func vectorised() throws -> Bool {
        try Vips.start()
        return Vips.vectorised
    }

    /// Derive's render version and the version of every library that produces bytes, as
    /// fingerprints record them: `derive-render/3 libvips/8.14.1 libjpeg-turbo/2.1.5 ...`.
    public static var version: String {
        (["derive-render/\(renderVersion)"] + libraryVersions.map { "\($0.name)/\($0.version)" }).joined(separator: " ")
    }

    /// The codec, colour and text libraries that produce output bytes, with their versions, in
    /// a fixed order starting with libvips: libjpeg-turbo, libpng, libwebp, lcms2, libexif, cgif,
    /// libimagequant, libtiff, zlib, libheif (with libaom, libde265, x265, dav1d), pango, cairo,
    /// harfbuzz, fontconfig, freetype and ImageMagick (BMP). Versions are read at run time from
    /// the loaded libraries; where a library has no version call, it is the version it was built
    /// against (libjpeg-turbo) or `so X.Y.Z` from its shared object's file name (libexif, cgif,
    /// freetype). A library that is not installed is absent. Reading the list does not start libvips.
    public static var libraryVersions: [(name: String, version: String)] { LibraryVersions.list }

    /// Renders `pipeline` on the encoded `source` bytes; watermark images come from `resolver`.
    /// The render stops with `ProcessError` `RequestTimeout` when it passes `limits.renderSeconds`
    /// or when `cancellation` is cancelled (from any thread): libvips stops evaluating at its
    /// next tile, not only between actions.
    /// `reach`: stop after the checks, with an empty output (`RenderReach`).
    public func render(_ source: Data, _ pipeline: Pipeline, resolver: any ObjectResolver = NoObjects(),
                       cancellation: RenderCancellation? = nil, reach: RenderReach = .output) throws -> RenderOutput {
        try limits.checkBytes(source.count)
        try Vips.start()
        let watch = RenderWatch(limits: limits)
        cancellation?.register(watch)
        defer { cancellation?.unregister(watch) }
        // What libvips reads: without an oversized PNG eXIf chunk (`PNGExif`); `info` still
        // reports the object's own size.
        let decodable = PNGExif.withoutOversized(source) ?? source
        return try watch.during {
            try decodable.withUnsafeBytes { raw in
                // libvips reads `raw` lazily: everything, encoding included, happens inside this closure.
                try Render(source: raw, pipeline: pipeline, limits: limits, resolver: resolver, fileSize: source.count, reach: reach).run()
            }
        }
    }

    /// The `info` JSON of the source (spec §3.1).
    public func info(_ source: Data) throws -> RenderOutput {
        try render(source, Pipeline(actions: [.info(Info())]))
    }
}

extension Engine {
    /// Roughly how many bytes rendering `source` may hold at once, from its header alone
    /// (decoded pixels of every frame at 4 bytes, twice for an intermediate copy).
    public func memoryEstimate(_ source: Data) -> Int {
        guard (try? Vips.start()) != nil else { return 64 << 20 }
        return source.withUnsafeBytes { raw -> Int in
            guard let format = try? SourceFormat.detect(raw),
                  // Too many WebP frames is refused by the render; do not read them here.
                  format != .webp || (WebPChunks.frameCount(raw) ?? 0) <= limits.maxFrames,
                  let header = try? VImage.make("reading the image header", { dv_header(raw.baseAddress, raw.count, $0) }) else {
                return 16 << 20
            }
            let frames = format.canAnimate ? max(1, header.int("n-pages") ?? 1) : 1
            let pageHeight = frames > 1 ? (header.int("page-height") ?? header.height) : header.height
            return max(1 << 20, Limits.product(header.width, pageHeight, frames, 4 * 2))
        }
    }

    /// The encoder settings that are not in pipelines; part of every fingerprint.
    public static let encoderSettings = "default-quality=\(Encoder.defaultQualitySettings);low-source-quality=\(Encoder.lowSourceQualitySettings);strip=1;png-compression=6;heif-effort=0;heic-preset=ultrafast;heif-bitdepth=8;jpeg-optimize=1;tiff=deflate"
}

extension Engine: EngineDescription {
    public var identity: String { Engine.version + " " + Engine.encoderSettings }
    public func fontFile(_ type: String) -> String? { try? FontCatalog.file(for: type) }
    public func fontRendering(_ type: String) -> String? { (try? FontCatalog.resolved(for: type))?.rendering }
    public var inProcessRenderer: (any ImageRenderer)? { InProcessRenderer() }
}
