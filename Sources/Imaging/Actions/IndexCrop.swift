import CVipsShim
import ProcessLanguage

extension IndexCrop: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        guard let r = rectangle(imageWidth: image.width, imageHeight: image.height) else { return image }
        return try image.apply("indexcrop", action: Self.name) {
            dv_extract_area($0, $1, Int32(r.left), Int32(r.top), Int32(r.width), Int32(r.height))
        }
    }
}
