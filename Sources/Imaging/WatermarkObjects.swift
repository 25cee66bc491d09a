import CVipsShim
import Foundation
import ProcessLanguage

/// The watermark images of one render, each read once before any pixel is decoded: the object
/// is checked against the source limits (bytes, side, pixels) from its header, and what decoding
/// and pre-processing it costs joins the render's work estimate. Drawing reads the bytes from here.
struct WatermarkObjects: ObjectResolver {
    struct Object {
        let data: Data
        /// Header facts for the estimate; nil when the bytes are not a format watermarks accept
        /// (drawing reports that with its own EC).
        let format: SourceFormat?
        let width: Int, height: Int, bands: Int
        let hasProfile: Bool, orientation: Int
        /// What libvips' loader holds decoding it at full size (`LoaderFootprint`).
        var loaderMemory: Double = 0
    }

    private let objects: [String: Object]
    private let marks: [Watermark.Mark]

    init(_ marks: [Watermark.Mark], resolver: any ObjectResolver, limits: Limits) throws {
        var objects: [String: Object] = [:]
        for mark in marks where objects[mark.key] == nil {
            objects[mark.key] = try Self.read(mark.key, resolver: resolver, limits: limits)
        }
        self.objects = objects
        self.marks = marks
    }

    private static func read(_ key: String, resolver: any ObjectResolver, limits: Limits) throws -> Object {
        let read = try resolver.object(key)
        try limits.checkWatermark(key, bytes: read.count, width: 0, height: 0)
        // As for a source: an oversized PNG eXIf chunk is left out of what libvips reads.
        let data = PNGExif.withoutOversized(read) ?? read
        return try data.withUnsafeBytes { raw -> Object in
            // libvips opens an animated WebP by reading all its frames: cap them first.
            if let frames = WebPChunks.frameCount(raw), frames > limits.maxFrames {
                throw ProcessError(.imageTooLarge, ec: "0040-00000012",
                                   "watermark image '\(key)': it has \(frames) frames; the limit is \(limits.maxFrames)",
                                   action: Watermark.name, parameter: "image")
            }
            // What the loader holds or reads (a BMP's whole ImageMagick decode, a WebP canvas),
            // checked from the file's own header before libvips reads it, as for sources.
            var footprint = LoaderFootprint()
            if let format = try? SourceFormat.detect(raw), Watermark.imageFormats.contains(format) {
                try Watermark.namingCorruption(key, limits: limits) { try Integrity.checkEnd(raw, format: format) }
                do {
                    footprint = try LoaderFootprint.check(raw, format: format, limits: limits, resizing: false)
                    try limits.checkBeforeHeader(footprint, resizing: false)
                } catch var error as ProcessError {
                    // Its own words, not the chain's: resizing the chain does not shrink a mark's decode.
                    let own = error.message.replacingOccurrences(of: "the source ", with: "it ")
                        .replacingOccurrences(of: "the chain would hold", with: "decoding it would hold")
                        .replacingOccurrences(of: "the chain's work estimate for this image", with: "its decode's work estimate")
                        .replacingOccurrences(of: "resize earlier in the chain, use a smaller image", with: "use a smaller watermark image")
                    error.message = "watermark image '\(key)': " + own
                    error.action = Watermark.name
                    error.parameter = "image"
                    throw error
                }
            }
            // A BMP's from its own header: ImageMagick runs only when the mark is drawn, after
            // the render's estimate has counted it.
            guard let format = try? SourceFormat.detect(raw), Watermark.imageFormats.contains(format),
                  let header = try? ImageFacts.read(raw, format: format, footprint: footprint, "reading the watermark header") else {
                Vips.takeError()
                return Object(data: data, format: nil, width: 0, height: 0, bands: 0, hasProfile: false, orientation: 1)
            }
            try limits.checkWatermark(key, bytes: read.count, width: header.width, height: header.height)
            try Watermark.namingCorruption(key, limits: limits) { try Integrity.checkHeader(raw, format: format, width: header.width, height: header.height) }
            return Object(data: data, format: format, width: header.width, height: header.height, bands: header.bands,
                          hasProfile: header.hasProfile, orientation: header.orientation ?? 1,
                          loaderMemory: footprint.memory(shrink: 1)
                            + LoaderFootprint.heifMemory(format, width: header.width, height: header.height, bands: header.bands))
        }
    }

    func object(_ key: String) throws -> Data {
        guard let object = objects[key] else {
            throw ProcessError(.internalError, "watermark: the object '\(key)' was not read before the render")
        }
        return object.data
    }

