import ProcessLanguage

/// Any bytes as a process string: parsing never crashes, and a chain that parses has a
/// canonical form that parses back to the same chain.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProcessLanguage(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    for candidate in [text, "image/" + text] {
        guard let pipeline = try? Pipeline.parse(candidate, styles: ["s": "image/resize,w_10"]) else { continue }
        let canonical = pipeline.canonical
        guard let again = try? Pipeline.parse(canonical) else {
            fatalError("the canonical form of '\(candidate)' does not parse: '\(canonical)'")
        }
        if again.canonical != canonical {
            fatalError("canonical form is not stable: '\(canonical)' -> '\(again.canonical)'")
        }
        _ = pipeline.dependencies
    }
    return 0
}
