import CVipsShim
import ProcessLanguage

extension Resize: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        let geometry = try self.geometry(sourceWidth: image.width, sourceHeight: image.height,
                                         mainWidth: context.mainWidth, mainHeight: context.mainHeight,
                                         neverEnlarge: context.source == .gif)
        return try draw(image, geometry: geometry)
    }

    /// Scales to `geometry` (computed for this image, or for the full-size source when the
    /// decoder already shrank it), then crops or pads.
    func draw(_ image: VImage, geometry: Geometry) throws -> VImage {
        if geometry.isIdentity, image.width == geometry.width, image.height == geometry.height { return image }
        return try finish(try scale(image, width: geometry.scaledWidth, height: geometry.scaledHeight), geometry: geometry)
    }

    /// Scales to exactly `width`×`height` with Lanczos 3.
    func scale(_ image: VImage, width: Int, height: Int) throws -> VImage {
        if image.width == width, image.height == height { return image }
        let scaled = try image.apply("resize", action: Self.name) {
            dv_resize($0, $1, Double(width) / Double(image.width), Double(height) / Double(image.height))
        }
        return try Geometry.exactSize(scaled, width: width, height: height)
    }

    /// After scaling: make the size exact, then `fill` crops the centre and `pad` centres the
    /// image on a canvas of `color`.
    func finish(_ scaled: VImage, geometry: Geometry) throws -> VImage {
        var image = try Geometry.exactSize(scaled, width: geometry.scaledWidth, height: geometry.scaledHeight)
        if geometry.width == image.width, geometry.height == image.height { return image }
        if geometry.width <= image.width, geometry.height <= image.height {
            let left = (image.width - geometry.width) / 2, top = (image.height - geometry.height) / 2
            return try image.apply("resize (fill)", action: Self.name) {
                dv_extract_area($0, $1, Int32(left), Int32(top), Int32(geometry.width), Int32(geometry.height))
            }
        }
        var background = Self.rgb(color)
        if image.hasAlpha { background.append(255) }
        let left = (geometry.width - image.width) / 2, top = (geometry.height - image.height) / 2
        image = try image.apply("resize (pad)", action: Self.name) {
            dv_embed($0, $1, Int32(left), Int32(top), Int32(geometry.width), Int32(geometry.height),
                     &background, Int32(background.count), 0)
        }
        return image
    }

    static func rgb(_ hex: String) -> [Double] {
        let value = Int(hex, radix: 16) ?? 0xFFFFFF
        return [Double((value >> 16) & 0xFF), Double((value >> 8) & 0xFF), Double(value & 0xFF)]
    }
}

extension Resize.Geometry {
    /// libvips may round a scaled size one pixel away from the one asked for; trim or extend
    /// the edge so every output has exactly the computed size.
    static func exactSize(_ image: VImage, width: Int, height: Int) throws -> VImage {
        if image.width == width, image.height == height { return image }
        var result = image
        if result.width > width || result.height > height {
            let w = min(width, result.width), h = min(height, result.height)
            result = try result.apply("resize") { dv_extract_area($0, $1, 0, 0, Int32(w), Int32(h)) }
        }
        if result.width < width || result.height < height {
            result = try result.apply("resize") { dv_embed($0, $1, 0, 0, Int32(width), Int32(height), nil, 0, 1) }
        }
        return result
    }
}
