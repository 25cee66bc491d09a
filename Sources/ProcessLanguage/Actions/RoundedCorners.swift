/// `rounded-corners` (spec §2.5): round the four corners with radius `r`, capped at half the
/// shorter side. Outside is transparent when the output format has alpha, white otherwise.
public struct RoundedCorners: ProcessAction {
    public static let name = "rounded-corners"
    public var radius: Int

    public init(radius: Int) { self.radius = radius }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        guard let r = try p.int("r", in: 1...4096, ec: "0040-00000237") else {
            throw ProcessError(.missingArgument, ec: "0040-00000237", "rounded-corners: the radius r is required, e.g. 'rounded-corners,r_30'", parameter: "r")
        }
        radius = r
    }

    public var canonicalItems: [String] { ["r_\(radius)"] }
}
