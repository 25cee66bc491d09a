import Foundation

/// An image's size and frame count read from its bytes, without libvips: what the build needs
/// before a render to reserve memory, and the planner's displayed size of a source, in processes
/// that do not load the engine (the one header reader outside libvips).
/// Formats whose header is not parsed here (or a damaged header) give nil; the caller then
/// assumes a fixed size, as the engine's own estimate does for a header it cannot read.
public struct SourceHeader: Sendable, Hashable {
    /// The stored size (before any EXIF orientation).
    public var width: Int
    public var height: Int
    /// Frames of an animation (GIF, WebP); 1 for every other format.
    public var frames: Int
    /// The EXIF orientation (1 to 8) the engine applies by default: a JPEG's, a TIFF's, a PNG's
    /// eXIf and a still WebP's EXIF chunk (a HEIF quarter turn reads as 6); 1 elsewhere.
    public var orientation: Int

    public init(width: Int, height: Int, frames: Int, orientation: Int = 1) {
        self.width = width
        self.height = height
        self.frames = frames
        self.orientation = orientation
    }

    /// Formats whose displayed size `displayedSize` knows (orientation included): the planner
    /// reads every other format's size as unknown.
    public static let displayedFormats: Set<String> = ["jpg", "png", "gif", "webp", "tiff", "bmp", "heic", "avif"]
    /// Those read since render version 6 (sizes cached as unknown before are read again once).
    public static let laterDisplayedFormats: Set<String> = ["tiff", "bmp", "heic", "avif"]

    /// The size the engine shows by default: EXIF orientations 5 to 8 swap the sides. Nil for
    /// formats outside `displayedFormats`, a header it cannot read, or a zero side.
    public static func displayedSize(_ data: Data) -> (width: Int, height: Int)? {
        guard let header = read(data), header.width > 0, header.height > 0 else { return nil }
        let kind: String? = data.withUnsafeBytes { raw in
            let bytes = Bytes(raw)
            if bytes.matches(0, [0xFF, 0xD8, 0xFF]) { return "jpg" }
            if bytes.matches(0, [0x89, 0x50, 0x4E, 0x47]) { return "png" }
            if bytes.matches(0, Array("GIF8".utf8)) { return "gif" }
            if bytes.matches(0, Array("RIFF".utf8)), bytes.matches(8, Array("WEBP".utf8)) { return "webp" }
            if bytes.matches(0, Array("BM".utf8)) { return "bmp" }
            if bytes.matches(0, [0x49, 0x49, 0x2A, 0x00]) || bytes.matches(0, [0x4D, 0x4D, 0x00, 0x2A]) { return "tiff" }
            if bytes.matches(4, Array("ftyp".utf8)) { return "heic" }
            return nil
        }
        guard let kind, displayedFormats.contains(kind) else { return nil }
        // A GIF whose images reach past its logical screen (or whose blocks cannot be walked, a
        // file cut short) is shown by libvips at another size than the screen's: unknown, so the
        // planner plans it as written (attack 48's F4: a 100 px screen holding a 300 px frame was
        // taken for 100 px, and w=200 drawn at 100 px).
        if kind == "gif", GIFBlocks.framesExceedScreen(data) != false { return nil }
        return (5...8).contains(header.orientation) ? (header.height, header.width) : (header.width, header.height)
    }

    /// Roughly how many bytes rendering `source` may hold at once: decoded pixels of every frame
    /// at 4 bytes, twice for an intermediate copy (the engine's estimate, from this header).
    public static func memoryEstimate(_ source: Data) -> Int {
        guard let header = read(source) else { return 16 << 20 }
        // A HEIF decoder allocates its coded size (odd sides padded), more than the clean aperture.
        let coded = source.withUnsafeBytes { raw -> SourceHeader? in
            let bytes = Bytes(raw)
            return bytes.matches(4, Array("ftyp".utf8)) ? heifCoded(bytes) : nil
        }
        let (width, height) = coded.map { (max($0.width, header.width), max($0.height, header.height)) } ?? (header.width, header.height)
        return max(1 << 20, product(width, height, header.frames, 4 * 2))
    }

    /// The header of a JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC or AVIF; nil for anything else.
    public static func read(_ data: Data) -> SourceHeader? {
        data.withUnsafeBytes { read(Bytes($0)) }
    }

