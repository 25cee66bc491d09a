import CVipsShim
import ProcessLanguage

extension Rotate: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        if degrees == 0 { return image }
        if image.width > Self.maxSourceSide || image.height > Self.maxSourceSide {
            throw ProcessError(.badRequest, ec: "0040-00000006",
                               "Picture exceed the maximum allowable rotation range: rotate needs both sides at most \(Self.maxSourceSide) px, the image is \(image.width)x\(image.height); resize it first",
                               action: Self.name)
        }
        if degrees % 90 == 0 {
            return try image.apply("rotate", action: Self.name) { dv_rot($0, $1, Int32(degrees / 90)) }
        }
        // Any other angle: the canvas grows to the rotated bounding box; exposed corners are
        // transparent (premultiplied so edges do not darken) or white.
        if context.outputHasAlpha {
            let premultiplied = try Alpha.ensureAlpha(image).apply("rotate", action: Self.name) { dv_premultiply($0, $1) }
            var background: [Double] = [0, 0, 0, 0]
            let rotated = try premultiplied.apply("rotate", action: Self.name) {
                dv_rotate($0, $1, Double(degrees), &background, 4)
            }
            let straight = try rotated.apply("rotate", action: Self.name) { dv_unpremultiply($0, $1) }
            return try straight.apply("rotate", action: Self.name) { dv_cast_uchar($0, $1) }
        }
        var background = Alpha.background(for: image, context)
        let rotated = try image.apply("rotate", action: Self.name) {
            dv_rotate($0, $1, Double(degrees), &background, Int32(background.count))
        }
        return try rotated.apply("rotate", action: Self.name) { dv_cast_uchar($0, $1) }
    }
}
