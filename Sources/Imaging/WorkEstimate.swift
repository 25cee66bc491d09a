import Foundation
import ProcessLanguage

/// What a render will cost, from the header alone: work in units of about a nanosecond of one
/// core of the reference machine (a 2-core x86-64 VM, libvips 8.14 without liborc), and the bytes
/// of pixels Derive holds at once. Each step weighs the pixels it touches by what it costs per
/// pixel, measured with `vips` on that machine (Tests/Benchmarks/bench-limits checks the whole).
/// Checked against `Limits.maxWork` and `Limits.maxMemory` before decoding, so an expensive chain
/// within OSS's size limits is refused in microseconds instead of running for minutes.
struct WorkEstimate: Equatable {
    var work: Double = 0
    var memory: Double = 0

    /// Nanoseconds per pixel of 3 bands to decode, by source format.
    static func decodeWeight(_ format: SourceFormat) -> Double {
        switch format {
        case .jpeg: return 25
        case .png: return 25
        case .gif: return 30
        case .webp: return 40
        case .tiff, .bmp: return 15
        case .heic, .avif: return 100
        }
    }

    /// Nanoseconds per output pixel to encode, by output format (GIF quantises every frame).
    static func encodeWeight(_ format: Format.Kind) -> Double {
        switch format {
        case .jpg: return 20
        case .tiff, .bmp: return 20
        case .png: return 60
        case .webp: return 140
        case .gif: return 350
        case .heic, .avif: return 150
        }
    }

    /// The half width of libvips' Gaussian mask for `sigma`, cut where it falls to `minAmplitude`.
    static func gaussianHalfWidth(sigma: Double, minAmplitude: Double) -> Double {
        (sigma * (2 * log(1 / minAmplitude)).squareRoot()).rounded(.up)
    }

    /// Estimates a render of `frames` frames of `width`×`height` (as displayed) with `bands`
    /// stored bands, decoded at `decodedWidth`×`decodedHeight` (smaller with shrink-on-load).
    static func of(actions: [Action], format: SourceFormat, width: Int, height: Int, bands: Int, frames: Int,
                   decodedWidth: Int, decodedHeight: Int, output: Format.Kind?, hasProfile: Bool,
                   orients: Bool) -> WorkEstimate {
        var estimate = WorkEstimate()
        let n = Double(max(1, frames))
        let animated = frames > 1
        let sourcePixels = Double(width) * Double(height)
        // Decoding and the opening resize run on the stored bands (a 1-bit PNG is one band).
        let storedBands = Double(max(1, min(4, bands))) / 3
        var w = decodedWidth, h = decodedHeight
        var pixels: Double { Double(w) * Double(h) }
        estimate.work += n * pixels * decodeWeight(format) * storedBands
        // Entropy decoding reads every stored pixel even when the DCT shrinks on load.
        if pixels < sourcePixels { estimate.work += sourcePixels * 8 * storedBands }
        if animated {
            // One source frame in memory at a time, plus every finished frame (below).
            estimate.memory += pixels * 4 * 2
        }
        var colourPending = true
        func colour() {
            if colourPending { estimate.work += n * pixels * (hasProfile ? 30 : 5) }
            colourPending = false
        }
        if orients {
            colour()
            estimate.memory = max(estimate.memory, pixels * 4)
            estimate.work += n * pixels * 15
        }
        var first = true
        for action in actions {
            let before = pixels
            switch action {
            case .resize(let resize):
                if first, w != width || h != height {
                    // Shrink-on-load already happened: the geometry is that of the full-size source.
                    w = width; h = height
                }
                if let g = try? resize.geometry(sourceWidth: w, sourceHeight: h, neverEnlarge: format == .gif) {
                    w = g.width; h = g.height
                }
                let inputBands = first && !orients ? storedBands : 1
                estimate.work += n * (min(before, sourcePixels) * 20 * inputBands + pixels * 40)
            case .crop(let crop):
                if let r = try? crop.rectangle(imageWidth: w, imageHeight: h) { w = r.width; h = r.height }
                estimate.work += n * pixels * 2
            case .indexCrop(let crop):
                if let r = crop.rectangle(imageWidth: w, imageHeight: h) { w = r.width; h = r.height }
                estimate.work += n * pixels * 2
            case .circle(let circle):
                let r = circle.effectiveRadius(imageWidth: w, imageHeight: h)
                w = 2 * r + 1; h = w
                estimate.work += n * pixels * 40
                estimate.memory += pixels * 2
            case .roundedCorners:
                estimate.work += n * pixels * 40
                estimate.memory += pixels * 2
            case .rotate(let rotate):
                guard rotate.degrees != 0 else { break }
                if !animated { estimate.memory = max(estimate.memory, before * 4) }
                if rotate.degrees % 90 == 0 {
                    if rotate.degrees % 180 != 0 { swap(&w, &h) }
                    estimate.work += n * pixels * 15
                } else {
                    let a = Double(rotate.degrees) * .pi / 180
                    let rw = abs(Double(w) * cos(a)) + abs(Double(h) * sin(a))
                    let rh = abs(Double(w) * sin(a)) + abs(Double(h) * cos(a))
                    w = Int(rw.rounded(.up)); h = Int(rh.rounded(.up))
                    estimate.work += n * pixels * 100
                }
            case .blur(let blur):
                let sigma = Double(blur.sigma), r = Double(blur.radius)
                let minAmplitude = min(0.9, max(0.001, exp(-(r * r) / (2 * sigma * sigma))))
                let taps = 2 * gaussianHalfWidth(sigma: sigma, minAmplitude: minAmplitude) + 1
                estimate.work += n * pixels * (20 + 14 * taps)
            case .sharpen:
                estimate.work += n * pixels * 150
            case .bright, .contrast:
                estimate.work += n * pixels * 30
            case .watermark(let mark):
                // Compositing runs over the whole image; tiling draws the mark everywhere.
                estimate.work += n * pixels * (mark.fill ? 120 : 60)
                if mark.fill { estimate.memory += pixels * 4 }
            case .averageHue, .info, .autoOrient, .format, .quality, .interlace:
                break
            }
            if case .resize = action {} else { colour() }
            first = false
        }
        colour()
        if let output {
            estimate.work += n * pixels * encodeWeight(output)
            if animated { estimate.memory += n * pixels * 4 }
            // These encoders take the whole image in memory.
            if [.webp, .heic, .avif, .gif, .bmp].contains(output) { estimate.memory += n * pixels * 4 }
        }
        return estimate
    }
}

extension Limits {
    func checkEstimate(_ estimate: WorkEstimate, resizing: Bool) throws {
        let ec = resizing ? "0040-00000009" : "0040-00000012"
        if estimate.work > Double(maxWork) {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "the chain's work estimate for this image is \(Int(estimate.work)) units (about \(String(format: "%.1f", estimate.work / 1e9)) s); the limit is \(maxWork) (resize earlier in the chain, use a smaller image, or raise it with --max-work)")
        }
        if estimate.memory > Double(maxMemory) {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "the chain would hold about \(Int(estimate.memory) >> 20) MiB of pixels for this image; the limit is \(maxMemory >> 20) MiB (resize earlier in the chain, use a smaller image, or raise it with --max-memory)")
        }
    }
}
