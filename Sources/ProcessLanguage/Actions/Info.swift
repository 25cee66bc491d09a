/// `info` (spec §2.14, §3.1): answer JSON describing the image instead of pixels.
///
/// Choice (spec §6.13): `info` always describes the stored source object (its file size,
/// format, frames, dimensions and EXIF), wherever it stands in the chain.
public struct Info: ProcessAction {
    public static let name = "info"
    public init() {}
    public init(parameters p: inout Parameters, context: ParseContext) throws {}
    public var canonicalItems: [String] { [] }
}
