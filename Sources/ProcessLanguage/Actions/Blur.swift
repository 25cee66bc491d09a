/// `blur` (spec §2.8): Gaussian blur with radius `r` and standard deviation `s`, both [1, 50].
///
/// Choice: `g` (face/faces) and `p` need Alibaba's cloud face detection; offline they are refused
/// with a clear error rather than silently blurring the whole image.
public struct Blur: ProcessAction {
    public static let name = "blur"
    public var radius: Int
    public var sigma: Int

    public init(radius: Int, sigma: Int) { self.radius = radius; self.sigma = sigma }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        if let g = p.string("g") {
            guard g == "face" || g == "faces" else {
                throw ProcessError(.invalidArgument, ec: "0004-00000243",
                                   "blur: parameter 'g' must be face or faces, got '\(g)'", parameter: "g")
            }
            _ = try p.int("p", in: 1...200, ec: "0004-00000244")
            throw ProcessError(.badRequest, ec: "0004-00000243",
                               "blur: g_\(g) needs cloud face detection, which Derive does not offer; remove 'g' to blur the whole image",
                               parameter: "g")
        }
        guard let r = try p.int("r", in: 1...50, ec: "0040-00000241") else {
            throw ProcessError(.missingArgument, ec: "0040-00000241", "blur: the radius r is required, e.g. 'blur,r_3,s_2'", parameter: "r")
        }
        guard let s = try p.int("s", in: 1...50, ec: "0040-00000242") else {
            throw ProcessError(.missingArgument, ec: "0040-00000242", "blur: the standard deviation s is required, e.g. 'blur,r_3,s_2'", parameter: "s")
        }
        radius = r
        sigma = s
    }

    public var canonicalItems: [String] { ["r_\(radius)", "s_\(sigma)"] }
}
