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
    /// The render's limits, which watermark images are checked against like sources.
    var limits: Limits = .oss
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

    /// Actions that read their input out of order, so a streamed image is put in memory first.
    var needsRandomAccess: Bool {
        if case .rotate(let rotate) = self { return rotate.degrees != 0 }
        return false
    }
}

/// One render: header checks and the work estimate, streaming decode (with shrink-on-load when
/// the chain opens with a downscale), the actions in order on every frame, then encoding.
struct Render {
    let source: UnsafeRawBufferPointer
    let pipeline: Pipeline
    let limits: Limits
    let resolver: any ObjectResolver
    /// The object's size, when `source` is not all of it (an oversized PNG eXIf left out).
    var fileSize: Int?
    /// Whether to stop after the checks (`derive init`).
    var reach: RenderReach = .output

    /// libvips' "fail_on" for loaders other than JPEG: truncated and corrupt files are errors,
    /// never grey-filled output.
    static let failOn = Int32(VIPS_FAIL_ON_ERROR.rawValue)

    /// The per-loader policy (README, "Corrupt input"): libjpeg reports corrupt entropy data,
    /// a short file or a size its data does not fill only as warnings, so JPEG fails on
    /// warnings; libpng's warnings include harmless ones (a known-incorrect sRGB profile), so
    /// PNG and the others fail on errors, which include truncation.
    static func failOn(_ format: SourceFormat) -> Int32 {
        format == .jpeg ? Int32(VIPS_FAIL_ON_WARNING.rawValue) : failOn
    }

