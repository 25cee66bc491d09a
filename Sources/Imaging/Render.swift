import CVipsShim
import Foundation
import ProcessLanguage

/// What an action needs to know besides its own image.
struct DrawContext {
    /// Whether the final format keeps transparency (decides transparent vs white fills).
    let outputHasAlpha: Bool
    let source: SourceFormat
    /// Where watermark images come from.
    var resolver: any ObjectResolver = NoObjects()
    /// The main image's size, for a watermark's `resize,P_` (percent of the main image).
    var mainWidth: Int?
    var mainHeight: Int?
}

/// An action that changes pixels, drawn once per frame.
protocol FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage
}

extension Action {
    /// How the action is drawn; nil for encoder settings and JSON answers, which the renderer
    /// handles itself.
    var drawing: (any FrameDrawing)? {
        switch self {
        case .resize(let a): return a
        case .crop(let a): return a
        case .indexCrop(let a): return a
        case .circle(let a): return a
        case .roundedCorners(let a): return a
        case .rotate(let a): return a
        case .blur(let a): return a
        case .bright(let a): return a
        case .contrast(let a): return a
        case .sharpen(let a): return a
        case .watermark(let a): return a
        case .autoOrient, .format, .quality, .interlace, .info, .averageHue: return nil
        }
    }
}

/// One render: header checks, decoding (with shrink-on-load when the chain opens with a
/// downscale), the actions in order on every frame, then encoding.
struct Render {
    let source: UnsafeRawBufferPointer
    let pipeline: Pipeline
    let limits: Limits
    let resolver: any ObjectResolver

    /// libvips' "fail_on": truncated and corrupt files are errors, never grey-filled output.
    static let failOn = Int32(VIPS_FAIL_ON_ERROR.rawValue)

    func run() throws -> RenderOutput {
        let format = try SourceFormat.detect(source)
        let header = try Render.decoding {
            try VImage.make("reading the image header") { dv_header(source.baseAddress, source.count, $0) }
        }
        let frames = format.canAnimate ? max(1, header.int("n-pages") ?? 1) : 1
        let pageHeight = frames > 1 ? (header.int("page-height") ?? header.height) : header.height
        let hasResize = pipeline.actions.contains { if case .resize = $0 { return true } else { return false } }
        try limits.checkSource(width: header.width, height: pageHeight, frames: frames, resizing: hasResize)

        if pipeline.actions.contains(where: { if case .info = $0 { return true } else { return false } }) {
            return try ImageInfo(header: header, format: format, byteCount: source.count, frames: frames).output()
        }

        // Encoder settings and auto-orient are global; the last of each wins.
        var output = format.outputFormat
        var quality: Quality?
        var interlace = false
        var orient = true
        for action in pipeline.actions {
            switch action {
            case .format(let f):
                // GIF output only for GIF sources (spec §2.12); otherwise the source format stays.
                if f.kind != .gif || format == .gif { output = f.kind }
            case .quality(let q): quality = q
            case .interlace(let i): interlace = i.enabled
            case .autoOrient(let a): orient = a.enabled
            default: break
            }
        }
        let drawn = pipeline.actions.filter { $0.drawing != nil }
        let percentOnGIF = format == .gif && drawn.contains {
            if case .resize(let r) = $0 { return r.percent != nil } else { return false }
        }
        let animate = frames > 1 && (output == .gif || output == .webp) && !percentOnGIF
        if format == .gif, drawn.contains(where: { if case .roundedCorners = $0 { return true } else { return false } }) {
            throw ProcessError(.badRequest, "rounded-corners: not supported for GIF images (as in OSS); convert first with format,png",
                               action: RoundedCorners.name)
        }
        let imageMarks = pipeline.actions.filter { if case .watermark(let mark) = $0 { return mark.image != nil } else { return false } }
        if imageMarks.count > 3 {
            throw ProcessError(.watermarkError, "watermark: at most 3 image watermarks per image, the chain has \(imageMarks.count)",
                               action: Watermark.name, parameter: "image")
        }
        let context = DrawContext(outputHasAlpha: output.hasAlpha, source: format, resolver: resolver)

        var (images, remaining, decodedPixels) = try decode(header: header, format: format, orient: orient, animate: animate,
                                                            frames: frames, pageHeight: pageHeight, drawn: drawn, context: context)
        for action in remaining {
            images = try images.map { try action.drawing!.draw($0, context) }
        }

        if pipeline.actions.contains(where: { if case .averageHue = $0 { return true } else { return false } }) {
            return try AverageHueAnswer.output(images[0])
        }

        let first = images[0]
        try limits.checkOutput(width: first.width, height: first.height, format: output)
        var image = first
        if images.count > 1 {
            image = try joinFrames(images, header: header)
        }
        if !output.hasAlpha, image.hasAlpha {
            image = try Alpha.flatten(image)
        }
        let sourceQuality = format == .jpeg && output == .jpg ? JPEGQuality.estimate(source) : nil
        let encoderQuality = quality?.encoderQuality(sourceQuality: sourceQuality) ?? Encoder.defaultQuality
        let bytes = try Encoder.encode(image, as: output, quality: encoderQuality, interlace: interlace)
        return RenderOutput(kind: .image(output), bytes: bytes, width: first.width, height: first.height,
                            frames: images.count, decodedPixels: decodedPixels)
    }

