import Foundation
import ImagingCore

/// What a render needs from an image's header: its size, stored bands, EXIF orientation,
/// whether it has a profile, and an animation's pages and timing. libvips reads them, except
/// for a BMP: ImageMagick's header read decodes the whole image and holds it while the header
/// lives, so a BMP's facts come from its own header and the source, its watermarks and the
/// chain are costed together before ImageMagick reads anything (a BMP source and a BMP
/// watermark were both decoded, 656 MB, before the estimate refused them).
struct ImageFacts: Equatable {
    var width: Int
    /// The whole height (every page of an animation).
    var height: Int
    var bands: Int
    /// The stored EXIF orientation, as libvips reports it.
    var orientation: Int?
    var hasProfile: Bool
    var pages: Int?
    var pageHeight: Int?
    var loop: Int?
    var delays: [Int]?

    init(width: Int, height: Int, bands: Int, orientation: Int?, hasProfile: Bool,
         pages: Int? = nil, pageHeight: Int? = nil, loop: Int? = nil, delays: [Int]? = nil) {
        self.width = width
        self.height = height
        self.bands = bands
        self.orientation = orientation
        self.hasProfile = hasProfile
        self.pages = pages
        self.pageHeight = pageHeight
        self.loop = loop
        self.delays = delays
    }

    /// As libvips read them.
    init(_ header: VImage) {
        self.init(width: header.width, height: header.height, bands: header.bands, orientation: header.int("orientation"),
                  hasProfile: header.fieldNames.contains("icc-profile-data"), pages: header.int("n-pages"),
                  pageHeight: header.int("page-height"), loop: header.int("loop"), delays: header.intArray("delay"))
    }

    /// A BMP's facts from its own header, as libvips reports them once ImageMagick has decoded
    /// it: 4 bands for 16- and 32-bit pixels (which may carry alpha; at most what ImageMagick
    /// gives, so the work estimate never falls short), else 3; a profile when a V5 header says
    /// it embeds one ("MBED"). nil when the header cannot be read.
    static func bmp(_ source: UnsafeRawBufferPointer) -> ImageFacts? {
        let bytes = SourceHeader.Bytes(source)
        guard bytes.matches(0, Array("BM".utf8)), let size = bytes.u32(14, little: true),
              let header = SourceHeader.bmp(bytes) else { return nil }
        guard let bitCount = bytes.u16(size == 12 ? 24 : 28, little: true) else { return nil }
        let embedsProfile = size >= 124 && bytes.u32(14 + 56, little: true) == 0x4D42_4544   // "MBED"
        return ImageFacts(width: header.width, height: header.height, bands: bitCount == 16 || bitCount == 32 ? 4 : 3,
                          orientation: 1, hasProfile: embedsProfile, pages: 1)
    }

    /// A BMP costed from its own header must decode at the size that header gave (ImageMagick
    /// reads the file its own way): else it is corrupt, refused before its pixels are drawn.
    static func checkDecodedSize(_ image: VImage, format: SourceFormat, width: Int, height: Int) throws {
        guard format == .bmp, image.width != width || image.height != height else { return }
        throw Render.corrupt("the BMP header says \(width)x\(height) but \(image.width)x\(image.height) decodes")
    }

    /// The facts of `source` in `format`: a BMP's from its own header, anything else's (and a
    /// BMP whose header Derive cannot read) from libvips' header read, at the footprint's scale.
    static func read(_ source: UnsafeRawBufferPointer, format: SourceFormat, footprint: LoaderFootprint, _ what: String) throws -> ImageFacts {
        if format == .bmp, let own = bmp(source) { return own }
        return ImageFacts(try Render.readHeader(source, footprint, what))
    }
}
