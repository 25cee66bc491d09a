import Foundation

/// The byte layout of the worker protocol: every message is a frame of a 16-byte header
/// (magic `DRWK`, protocol version as UInt32, payload length as UInt64, little-endian) followed
/// by its payload. Inside a payload, integers are little-endian 64-bit, strings and byte runs are
/// length-prefixed. A version change means both sides refuse each other's frames.
enum Wire {
    static let magic: [UInt8] = Array("DRWK".utf8)
    /// Bumped whenever a payload's layout changes.
    static let version: UInt32 = 1
    static let headerSize = 16
    /// Largest payload either side accepts: a source (at most a few tens of MB) plus its
    /// watermark objects, or a rendered output.
    static let maxPayload = 1 << 30

    static func header(payloadLength: Int) -> Data {
        var data = Data(magic)
        withUnsafeBytes(of: version.littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(payloadLength).littleEndian) { data.append(contentsOf: $0) }
        return data
    }

    /// The payload length announced by `header`, or why the header is not one of ours.
    static func payloadLength(_ header: Data) throws -> Int {
        let bytes = [UInt8](header)
        guard bytes.count == headerSize, Array(bytes[0..<4]) == magic else {
            throw WireError("not a render worker frame (bad magic)")
        }
        let frameVersion = bytes[4..<8].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard frameVersion == version else {
            throw WireError("the render worker speaks protocol version \(frameVersion), this derive speaks \(version): derive-render-worker and derive come from different builds; install them together")
        }
        let length = bytes[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length <= UInt64(maxPayload) else { throw WireError("a render worker frame announces \(length) bytes, over the limit of \(maxPayload)") }
        return Int(length)
    }
}

struct WireError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Builds a payload.
struct WireWriter {
    private(set) var data = Data()

    mutating func int(_ value: Int) {
        withUnsafeBytes(of: Int64(value).littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func byte(_ value: UInt8) { data.append(value) }

    mutating func double(_ value: Double) {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func bytes(_ value: Data) {
        int(value.count)
        data.append(value)
    }

    mutating func string(_ value: String) { bytes(Data(value.utf8)) }

    mutating func optionalString(_ value: String?) {
        byte(value == nil ? 0 : 1)
        if let value { string(value) }
    }

    mutating func optionalInt(_ value: Int?) {
        byte(value == nil ? 0 : 1)
        if let value { int(value) }
    }
}

/// Reads a payload; every read checks the bounds and throws on a short or malformed payload.
struct WireReader {
    private let data: Data
    private var position: Int

    init(_ data: Data) {
        self.data = data
        position = data.startIndex
    }

    var atEnd: Bool { position == data.endIndex }

    private mutating func take(_ count: Int) throws -> Data {
        guard count >= 0, data.endIndex - position >= count else { throw WireError("a render worker payload is shorter than its fields") }
        defer { position += count }
        return data[position..<position + count]
    }

    mutating func int() throws -> Int {
        let raw = try take(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Int(Int64(bitPattern: raw))
    }

    mutating func byte() throws -> UInt8 { try take(1).first! }

    mutating func double() throws -> Double {
        Double(bitPattern: try take(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    mutating func bytes() throws -> Data { Data(try take(try int())) }

    /// Passes over a byte field without copying it; returns where its bytes start.
    mutating func skipBytes() throws -> Int {
        let count = try int()
        let start = position
        _ = try take(count)
        return start
    }

    mutating func string() throws -> String {
        guard let text = String(data: try bytes(), encoding: .utf8) else { throw WireError("a render worker string is not UTF-8") }
        return text
    }

    mutating func optionalString() throws -> String? { try byte() == 0 ? nil : try string() }

    mutating func optionalInt() throws -> Int? { try byte() == 0 ? nil : try int() }
}
