import CVipsShim
import ProcessLanguage

extension Contrast: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        if value == 0 { return image }
        return try Levels.linear(image, multiply: factor, add: 128 * (1 - factor), action: Self.name)
    }
}
