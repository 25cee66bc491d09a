import ProcessLanguage

/// The watermark images one render sends its worker with the source, sized from their files
/// before any of them, or the source, is read: the source and its marks travel in one message
/// of at most `Limits.renderBytes`, so a source that does not fit beside them is refused from
/// its size (a 600 MB source and a 500 MB mark under a raised byte limit were read whole, 2.3 GB
/// and 29 s, before the message's cap refused them).
public struct RenderInputs: Sendable {
    public struct Mark: Sendable, Hashable {
        public var key: String
        public var bytes: Int
    }

    public let limits: Limits
    /// The pipeline's watermark objects whose size the resolver knows (one that does not exist
    /// is left to the render, which says so).
    public let marks: [Mark]

    /// Sizes the pipeline's watermark objects through `resolver` (no byte read); a mark over the
    /// byte limit alone is refused here with its own message.
    public init(_ pipeline: Pipeline, resolver: any ObjectResolver, limits: Limits) throws {
        var marks: [Mark] = []
        for case .object(let key) in pipeline.dependencies {
            guard let bytes = resolver.objectSize(key) else { continue }
            try limits.checkWatermark(key, bytes: bytes, width: 0, height: 0)
            marks.append(Mark(key: key, bytes: bytes))
        }
        self.limits = limits
        self.marks = marks
    }

    /// The marks' bytes together (saturating: a size near Int.max is over every cap).
    public var marksBytes: Int {
        marks.reduce(0) { total, mark in
            let (sum, overflow) = total.addingReportingOverflow(mark.bytes)
            return overflow ? Int.max : sum
        }
    }

    /// The largest source this render reads: the byte limit, less what its marks take of one render.
    public var maxSourceBytes: Int { max(0, min(limits.maxBytes, Limits.renderBytes - min(marksBytes, Limits.renderBytes))) }

    /// Refuses a source of `bytes` (named `name` when known) from its size: over the byte limit,
    /// or too large to travel with its marks.
    public func checkSource(_ name: String?, bytes: Int) throws {
        try limits.checkBytes(bytes)
        let (total, overflow) = bytes.addingReportingOverflow(marksBytes)
        guard overflow || total > Limits.renderBytes else { return }
        let named = marks.map { "'\($0.key)' (\($0.bytes) bytes)" }
        let marksText = named.count == 1 ? "its watermark image \(named[0])" : "its watermark images \(named.joined(separator: ", "))"
        throw ProcessError(.imageTooLarge, ec: "0040-00000012",
                           "the source \(name.map { "'\($0)' " } ?? "")(\(bytes) bytes) and \(marksText) are \(overflow ? "more than \(Int.max)" : "\(total)") bytes together; one render takes at most \(Limits.renderBytes) bytes of source and watermark images, whatever \(limits.setting("bytes")) says (use smaller files or fewer watermark images)")
    }

    /// The refusal of a source of `bytes` over `maxSourceBytes` (what a read refused with that size).
    public func sourceRefusal(_ name: String, bytes: Int) -> any Error {
        do { try checkSource(name, bytes: bytes) } catch { return error }
        return ProcessError(.imageTooLarge, "the source '\(name)' is over \(maxSourceBytes) bytes")
    }
}
