/// `rotate` (spec §2.7): clockwise degrees in [0, 360]; other angles than right angles grow the
/// canvas to the rotated bounding box.
///
/// Choice (spec §6.8): exposed corners are transparent when the output format has alpha and
/// white otherwise, as for `circle`. `360` is written canonically as `0`.
public struct Rotate: ProcessAction {
    public static let name = "rotate"
    public var degrees: Int
    public static let maxSourceSide = 4096

    public init(degrees: Int) { self.degrees = degrees % 360 }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        degrees = try p.positionalInt(in: 0...360, ec: "0040-00000217", missingEC: "0040-00000216") % 360
    }

    public var canonicalItems: [String] { ["\(degrees)"] }
}
