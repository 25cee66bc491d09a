/// `interlace` (spec §2.10): `1` writes progressive JPEG (and interlaced PNG/GIF), `0` baseline.
/// An encoder setting: the last one in the chain wins.
public struct Interlace: ProcessAction {
    public static let name = "interlace"
    public var enabled: Bool

    public init(enabled: Bool) { self.enabled = enabled }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        enabled = try p.positionalInt(in: 0...1) == 1
    }

    public var canonicalItems: [String] { [enabled ? "1" : "0"] }
}
