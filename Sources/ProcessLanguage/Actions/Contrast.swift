/// `contrast` (spec §2.9): contrast change in [-100, 100]; 0 leaves the image unchanged.
///
/// Choice (the curve is unpublished): channels are scaled around mid-grey (128) by
/// `1 + value/100` for negative values (−100 gives flat grey) and `1 + value/50` for positive
/// ones (+100 triples the distance from grey).
public struct Contrast: ProcessAction {
    public static let name = "contrast"
    public var value: Int

    public init(value: Int) { self.value = value }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        value = try p.positionalInt(in: -100...100)
    }

    public var canonicalItems: [String] { ["\(value)"] }

    public var factor: Double { value < 0 ? 1 + Double(value) / 100 : 1 + Double(value) / 50 }
}
