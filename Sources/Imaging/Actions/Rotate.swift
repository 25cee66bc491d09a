import CVipsShim
import ProcessLanguage

extension Rotate: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        if degrees == 0 { return image }
        if image.width > Self.maxSourceSide || image.height > Self.maxSourceSide {
            throw Self.tooLarge(width: image.width, height: image.height, approximate: false)
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

    /// The image reaching a rotate is over its side limit (found when drawing, or before the
    /// cost from the chain's geometry, where sides after arbitrary angles are `approximate`).
    static func tooLarge(width: Int, height: Int, approximate: Bool) -> ProcessError {
        ProcessError(.badRequest, ec: "0040-00000006",
                     "Picture exceed the maximum allowable rotation range: rotate needs both sides at most \(maxSourceSide) px, the image \(approximate ? "would be about" : "is") \(width)x\(height) where it reaches rotate; resize it first",
                     action: name)
    }
}
