import CVipsShim
import ProcessLanguage

/// Transparency helpers: masks for circle and rounded corners, white for formats without alpha.
enum Alpha {
    static func ensureAlpha(_ image: VImage) throws -> VImage {
        if image.hasAlpha { return image }
        return try image.apply("adding alpha") { dv_bandjoin_const1($0, $1, 255) }
    }

    /// Multiplies the image's alpha by an 8-bit coverage mask of the same size.
    static func applyMask(_ image: VImage, mask: [UInt8]) throws -> VImage {
        let withAlpha = try ensureAlpha(image)
        let colour = try withAlpha.apply("splitting alpha") { dv_extract_band($0, $1, 0, Int32(withAlpha.bands - 1)) }
        let alpha = try withAlpha.apply("splitting alpha") { dv_extract_band($0, $1, Int32(withAlpha.bands - 1), 1) }
        let maskImage = try VImage.fromBytes(mask, width: image.width, height: image.height, bands: 1)
        let combined = try VImage.make("masking alpha") { dv_multiply_scaled(alpha.pointer, maskImage.pointer, 1.0 / 255.0, $0) }
        return try VImage.make("joining alpha") { dv_bandjoin2(colour.pointer, combined.pointer, $0) }
    }

    /// Composites onto white, for JPEG and other outputs without transparency.
    static func flatten(_ image: VImage) throws -> VImage {
        var white: [Double] = [255, 255, 255]
        return try image.apply("flattening transparency") { dv_flatten($0, $1, &white, 3) }
    }

    /// The colour that fills exposed areas: transparent when the output keeps alpha, else white.
    static func background(for image: VImage, _ context: DrawContext) -> [Double] {
        if context.outputHasAlpha { return [0, 0, 0, 0] }
        return Array(repeating: 255, count: image.bands)
    }
}
