/// `quality` (spec §2.11): `q` relative to the source JPEG's quality, `Q` absolute but never above
/// it; `Q` wins when both are given. Applies to JPEG and WebP (and HEIC/AVIF) output.
///
/// Choice: a bare value (`quality,80`) is read as `q_80`. An encoder setting: the last one wins.
public struct Quality: ProcessAction {
    public static let name = "quality"

    public enum Kind: String, Sendable { case relative = "q", absolute = "Q" }
    public var kind: Kind
    public var value: Int
    var ignoredWarnings: [ProcessWarning] = []

    public init(kind: Kind, value: Int) { self.kind = kind; self.value = value }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        if p.isEmpty {
            throw ProcessError(.missingArgument, ec: "0040-00000307", "quality: give q (relative) or Q (absolute), e.g. 'quality,q_80'")
        }
        let absolute = try p.int("Q", in: 1...100, ec: "0040-00000308")
        let relative = try p.int("q", in: 1...100, ec: "0040-00000309")
        var bare: Int?
        if absolute == nil, relative == nil {
            guard p.positional() != nil else {
                throw ProcessError(.missingArgument, ec: "0040-00000307", "quality: give q (relative) or Q (absolute), e.g. 'quality,q_80'")
            }
            bare = try p.positionalInt(in: 1...100, ec: "0040-00000310")
        }
        if let absolute {
            kind = .absolute; value = absolute
            if relative != nil {
                ignoredWarnings.append(ProcessWarning(action: Self.name, parameter: "q", message: "quality: q is ignored when Q is given"))
            }
        } else {
            kind = .relative; value = relative ?? bare!
        }
    }

    public static func == (a: Quality, b: Quality) -> Bool { a.canonical == b.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(canonical) }

    public var canonicalItems: [String] { ["\(kind.rawValue)_\(value)"] }

    /// The encoder quality for a source whose own quality is `sourceQuality` (100 when unknown).
    /// For WebP sources and outputs `q` behaves like an absolute value (spec §2.11).
    public func encoderQuality(sourceQuality: Int?) -> Int {
        guard let source = sourceQuality else { return value }
        switch kind {
        case .relative: return max(1, Int((Double(source) * Double(value) / 100).rounded()))
        case .absolute: return min(value, source)
        }
    }
}
