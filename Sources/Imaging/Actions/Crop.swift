import CVipsShim
import ProcessLanguage

extension Crop: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        let r = try rectangle(imageWidth: image.width, imageHeight: image.height)
        if r.left == 0, r.top == 0, r.width == image.width, r.height == image.height { return image }
        return try image.apply("crop", action: Self.name) {
            dv_extract_area($0, $1, Int32(r.left), Int32(r.top), Int32(r.width), Int32(r.height))
        }
    }
}
