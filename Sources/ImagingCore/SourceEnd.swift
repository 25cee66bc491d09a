import Foundation

/// Whether a source was cut short, from the bytes already read for its digest, without
/// decoding: what `derive plan` can see that `build` would refuse. Only proofs count (a file
/// that passes may still fail to decode; data damaged in the middle is not seen here):
/// - a JPEG whose markers run past its end, or with no end-of-image marker (FF D9) after its
///   first scan (an EXIF thumbnail's own marker sits before the scan and does not count);
/// - a PNG whose chunks run past its end;
/// - a GIF whose blocks never reach its trailer (the engine's own check, `GIFBlocks`);
/// - a WebP whose RIFF size is more than the file holds.
public enum SourceEnd {
    /// Why the source is cut short, or nil when no cheap check proves it.
    public static func truncation(_ data: Data) -> String? {
        data.withUnsafeBytes { truncation($0) }
    }

    /// The same, on bytes in memory.
    static func truncation(_ raw: UnsafeRawBufferPointer) -> String? {
        let bytes = SourceHeader.Bytes(raw)
        if bytes.matches(0, [0xFF, 0xD8, 0xFF]) { return jpeg(bytes) }
        if bytes.matches(0, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return png(bytes) }
        if bytes.matches(0, Array("GIF8".utf8)) {
            return GIFBlocks.frameCount(raw) == nil ? "the GIF's blocks end before its trailer (it was cut short or damaged)" : nil
        }
        if bytes.matches(0, Array("RIFF".utf8)), bytes.matches(8, Array("WEBP".utf8)), let size = bytes.u32(4, little: true),
           size + 8 > bytes.count {
            return "the WebP says \(size + 8) bytes but the file has \(bytes.count) (it was cut short)"
        }
        return nil
    }

    /// A PNG whose chunks run past its end, else nil (also for what is not a PNG).
    public static func pngTruncation(_ raw: UnsafeRawBufferPointer) -> String? {
        let bytes = SourceHeader.Bytes(raw)
        guard bytes.matches(0, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { return nil }
        return png(bytes)
    }

    static func jpeg(_ bytes: SourceHeader.Bytes) -> String? {
        var offset = 2
        while true {
            guard offset + 2 <= bytes.count else { return "the JPEG ends inside its header (it was cut short)" }
            guard bytes.u8(offset) == 0xFF, let marker = bytes.u8(offset + 1) else { return nil }   // damaged: the decoder says how
            if marker == 0xFF { offset += 1; continue }   // fill byte
            if marker == 0x01 || (0xD0...0xD8).contains(marker) { offset += 2; continue }   // no length
            if marker == 0xD9 { return nil }   // an end before any scan: nothing to draw, the decoder says so
            guard let length = bytes.u16(offset + 2, little: false), length >= 2 else {
                return "the JPEG ends inside its header (it was cut short)"
            }
            if marker == 0xDA { break }   // the first scan: image data follows
            offset += 2 + length
        }
        // Entropy-coded data never holds FF D9 (an FF is followed by 00 or a restart marker), so
        // the end-of-image marker after the first scan is the file's own; bytes after it are ignored.
        var index = bytes.count - 2
        while index > offset {
            if bytes.u8(index) == 0xFF, bytes.u8(index + 1) == 0xD9 { return nil }
            index -= 1
        }
        return "the JPEG has no end-of-image marker after its image data (it was cut short)"
    }

    /// A chunk type as a message may print it: letters and digits as they are, any other byte
    /// as `\xNN` (a damaged file's type held NULs, printed raw).
    static func printable(_ bytes: SourceHeader.Bytes, at offset: Int) -> String {
        (offset..<offset + 4).compactMap { bytes.u8($0) }.map { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                ? String(UnicodeScalar(UInt8(byte))) : String(format: "\\x%02X", byte)
        }.joined()
    }

    static func png(_ bytes: SourceHeader.Bytes) -> String? {
        var offset = 8
        while offset + 8 <= bytes.count {
            guard let length = bytes.u32(offset, little: false), let type = bytes.tag(offset + 4) else { return nil }
            if type == "IEND" { return nil }
            let (next, overflow) = offset.addingReportingOverflow(12 + length)
            if overflow || next > bytes.count { return "the PNG's \(Self.printable(bytes, at: offset + 4)) chunk runs past the end of the file (it was cut short)" }
            offset = next
        }
        return offset == bytes.count ? nil : "the PNG ends inside a chunk header (it was cut short)"
    }
}
