import Foundation

/// A GIF built in a test: a logical screen and images placed anywhere on (or past) it, each of
/// one colour of a 4-colour table (0 red, 1 blue, 2 green, 3 white). The pixel data is valid LZW
/// (a clear code every 2 pixels keeps the codes 3 bits wide), so libvips decodes it.
public enum GIFFrames {
    public struct Frame: Sendable {
        public var left, top, width, height, colour: Int
        public init(left: Int, top: Int, width: Int, height: Int, colour: Int) {
            self.left = left; self.top = top; self.width = width; self.height = height; self.colour = colour
        }
    }

    public static func gif(screenWidth: Int, screenHeight: Int, _ frames: [Frame]) -> Data {
        func le16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
        var bytes = Array("GIF89a".utf8) + le16(screenWidth) + le16(screenHeight) + [0xF1, 0, 0]
        bytes += [255, 0, 0, 0, 0, 255, 0, 255, 0, 255, 255, 255]
        bytes += [0x21, 0xFF, 0x0B] + Array("NETSCAPE2.0".utf8) + [3, 1, 0, 0, 0]   // loop forever
        for frame in frames {
            bytes += [0x21, 0xF9, 4, 0, 10, 0, 0, 0]   // 0.1 s a frame
            bytes += [0x2C] + le16(frame.left) + le16(frame.top) + le16(frame.width) + le16(frame.height) + [0]
            bytes += lzw(colour: frame.colour, pixels: frame.width * frame.height)
        }
        return Data(bytes + [0x3B])
    }

    /// Minimum code size 2: codes 4 (clear) and 5 (end), 3 bits each.
    static func lzw(colour: Int, pixels: Int) -> [UInt8] {
        var codes: [Int] = []
        var index = 0
        while index < pixels {
            codes.append(4)
            codes += Array(repeating: colour, count: min(2, pixels - index))
            index += 2
        }
        codes.append(5)
        var packed: [UInt8] = []
        var accumulator = 0, bits = 0
        for code in codes {
            accumulator |= code << bits
            bits += 3
            while bits >= 8 { packed.append(UInt8(accumulator & 0xFF)); accumulator >>= 8; bits -= 8 }
        }
        if bits > 0 { packed.append(UInt8(accumulator & 0xFF)) }
        var blocks: [UInt8] = [2]
        var start = 0
        while start < packed.count {
            let end = min(start + 255, packed.count)
            blocks.append(UInt8(end - start))
            blocks += packed[start..<end]
            start = end
        }
        return blocks + [0]
    }
}
