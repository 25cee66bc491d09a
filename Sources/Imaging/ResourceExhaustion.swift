import Foundation
import ImagingCore
import ProcessLanguage

/// libvips and its codecs report running out of memory (a worker's data cap, malloc failing)
/// or out of ImageMagick's resource caps as a failed decode or encode, which the engine would
/// call a corrupt source (EC 0040-00000005). It is a resource limit: `ImageTooLarge`, naming
/// the limit to raise, or ImageMagick's caps, which no Derive limit raises.
enum ResourceExhaustion {
    /// Out-of-memory reports of libvips (`vips_tracked: out of memory`), glib, libjpeg, libpng,
    /// libtiff and ImageMagick.
    static let memoryHints = ["out of memory", "insufficient memory", "memory allocation failed",
                              "cannot allocate memory", "not enough memory", "unable to allocate"]
    /// ImageMagick's resource caps (`MAGICK_*_LIMIT`): its pixel cache gives up.
    static let imageMagickHints = ["cache resources exhausted", "resource limit exceeded", "pixel cache allocation failed",
                                   "width or height exceeds limit"]

    /// The resource error `error` stands for, or nil when it is not one.
    static func error(for error: ProcessError, limits: Limits) -> ProcessError? {
        guard error.ec == "0040-00000005" || error.code == .internalError else { return nil }
        let message = error.message.lowercased()
        let reason = detail(error.message)
        if imageMagickHints.contains(where: { message.contains($0) }) {
            return ProcessError(.imageTooLarge, ec: "0040-00000012",
                                "ImageMagick, which reads and writes BMP, ran out of its resource caps (\(reason)); they are \(ImageMagickCaps.cacheDescription) per render and no Derive limit raises them: convert the BMP to PNG or TIFF first",
                                action: error.action, parameter: error.parameter)
        }
        if memoryHints.contains(where: { message.contains($0) }) {
            return ProcessError(.imageTooLarge, ec: "0040-00000012",
                                "the render ran out of memory inside libvips (\(reason)); the memory limit is \(Limits.size(Double(limits.maxMemory))) (use a smaller image, resize earlier in the chain, or raise it with \(limits.setting("memory")))",
                                action: error.action, parameter: error.parameter)
        }
        return nil
    }

    /// The library's own words: what follows the engine's "corrupt or truncated: ..." lead, which
    /// is never repeated (a progressive JPEG's "Insufficient memory (case 4)" read "ran out of
    /// memory inside libvips (the source image is corrupt or truncated: ...)").
    static func detail(_ message: String) -> String {
        let lead = "corrupt or truncated: "
        let words = message.range(of: lead).map { String(message[$0.upperBound...]) } ?? message
        let parts = words.components(separatedBy: ": ")
        return parts.count > 2 ? parts.suffix(2).joined(separator: ": ") : words
    }
}
