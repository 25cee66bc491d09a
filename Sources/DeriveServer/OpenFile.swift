import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A byte range of an open file that an answer streams (a GET never loads the object whole).
/// Reads use `pread`, so the range can be read again and the descriptor is never moved.
public final class OpenFile: Sendable {
    let descriptor: Int32
    public let offset: Int64
    public let length: Int
    /// The MD5 of the range, when its owner knows it (a cache entry records it): the ETag.
    public let md5: [UInt8]?

    init(descriptor: Int32, offset: Int64 = 0, length: Int, md5: [UInt8]? = nil) {
        self.descriptor = descriptor
        self.offset = offset
        self.length = length
        self.md5 = md5
    }

    deinit { close(descriptor) }

    /// Up to `count` bytes at `position` within the range; empty at its end.
    public func read(at position: Int, count: Int) throws -> Data {
        let wanted = max(0, min(count, length - position))
        guard wanted > 0 else { return Data() }
        var data = Data(count: wanted)
        let got = data.withUnsafeMutableBytes { raw -> Int in
            var filled = 0
            while filled < wanted {
                let n = pread(descriptor, raw.baseAddress! + filled, wanted - filled, off_t(offset) + off_t(position + filled))
                if n < 0 { if errno == EINTR { continue }; return -1 }
                if n == 0 { break }
                filled += n
            }
            return filled
        }
        guard got >= 0 else { throw FileReadError(code: errno) }
        if got < wanted { data.removeSubrange(got...) }
        return data
    }

    /// The whole range (tests and small answers).
    public func readAll() throws -> Data {
        var data = Data()
        data.reserveCapacity(length)   // grown piece by piece, a large source was copied as it grew
        while data.count < length {
            let piece = try read(at: data.count, count: 1 << 20)
            if piece.isEmpty { break }
            data.append(piece)
        }
        return data
    }

    struct FileReadError: Error, CustomStringConvertible {
        var code: Int32
        var description: String { "read failed: \(String(cString: strerror(code)))" }
    }
}

/// An answer's body: bytes in memory (errors, renders) or a range of a file (objects, cache hits).
public enum Payload: Sendable {
    case data(Data)
    case file(OpenFile)

    public var count: Int {
        switch self {
        case .data(let data): return data.count
        case .file(let file): return file.length
        }
    }
}