    static func read(_ bytes: Bytes) -> SourceHeader? {
        if bytes.matches(0, [0xFF, 0xD8, 0xFF]) { return jpeg(bytes) }
        if bytes.matches(0, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return png(bytes) }
        if bytes.matches(0, Array("GIF8".utf8)) { return gif(bytes) }
        if bytes.matches(0, Array("RIFF".utf8)), bytes.matches(8, Array("WEBP".utf8)) { return webp(bytes) }
        if bytes.matches(0, Array("BM".utf8)) { return bmp(bytes) }
        if bytes.matches(0, [0x49, 0x49, 0x2A, 0x00]) { return tiff(bytes, little: true) }
        if bytes.matches(0, [0x4D, 0x4D, 0x00, 0x2A]) { return tiff(bytes, little: false) }
        if bytes.matches(4, Array("ftyp".utf8)) { return heif(bytes) }
        return nil
    }

    /// The product of header numbers, saturated at `Int.max` (a product past Int's range is
    /// over every limit, not an overflow trap).
    static func product(_ factors: Int...) -> Int {
        var result = 1
        for factor in factors {
            let (next, overflow) = result.multipliedReportingOverflow(by: max(0, factor))
            if overflow { return Int.max }
            result = next
        }
        return result
    }

    /// Bounds-checked reads: a short or damaged header gives nil, never a trap. Shared with the
    /// engine's loader footprint (Imaging), which reads more of the same headers.
    public struct Bytes {
        public let raw: UnsafeRawBufferPointer
        public init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }
        public var count: Int { raw.count }

        public func matches(_ offset: Int, _ expected: [UInt8]) -> Bool {
            guard offset >= 0, offset + expected.count <= raw.count else { return false }
            for (index, byte) in expected.enumerated() where raw[offset + index] != byte { return false }
            return true
        }

        public func u8(_ offset: Int) -> Int? {
            offset >= 0 && offset < raw.count ? Int(raw[offset]) : nil
        }

        public func u16(_ offset: Int, little: Bool) -> Int? {
            guard let a = u8(offset), let b = u8(offset + 1) else { return nil }
            return little ? a | b << 8 : a << 8 | b
        }

        public func u24le(_ offset: Int) -> Int? {
            guard let a = u8(offset), let b = u8(offset + 1), let c = u8(offset + 2) else { return nil }
            return a | b << 8 | c << 16
        }

        public func u32(_ offset: Int, little: Bool) -> Int? {
            guard let low = u16(offset + (little ? 0 : 2), little: little),
                  let high = u16(offset + (little ? 2 : 0), little: little) else { return nil }
            return high << 16 | low
        }

        public func u64be(_ offset: Int) -> Int? { u64(offset, little: false) }

        public func u64(_ offset: Int, little: Bool) -> Int? {
            guard let low = u32(offset + (little ? 0 : 4), little: little),
                  let high = u32(offset + (little ? 4 : 0), little: little), high < 1 << 31 else { return nil }
            return high << 32 | low
        }