    /// Decodes the source into sRGB frames. When the chain opens with a downscaling resize of a
    /// still JPEG or WebP, the decoder shrinks by 2, 4 or 8 on load (a 24 MP JPEG thumbnail
    /// never decodes at full size) and the resize finishes the job exactly.
    private func decode(header: VImage, format: SourceFormat, orient: Bool, animate: Bool, frames: Int,
                        pageHeight: Int, drawn: [Action], context: DrawContext) throws -> ([VImage], [Action], Int) {
        let orientation = header.int("orientation") ?? 1
        let swapsAxes = orient && (5...8).contains(orientation)
        let displayWidth = swapsAxes ? pageHeight : header.width
        let displayHeight = swapsAxes ? header.width : pageHeight

        var shrink = 1
        var firstResize: (Resize, Resize.Geometry)?
        if !animate, format == .jpeg || format == .webp, case .resize(let resize)? = drawn.first {
            let geometry = try resize.geometry(sourceWidth: displayWidth, sourceHeight: displayHeight)
            firstResize = (resize, geometry)
            // The largest decode-time shrink that still leaves at least the scaled size.
            while shrink < 8, displayWidth / (shrink * 2) >= geometry.scaledWidth,
                  displayHeight / (shrink * 2) >= geometry.scaledHeight {
                shrink *= 2
            }
        }
        if shrink > 1 {
            var image = try Render.decoding {
                try VImage.make("decoding the source") {
                    dv_load_shrunk(source.baseAddress, source.count, format == .jpeg ? Int32(shrink) : 1,
                                   1.0 / Double(shrink), Render.failOn, $0)
                }
            }
            if orient, orientation != 1 {
                image = try image.apply("auto-orient", action: AutoOrient.name) { dv_autorot($0, $1) }
            }
            image = try Colour.toSRGB(image)
            let decoded = image.width * image.height
            // Sizes come from the full-size geometry, so they match a full decode exactly.
            if let (resize, geometry) = firstResize {
                image = try resize.draw(image, geometry: geometry)
            }
            return ([image], Array(drawn.dropFirst()), decoded)
        }

        var image = try Render.decoding {
            try VImage.make("decoding the source") {
                dv_load(source.baseAddress, source.count, animate ? 1 : 0, Render.failOn, $0)
            }
        }
        if orient, !animate, orientation != 1 {
            image = try image.apply("auto-orient", action: AutoOrient.name) { dv_autorot($0, $1) }
        }
        image = try Colour.toSRGB(image)
        guard animate else { return ([image], drawn, image.width * image.height) }
        let pages = image.height / pageHeight
        let split = try (0..<pages).map { page in
            try image.apply("splitting frames") { dv_extract_area($0, $1, 0, Int32(page * pageHeight), Int32(image.width), Int32(pageHeight)) }
        }
        return (split, drawn, image.width * pageHeight)
    }

    /// A source libvips cannot read is the caller's bad input, not a server fault.
    static func decoding<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as ProcessError where error.code == .internalError {
            error.code = .badRequest
            error.ec = "0040-00000005"
            error.message = "the source image is corrupt or truncated: " + error.message
            throw error
        }
    }

    /// Stacks frames back into one tall image with libvips' animation metadata.
    private func joinFrames(_ frames: [VImage], header: VImage) throws -> VImage {
        var pointers: [UnsafeMutablePointer<VipsImage>?] = frames.map { $0.pointer }
        let joined = try VImage.make("joining frames") { out in
            pointers.withUnsafeMutableBufferPointer { dv_arrayjoin_vertical($0.baseAddress, Int32(frames.count), out) }
        }
        let result = try joined.apply("setting animation metadata") { dv_copy($0, $1) }
        vips_image_set_int(result.pointer, "page-height", Int32(frames[0].height))
        vips_image_set_int(result.pointer, "n-pages", Int32(frames.count))
        if let loop = header.int("loop") { vips_image_set_int(result.pointer, "loop", Int32(loop)) }
        if var delays = header.intArray("delay"), delays.count >= frames.count {
            delays = Array(delays.prefix(frames.count))
            var values = delays.map { Int32($0) }
            values.withUnsafeMutableBufferPointer {
                vips_image_set_array_int(result.pointer, "delay", $0.baseAddress, Int32(frames.count))
            }
        }
        return result
    }
}

/// Colour handling shared by decoding and actions.
enum Colour {
    /// 8-bit sRGB with alpha kept: embedded profiles applied, CMYK converted, 16-bit reduced.
    static func toSRGB(_ image: VImage) throws -> VImage {
        try image.apply("converting to sRGB") { dv_to_srgb($0, $1) }
    }
}
