import CVipsShim
import Foundation
import ProcessLanguage

extension Watermark: FrameDrawing {
    /// Builds the mark (text, image, or both side by side), applies the opacity `t`, then places
    /// it on the 3×3 grid with the `x`/`y` margins (`voffset` moves the middle row up), or tiles
    /// it over the whole image with `padx`/`pady` gaps so that one tile sits where the anchor
    /// would put a single mark.
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        var mark = try self.mark(mainWidth: image.width, mainHeight: image.height, context: context)
        if opacity < 100 {
            mark = try Self.scaleAlpha(mark, by: Double(opacity) / 100)
        }
        let w = mark.width, h = mark.height, W = image.width, H = image.height
        let left = [x, (W - w) / 2, W - w - x][gravity.column]
        let top = [y, (H - h) / 2 - voffset, H - h - y][gravity.row]
        var overlay = mark
        var position = (left, top)
        if fill {
            overlay = try Self.tiled(mark, width: W, height: H, originX: left, originY: top, padX: padx, padY: pady)
            position = (0, 0)
        }
        let composited = try VImage.make("watermark", action: Self.name) {
            dv_composite_over(image.pointer, overlay.pointer, $0, Int32(position.0), Int32(position.1))
        }
        let flattened = try composited.apply("watermark", action: Self.name) { dv_cast_uchar($0, $1) }
        if image.hasAlpha { return flattened }
        return try flattened.apply("watermark", action: Self.name) { dv_extract_band($0, $1, 0, Int32(image.bands)) }
    }

    /// The RGBA mark before placement.
    func mark(mainWidth: Int, mainHeight: Int, context: DrawContext) throws -> VImage {
        let textMark = try text.map { try textImage($0) }
        let imageMark = try image.map { try objectImage($0, mainWidth: mainWidth, mainHeight: mainHeight, context: context) }
        switch (imageMark, textMark) {
        case let (picture?, words?):
            return try Self.sideBySide(order == 0 ? [picture, words] : [words, picture], interval: interval, align: align)
        case let (picture?, nil): return picture
        case let (nil, words?): return words
        default:
            throw ProcessError(.missingArgument, "watermark: give text_ or image_", action: Self.name)
        }
    }

    /// Refuses text that can never be drawn (wider than Cairo's 32767 px at this size) before
    /// the chain is costed, so the answer is EC 0040-00000259, not "raise --max-work". Text
    /// that may be too wide is laid out once at a small probe size and scaled: widths grow with
    /// the size. Within 5 % of the limit, where hinting at the probe size could decide either
    /// way, the text is laid out at its real size and that decides, so what passes here is
    /// drawn and what drawing would refuse is refused here.
    func checkTextFits() throws {
        guard let words = text, FontCatalog.family(for: self.font) != nil else { return }
        // No glyph is wider than about 1.5 em, no line taller than about 2 em: shorter guesses
        // cannot reach the limit either way.
        let lines = words.unicodeScalars.filter { $0 == "\n" }.count + 1
        guard Double(words.unicodeScalars.count) * Double(size) * 1.5 > Double(Self.maxTextSide)
                || Double(lines) * Double(size) * 2 > Double(Self.maxTextSide) else { return }
        _ = try FontCatalog.file(for: self.font)
        if let error = textTooLarge(margin: 1.05) { throw error }
        if textTooLarge(margin: 1 / 1.05) != nil, let error = textTooLargeWhenLaidOut() { throw error }
    }

    /// The real layout's verdict: Cairo refuses a surface over 32767 px a side at once.
    func textTooLargeWhenLaidOut() -> ProcessError? {
        guard let words = text, let description = FontCatalog.description(for: self.font, size: size) else { return nil }
        do {
            _ = try VImage.make("watermark text", action: Self.name) { dv_text($0, words, description, 72) }
            return nil
        } catch let error as ProcessError where error.code == .internalError && error.message.contains("too big") {
            return textTooLarge(margin: 0) ?? Self.textTooLarge(size: size, tall: false)
        } catch {
            Vips.takeError()
            return nil   // drawing says what else is wrong
        }
    }

    /// The side over Cairo's limit at this size, from a layout at a small probe size scaled up;
    /// nil when neither is over `maxTextSide` × `margin` (or the probe cannot be laid out).
    func textTooLarge(margin: Double) -> ProcessError? {
        let probeSize = 50
        guard let words = text, let description = FontCatalog.description(for: self.font, size: probeSize) else { return nil }
        guard let probe = try? VImage.make("watermark text", action: Self.name, {
            dv_text($0, words, description, 72)
        }) else { return nil }
        let scale = Double(size) / Double(probeSize)
        let width = Double(probe.width) * scale, height = Double(probe.height) * scale
        let limit = Double(Self.maxTextSide) * margin
        guard width > limit || height > limit else { return nil }
        return Self.textTooLarge(size: size, tall: height / Double(Self.maxTextSide) > width / Double(Self.maxTextSide))
    }

    /// With `rotate_`, a text mark over rotate's side limit can never be drawn: refused before
    /// the chain is costed. Its size comes from a layout at a small probe size scaled up (plus
    /// the shadow's offset); within 5% of the limit, where hinting could decide, the text is
    /// laid out at its real size (at most about 4 300 px a side there) and that size decides.
    func textTooLargeToRotate() -> ProcessError? {
        guard rotate % 360 != 0, let words = text, let font = FontCatalog.fonts[self.font],
              (try? FontCatalog.file(for: self.font)) != nil else { return nil }
        func laidOut(_ points: Int) -> (width: Double, height: Double)? {
            guard let mask = try? VImage.make("watermark text", action: Self.name, { dv_text($0, words, "\(font.family) \(points)", 72) }) else {
                Vips.takeError()
                return nil
            }
            return (Double(mask.width), Double(mask.height))
        }
        let probeSize = 50
        guard let probe = laidOut(probeSize) else { return nil }
        let offset = shadow > 0 ? Double(max(1, size / 20)) : 0
        let scale = Double(size) / Double(probeSize)
        var (width, height) = (probe.width * scale + offset, probe.height * scale + offset)
        let limit = Double(Rotate.maxSourceSide)
        if max(width, height) <= limit / 1.05 { return nil }
        if max(width, height) <= limit * 1.05 {
            guard let real = laidOut(size) else { return nil }
            (width, height) = (real.width + offset, real.height + offset)
            if max(width, height) <= limit { return nil }
        }
        return ProcessError(.badRequest, ec: "0040-00000006",
                            "watermark: the text mark is about \(Int(width.rounded()))x\(Int(height.rounded())) px at size_\(size), and rotate_\(rotate) turns text marks of at most \(Rotate.maxSourceSide) px a side, so it can never be drawn (use a smaller size_, a shorter text_, or no rotate_)",
                            action: Self.name, parameter: "rotate")
    }

    static func textTooLarge(size: Int, tall: Bool) -> ProcessError {
        let what = tall ? "has too many lines to draw at size \(size) (a text mark can be at most \(Self.maxTextSide) px tall); use a smaller size_ or fewer lines"
                        : "is too long to draw at size \(size) (a text mark can be at most \(Self.maxTextSide) px wide); use a smaller size_ or a shorter text_"
        return ProcessError(.invalidArgument, ec: "0040-00000259", "watermark: the text \(what)", action: Self.name, parameter: "size")
    }

    /// Text in `color` at `size` px with the font of `type`; `shadow` adds a black copy offset
    /// by size/20 px (at least 1) at that opacity; `rotate` turns the whole, clockwise.
    func textImage(_ words: String) throws -> VImage {
        guard let description = FontCatalog.description(for: self.font, size: size) else {
            throw ProcessError(.invalidArgument, ec: "0040-00000250", "watermark: unknown font '\(self.font)'", action: Self.name, parameter: "type")
        }
        _ = try FontCatalog.file(for: self.font)
        try FontCatalog.checkDrawable(words, type: self.font)
        // Pango sizes are points; at 72 dpi a point is a pixel.
        let mask: VImage
        do {
            mask = try VImage.make("watermark text", action: Self.name) { dv_text($0, words, description, 72) }
        } catch let error as ProcessError where error.message.contains("no text to render") {
            // Characters that draw nothing in the font (U+2800 …) pass the parser's blank check: still a bad value, not a 500.
            throw ProcessError(.invalidArgument, ec: "0040-00000257", "watermark: the text has nothing to draw in font '\(self.font)'",
                               action: Self.name, parameter: "text")
        } catch let error as ProcessError where error.code == .internalError && error.message.contains("too big") {
            // Cairo draws at most 32767 px a side: 64 wide glyphs at size 1000 are more, so
            // are 32 lines at size 1000 (the probe says which side).
            throw textTooLarge(margin: 0) ?? Self.textTooLarge(size: size, tall: false)
        }
        var colour = try Self.solid(like: mask, rgb: Resize.rgb(color))
        colour = try VImage.make("watermark text", action: Self.name) { dv_bandjoin2(colour.pointer, mask.pointer, $0) }
        if shadow > 0 {
            let offset = max(1, size / 20)
            let black = try Self.solid(like: mask, rgb: [0, 0, 0])
            let shape = try VImage.make("watermark shadow", action: Self.name) { dv_bandjoin2(black.pointer, mask.pointer, $0) }
            let shade = try Self.scaleAlpha(shape, by: Double(shadow) / 100)
            let canvas = try Self.blank(width: mask.width + offset, height: mask.height + offset)
            let withShade = try VImage.make("watermark shadow", action: Self.name) {
                dv_composite_over(canvas.pointer, shade.pointer, $0, Int32(offset), Int32(offset))
            }
            colour = try VImage.make("watermark shadow", action: Self.name) {
                dv_composite_over(withShade.pointer, colour.pointer, $0, 0, 0)
            }
            colour = try colour.apply("watermark shadow", action: Self.name) { dv_cast_uchar($0, $1) }
        }
        if rotate % 360 != 0 {
            if colour.width > Rotate.maxSourceSide || colour.height > Rotate.maxSourceSide {
                throw ProcessError(.badRequest, ec: "0040-00000006",
                                   "watermark: the text mark is \(colour.width)x\(colour.height) px; rotate_\(rotate) turns text marks of at most \(Rotate.maxSourceSide) px a side (use a smaller size_, a shorter text_, or no rotate_)",
                                   action: Self.name, parameter: "rotate")
            }
            colour = try Rotate(degrees: rotate).draw(colour, DrawContext(outputHasAlpha: true, source: .png))
        }
        return colour
    }

    /// Another object of the bucket, decoded, brought to sRGB with alpha, and put through its
    /// own pre-process (resize with P relative to the main image, crop, indexcrop,
    /// rounded-corners, rotate).
    func objectImage(_ mark: Mark, mainWidth: Int, mainHeight: Int, context: DrawContext) throws -> VImage {
        let data = try context.resolver.object(mark.key)
        return try Self.namingCorruption(mark.key, limits: context.limits) { try data.withUnsafeBytes { raw -> VImage in
            let format: SourceFormat
            do { format = try SourceFormat.detect(raw) } catch {
                throw ProcessError(.watermarkError, ec: "0040-00000027", "watermark: '\(mark.key)' is not an image in a format watermarks accept (JPG, PNG, BMP, WebP, TIFF)",
                                   action: Self.name, parameter: "image")
            }
            guard Self.imageFormats.contains(format) else {
                throw ProcessError(.watermarkError, ec: "0040-00000027", "watermark: '\(mark.key)' is \(format.rawValue); watermark images must be JPG, PNG, BMP, WebP or TIFF",
                                   action: Self.name, parameter: "image")
            }
            // Checked like a source (also before the render, with its cost): limits, header
            // claims, the whole JPEG data, the loader's fail_on.
            try Integrity.checkEnd(raw, format: format)
            // A BMP's facts come from its own header: ImageMagick decodes it once, below.
            let footprint = try LoaderFootprint.check(raw, format: format, limits: context.limits, resizing: false)
            let header = try Render.decoding { try ImageFacts.read(raw, format: format, footprint: footprint, "reading the watermark header") }
            try context.limits.checkWatermark(mark.key, bytes: raw.count, width: header.width, height: header.height)
            try Integrity.checkHeader(raw, format: format, width: header.width, height: header.height)
            let orientation = header.orientation
            if format == .jpeg { try Integrity.checkJPEG(raw) }
            // Streamed like the main image, so every step is under the render's deadline (a
            // random-access load decodes the whole file in a step the deadline cannot stop).
            var picture = try Render.decoding {
                try VImage.make("decoding the watermark image") {
                    dv_load_stream(raw.baseAddress, raw.count, 0, 1, 1, 1.0, Render.failOn(format), $0)
                }
            }
            try ImageFacts.checkDecodedSize(picture, format: format, width: header.width, height: header.height)
            if let orientation, (2...8).contains(orientation) {
                picture = try Orientation.apply(try Render.materialize(picture), orientation)
            }
            picture = try Alpha.ensureAlpha(try Colour.toSRGB(picture))
            let inner = DrawContext(outputHasAlpha: true, source: format, resolver: context.resolver,
                                    mainWidth: mainWidth, mainHeight: mainHeight, limits: context.limits)
            for action in mark.process?.actions ?? [] {
                guard let drawing = action.drawing else { continue }
                try RenderWatch.checkCurrent(context.limits)
                if action.needsRandomAccess { picture = try Render.materialize(picture) }
                picture = try drawing.draw(picture, inner)
            }
            // Force the pixels now, into one buffer that references nothing upstream: `raw` is
            // only valid inside this closure, and the loader (ImageMagick's cache) goes with it.
            let pixels = try picture.apply("watermark image", action: Self.name) { dv_cast_uchar($0, $1) }
                .apply("watermark image", action: Self.name) { dv_detach($0, $1) }
            return try pixels.apply("watermark image", action: Self.name) { dv_copy_srgb($0, $1) }
        } }
    }

    /// Cairo's largest surface side, which bounds a drawn text.
    static let maxTextSide = 32767

    /// A corrupt watermark object is reported under its own key, not as the source image. Its
    /// pixels are read lazily, so a read failure (an internal error) is its corruption too.
    /// Running out of memory or of ImageMagick's caps decoding it is its size, named the same way.
    static func namingCorruption<T>(_ key: String, limits: Limits, _ body: () throws -> T) throws -> T {
        do {
            return try Render.decoding(body)
        } catch var error as ProcessError where error.ec == "0040-00000005" {
            if var exhausted = ResourceExhaustion.error(for: error, limits: limits) {
                exhausted.message = "watermark image '\(key)': " + exhausted.message
                    .replacingOccurrences(of: "use a smaller image, resize earlier in the chain, or raise", with: "use a smaller watermark image or raise")
                exhausted.action = name
                exhausted.parameter = "image"
                throw exhausted
            }
            let prefix = "the source image is corrupt or truncated"
            if error.message.hasPrefix(prefix) {
                error.message = "the watermark image '\(key)' is corrupt or truncated" + error.message.dropFirst(prefix.count)
            }
            error.action = error.action ?? name
            throw error
        }
    }

    /// The formats a watermark image may have (spec §2.13; others are EC 0040-00000027).
    static let imageFormats: [SourceFormat] = [.jpeg, .png, .bmp, .webp, .tiff]

    /// Two parts in a row, `interval` px apart, aligned top (0), middle (1) or bottom (2).
    static func sideBySide(_ parts: [VImage], interval: Int, align: Int) throws -> VImage {
        let width = parts.reduce(0) { $0 + $1.width } + interval * (parts.count - 1)
        let height = parts.map(\.height).max() ?? 1
        var canvas = try blank(width: width, height: height)
        var left = 0
        for part in parts {
            let top = [0, (height - part.height) / 2, height - part.height][align]
            let base = canvas
            canvas = try VImage.make("watermark", action: name) { dv_composite_over(base.pointer, part.pointer, $0, Int32(left), Int32(top)) }
            left += part.width + interval
        }
        return try canvas.apply("watermark", action: name) { dv_cast_uchar($0, $1) }
    }

    /// The mark repeated over a `width`×`height` canvas on a grid of cells (mark + gaps) that
    /// has a cell corner at (`originX`, `originY`).
    static func tiled(_ mark: VImage, width: Int, height: Int, originX: Int, originY: Int, padX: Int, padY: Int) throws -> VImage {
        let cellWidth = mark.width + padX, cellHeight = mark.height + padY
        let cell = try mark.apply("watermark tile", action: name) {
            var clear: [Double] = [0, 0, 0, 0]
            return dv_embed($0, $1, 0, 0, Int32(cellWidth), Int32(cellHeight), &clear, 4, 0)
        }
        let startX = (cellWidth - ((originX % cellWidth) + cellWidth) % cellWidth) % cellWidth
        let startY = (cellHeight - ((originY % cellHeight) + cellHeight) % cellHeight) % cellHeight
        let across = (startX + width) / cellWidth + 1, down = (startY + height) / cellHeight + 1
        let sheet = try cell.apply("watermark tile", action: name) { dv_replicate($0, $1, Int32(across), Int32(down)) }
        return try sheet.apply("watermark tile", action: name) {
            dv_extract_area($0, $1, Int32(startX), Int32(startY), Int32(width), Int32(height))
        }
    }

    static func scaleAlpha(_ image: VImage, by factor: Double) throws -> VImage {
        let withAlpha = try Alpha.ensureAlpha(image)
        var factors = Array(repeating: 1.0, count: withAlpha.bands - 1) + [factor]
        var offsets = Array(repeating: 0.0, count: withAlpha.bands - 1) + [0.5]
        let scaled = try withAlpha.apply("watermark opacity", action: name) { dv_linear($0, $1, &factors, &offsets, Int32(factors.count)) }
        return try scaled.apply("watermark opacity", action: name) { dv_cast_uchar($0, $1) }
    }

    static func solid(like image: VImage, rgb: [Double]) throws -> VImage {
        var values = rgb
        return try VImage.make("watermark colour", action: name) { dv_constant_like(image.pointer, $0, &values, 3) }
    }

    static func blank(width: Int, height: Int) throws -> VImage {
        try VImage.make("watermark canvas", action: name) { dv_blank($0, Int32(max(1, width)), Int32(max(1, height)), 4) }
    }
}
