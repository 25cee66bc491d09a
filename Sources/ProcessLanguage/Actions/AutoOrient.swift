/// `auto-orient` (spec §2.6): `1` applies the EXIF Orientation, `0` keeps the stored pixels.
///
/// Choice (spec §6.5): orientation is applied by default, because outputs are stripped of
/// metadata and an unrotated pixel grid without its tag would display sideways. The action acts
/// globally wherever it stands in the chain (it chooses how the source is decoded); the last one wins.
public struct AutoOrient: ProcessAction {
    public static let name = "auto-orient"
    public var enabled: Bool

    public init(enabled: Bool) { self.enabled = enabled }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        enabled = try p.positionalInt(in: 0...1) == 1
    }

    public var canonicalItems: [String] { [enabled ? "1" : "0"] }
}
