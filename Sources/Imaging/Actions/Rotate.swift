import CVipsShim
import Foundation
import ProcessLanguage

extension Rotate: FrameDrawing {
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        if degrees == 0 { return image }
        if image.width > Self.maxSourceSide || image.height > Self.maxSourceSide {
            throw Self.tooLarge(width: image.width, height: image.height)
        }
        if degrees % 90 == 0 {
            return try image.apply("rotate", action: Self.name) { dv_rot($0, $1, Int32(degrees / 90)) }
        }
        // Any other angle: the canvas grows to the rotated bounding box; exposed corners are
        // transparent (premultiplied so edges do not darken) or white.
        if context.outputHasAlpha {
            let premultiplied = try Alpha.ensureAlpha(image).apply("rotate", action: Self.name) { dv_premultiply($0, $1) }
            var background: [Double] = [0, 0, 0, 0]
            let rotated = try premultiplied.apply("rotate", action: Self.name) {
                dv_rotate($0, $1, Double(degrees), &background, 4)
            }
            let straight = try rotated.apply("rotate", action: Self.name) { dv_unpremultiply($0, $1) }
            return try straight.apply("rotate", action: Self.name) { dv_cast_uchar($0, $1) }
        }
        var background = Alpha.background(for: image, context)
        let rotated = try image.apply("rotate", action: Self.name) {
            dv_rotate($0, $1, Double(degrees), &background, Int32(background.count))
        }
        return try rotated.apply("rotate", action: Self.name) { dv_cast_uchar($0, $1) }
    }

    /// The image reaching a rotate is over its side limit (found when drawing, or before the
    /// cost from the chain's exact geometry).
    static func tooLarge(width: Int, height: Int) -> ProcessError {
        ProcessError(.badRequest, ec: "0040-00000006",
                     "Picture exceed the maximum allowable rotation range: rotate needs both sides at most \(maxSourceSide) px, the image is \(width)x\(height) where it reaches rotate; resize it first",
                     action: name)
    }

    /// The size `draw` gives a `width`×`height` image, computed as libvips 8.14 computes it
    /// without touching pixels: right angles swap or keep the sides (`vips_rot`); any other
    /// angle is `vips_rotate`, an affine transform whose output is the bounding box of the four
    /// mapped corners, each side rounded half away from zero (`VIPS_ROUND_INT`). The same double
    /// operations in the same order give the same integers (checked against libvips itself and
    /// real renders in RotateGeometryTests): a chain's walk knows every side exactly, so 32 ×
    /// `rotate,45` keeps a 1×1 image 1×1. Sides saturate at `cap` (a walk past it is refused).
    static func outputSize(width: Int, height: Int, degrees: Int, cap: Int = WorkEstimate.sideCap) -> (width: Int, height: Int) {
        let turn = ((degrees % 360) + 360) % 360
        if turn % 90 == 0 { return turn % 180 == 0 ? (width, height) : (height, width) }
        // libvips: VIPS_RAD(angle) = angle / 360 * 2 * pi; a = cos, b = -sin, c = -b, d = a.
        let radians = Double(degrees) / 360.0 * 2.0 * Double.pi
        let a = cos(radians), b = -sin(radians)
        let c = -b, d = a
        let w = Double(width), h = Double(height)
        // Corners (0,0), (w,0), (0,h), (w,h) mapped forward: x' = a·x + b·y, y' = c·x + d·y.
        let xs = [a * 0 + b * 0, a * w + b * 0, a * 0 + b * h, a * w + b * h]
        let ys = [c * 0 + d * 0, c * w + d * 0, c * 0 + d * h, c * w + d * h]
        func side(_ values: [Double]) -> Int {
            let extent = values.max()! - values.min()!
            guard extent < Double(cap) else { return cap }
            // VIPS_ROUND_INT on a positive extent: truncate after adding one half.
            return Int(extent + 0.5)
        }
        return (side(xs), side(ys))
    }
}
