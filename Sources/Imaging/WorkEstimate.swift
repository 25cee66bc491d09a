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
    /// The first action that can never succeed on the image as the chain shapes it (a rotate of
    /// a side over 4096 px): refused before the cost, naming its cause.
    var neverSucceeds: ProcessError?

    /// Sides the estimate follows are capped here: past it every render is far over any limit,
    /// and the products stay finite and fit an `Int` (30 × `rotate,45` grows a side 2^15 times).
    static let sideCap = 1 << 31

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
    /// Measured as CPU time per pixel of a 2048x2048 photo and of noise (the worse of the two,
    /// plus a margin), libvips 8.14 on the reference machine: JPEG 25, BMP 40, WebP 205 (photo
    /// 170), PNG 310 (photo 155), TIFF deflate 330, GIF 825 (photo; noise 285), AVIF at aom
    /// speed 9 345 (photo 160), HEIC at x265 "ultrafast" 610. (HEIC was about 4 000 at x265's
    /// default "slow" preset, AVIF about 700 at speed 7.)
    static func encodeWeight(_ format: Format.Kind) -> Double {
        switch format {
        case .jpg: return 30
        case .bmp: return 45
        case .webp: return 230
        case .png: return 340
        case .tiff: return 360
        case .gif: return 900
        case .avif: return 400
        case .heic: return 700
        }
    }

    /// Bytes per output pixel an encoder holds besides the image itself (AV1 and HEVC keep
    /// planes, references and analysis buffers: a 4096x4096 AVIF peaked at 502 MB).
    static func encodeMemory(_ format: Format.Kind) -> Double {
        switch format {
        case .heic, .avif: return 24
        case .webp, .gif, .bmp: return 8
        default: return 0
        }
    }

    /// Work per frame beyond its pixels: splitting and keeping it are several libvips operations.
    /// Measured on 2×2 frames: `format,gif` 0.5 ms a frame (debug build; a release build spends
    /// less in Swift).
    static let frameWeight: Double = 500_000

    /// Work per drawn action per frame beyond its pixels: every action builds several libvips
    /// operations on every frame. Measured on 1×1 and 2×2 frames: `circle,r_10` ×32 and
    /// `resize,w_1` about 0.8 ms per action per frame (debug build).
    static let frameActionWeight: Double = 800_000

    /// Work per mask pixel computed in Swift (a square root and a coverage per pixel) and per
    /// pixel masked by `circle` and `rounded-corners` (the alpha split, multiplied and joined
    /// again). Measured with Tests/Benchmarks/calibrate-actions (CPU time of derive and its
    /// worker, debug build, 32 actions on a 900×600 JPEG): rounded-corners 13 ns a pixel plus
    /// 32 ns a corner-mask pixel, circle 70 to 80 ns a pixel of its square. The attack's
    /// 19× underestimate of 32 × `rounded-corners,r_400` was the mask loop allocating an array
    /// for every corner pixel (fixed); the weights keep a margin over the measurements.
    static let maskPixelWeight: Double = 50
    static let circlePixelWeight: Double = 60
    static let roundedPixelWeight: Double = 40
    static let animatedWebPExtraWeight: Double = 100

    /// Work of drawing a text mark (Pango layout, raster, colour, alpha), per pixel of the mark:
    /// drawn again on every frame. Its pixels are guessed from the text's length and size
    /// (a glyph is about size × size; rotation grows the box).
    static func textWork(_ mark: Watermark) -> Double {
        guard let text = mark.text else { return 0 }
        let size = Double(mark.size)
        var pixels = Double(max(1, text.unicodeScalars.count)) * size * size * 1.2
        if mark.shadow > 0 { pixels *= 2 }
        if mark.rotate % 90 != 0 { pixels *= 2 }
        return 100_000 + pixels * 60
    }

    /// The half width of libvips' Gaussian mask for `sigma`, cut where it falls to `minAmplitude`.
    static func gaussianHalfWidth(sigma: Double, minAmplitude: Double) -> Double {
        (sigma * (2 * log(1 / minAmplitude)).squareRoot()).rounded(.up)
    }

    /// The share of the encode weights (measured on noise) an animation's frames cost: a source's
    /// bytes bound what its frames hold (LZW and VP8L cannot shrink noise: a noise GIF is 1.4
    /// bytes a pixel), and libwebp's animation encoder spends little on a frame equal to the one
    /// before or flat. Floor and slope from CPU time (derive process, debug build, perf stat,
    /// less 0.1 s of start-up) on GIFs made with ImageMagick, `resize,w_1600/format,webp`:
    /// - 151 frames of 400×300, red then blue (79 KB, 0.004 B/px): 0.36 s (estimate was 7.9 s);
    /// - 300 frames, red and blue by turns (156 KB, every frame changed): 1.9 s (was 15.7 s),
    ///   encoding at about 36 ns a pixel beyond the per-frame weights, 0.11 of WebP's 330;
    /// - 60 frames of a rotating photo (2.7 MB, 0.38 B/px): 0.75 s (was 3.1 s);
    /// - 50 frames of noise (8.2 MB, 1.4 B/px): 1.16 s (was 2.6 s, and is).
    /// The floor (0.25) keeps twice the flat frames' cost; `bytes` nil (unknown) is noise.
    static func animationContent(bytes: Int?, frames: Double, framePixels: Double) -> Double {
        guard let bytes else { return 1 }
        let fullness = min(1, Double(bytes) / max(1, frames * framePixels))
        return 0.25 + 0.75 * fullness
    }

    /// Estimates a render of `frames` frames of `width`×`height` (as displayed) with `bands`
    /// stored bands, decoded at `decodedWidth`×`decodedHeight` (smaller with shrink-on-load);
    /// `checkedFrames` more frames are decoded only to check them; `sourceBytes`, the encoded
    /// source's size, bounds what an animation's frames hold.
    static func of(actions: [Action], format: SourceFormat, width: Int, height: Int, bands: Int, frames: Int,
                   decodedWidth: Int, decodedHeight: Int, output: Format.Kind?, hasProfile: Bool,
                   orients: Bool, checkedFrames: Int = 0, checksWhole: Bool = false, sourceBytes: Int? = nil,
                   marks: WorkEstimate = WorkEstimate(), mainWidth: Int? = nil, mainHeight: Int? = nil,
                   checkMark: ((_ index: Int, _ mark: Watermark, _ width: Int, _ height: Int) -> ProcessError?)? = nil) -> WorkEstimate {
        var estimate = WorkEstimate()
        let n = Double(max(1, frames))
        let animated = frames > 1
        let sourcePixels = Double(width) * Double(height)
        // Decoding and the opening resize run on the stored bands (a 1-bit PNG is one band).
        let storedBands = Double(max(1, min(4, bands))) / 3
        var w = decodedWidth, h = decodedHeight
        var pixels: Double { Double(w) * Double(h) }
        // An animation's frames decode as fast as they are flat too (LZW reads a code per run:
        // the 300 red and blue frames above decoded at 4 ns a pixel, noise at 20; weight 40).
        let content = animated ? animationContent(bytes: sourceBytes, frames: n, framePixels: sourcePixels) : 1
        estimate.work += (n * content + Double(checkedFrames)) * pixels * decodeWeight(format) * storedBands
        if animated { estimate.work += n * frameWeight }
        // A crop's source is decoded once more, whole, to find corruption outside it.
        if checksWhole { estimate.work += sourcePixels * decodeWeight(format) * storedBands }
        // Entropy decoding reads every stored pixel even when the DCT shrinks on load, and
        // the whole-file JPEG check reads it once more.
        if pixels < sourcePixels { estimate.work += sourcePixels * 8 * storedBands }
        if format == .jpeg { estimate.work += sourcePixels * 8 * storedBands }
        estimate.work += marks.work
        estimate.memory += marks.memory
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
        for (index, action) in actions.enumerated() {
            let before = pixels
            if n > 1 { estimate.work += n * frameActionWeight }
            switch action {
            case .resize(let resize):
                if first, w != width || h != height {
                    // Shrink-on-load already happened: the geometry is that of the full-size source.
                    w = width; h = height
                }
                do {
                    // `mainWidth`/`mainHeight`: a watermark's pre-process sizes `P_` by the main image.
                    let g = try resize.geometry(sourceWidth: w, sourceHeight: h, mainWidth: mainWidth, mainHeight: mainHeight,
                                                neverEnlarge: format == .gif)
                    w = g.width; h = g.height
                    // A resize that keeps the image as it is (a GIF is never enlarged, `limit_1`)
                    // returns it untouched (`Resize.draw`): it costs no pixel work (attack 36a's M2).
                    if g.isIdentity, before == pixels { break }
                } catch let error as ProcessError {
                    // The walk's sides are exact: drawing it would fail the same way.
                    if estimate.neverSucceeds == nil { estimate.neverSucceeds = error }
                } catch {}
                let inputBands = first && !orients ? storedBands : 1
                estimate.work += n * (min(before, sourcePixels) * 20 * inputBands + pixels * 40)
            case .crop(let crop):
                do {
                    let r = try crop.rectangle(imageWidth: w, imageHeight: h)
                    w = r.width; h = r.height
                } catch let error as ProcessError {
                    if estimate.neverSucceeds == nil { estimate.neverSucceeds = error }
                } catch {}
                estimate.work += n * pixels * 2
            case .indexCrop(let crop):
                if let r = crop.rectangle(imageWidth: w, imageHeight: h) { w = r.width; h = r.height }
                estimate.work += n * pixels * 2
            case .circle(let circle):
                let r = circle.effectiveRadius(imageWidth: w, imageHeight: h)
                w = 2 * r + 1; h = w
                // The disc mask is computed in Swift for every pixel of the square, then applied
                // by libvips (Tests/Benchmarks/calibrate-actions).
                estimate.work += n * pixels * (circlePixelWeight + maskPixelWeight)
                estimate.memory += pixels * 2
            case .roundedCorners(let corners):
                // A full-size mask (filled, then four corners computed in Swift), applied by libvips.
                let r = Double(min(corners.radius, min(w, h) / 2))
                estimate.work += n * (pixels * roundedPixelWeight + 4 * r * r * maskPixelWeight)
                estimate.memory += pixels * 2
            case .rotate(let rotate):
                guard rotate.degrees != 0 else { break }
                // The sides followed here are exact (libvips' own rounding, `Rotate.outputSize`):
                // what is refused here would be refused when drawn, and nothing else is.
                if estimate.neverSucceeds == nil, max(w, h) > Rotate.maxSourceSide {
                    estimate.neverSucceeds = Rotate.tooLarge(width: w, height: h)
                }
                if !animated { estimate.memory = max(estimate.memory, before * 4) }
                (w, h) = Rotate.outputSize(width: w, height: h, degrees: rotate.degrees)
                estimate.work += n * pixels * (rotate.degrees % 90 == 0 ? 15 : 100)
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
                // The mark's own sub-pipeline (text rotate_, the image's pre-process) is checked
                // where it stands, on the image as the chain shaped it.
                if estimate.neverSucceeds == nil, let checkMark { estimate.neverSucceeds = checkMark(index, mark, w, h) }
                // Compositing runs over the whole image; tiling draws the mark everywhere. Measured:
                // `watermark,text_SGk,fill_1,size_1` ×8 on a 2000×1500 JPEG, 190 ns a pixel each
                // (debug build). Text is laid out and drawn again on every frame.
                estimate.work += n * pixels * (mark.fill ? 200 : 60)
                estimate.work += n * textWork(mark)
                if mark.fill { estimate.memory += pixels * 4 }
            case .averageHue, .info, .autoOrient, .format, .quality, .interlace:
                break
            }
            if case .resize = action {} else { colour() }
            first = false
        }
        colour()
        if let output {
            // An animation's frames hold no more than its bytes: unchanged and flat frames
            // encode fast (`animationContent`); a still's encode weight is its own.
            estimate.work += n * pixels * encodeWeight(output) * content
            // libwebp's animation encoder compares every frame with the previous one and tries
            // several encodings of each (calibrate-actions: a 12-frame 800×800 noise GIF to WebP
            // took 2.6 s of CPU, the estimate without this 2.1 s).
            if animated, output == .webp { estimate.work += n * pixels * animatedWebPExtraWeight * content }
            if animated { estimate.memory += n * pixels * 4 }
            // These encoders take the whole image in memory, after Derive decoded it into memory.
            if [.webp, .heic, .avif, .gif, .bmp].contains(output) { estimate.memory += n * pixels * 4 * 2 }
            estimate.memory += n * pixels * encodeMemory(output)
        }
        return estimate
    }
}

