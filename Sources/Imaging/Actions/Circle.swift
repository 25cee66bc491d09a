import CVipsShim
import ProcessLanguage

extension Circle: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        let r = effectiveRadius(imageWidth: image.width, imageHeight: image.height)
        let side = 2 * r + 1
        let left = image.width / 2 - r, top = image.height / 2 - r
        let square = try image.apply("circle", action: Self.name) {
            dv_extract_area($0, $1, Int32(left), Int32(top), Int32(side), Int32(side))
        }
        return try Alpha.applyMask(square, mask: Self.discMask(side: side))
    }

    /// Anti-aliased disc of diameter `side` centred in a `side`×`side` square.
    static func discMask(side: Int) -> [UInt8] {
        var mask = [UInt8](repeating: 0, count: side * side)
        let centre = Double(side) / 2, radius = Double(side) / 2
        for y in 0..<side {
            let dy = Double(y) + 0.5 - centre
            for x in 0..<side {
                let dx = Double(x) + 0.5 - centre
                let coverage = radius - (dx * dx + dy * dy).squareRoot() + 0.5
                mask[y * side + x] = UInt8(max(0, min(1, coverage)) * 255 + 0.5)
            }
        }
        return mask
    }
}