    func run() throws -> RenderOutput {
        let format = try SourceFormat.detect(source)
        try Integrity.checkEnd(source, format: format)
        let hasResize = pipeline.actions.contains { if case .resize = $0 { return true } else { return false } }
        // libvips opens an animated WebP by reading all its frames: count and cap them first.
        var webpFrames = 0
        if format == .webp, let count = WebPChunks.frameCount(source) {
            try limits.checkFrames(count, resizing: hasResize)
            webpFrames = count
        }
        // Derive's own box walk judges a HEIF's structure before libheif seeks through it.
        if format == .heic || format == .avif, let problem = HEIFStructure.problem(source) {
            throw Integrity.corrupt(problem)
        }
        // What the loader itself holds or reads (a BMP's ImageMagick decode, a WebP canvas, an
        // interlaced PNG, a TIFF's directory chain), checked before libvips reads the header.
        let footprint = try LoaderFootprint.check(source, format: format, limits: limits, resizing: hasResize)
        if webpFrames > 1, let width = footprint.width, let height = footprint.height {
            try limits.checkSource(width: width, height: height, frames: webpFrames, resizing: hasResize)
        }
        try limits.checkBeforeHeader(footprint, resizing: hasResize)
        // A BMP's facts come from its own header (ImageMagick's header read decodes the whole
        // image): it is decoded once, after every check. `info` reports what libvips reads.
        let answersInfo = pipeline.actions.contains { if case .info = $0 { return true } else { return false } }
        var header: VImage?
        let facts: ImageFacts
        if format == .bmp, !answersInfo, let own = ImageFacts.bmp(source) {
            facts = own
        } else {
            // Dropped before the decode (below): ImageMagick's header read holds the whole image.
            let read = try Render.decoding { try Render.readHeader(source, footprint, "reading the image header") }
            header = read
            facts = ImageFacts(read)
        }
        let frames = format.canAnimate ? max(1, facts.pages ?? 1) : 1
        let pageHeight = frames > 1 ? (facts.pageHeight ?? facts.height) : facts.height
        try limits.checkSource(width: facts.width, height: pageHeight, frames: frames, resizing: hasResize)
        try Integrity.checkHeader(source, format: format, width: facts.width, height: facts.height)
        if format == .gif {
            try Integrity.checkFrames(source, announced: frames, limits: limits, resizing: hasResize)
        }

        if answersInfo, let header {
            return try ImageInfo(header: header, format: format, byteCount: fileSize ?? source.count, frames: frames).output()
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
        // Actions run left to right (spec §1.3): average-hue answers for the image as it is where
        // it stands, so what follows it is not drawn.
        let answered = pipeline.actions.prefix { if case .averageHue = $0 { return false } else { return true } }
        let averageHue = answered.count < pipeline.actions.count
        var drawn = answered.filter { $0.drawing != nil }
        let percentOnGIF = format == .gif && drawn.contains {
            if case .resize(let r) = $0 { return r.percent != nil } else { return false }
        }
        // average-hue answers for the first frame: an animation is read as a still.
        let animate = !averageHue && frames > 1 && (output == .gif || output == .webp) && !percentOnGIF
        if format == .gif, drawn.contains(where: { if case .roundedCorners = $0 { return true } else { return false } }) {
            throw ProcessError(.badRequest,
                               "rounded-corners: not supported for GIF sources, whatever the output format (as in OSS); convert the GIF to a PNG object first (derive process image.gif format,png -o image.png) and apply rounded-corners to that",
                               action: RoundedCorners.name)
        }
        let imageMarks = pipeline.actions.filter { if case .watermark(let mark) = $0 { return mark.image != nil } else { return false } }
        if imageMarks.count > 3 {
            throw ProcessError(.watermarkError, "watermark: at most 3 image watermarks per image, the chain has \(imageMarks.count)",
                               action: Watermark.name, parameter: "image")
        }
        // Spec §2.13: image watermarks' positions must not coincide exactly.
        var positions = Set<String>()
        for case .watermark(let mark) in imageMarks where !mark.fill {
            let position = "\(mark.gravity.rawValue),\(mark.x),\(mark.y),\(mark.voffset)"
            if !positions.insert(position).inserted {
                throw ProcessError(.watermarkError,
                                   "watermark: two image watermarks sit at exactly the same position (g, x, y, voffset); move one of them",
                                   action: Watermark.name, parameter: "g")
            }
        }
        // Watermark images are read once, checked like sources and costed with the chain.
        let marks = try WatermarkObjects(imageMarks.compactMap { if case .watermark(let m) = $0 { return m.image } else { return nil } },
                                         resolver: resolver, limits: limits)
        let context = DrawContext(outputHasAlpha: output.hasAlpha, source: format, resolver: marks, limits: limits)
        if averageHue {
            // average-hue samples the image at most 128 px a side: as a resize, so that it is
            // costed as one and, opening the chain, shrinks JPEG and WebP on load and scales the
            // stored bands (a 15 800² 1-bit PNG was made RGB at full size, then sampled, uncosted).
            drawn.append(AverageHueAnswer.sampling)
        }

        // Chain positions (1-based, as written) of the drawn actions, for messages about a watermark.
        let chainPositions = answered.indices.filter { answered[$0].drawing != nil }.map { $0 + 1 }
        let plan = try DecodePlan(header: facts, format: format, orient: orient && !animate, animate: animate,
                                  frames: frames, pageHeight: pageHeight, drawn: drawn)
        let chainEstimate = WorkEstimate.of(actions: drawn, format: format, width: plan.displayWidth, height: plan.displayHeight,
                                       bands: facts.bands, frames: animate ? frames : 1, decodedWidth: plan.decodedWidth,
                                       decodedHeight: plan.decodedHeight, output: averageHue ? nil : output,
                                       hasProfile: plan.hasProfile, orients: plan.orientation != 1,
                                       checkedFrames: format == .gif && !animate ? frames - 1 : 0,
                                       checksWhole: Integrity.needsWholeDecode(format: format, animate: animate, drawn: drawn),
                                       sourceBytes: source.count,
                                       marks: marks.estimate(frames: animate ? frames : 1),
                                       checkMark: { index, mark, width, height in
                                           marks.neverSucceeds(mark, position: chainPositions[index], mainWidth: width, mainHeight: height)
                                       })
        var estimate = chainEstimate
        estimate.work += footprint.work
        estimate.memory += footprint.memory(shrink: plan.shrink)
        estimate.memory += LoaderFootprint.heifMemory(format, width: facts.width, height: facts.height, bands: facts.bands)
        // What can never succeed is refused before what costs too much, naming its cause.
        if let impossible = estimate.neverSucceeds { throw impossible }
        for case .watermark(let mark) in drawn { try mark.checkTextFits() }
        try marks.checkEach(limits)
        try limits.checkEstimate(estimate, resizing: hasResize)
        try RenderWatch.checkCurrent(limits)
        if format == .jpeg, reach != .limitChecks {
            // libvips misses corruption a shrunk decode or a crop does not reach (README, corrupt input).
            try Integrity.checkJPEG(source)
        }
        if format == .gif, !animate, frames > 1 {
            // A still from an animated GIF still needs every frame intact (README, corrupt input).
            try Integrity.checkEveryFrame(source, format: format)
        } else if Integrity.needsWholeDecode(format: format, animate: animate, drawn: drawn) {
            // A crop reads only the rows it keeps: the rest must decode too.
            try Integrity.checkEveryFrame(source, format: format)
        }
        if reach != .output {
            return RenderOutput(kind: .json, bytes: Data(), width: plan.displayWidth, height: plan.displayHeight, frames: frames)
        }

        let timing = FrameTiming(loop: facts.loop, delays: facts.delays)
        header = nil
        let (images, decodedPixels) = animate
            ? try decodeAnimation(plan: plan, drawn: drawn, context: context)
            : try decodeStill(plan: plan, drawn: drawn, context: context)

        if averageHue {
            // Decoding is lazy: reading the pixels is where a corrupt source fails.
            var answer = try Render.decoding { try AverageHueAnswer.output(images[0]) }
            answer.decodedPixels = decodedPixels
            return answer
        }

        let first = images[0]
        // The output side cap is for resize results (a resize that limit_1 skipped made none).
        let resized = hasResize && (first.width != plan.displayWidth || first.height != plan.displayHeight)
        try limits.checkOutput(width: first.width, height: first.height, format: output, resized: resized)
        try limits.checkEncoder(width: first.width, height: first.height, format: output)
        var image = first
        if images.count > 1 {
            image = try joinFrames(images, timing: timing)
        }
        if !output.hasAlpha, image.hasAlpha {
            image = try Alpha.flatten(image)
        }
        if [.webp, .heic, .avif, .gif, .bmp].contains(output) {
            // These savers take the whole image in memory anyway; decoding it first keeps a corrupt
            // source's failure out of them (libvips 8.14's WebP saver leaks its objects when its
            // input fails, Tests/leak-check).
            image = try Render.materialize(image)
        }
        let jpegSourceQuality = format == .jpeg ? JPEGQuality.estimate(source) : nil
        // An explicit `quality` is relative to (and capped at) the source's only for JPEG output.
        let sourceQuality = output == .jpg ? jpegSourceQuality : nil
        // Without `quality`, a JPEG from a JPEG is never written above the source's own quality,
        // as `quality,Q_` caps it: more would spend bytes no explicit quality could reach; WebP and
        // AVIF from a JPEG below 85 follow it down, so they stay smaller than that JPEG.
        let encoderQuality = quality?.encoderQuality(sourceQuality: sourceQuality)
            ?? Encoder.defaultQuality(for: output, jpegSourceQuality: jpegSourceQuality)
        let bytes = try Encoder.encode(image, as: output, quality: encoderQuality, interlace: interlace)
        return RenderOutput(kind: .image(output), bytes: bytes, width: first.width, height: first.height,
                            frames: images.count, decodedPixels: decodedPixels)
    }

    /// How the source is decoded: its displayed size, the EXIF orientation to apply, and the
    /// decode-time shrink when the chain opens with a downscaling resize of a still JPEG or WebP.
    struct DecodePlan {
        let format: SourceFormat
        let frames: Int
        let pageHeight: Int
        let orientation: Int
        let displayWidth: Int
        let displayHeight: Int
        let shrink: Int
        let hasProfile: Bool
        var swapsAxes: Bool { (5...8).contains(orientation) }
        var decodedWidth: Int { (displayWidth + shrink - 1) / shrink }
        var decodedHeight: Int { (displayHeight + shrink - 1) / shrink }

        init(header: ImageFacts, format: SourceFormat, orient: Bool, animate: Bool, frames: Int,
             pageHeight: Int, drawn: [Action]) throws {
            self.format = format
            self.frames = frames
            self.pageHeight = pageHeight
            let stored = header.orientation ?? 1
            orientation = orient && (1...8).contains(stored) ? stored : 1
            let swaps = (5...8).contains(orientation)
            displayWidth = swaps ? pageHeight : header.width
            displayHeight = swaps ? header.width : pageHeight
            hasProfile = header.hasProfile
            var shrink = 1
            if !animate, format == .jpeg || format == .webp, case .resize(let resize)? = drawn.first {
                let geometry = try resize.geometry(sourceWidth: displayWidth, sourceHeight: displayHeight)
                // As vips_thumbnail does: the largest power-of-two decode shrink that still leaves
                // at least twice the target size, so the final Lanczos step always downscales by
                // 2 or more (never shrink to the target and then enlarge: that is what blurs).
                while shrink < 8, displayWidth >= geometry.scaledWidth * shrink * 4,
                      displayHeight >= geometry.scaledHeight * shrink * 4 {
                    shrink *= 2
                }
            }
            self.shrink = shrink
        }
    }

    /// Decodes a still image as a stream, applies the opening resize on the stream (before
    /// orientation, which needs the pixels in memory), then the rest of the chain.
    private func decodeStill(plan: DecodePlan, drawn: [Action], context: DrawContext) throws -> ([VImage], Int) {
        var image = try Render.decoding {
            try VImage.make("decoding the source") {
                dv_load_stream(source.baseAddress, source.count, 0, 1, plan.format == .jpeg ? Int32(plan.shrink) : 1,
                               plan.format == .webp ? 1.0 / Double(plan.shrink) : 1.0, Render.failOn(plan.format), $0)
            }
        }
        let decodedPixels = image.width * image.height
        try ImageFacts.checkDecodedSize(image, format: plan.format, width: plan.displayWidth, height: plan.displayHeight)
        var remaining = drawn[...]
        if case .resize(let resize)? = drawn.first {
            let geometry = try resize.geometry(sourceWidth: plan.displayWidth, sourceHeight: plan.displayHeight,
                                               neverEnlarge: plan.format == .gif)
            remaining = drawn.dropFirst()
            if geometry.isIdentity {
                image = try orient(try Colour.toSRGB(image), plan)
            } else {
                // Sizes come from the full-size geometry, so they match a full decode exactly.
                // The scaling runs on the stored pixels (one band for grey, before the colour
                // transform), as vips_thumbnail does: a 240 MP grey PNG is never made RGB.
                let (width, height) = plan.swapsAxes ? (geometry.scaledHeight, geometry.scaledWidth)
                                                     : (geometry.scaledWidth, geometry.scaledHeight)
                image = try resize.scale(image, width: width, height: height)
                image = try orient(try Colour.toSRGB(image), plan)
                image = try resize.finish(image, geometry: geometry)
            }
        } else {
            image = try orient(try Colour.toSRGB(image), plan)
        }
        for action in remaining {
            try RenderWatch.checkCurrent(limits)
            if action.needsRandomAccess { image = try Render.materialize(image) }
            image = try action.drawing!.draw(image, context)
        }
        return ([image], decodedPixels)
    }

    /// Decodes an animation one frame at a time, in order: each frame is read from the stream,
    /// drawn, and kept in memory at its final size, so no step sees more than one source frame.
    private func decodeAnimation(plan: DecodePlan, drawn: [Action], context: DrawContext) throws -> ([VImage], Int) {
        let stream = try Render.decoding {
            try VImage.make("decoding the source") {
                dv_load_stream(source.baseAddress, source.count, 0, -1, 1, 1.0, Render.failOn(plan.format), $0)
            }
        }
        let srgb = try Colour.toSRGB(stream)
        let pages = srgb.height / plan.pageHeight
        if pages != plan.frames {
            throw Render.corrupt("the header announces \(plan.frames) frames but \(pages) decode")
        }
        var frames: [VImage] = []
        frames.reserveCapacity(pages)
        for page in 0..<pages {
            try RenderWatch.checkCurrent(limits)
            var frame = try srgb.apply("splitting frames") {
                dv_extract_area($0, $1, 0, Int32(page * plan.pageHeight), Int32(srgb.width), Int32(plan.pageHeight))
            }
            frame = try Render.materialize(frame)
            for action in drawn {
                frame = try action.drawing!.draw(frame, context)
            }
            frames.append(try Render.materialize(frame))
        }
        return (frames, srgb.width * plan.pageHeight)
    }

    /// Applies the EXIF orientation (on pixels in memory: rotating needs random access).
    private func orient(_ image: VImage, _ plan: DecodePlan) throws -> VImage {
        guard plan.orientation != 1 else { return image }
        return try Orientation.apply(try Render.materialize(image), plan.orientation)
    }

    /// Evaluates `image` into memory: what streams upstream of it is read once, in order.
    static func materialize(_ image: VImage) throws -> VImage {
        try decoding { try image.apply("decoding the source") { dv_copy_memory($0, $1) } }
    }

    static func corrupt(_ detail: String) -> ProcessError { Integrity.corrupt(detail) }

    /// The header of `source` as libvips reads it; a still WebP's is read at the footprint's
    /// tiny scale (libvips' loader allocates a frame while reading it) and given its stored size.
    static func readHeader(_ source: UnsafeRawBufferPointer, _ footprint: LoaderFootprint, _ what: String) throws -> VImage {
        if let scale = footprint.headerScale, let width = footprint.width, let height = footprint.height {
            return try VImage.make(what) { dv_header_scaled(source.baseAddress, source.count, scale, Int32(width), Int32(height), $0) }
        }
        return try VImage.make(what) { dv_header(source.baseAddress, source.count, $0) }
    }

    /// A source libvips cannot read is the caller's bad input, not a server fault.
    static func decoding<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as ProcessError where error.code == .internalError {
            error.code = .badRequest
            error.ec = "0040-00000005"
            error.message = "the source image is corrupt or truncated: " + Vips.firstReason(error.message)
            throw error
        }
    }

