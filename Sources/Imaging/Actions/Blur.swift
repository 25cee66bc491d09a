import CVipsShim
import Foundation
import ProcessLanguage

extension Blur: FrameDrawing {
    /// A Gaussian of standard deviation `s` whose mask is cut at radius `r`: the mask ends where
    /// the curve falls to exp(−r²/2s²), clamped to what libvips accepts.
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        let sigma = Double(self.sigma), r = Double(radius)
        let minAmplitude = min(0.9, max(0.001, exp(-(r * r) / (2 * sigma * sigma))))
        let blurred = try image.apply("blur", action: Self.name) { dv_gaussblur($0, $1, sigma, minAmplitude) }
        return try blurred.apply("blur", action: Self.name) { dv_cast_uchar($0, $1) }
    }
}
