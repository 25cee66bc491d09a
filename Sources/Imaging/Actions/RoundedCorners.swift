import CVipsShim
import ProcessLanguage

extension RoundedCorners: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        let r = min(radius, min(image.width, image.height) / 2)
        guard r > 0 else { return image }
        return try Alpha.applyMask(image, mask: Self.mask(width: image.width, height: image.height, radius: r))
    }

    /// Opaque everywhere except outside quarter circles of `radius` in the four corners.
    static func mask(width: Int, height: Int, radius: Int) -> [UInt8] {
        var mask = [UInt8](repeating: 255, count: width * height)
        let r = Double(radius)
        for cy in 0..<radius {
            let dy = r - (Double(cy) + 0.5)
            for cx in 0..<radius {
                let dx = r - (Double(cx) + 0.5)
                let coverage = r - (dx * dx + dy * dy).squareRoot() + 0.5
                let value = UInt8(max(0, min(1, coverage)) * 255 + 0.5)
                // The four corners, written directly (a literal array of them allocated per pixel).
                let top = cy * width, bottom = (height - 1 - cy) * width
                mask[top + cx] = value
                mask[top + width - 1 - cx] = value
                mask[bottom + cx] = value
                mask[bottom + width - 1 - cx] = value
            }
        }
        return mask
    }
}
