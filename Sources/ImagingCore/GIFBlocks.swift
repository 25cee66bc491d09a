import Foundation

/// The block structure of a GIF, walked without decoding: libvips' GIF loader stops quietly at
/// 4 097 frames and at data it cannot parse, so its frame count alone cannot tell a whole GIF
/// from a cut or damaged one.
public enum GIFBlocks {
    /// The number of images (frames) in `data`, or nil when the blocks do not reach a trailer
    /// (truncated or damaged). Reads each byte at most once.
    public static func frameCount(_ data: Data) -> Int? {
        data.withUnsafeBytes { frameCount(UnsafeRawBufferPointer($0)) }
    }

    package static func frameCount(_ bytes: UnsafeRawBufferPointer) -> Int? {
        walk(bytes)?.frames
    }

    /// Whether an image of the GIF reaches past its logical screen (left + width, or top +
    /// height, beyond the screen's): libvips then shows another size than the screen's (a 100 px
    /// screen holding a 300 px frame loads 300 px wide). Nil when the blocks cannot be walked.
    public static func framesExceedScreen(_ data: Data) -> Bool? {
        data.withUnsafeBytes { raw in
            guard let walked = walk(UnsafeRawBufferPointer(raw)), raw.count >= 10 else { return nil }
            let width = Int(raw[6]) | Int(raw[7]) << 8, height = Int(raw[8]) | Int(raw[9]) << 8
            return walked.right > width || walked.bottom > height
        }
    }

    /// An image's own size, as its descriptor gives it, and its number (1 for the first).
    package struct FrameSize: Sendable, Hashable {
        package var number: Int
        package var width: Int
        package var height: Int
    }

    /// What the GIF's descriptors say before any pixel is decoded (read as far as the blocks can
    /// be walked, each byte at most once: the source's byte limit bounds it).
    package struct Extent: Sendable, Hashable {
        /// The size libvips 8.14 shows: the logical screen, grown where the FIRST image reaches
        /// past it (attack 48a's check: a 1x1 screen holding a 60000x60000 frame). A later image
        /// past the screen does not grow it (attack 49b's F7: libvips shows 100x50 for a 100x50
        /// screen whose 2nd frame sits at x=29990; it draws only what falls on the canvas).
        package var width: Int
        package var height: Int
        /// Nil when the blocks do not reach the trailer.
        package var frames: Int?
        /// The images read, whole GIF or not.
        package var framesRead: Int
        /// The image with the longest side and the one with the most pixels, by their own size:
        /// each is decoded whole, on the canvas or not, so they are bounded by the limits too.
        package var longestSide: FrameSize?
        package var mostPixels: FrameSize?
    }

    package static func extent(_ bytes: UnsafeRawBufferPointer) -> Extent? {
        guard bytes.count >= 10, bytes[0] == 0x47, bytes[1] == 0x49, bytes[2] == 0x46 else { return nil }
        let screenWidth = Int(bytes[6]) | Int(bytes[7]) << 8, screenHeight = Int(bytes[8]) | Int(bytes[9]) << 8
        var first: (right: Int, bottom: Int)?
        var longestSide: FrameSize?, mostPixels: FrameSize?
        let scanned = scan(bytes) { number, left, top, width, height in
            if number == 1 { first = (left + width, top + height) }
            if max(width, height) > longestSide.map({ max($0.width, $0.height) }) ?? -1 {
                longestSide = FrameSize(number: number, width: width, height: height)
            }
            if width * height > mostPixels.map({ $0.width * $0.height }) ?? -1 {
                mostPixels = FrameSize(number: number, width: width, height: height)
            }
        }
        return Extent(width: max(screenWidth, first?.right ?? 0), height: max(screenHeight, first?.bottom ?? 0),
                      frames: scanned.complete ? scanned.frames : nil, framesRead: scanned.frames,
                      longestSide: longestSide, mostPixels: mostPixels)
    }

    /// The number of images, and how far right and down the furthest reaches; nil when cut short
    /// or not a GIF's blocks.
    static func walk(_ bytes: UnsafeRawBufferPointer) -> (frames: Int, right: Int, bottom: Int)? {
        let scanned = scan(bytes)
        return scanned.complete ? (scanned.frames, scanned.right, scanned.bottom) : nil
    }

    /// `walk`'s reading, with what was read before the blocks ended when they do not reach a
    /// trailer (`complete` false).
    /// `image` is told of each image descriptor: its number (1 for the first), left, top, width, height.
    static func scan(_ bytes: UnsafeRawBufferPointer,
                     image: (_ number: Int, _ left: Int, _ top: Int, _ width: Int, _ height: Int) -> Void = { _, _, _, _, _ in })
        -> (frames: Int, right: Int, bottom: Int, complete: Bool) {
        let count = bytes.count
        var right = 0, bottom = 0
        var frames = 0
        guard count >= 13, bytes[0] == 0x47, bytes[1] == 0x49, bytes[2] == 0x46 else { return (0, 0, 0, false) }
        var offset = 13
        // Logical screen descriptor: a global colour table follows when bit 7 of byte 10 is set.
        let screenFlags = bytes[10]
        if screenFlags & 0x80 != 0 { offset += 3 << (Int(screenFlags & 0x07) + 1) }
        /// Skips data sub-blocks up to and including their zero terminator; false if cut.
        func skipSubBlocks() -> Bool {
            while offset < count {
                let size = Int(bytes[offset])
                offset += 1 + size
                if size == 0 { return offset <= count }
            }
            return false
        }
        let cut = { (frames, right, bottom, false) }
        while offset < count {
            switch bytes[offset] {
            case 0x3B:
                return (frames, right, bottom, true)
            case 0x21:
                // Extension: label, then sub-blocks.
                offset += 2
                guard offset <= count, skipSubBlocks() else { return cut() }
            case 0x2C:
                // Image descriptor (10 bytes), local colour table, LZW code size, sub-blocks.
                guard offset + 10 <= count else { return cut() }
                func u16(_ at: Int) -> Int { Int(bytes[offset + at]) | Int(bytes[offset + at + 1]) << 8 }
                right = max(right, u16(1) + u16(5))
                bottom = max(bottom, u16(3) + u16(7))
                image(frames + 1, u16(1), u16(3), u16(5), u16(7))
                let flags = bytes[offset + 9]
                offset += 10
                if flags & 0x80 != 0 { offset += 3 << (Int(flags & 0x07) + 1) }
                guard offset < count else { return cut() }
                let codeSize = bytes[offset]
                guard (1...11).contains(codeSize) else { return cut() }
                offset += 1
                guard skipSubBlocks() else { return cut() }
                frames += 1
            default:
                return cut()
            }
        }
        return cut()
    }
}
