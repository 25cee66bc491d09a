/// Estimates the quality a JPEG was saved with, from its luminance quantisation table, by
/// finding the IJG quality whose scaled standard table is closest. Needed for `quality,q_`
/// (relative) and `quality,Q_` (capped at the source's quality).
enum JPEGQuality {
    /// The IJG standard luminance table (JPEG Annex K), in zigzag order as stored in DQT.
    static let standardLuminance: [Int] = [
        16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
        26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
        56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
        95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
    ]

    static func estimate(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let table = luminanceTable(bytes) else { return nil }
        var best: (quality: Int, error: Int)?
        for quality in 1...100 {
            let scale = quality < 50 ? 5000 / quality : 200 - quality * 2
            var error = 0
            for (index, base) in standardLuminance.enumerated() {
                let expected = min(255, max(1, (base * scale + 50) / 100))
                error += abs(expected - table[index])
            }
            if error < (best?.error ?? Int.max) { best = (quality, error) }
        }
        return best?.quality
    }

    /// The first 8-bit quantisation table with id 0 in the DQT segments.
    static func luminanceTable(_ bytes: UnsafeRawBufferPointer) -> [Int]? {
        guard bytes.count > 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return nil }
        var position = 2
        while position + 4 <= bytes.count {
            guard bytes[position] == 0xFF else { return nil }
            let marker = bytes[position + 1]
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { position += 2; continue }
            if marker == 0xDA || marker == 0xD9 { return nil }
            let length = Int(bytes[position + 2]) << 8 | Int(bytes[position + 3])
            guard length >= 2, position + 2 + length <= bytes.count else { return nil }
            if marker == 0xDB {
                var offset = position + 4
                let end = position + 2 + length
                while offset < end {
                    let precision = bytes[offset] >> 4, id = bytes[offset] & 0x0F
                    let size = precision == 0 ? 64 : 128
                    guard offset + 1 + size <= end else { return nil }
                    if id == 0 {
                        return (0..<64).map { index in
                            precision == 0 ? Int(bytes[offset + 1 + index])
                                : Int(bytes[offset + 1 + 2 * index]) << 8 | Int(bytes[offset + 2 + 2 * index])
                        }
                    }
                    offset += 1 + size
                }
            }
            position += 2 + length
        }
        return nil
    }
}
