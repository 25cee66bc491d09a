/// `average-hue` (spec §2.15, §3.2): answer `{"RGB": "0xrrggbb"}`, the mean colour of the image's
/// salient pixels, computed on the image as processed by the actions before it.
public struct AverageHue: ProcessAction {
    public static let name = "average-hue"
    public init() {}
    public init(parameters p: inout Parameters, context: ParseContext) throws {}
    public var canonicalItems: [String] { [] }
}
