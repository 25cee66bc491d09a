import Foundation

/// A PNG's eXIf chunk is read by libpng one byte at a time (about 150 ns a byte: a 100×100 PNG
/// with a 15 MiB eXIf chunk cost 2.4 s of CPU before a pixel was decoded, which no estimate
/// counted, and held a render slot for as long). EXIF is at most 64 KiB where it was born (a
/// JPEG APP1 segment), so an eXIf chunk over that is left out of the bytes libvips reads: the
/// image renders as if it had none (outputs carry no metadata anyway).
enum PNGExif {
    static let maxBytes = 65_536

    /// `source` without its eXIf chunks over `maxBytes`; nil when it is not a PNG or has none.
    /// The chunks are walked by their lengths, so the walk is bounded by the file.
    static func withoutOversized(_ source: Data) -> Data? {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        return source.withUnsafeBytes { raw -> Data? in
            guard raw.count >= 8, raw.prefix(8).elementsEqual(signature) else { return nil }
            func u32(_ at: Int) -> Int { raw[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
            var dropped: [Range<Int>] = []
            var offset = 8
            while offset + 12 <= raw.count {
                let length = u32(offset)
                let end = offset + 12 + length
                guard end <= raw.count else { break }
                let type = raw[offset + 4..<offset + 8]
                if type.elementsEqual("eXIf".utf8), length > maxBytes { dropped.append(offset..<end) }
                if type.elementsEqual("IEND".utf8) { break }
                offset = end
            }
            guard !dropped.isEmpty else { return nil }
            var kept = Data(capacity: raw.count - dropped.reduce(0) { $0 + $1.count })
            var from = 0
            for range in dropped {
                kept.append(contentsOf: raw[from..<range.lowerBound])
                from = range.upperBound
            }
            kept.append(contentsOf: raw[from...])
            return kept
        }
    }
}
