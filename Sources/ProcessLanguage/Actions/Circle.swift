/// `circle` (spec §2.4): keep the disc of radius `r` around the centre.
///
/// Choice (spec §6.8): the output is the `2r+1` square around the centre; when `r` exceeds half
/// the shorter side it becomes `(shorter − 1) / 2`. Outside the disc is transparent when the
/// output format has alpha, white otherwise.
public struct Circle: ProcessAction {
    public static let name = "circle"
    public var radius: Int

    public init(radius: Int) { self.radius = radius }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        guard let r = try p.int("r", in: 1...4096, ec: "0040-00000233") else {
            throw ProcessError(.missingArgument, ec: "0040-00000233", "circle: the radius r is required, e.g. 'circle,r_100'", parameter: "r")
        }
        radius = r
    }

    public var canonicalItems: [String] { ["r_\(radius)"] }

    public func effectiveRadius(imageWidth W: Int, imageHeight H: Int) -> Int {
        let shorter = min(W, H)
        return radius * 2 + 1 > shorter ? max(0, (shorter - 1) / 2) : radius
    }
}
