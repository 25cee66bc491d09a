import Confinement

/// Percent-decoding and key validation: any bytes in, and whatever is accepted must be a key
/// that cannot leave its bucket (valid UTF-8, no control bytes, no empty, `.` or `..` segment).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzObjectKey(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    for candidate in [try? ObjectKey(percentEncoded: Substring(decoding: input, as: UTF8.self)), try? ObjectKey(bytes: input)] {
        guard let key = candidate else { continue }
        precondition(!key.bytes.isEmpty && key.bytes.count <= ObjectKey.maxBytes)
        precondition(String(validating: key.bytes, as: UTF8.self) != nil, "accepted invalid UTF-8")
        precondition(!key.bytes.contains { $0 < 0x20 || $0 == 0x7F }, "accepted a control byte")
        for segment in key.segments {
            precondition(!segment.isEmpty, "accepted an empty segment")
            precondition(!segment.elementsEqual([0x2E]) && !segment.elementsEqual([0x2E, 0x2E]), "accepted a dot segment")
        }
        // The string form round-trips to the same bytes, and the scalars to the same string.
        precondition(Array(key.string.utf8) == key.bytes)
        precondition(String(String.UnicodeScalarView(key.scalars)) == key.string)
        precondition((try? ObjectKey(key.string)) == key)
    }
    return 0
}
