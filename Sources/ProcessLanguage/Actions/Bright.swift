/// `bright` (spec §2.9): brightness change in [-100, 100]; 0 leaves the image unchanged.
///
/// Choice (the curve is unpublished): every colour channel moves by `value × 2.55` levels.
public struct Bright: ProcessAction {
    public static let name = "bright"
    public var value: Int

    public init(value: Int) { self.value = value }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        value = try p.positionalInt(in: -100...100, ec: "0040-00000246", missingEC: "0040-00000245")
    }

    public var canonicalItems: [String] { ["\(value)"] }
}