    /// What the marks cost when drawn on `frames` frames (each frame decodes its marks again).
    func estimate(frames: Int) -> WorkEstimate {
        var total = WorkEstimate()
        for mark in marks {
            guard let one = cost(of: mark) else { continue }
            total.work += one.work * Double(max(1, frames))
            total.memory += one.memory
        }
        return total
    }

    /// A mark that alone is over the work or memory limit is refused naming its object, not
    /// the source image (a 15000×15000 watermark blamed the chain).
    func checkEach(_ limits: Limits) throws {
        for mark in marks {
            guard let one = cost(of: mark) else { continue }
            func refuse(_ what: String, _ flag: String) -> ProcessError {
                ProcessError(.imageTooLarge, ec: "0040-00000012",
                             "watermark: the image '\(mark.key)' alone \(what) (use a smaller watermark image or raise it with \(flag))",
                             action: Watermark.name, parameter: "image")
            }
            if !(one.work <= Double(limits.maxWork)) {
                throw refuse("has a work estimate of \(Limits.units(one.work)) units; the limit is \(limits.maxWork)", limits.setting("work"))
            }
            if !(one.memory <= Double(limits.maxMemory)) {
                throw refuse("would hold about \(Limits.size(one.memory)) of pixels; the limit is \(Limits.size(Double(limits.maxMemory)))", limits.setting("memory"))
            }
        }
    }

    /// What in watermark `mark` can never succeed, drawn on a `mainWidth`×`mainHeight` image at
    /// chain position `position` (1-based): text too large to draw, a text mark over rotate's
    /// side limit with `rotate_`, or an image whose pre-process fails on its exact geometry
    /// (a rotate over 4 096 px, a crop outside it). The message names the watermark by position
    /// and text or object key, and the limit; nil when nothing is known to fail.
    func neverSucceeds(_ mark: Watermark, position: Int, mainWidth: Int, mainHeight: Int) -> ProcessError? {
        if let text = mark.text {
            let named = "watermark (action \(position), text '\(Self.excerpt(text))')"
            do { try mark.checkTextFits() } catch var error as ProcessError {
                error.message = named + error.message.dropFirst("watermark".count)
                return error
            } catch {}
            if var error = mark.textTooLargeToRotate() {
                error.message = named + error.message.dropFirst("watermark".count)
                return error
            }
        }
        guard let image = mark.image, let object = objects[image.key], let format = object.format else { return nil }
        let drawn = (image.process?.actions ?? []).filter { $0.drawing != nil }
        guard !drawn.isEmpty else { return nil }
        let swaps = (5...8).contains(object.orientation)
        let (w, h) = swaps ? (object.height, object.width) : (object.width, object.height)
        let walk = WorkEstimate.of(actions: drawn, format: format, width: w, height: h, bands: object.bands,
                                   frames: 1, decodedWidth: w, decodedHeight: h, output: nil,
                                   hasProfile: object.hasProfile, orients: object.orientation != 1,
                                   mainWidth: mainWidth, mainHeight: mainHeight)
        guard var error = walk.neverSucceeds else { return nil }
        error.message = "watermark (action \(position), image '\(image.key)'): its pre-process can never succeed: " + error.message
        error.action = Watermark.name
        error.parameter = "image"
        return error
    }

    /// A watermark text as a message quotes it: the first 40 characters.
    static func excerpt(_ text: String) -> String {
        text.count <= 40 ? text : String(text.prefix(40)) + "…"
    }

    /// What one mark costs on one frame; nil for objects that are not images (refused later).
    private func cost(of mark: Watermark.Mark) -> WorkEstimate? {
        guard let object = objects[mark.key], let format = object.format else { return nil }
        let drawn = (mark.process?.actions ?? []).filter { $0.drawing != nil }
        let swaps = (5...8).contains(object.orientation)
        let (w, h) = swaps ? (object.height, object.width) : (object.width, object.height)
        var one = WorkEstimate.of(actions: drawn, format: format, width: w, height: h, bands: object.bands,
                                  frames: 1, decodedWidth: w, decodedHeight: h, output: nil,
                                  hasProfile: object.hasProfile, orients: object.orientation != 1)
        // What its loader holds while it decodes (a BMP's ImageMagick cache, a WebP's frames),
        // then the decoded RGBA copy the mark is drawn from (4 bytes a pixel), held to the end.
        let pixels = Double(object.width) * Double(object.height)
        one.work += pixels * 20
        one.memory += object.loaderMemory + pixels * 4
        return one
    }
}
