/// `sharpen` (spec §2.9): strength in [50, 399]; the docs suggest 100.
///
/// Choice (the filter is unpublished): an unsharp mask with a Gaussian of sigma 1, adding
/// `value / 100` times the detail back (100 doubles local contrast at edges, 399 is 5x).
public struct Sharpen: ProcessAction {
    public static let name = "sharpen"
    public var value: Int

    public init(value: Int) { self.value = value }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        value = try p.positionalInt(in: 50...399, ec: "0040-00000280", missingEC: "0040-00000279")
    }

    public var canonicalItems: [String] { ["\(value)"] }
}
