import CVipsShim
import ProcessLanguage

extension Sharpen: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        try image.apply("sharpen", action: Self.name) { dv_unsharp($0, $1, 1.0, Double(value) / 100.0) }
    }
}
