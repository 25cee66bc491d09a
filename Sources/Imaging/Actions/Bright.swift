import CVipsShim
import ProcessLanguage

extension Bright: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        if value == 0 { return image }
        return try Levels.linear(image, multiply: 1, add: Double(value) * 2.55, action: Self.name)
    }
}

/// A linear change of the colour channels (alpha untouched), clamped to 0...255.
enum Levels {
    static func linear(_ image: VImage, multiply a: Double, add b: Double, action: String) throws -> VImage {
        let colourBands = image.hasAlpha ? image.bands - 1 : image.bands
        var factors = Array(repeating: a, count: colourBands)
        // +0.5: the cast back to 8 bits truncates, and levels should round.
        var offsets = Array(repeating: b + 0.5, count: colourBands)
        if image.hasAlpha { factors.append(1); offsets.append(0) }
        let changed = try image.apply(action, action: action) {
            dv_linear($0, $1, &factors, &offsets, Int32(factors.count))
        }
        return try changed.apply(action, action: action) { dv_cast_uchar($0, $1) }
    }
}
