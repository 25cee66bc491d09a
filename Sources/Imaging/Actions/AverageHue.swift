import CVipsShim
import Foundation
import ProcessLanguage

/// The `average-hue` answer (spec §3.2), following OSS's published description: take the mean
/// hue of the image; keep the "salient" pixels, whose hue is more than 30° away from it; answer
/// the mean colour of those (of all pixels when none qualifies). Grey pixels (saturation under
/// 10 %) have no hue and count only in that fallback; transparent pixels are ignored.
/// It is computed on a copy at most 128 px wide or high, which changes the mean very little:
/// the render draws `sampling` last (an opening resize when nothing comes before average-hue,
/// with shrink-on-load), so the sample is costed and read like any resize.
enum AverageHueAnswer {
    static let salientDegrees = 30.0
    static let sampleSide = 128

    /// `resize,m_lfit,w_128,h_128` (limit_1: a smaller image is taken as it is).
    static let sampling: Action = {
        guard case .resize(let resize)? = try? Pipeline.parse("image/resize,m_lfit,w_\(sampleSide),h_\(sampleSide)").actions.first else {
            preconditionFailure("the sampling resize parses")
        }
        return .resize(resize)
    }()

    static func output(_ image: VImage) throws -> RenderOutput {
        let rgb = try sample(image)
        let hex = hexColor(pixels: rgb.pixels, bands: rgb.bands)
        let body = "{\"RGB\": \"0x\(hex)\"}"
        return RenderOutput(kind: .json, bytes: Data(body.utf8), width: 0, height: 0, frames: 0)
    }

    static func sample(_ image: VImage) throws -> (pixels: [UInt8], bands: Int) {
        var small = image
        let longest = max(image.width, image.height)
        if longest > sampleSide {   // the sampling resize ran (a guard: it always does)
            let scale = Double(sampleSide) / Double(longest)
            small = try image.apply("sampling") { dv_resize($0, $1, scale, scale) }
        }
        return (try small.bytes(), small.bands)
    }

    static func hexColor(pixels: [UInt8], bands: Int) -> String {
        var hues: [(r: Double, g: Double, b: Double, hue: Double?)] = []
        hues.reserveCapacity(pixels.count / bands)
        var index = 0
        while index + bands <= pixels.count {
            let alpha = bands == 4 || bands == 2 ? pixels[index + bands - 1] : 255
            let r: Double, g: Double, b: Double
            if bands >= 3 {
                r = Double(pixels[index]); g = Double(pixels[index + 1]); b = Double(pixels[index + 2])
            } else {
                r = Double(pixels[index]); g = r; b = r
            }
            index += bands
            if alpha < 128 { continue }
            hues.append((r, g, b, hue(r, g, b)))
        }
        guard !hues.isEmpty else { return "000000" }
        var x = 0.0, y = 0.0
        for pixel in hues { if let h = pixel.hue { x += cos(h * .pi / 180); y += sin(h * .pi / 180) } }
        var chosen = hues
        if x != 0 || y != 0 {
            let mean = atan2(y, x) * 180 / .pi
            let salient = hues.filter { pixel in
                guard let h = pixel.hue else { return false }
                var turn = (h - mean).truncatingRemainder(dividingBy: 360)
                if turn < 0 { turn += 360 }
                return min(turn, 360 - turn) > salientDegrees
            }
            if !salient.isEmpty { chosen = salient }
        }
        let count = Double(chosen.count)
        let r = Int((chosen.reduce(0) { $0 + $1.r } / count).rounded())
        let g = Int((chosen.reduce(0) { $0 + $1.g } / count).rounded())
        let b = Int((chosen.reduce(0) { $0 + $1.b } / count).rounded())
        return [r, g, b].map { String(format: "%02x", $0) }.joined()
    }

    /// Hue in degrees, or nil for greys.
    static func hue(_ r: Double, _ g: Double, _ b: Double) -> Double? {
        let maxValue = max(r, g, b), minValue = min(r, g, b)
        let delta = maxValue - minValue
        guard maxValue > 0, delta / maxValue >= 0.1 else { return nil }
        var h: Double
        if maxValue == r { h = (g - b) / delta } else if maxValue == g { h = 2 + (b - r) / delta } else { h = 4 + (r - g) / delta }
        h *= 60
        if h < 0 { h += 360 }
        return h
    }
}