    /// Stacks frames back into one tall image with libvips' animation metadata.
    /// An animation's loop count and frame delays, read from the header.
    struct FrameTiming {
        let loop: Int?
        let delays: [Int]?
    }

    private func joinFrames(_ frames: [VImage], timing: FrameTiming) throws -> VImage {
        var pointers: [UnsafeMutablePointer<VipsImage>?] = frames.map { $0.pointer }
        let joined = try VImage.make("joining frames") { out in
            pointers.withUnsafeMutableBufferPointer { dv_arrayjoin_vertical($0.baseAddress, Int32(frames.count), out) }
        }
        let result = try joined.apply("setting animation metadata") { dv_copy($0, $1) }
        vips_image_set_int(result.pointer, "page-height", Int32(frames[0].height))
        vips_image_set_int(result.pointer, "n-pages", Int32(frames.count))
        if let loop = timing.loop { vips_image_set_int(result.pointer, "loop", Int32(loop)) }
        if var delays = timing.delays, delays.count >= frames.count {
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

/// EXIF orientation (1-8) as libvips' autorot applies it: a clockwise turn, then a mirror.
enum Orientation {
    static func apply(_ image: VImage, _ orientation: Int) throws -> VImage {
        let (quarterTurns, mirror): (Int32, Bool)
        switch orientation {
        case 2: (quarterTurns, mirror) = (0, true)
        case 3: (quarterTurns, mirror) = (2, false)
        case 4: (quarterTurns, mirror) = (2, true)
        case 5: (quarterTurns, mirror) = (1, true)
        case 6: (quarterTurns, mirror) = (1, false)
        case 7: (quarterTurns, mirror) = (3, true)
        case 8: (quarterTurns, mirror) = (3, false)
        default: return image
        }
        var result = image
        if quarterTurns != 0 {
            result = try result.apply("auto-orient", action: AutoOrient.name) { dv_rot($0, $1, quarterTurns) }
        }
        if mirror {
            result = try result.apply("auto-orient", action: AutoOrient.name) { dv_flip($0, $1, 1) }
        }
        return result
    }
}
