import Foundation

/// The RIFF chunks of a WebP, walked without decoding: libvips (libwebp's demuxer) reads every
/// frame of an animated WebP to open its header, in time that grows faster than the frame count
/// (100 000 tiny frames outlast the render deadline), so frames are counted here first and
/// capped like a GIF's before libvips sees the file.
public enum WebPChunks {
    /// The number of animation frames (ANMF chunks) in `data`: 0 for a still WebP, nil when
    /// the bytes are not a RIFF WebP. A chunk cut short ends the walk (libvips judges the
    /// damage); each chunk header is read once, so the walk is bounded by the file size / 8.
    public static func frameCount(_ data: Data) -> Int? {
        data.withUnsafeBytes { frameCount(UnsafeRawBufferPointer($0)) }
    }

    package static func frameCount(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let count = bytes.count
        guard count >= 12,
              bytes[0] == 0x52, bytes[1] == 0x49, bytes[2] == 0x46, bytes[3] == 0x46,   // RIFF
              bytes[8] == 0x57, bytes[9] == 0x45, bytes[10] == 0x42, bytes[11] == 0x50   // WEBP
        else { return nil }
        var offset = 12
        var frames = 0
        while offset + 8 <= count {
            let size = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8
                | Int(bytes[offset + 6]) << 16 | Int(bytes[offset + 7]) << 24
            if bytes[offset] == 0x41, bytes[offset + 1] == 0x4E, bytes[offset + 2] == 0x4D, bytes[offset + 3] == 0x46 {
                frames += 1   // ANMF
            }
            // Chunks are padded to an even size.
            offset += 8 + size + (size & 1)
        }
        return frames
    }
}
