import Foundation
import ImagingCore

/// The exact shapes of what the index says of a source besides its outputs, as Derive writes
/// them. A value taken from an index on disk (a fresh clone adopting the index the lock's first
/// line names: both files come from the clone, so the digest proves nothing) or from an older
/// state is kept only when it has that shape; anything else is rendered again. A site template
/// prints these unescaped (`color | safeCSS`, `placeholder.src | safeURL`).
enum SummaryShape {
    /// The data URI prefix of a placeholder image.
    static let placeholderPrefix = "data:image/webp;base64,"
    /// The most bytes a placeholder WebP may have: a 32x32 image is 4 KiB of RGBA, and a
    /// blurred q60 WebP of it is far smaller (the demo's: 156 and 168 bytes; with alpha, 724).
    static let maxPlaceholderBytes = 8 << 10
    /// A ThumbHash is 5 bytes of header and at most 20 of factors.
    static let thumbHashBytes = 5...25

    /// `#rrggbb`, lowercase hex: `Builder.colour(averageHue:)`'s answer.
    static func isColour(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.count == 7 && bytes[0] == UInt8(ascii: "#")
            && bytes.dropFirst().allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    /// `data:image/webp;base64,` and the canonical base64 of a still RIFF/WEBP file of at most
    /// `maxPlaceholderBytes`, whose RIFF size is its own.
    static func isPlaceholderImage(_ text: String) -> Bool {
        guard text.hasPrefix(placeholderPrefix) else { return false }
        let encoded = String(text.dropFirst(placeholderPrefix.count))
        guard encoded.utf8.count <= (maxPlaceholderBytes + 2) / 3 * 4, let bytes = canonicalBase64(encoded),
              bytes.count >= 20, bytes.count <= maxPlaceholderBytes,
              bytes.prefix(4).elementsEqual("RIFF".utf8), bytes.dropFirst(8).prefix(4).elementsEqual("WEBP".utf8) else { return false }
        let size = bytes.dropFirst(4).prefix(4).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return size == bytes.count - 8 && WebPChunks.frameCount(bytes) == 0
    }

    /// The canonical base64 of 5 to 25 bytes.
    static func isThumbHash(_ text: String) -> Bool {
        guard text.utf8.count <= 36, let bytes = canonicalBase64(text) else { return false }
        return thumbHashBytes.contains(bytes.count)
    }

    /// A placeholder whose fields are each empty or of Derive's shape, not both empty.
    static func isPlaceholder(image: String, thumbhash: String) -> Bool {
        !(image.isEmpty && thumbhash.isEmpty) && (image.isEmpty || isPlaceholderImage(image)) && (thumbhash.isEmpty || isThumbHash(thumbhash))
    }

    /// The state's colours by source digest that can stay: Derive's shape, or empty (none could
    /// be made). A value an older Derive adopted from a planted index is rendered again.
    static func recorded(colours: [String: String]) -> [String: String] {
        colours.filter { $0.value.isEmpty || isColour($0.value) }
    }

    /// The same for the state's placeholders (both empty: none could be made).
    static func recorded(placeholders: [String: (image: String, thumbhash: String)]) -> [String: (image: String, thumbhash: String)] {
        placeholders.filter { ($0.value.image.isEmpty && $0.value.thumbhash.isEmpty) || isPlaceholder(image: $0.value.image, thumbhash: $0.value.thumbhash) }
    }

    /// The bytes of standard, padded base64 exactly as Foundation writes it, else nil.
    static func canonicalBase64(_ text: String) -> Data? {
        guard let data = Data(base64Encoded: text), data.base64EncodedString() == text else { return nil }
        return data
    }
}