        public func tag(_ offset: Int) -> String? {
            guard offset >= 0, offset + 4 <= raw.count else { return nil }
            return String(decoding: raw[offset..<offset + 4], as: UTF8.self)
        }
    }

    /// The first start-of-frame marker (SOF0–SOF15 but DHT, JPG and DAC) gives the size; the
    /// orientation is read as libvips reads it (attack 39b's M3): libjpeg hands over every marker
    /// before the scan (SOS), so an APP1 after the frame header counts too; the first APP1 whose
    /// data is over 4 bytes and opens with "Exif" is the only one libexif parses (a later one,
    /// even valid, is ignored; an "Exif" one that does not parse means no orientation).
    static func jpeg(_ bytes: Bytes) -> SourceHeader? {
        var offset = 2
        var orientation: Int?
        var exifSeen = false
        var size: (width: Int, height: Int)?
        while offset + 4 <= bytes.count {
            guard bytes.u8(offset) == 0xFF, let marker = bytes.u8(offset + 1) else { break }
            if marker == 0xFF { offset += 1; continue }   // fill byte
            if marker == 0x01 || (0xD0...0xD8).contains(marker) { offset += 2; continue }   // no length
            if marker == 0xDA || marker == 0xD9 { break }   // the scan (or the end): libjpeg reads no marker past it
            guard let length = bytes.u16(offset + 2, little: false), length >= 2 else { break }
            if marker == 0xE1, !exifSeen, length - 2 > 4, bytes.matches(offset + 4, [0x45, 0x78, 0x69, 0x66]) {   // "Exif"
                exifSeen = true
                if bytes.matches(offset + 8, [0, 0]) {
                    orientation = exifOrientation(bytes, tiff: offset + 10, end: min(bytes.count, offset + 2 + length))
                }
            }
            if size == nil, (0xC0...0xCF).contains(marker), marker != 0xC4, marker != 0xC8, marker != 0xCC {
                guard let height = bytes.u16(offset + 5, little: false), let width = bytes.u16(offset + 7, little: false) else { return nil }
                size = (width, height)
            }
            offset += 2 + length
        }
        guard let size else { return nil }
        return SourceHeader(width: size.width, height: size.height, frames: 1, orientation: orientation ?? 1)
    }

    /// Tag 0x0112 of IFD0 in the TIFF structure at `tiff`, read no further than `end`, as libexif
    /// and libvips read it: its first component, of type BYTE, SBYTE, SHORT, SSHORT, LONG or
    /// SLONG (each at its own width, inline when the components fit in 4 bytes, else at the
    /// offset); any other type or no component is no orientation (attack 39b's M3: an SLONG
    /// entry holding a SHORT's bytes was read as 6, libvips read none). Nil when absent,
    /// damaged or outside 1...8.
    static func exifOrientation(_ bytes: Bytes, tiff: Int, end: Int) -> Int? {
        guard tiff + 8 <= end, let order = bytes.u8(tiff), order == 0x49 || order == 0x4D else { return nil }
        let little = order == 0x49
        func u16(_ at: Int) -> Int? { at >= tiff && at + 2 <= end ? bytes.u16(at, little: little) : nil }
        func u32(_ at: Int) -> Int? { at >= tiff && at + 4 <= end ? bytes.u32(at, little: little) : nil }
        guard let directory = u32(tiff + 4), let count = u16(tiff + directory) else { return nil }
        for entry in 0..<min(count, 256) {
            let at = tiff + directory + 2 + entry * 12
            guard let tag = u16(at) else { return nil }
            guard tag == 0x0112 else { continue }
            guard let type = u16(at + 2), let components = u32(at + 4), components >= 1 else { return nil }
            let width: Int
            switch type {
            case 1, 6: width = 1    // BYTE, SBYTE
            case 3, 8: width = 2    // SHORT, SSHORT
            case 4, 9: width = 4    // LONG, SLONG
            default: return nil
            }
            guard components <= (end - tiff) / width else { return nil }
            let data: Int
            if components * width <= 4 { data = at + 8 } else {
                guard let offset = u32(at + 8) else { return nil }
                data = tiff + offset
            }
            let value: Int?
            switch width {
            case 1: value = data >= tiff && data + 1 <= end ? bytes.u8(data) : nil
            case 2: value = u16(data)
            default: value = u32(data)
            }
            return value.flatMap { (1...8).contains($0) ? $0 : nil }
        }
        return nil
    }

    static func png(_ bytes: Bytes) -> SourceHeader? {
        guard bytes.tag(12) == "IHDR", let width = bytes.u32(16, little: false), let height = bytes.u32(20, little: false) else { return nil }
        return SourceHeader(width: width, height: height, frames: 1, orientation: pngOrientation(bytes) ?? 1)
    }

    /// The largest PNG eXIf chunk the engine lets libvips read (`PNGExif` leaves larger ones out).
    public static let pngExifLimit = 65_536

    /// The orientation in a PNG's eXIf chunk, as the engine applies it: libpng reads the chunks
    /// before the first IDAT (an eXIf after it is not read), keeps the first eXIf whose data
    /// opens with a TIFF byte order ("II" or "MM"; a duplicate is ignored), and an eXIf over
    /// `pngExifLimit` bytes never reaches it. The walk follows the chunks' lengths, bounded by
    /// the bytes; nil when there is none or it holds no orientation in 1...8.
    static func pngOrientation(_ bytes: Bytes) -> Int? {
        var offset = 8
        while offset + 12 <= bytes.count, let length = bytes.u32(offset, little: false), let type = bytes.tag(offset + 4) {
            let end = offset + 12 + length
            if type == "IDAT" || type == "IEND" || end > bytes.count { return nil }
            if type == "eXIf", length <= pngExifLimit, let order = bytes.u8(offset + 8), order == 0x49 || order == 0x4D,
               bytes.u8(offset + 9) == order {
                return exifOrientation(bytes, tiff: offset + 8, end: offset + 8 + length)
            }
            offset = end
        }
        return nil
    }

    /// The orientation in a WebP's EXIF chunk, as libvips reads it through libwebp's demuxer:
    /// only in an extended file (VP8X) whose EXIF flag is set, the first EXIF chunk, with or
    /// without an "Exif\0\0" prefix (no size limit: libvips reads it whole). The walk follows
    /// the chunks' sizes, bounded by the bytes. An animation is drawn without its orientation
    /// (the engine orients stills), so it gives nil too.
    static func webpOrientation(_ bytes: Bytes) -> Int? {
        guard bytes.tag(12) == "VP8X", let flags = bytes.u8(20), flags & 0x08 != 0, flags & 0x02 == 0 else { return nil }
        var offset = 30
        while offset + 8 <= bytes.count, let size = bytes.u32(offset + 4, little: true), let type = bytes.tag(offset) {
            let end = offset + 8 + size
            guard end <= bytes.count else { return nil }
            if type == "EXIF" {
                let prefixed = bytes.matches(offset + 8, [0x45, 0x78, 0x69, 0x66, 0, 0])   // "Exif\0\0"
                return exifOrientation(bytes, tiff: offset + 8 + (prefixed ? 6 : 0), end: end)
            }
            offset = end + (size & 1)
        }
        return nil
    }

    /// The size libvips shows (the logical screen's, or larger where the first image reaches
    /// past it: `GIFBlocks.extent`) and the number of images (every frame is composed at that size).
    package static func gif(_ bytes: Bytes) -> SourceHeader? {
        guard bytes.u16(6, little: true) != nil, bytes.u16(8, little: true) != nil, let extent = GIFBlocks.extent(bytes.raw) else { return nil }
        let frames = extent.frames ?? 1   // cut short: libvips decodes what is there
        return SourceHeader(width: extent.width, height: extent.height, frames: max(1, frames))
    }

    /// VP8X holds the canvas of extended files; animations count their ANMF chunks.
    static func webp(_ bytes: Bytes) -> SourceHeader? {
        guard let header = WebPHeader(bytes) else { return nil }
        return SourceHeader(width: header.width, height: header.height, frames: max(1, header.frames),
                            orientation: webpOrientation(bytes) ?? 1)
    }

    /// What a WebP's RIFF header says, parsed once for the size (here) and for what libwebp's
    /// decode holds (the engine's loader footprint).
    public struct WebPHeader: Sendable, Hashable {
        /// The canvas (VP8X) or the frame (VP8, VP8L).
        public var width: Int
        public var height: Int
        /// ANMF chunks (0 for a still).
        public var frames: Int
        /// VP8X's animation flag.
        public var animated: Bool
        /// The still's image data is VP8L (libwebp decodes it whole, whatever the scale).
        public var lossless: Bool
        /// VP8X's alpha flag (a lossy still's ALPH plane is decoded at full size).
        public var alpha: Bool

        public init?(_ bytes: Bytes) {
            guard bytes.matches(0, Array("RIFF".utf8)), bytes.matches(8, Array("WEBP".utf8)), let chunk = bytes.tag(12) else { return nil }
            switch chunk {
            case "VP8X":
                guard let flags = bytes.u8(20), let w = bytes.u24le(24), let h = bytes.u24le(27) else { return nil }
                // A still's image chunk follows VP8X (after ICCP, ALPH...): the first VP8 or VP8L.
                var offset = 30, lossless = false
                while offset < 1 << 16, let size = bytes.u32(offset + 4, little: true) {
                    if bytes.matches(offset, Array("VP8L".utf8)) { lossless = true; break }
                    if bytes.matches(offset, Array("VP8 ".utf8)) || bytes.matches(offset, Array("ANMF".utf8)) { break }
                    offset += 8 + size + (size & 1)
                }
                self.init(width: w + 1, height: h + 1, frames: WebPChunks.frameCount(bytes.raw) ?? 0,
                          animated: flags & 0x02 != 0, lossless: lossless, alpha: flags & 0x10 != 0)
            case "VP8 ":
                guard let w = bytes.u16(26, little: true), let h = bytes.u16(28, little: true) else { return nil }
                self.init(width: w & 0x3FFF, height: h & 0x3FFF, frames: 0, animated: false, lossless: false, alpha: false)
            case "VP8L":
                guard bytes.u8(20) == 0x2F, let bits = bytes.u32(21, little: true) else { return nil }
                self.init(width: (bits & 0x3FFF) + 1, height: ((bits >> 14) & 0x3FFF) + 1, frames: 0, animated: false,
                          lossless: true, alpha: bits >> 28 & 1 == 1)
            default:
                return nil
            }
        }

        public init(width: Int, height: Int, frames: Int, animated: Bool, lossless: Bool, alpha: Bool) {
            self.width = width
            self.height = height
            self.frames = frames
            self.animated = animated
            self.lossless = lossless
            self.alpha = alpha
        }
    }

    public static func bmp(_ bytes: Bytes) -> SourceHeader? {
        guard let size = bytes.u32(14, little: true) else { return nil }
        if size == 12 {
            guard let width = bytes.u16(18, little: true), let height = bytes.u16(20, little: true) else { return nil }
            return SourceHeader(width: width, height: height, frames: 1)
        }
        guard let width = bytes.u32(18, little: true), let height = bytes.u32(22, little: true) else { return nil }
        // A negative width means nothing (only a negative height does: top-down rows): a damaged
        // header, for the integrity check to name, not a 4 294 967 196 px side.
        guard width < 1 << 31 else { return nil }
        let signedHeight = height >= 1 << 31 ? (1 << 32) - height : height   // top-down rows
        return SourceHeader(width: width, height: signedHeight, frames: 1)
    }

    /// The first image file directory's ImageWidth (256) and ImageLength (257).
    static func tiff(_ bytes: Bytes, little: Bool) -> SourceHeader? {
        guard let directory = bytes.u32(4, little: little), let entries = bytes.u16(directory, little: little) else { return nil }
        var width: Int?, height: Int?, orientation = 1
        for index in 0..<min(entries, 4096) {
            let entry = directory + 2 + index * 12
            guard let tag = bytes.u16(entry, little: little), let type = bytes.u16(entry + 2, little: little) else { return nil }
            guard tag == 256 || tag == 257 || tag == 274 else { continue }
            let value = type == 3 ? bytes.u16(entry + 8, little: little) : bytes.u32(entry + 8, little: little)
            switch tag {
            case 256: width = value
            case 257: height = value
            default: if let value, (1...8).contains(value) { orientation = value }   // Orientation, which libvips applies as for JPEG
            }
        }
        guard let width, let height else { return nil }
        return SourceHeader(width: width, height: height, frames: 1, orientation: orientation)
    }

    /// HEIC and AVIF: the size libheif decodes. The primary item (`pitm`) names its properties
    /// in `ipma`: its spatial extent (`ispe`, the coded size: HEVC pads odd sides to even), a
    /// clean aperture (`clap`, which crops to the real size: a 333-high image is coded 334 high)
    /// and a rotation (`irot`: a quarter or three quarters turn swaps the sides). Without a
    /// primary item or its associations, the largest `ispe` (a grid's tiles are smaller).
    static func heif(_ bytes: Bytes) -> SourceHeader? {
        var boxes = HEIFBoxes()
        boxes.walk(bytes, 0, bytes.count, depth: 0)
        if let primary = boxes.primary, let indices = boxes.associations[primary] {
            let properties = indices.compactMap { $0 >= 1 && $0 <= boxes.properties.count ? boxes.properties[$0 - 1] : nil }
            if let extent = properties.lazy.compactMap({ if case .extent(let w, let h) = $0 { return (w, h) } else { return nil } }).first {
                var (width, height) = extent
                var turned = false
                // In the order listed, as libheif applies them: a crop then a turn, or the reverse.
                for property in properties {
                    switch property {
                    case .aperture(let w, let h) where w >= 1 && h >= 1 && w <= width && h <= height: (width, height) = (w, h)
                    case .rotation(let quarter) where quarter: turned.toggle(); (width, height) = (height, width)
                    default: break
                    }
                }
                // Stored size, before the turn (orientation 6 is how `displayedSize` swaps sides).
                return turned ? SourceHeader(width: height, height: width, frames: 1, orientation: 6)
                    : SourceHeader(width: width, height: height, frames: 1)
            }
        }
        var best: SourceHeader?
        for case .extent(let width, let height) in boxes.properties
        where product(width, height) > product(best?.width ?? 0, best?.height ?? 0) {
            best = SourceHeader(width: width, height: height, frames: 1)
        }
        if boxes.properties.contains(where: { if case .rotation(true) = $0 { return true } else { return false } }) { best?.orientation = 6 }
        return best
    }

    /// The coded size of a HEIF image: the largest `ispe`, before any clean aperture. What the
    /// decoder allocates, so the memory estimate never falls short of it.
    static func heifCoded(_ bytes: Bytes) -> SourceHeader? {
        var boxes = HEIFBoxes()
        boxes.walk(bytes, 0, bytes.count, depth: 0)
        var best: SourceHeader?
        for case .extent(let width, let height) in boxes.properties
        where product(width, height) > product(best?.width ?? 0, best?.height ?? 0) {
            best = SourceHeader(width: width, height: height, frames: 1)
        }
        return best
    }

    /// The boxes of a HEIF file's `meta` that give its size: the primary item, the item
    /// properties in order (1-based in `ipma`), and which properties each item has.
    struct HEIFBoxes {
        enum Property { case extent(Int, Int), aperture(Int, Int), rotation(Bool), other }
        var primary: Int?
        var properties: [Property] = []
        var associations: [Int: [Int]] = [:]

        mutating func walk(_ bytes: Bytes, _ start: Int, _ end: Int, depth: Int) {
            var offset = start
            while offset + 8 <= end, depth < 4 {
                guard var size = bytes.u32(offset, little: false), let type = bytes.tag(offset + 4) else { return }
                var header = 8
                if size == 1 {
                    guard let large = bytes.u64be(offset + 8) else { return }
                    size = large
                    header = 16
                } else if size == 0 {
                    size = end - offset
                }
                guard size >= header, offset + size <= end else { return }
                let body = offset + header
                switch type {
                case "meta": walk(bytes, body + 4, offset + size, depth: depth + 1)   // a full box
                case "iprp": walk(bytes, body, offset + size, depth: depth + 1)
                case "ipco": properties(bytes, body, offset + size)
                case "pitm":
                    // A full box: version 0 has a 16-bit item id, later ones 32 bits.
                    primary = bytes.u8(body) == 0 ? bytes.u16(body + 4, little: false) : bytes.u32(body + 4, little: false)
                case "ipma": associate(bytes, body, offset + size)
                default: break
                }
                offset += size
            }
        }

        /// Every property of `ipco` in order, so `ipma`'s indices find them.
        mutating func properties(_ bytes: Bytes, _ start: Int, _ end: Int) {
            var offset = start
            while offset + 8 <= end, properties.count < 4096 {
                guard let size = bytes.u32(offset, little: false), size >= 8, offset + size <= end, let type = bytes.tag(offset + 4) else { return }
                let body = offset + 8
                switch type {
                case "ispe":
                    if let width = bytes.u32(body + 4, little: false), let height = bytes.u32(body + 8, little: false) {
                        properties.append(.extent(width, height))
                    } else { properties.append(.other) }
                case "clap":
                    // Width and height as fractions (numerator, denominator), rounded as libheif does.
                    if let wn = bytes.u32(body, little: false), let wd = bytes.u32(body + 4, little: false),
                       let hn = bytes.u32(body + 8, little: false), let hd = bytes.u32(body + 12, little: false), wd > 0, hd > 0 {
                        properties.append(.aperture((wn + wd / 2) / wd, (hn + hd / 2) / hd))
                    } else { properties.append(.other) }
                case "irot": properties.append(.rotation((bytes.u8(body) ?? 0) & 1 == 1))
                default: properties.append(.other)
                }
                offset += size
            }
        }

        /// `ipma`: for each item, the 1-based indices of its properties (7 or 15 bits).
        mutating func associate(_ bytes: Bytes, _ start: Int, _ end: Int) {
            guard let version = bytes.u8(start), let flags = bytes.u8(start + 3), let count = bytes.u32(start + 4, little: false) else { return }
            var offset = start + 8
            for _ in 0..<min(count, 65536) {
                guard let item = version < 1 ? bytes.u16(offset, little: false) : bytes.u32(offset, little: false) else { return }
                offset += version < 1 ? 2 : 4
                guard let associated = bytes.u8(offset) else { return }
                offset += 1
                var indices: [Int] = []
                for _ in 0..<associated {
                    if flags & 1 == 1 {
                        guard let value = bytes.u16(offset, little: false) else { return }
                        indices.append(value & 0x7FFF); offset += 2
                    } else {
                        guard let value = bytes.u8(offset) else { return }
                        indices.append(value & 0x7F); offset += 1
                    }
                    guard offset <= end else { return }
                }
                associations[item] = indices
            }
        }
    }
}