extension Limits {
    func checkEstimate(_ estimate: WorkEstimate, resizing: Bool) throws {
        let ec = resizing ? "0040-00000009" : "0040-00000012"
        // Saturating: an estimate past Int's range (or NaN) is just too large, never a trap.
        if !(estimate.work <= Double(maxWork)) {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "the chain's work estimate for this image is \(Self.units(estimate.work)) units (\(Self.seconds(estimate.work))); the limit is \(maxWork) (resize earlier in the chain, use a smaller image, or raise it with \(setting("work")))")
        }
        if !(estimate.memory <= Double(maxMemory)) {
            throw ProcessError(.imageTooLarge, ec: ec,
                               "the chain would hold about \(Self.size(estimate.memory)) of pixels for this image; the limit is \(Self.size(Double(maxMemory))) (resize earlier in the chain, use a smaller image, or raise it with \(setting("memory")))")
        }
    }
}

extension Limits {
    /// An estimate for a message: the integer when it fits an `Int`, else "more than" its maximum.
    static func units(_ value: Double) -> String {
        value < 9.0e18 ? String(Int(value.rounded(.down))) : "more than \(Int.max)"
    }

    static func seconds(_ value: Double) -> String {
        guard value.isFinite else { return "more than 1e300 s" }
        // Never "about 0.0 s": a tiny estimate refused by a tiny limit says how tiny.
        return value < 0.05e9 ? "under 0.1 s" : "about " + String(format: "%.1f", value / 1e9) + " s"
    }
}
