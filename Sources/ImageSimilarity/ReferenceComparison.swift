import Foundation
import ProcessLanguage

/// SSIM of two encoded images of any size and format, decoded by whoever renders (derive links no
/// libvips): both are scaled to the second one's shape, at most `compareSide` on the long side,
/// and written as BMP by `scale`, then compared here. Shared by `derive diff` (old against new)
/// and the build's `min_ssim` budget (a reference against the output).
public enum ImageComparison {
    /// The longest side the two images are compared at.
    public static let compareSide = 512

    /// `scale(bytes, pipeline)` renders `bytes` through `pipeline` (a resize to BMP) and returns the BMP.
    public static func compare(_ first: Data, _ second: Data, secondWidth: Int, secondHeight: Int,
                               scale: (Data, Pipeline) throws -> Data) throws -> (Similarity, RGBPixels) {
        let factor = min(1, Double(compareSide) / Double(max(secondWidth, secondHeight, 1)))
        let width = max(8, Int((Double(secondWidth) * factor).rounded())), height = max(8, Int((Double(secondHeight) * factor).rounded()))
        let pipeline = try Pipeline.parse("image/resize,m_fixed,w_\(width),h_\(height),limit_0/format,bmp")
        let a = try RGBPixels.bmp(scale(first, pipeline)), b = try RGBPixels.bmp(scale(second, pipeline))
        let similarity = try Similarity(a, b)
        return (similarity, similarity.heatMap(width: a.width, height: a.height))
    }

    /// The high-quality reference of `pipeline`: the same geometry and adjustments, encoded
    /// losslessly (PNG) with the encoder settings (format, quality, interlace) left out.
    public static func referencePipeline(_ pipeline: Pipeline) -> Pipeline {
        var actions = pipeline.actions.filter {
            switch $0 {
            case .format, .quality, .interlace: return false
            default: return true
            }
        }
        actions.append(.format(Format(kind: .png)))
        return Pipeline(actions: actions, style: pipeline.style)
    }

    /// SSIM rounded to six decimals (as reports show it; stable across runs).
    public static func rounded(_ ssim: Double) -> Double { (ssim * 1_000_000).rounded() / 1_000_000 }
}
