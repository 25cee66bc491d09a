import CVipsShim
import ProcessLanguage

extension Sharpen: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        let sharpened = try image.apply("sharpen", action: Self.name) {
            dv_sharpen($0, $1, 1.0, 0.0, Double(value) / 50.0)
        }
        // libvips sharpens in LabS; come back to 8-bit sRGB.
        return try Colour.toSRGB(sharpened)
    }
}
