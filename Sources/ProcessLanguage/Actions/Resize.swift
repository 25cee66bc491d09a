/// `resize` (spec §2.1): scale by a box (`w`, `h`), a long/short side (`l`, `s`) or a
/// percentage (`p`), in one of five modes.
///
/// Choices where the spec is open (§6.1–6.4):
/// - Sizes are rounded half up, and never below 1 px.
/// - Only `w` or only `h`: `lfit`/`mfit` keep the aspect ratio; `fill`/`pad`/`fixed` use a square box.
/// - `l` alone makes the longer side `l`; `s` alone makes the shorter side `s`; `l` and `s` together
///   form a box whose long edge lies along the image's long edge. `l`/`s` are ignored (with a
///   warning) when `w` or `h` is given, and `p` is ignored when any of `w`, `h`, `l`, `s` is.
/// - `limit_1`: when the scaled image or `pad`'s canvas would be larger than the source on either
///   axis, the resize (including `fill`'s crop) is skipped and the rest of the chain still runs.
/// - `P` (percent of the main image) exists only inside a watermark's pre-process.
public struct Resize: ProcessAction {
    public static let name = "resize"

    public enum Mode: String, Sendable, CaseIterable { case lfit, mfit, fill, pad, fixed }

    public var mode: Mode = .lfit
    public var width: Int?
    public var height: Int?
    public var long: Int?
    public var short: Int?
    public var percent: Int?
    /// `P`: percent of the main image, watermark pre-process only.
    public var percentOfMain: Int?
    public var limit: Bool = true
    public var color: String = "FFFFFF"
    var ignoredWarnings: [ProcessWarning] = []

    public static let maxSide = 16_384
    public static let maxArea = 16_777_216

    public init(mode: Mode = .lfit, width: Int? = nil, height: Int? = nil, long: Int? = nil,
                short: Int? = nil, percent: Int? = nil, limit: Bool = true, color: String = "FFFFFF") {
        self.mode = mode; self.width = width; self.height = height; self.long = long
        self.short = short; self.percent = percent; self.limit = limit; self.color = color
    }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        if p.isEmpty {
            throw ProcessError(.missingArgument, ec: "0040-00000322",
                               "resize: give at least one of w, h, l, s or p, e.g. 'resize,w_200'")
        }
        if p.has("w"), p.has("h"), p.string("w") == "0", p.string("h") == "0" {
            throw ProcessError(.invalidArgument, ec: "0040-00000321",
                               "resize: w and h cannot both be 0", parameter: "w")
        }
        if let m = try p.choice("m", of: Mode.allCases.map(\.rawValue), ec: "0040-00000311") {
            mode = Mode(rawValue: m)!
        }
        width = try p.int("w", in: 1...Self.maxSide, ec: "0040-00000312")
        height = try p.int("h", in: 1...Self.maxSide, ec: "0040-00000312")
        long = try p.int("l", in: 1...Self.maxSide, ec: "0040-00000312")
        short = try p.int("s", in: 1...Self.maxSide, ec: "0040-00000315")
        percent = try p.int("p", in: 1...1000, ec: "0040-00000317")
        if context == .watermark {
            percentOfMain = try p.int("P", in: 1...100)
        }
        if let l = try p.int("limit", in: 0...1, ec: "0040-00000319") { limit = l == 1 }
        if let c = try p.color("color") { color = c }

        if width == nil, height == nil, long == nil, short == nil, percent == nil, percentOfMain == nil {
            throw ProcessError(.missingArgument, ec: "0040-00000322",
                               "resize: give at least one of w, h, l, s or p, e.g. 'resize,w_200'")
        }
        if (width != nil || height != nil), long != nil || short != nil {
            ignoredWarnings.append(ProcessWarning(action: Self.name, parameter: long != nil ? "l" : "s",
                                                  message: "resize: l and s are ignored when w or h is given"))
            long = nil; short = nil
        }
        if percent != nil, width != nil || height != nil || long != nil || short != nil || percentOfMain != nil {
            ignoredWarnings.append(ProcessWarning(action: Self.name, parameter: "p",
                                                  message: "resize: p is ignored when w, h, l, s or P is given"))
            percent = nil
        }
        if percentOfMain != nil, width != nil || height != nil || long != nil || short != nil {
            ignoredWarnings.append(ProcessWarning(action: Self.name, parameter: "P",
                                                  message: "resize: P is ignored when w, h, l or s is given"))
            percentOfMain = nil
        }
    }

    public static func == (a: Resize, b: Resize) -> Bool { a.canonical == b.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(canonical) }

    public var canonicalItems: [String] {
        var items = ["m_\(mode.rawValue)"]
        if let width { items.append("w_\(width)") }
        if let height { items.append("h_\(height)") }
        if let long { items.append("l_\(long)") }
        if let short { items.append("s_\(short)") }
        if let percent { items.append("p_\(percent)") }
        if let percentOfMain { items.append("P_\(percentOfMain)") }
        items.append("limit_\(limit ? 1 : 0)")
        items.append("color_\(color)")
        return items
    }

    /// The geometry of one resize of a `sourceWidth`×`sourceHeight` image.
    public struct Geometry: Hashable, Sendable {
        /// Size the image is scaled to.
        public var scaledWidth: Int
        public var scaledHeight: Int
        /// Final size: equal to the scaled size, or the box for `fill` (crop) and `pad` (canvas).
        public var width: Int
        public var height: Int
        /// True when nothing changes (limit_1 refused an enlargement, or the size is already right).
        public var isIdentity: Bool
    }

    /// Computes the output geometry. `mainWidth`/`mainHeight` serve `P` in watermarks;
    /// `neverEnlarge` forces `limit_1` (GIF sources are never enlarged).
    public func geometry(sourceWidth W: Int, sourceHeight H: Int, mainWidth: Int? = nil,
                         mainHeight: Int? = nil, neverEnlarge: Bool = false) throws -> Geometry {
        let w = Double(W), h = Double(H)
        // Saturating: a side past 2^52 is over every limit anyway and must not trap.
        func rounded(_ v: Double) -> Int { v < 0x1p52 ? max(1, Int((v + 0.5).rounded(.down))) : 1 << 52 }
        var boxW: Int?
        var boxH: Int?
        if let percent {
            boxW = rounded(w * Double(percent) / 100)
            boxH = rounded(h * Double(percent) / 100)
        } else if let percentOfMain {
            // P: the mark's size as a percentage of the main image, aspect kept.
            let targetW = Double(mainWidth ?? W) * Double(percentOfMain) / 100
            let targetH = Double(mainHeight ?? H) * Double(percentOfMain) / 100
            let scale = min(targetW / w, targetH / h)
            boxW = rounded(w * scale)
            boxH = rounded(h * scale)
        } else if width != nil || height != nil {
            boxW = width
            boxH = height
        } else if let long, let short {
            if W >= H { boxW = long; boxH = short } else { boxW = short; boxH = long }
        } else if let long {
            if W >= H { boxW = long } else { boxH = long }
            if mode == .fill || mode == .pad || mode == .fixed { boxW = long; boxH = long }
        } else if let short {
            if W <= H { boxW = short } else { boxH = short }
            if mode == .fill || mode == .pad || mode == .fixed { boxW = short; boxH = short }
        }

        var effectiveMode = mode
        if percent != nil || percentOfMain != nil { effectiveMode = .fixed }
        if boxW == nil || boxH == nil {
            switch effectiveMode {
            case .lfit, .mfit: break
            case .fill, .pad, .fixed:
                boxW = boxW ?? boxH
                boxH = boxH ?? boxW
            }
        }

        var scaledW: Int, scaledH: Int, finalW: Int, finalH: Int
        switch effectiveMode {
        case .fixed:
            scaledW = boxW!; scaledH = boxH!; finalW = scaledW; finalH = scaledH
        case .lfit, .mfit, .fill, .pad:
            let sx = boxW.map { Double($0) / w }
            let sy = boxH.map { Double($0) / h }
            let scale: Double
            switch (sx, sy) {
            case let (x?, y?): scale = (effectiveMode == .lfit || effectiveMode == .pad) ? min(x, y) : max(x, y)
            case let (x?, nil): scale = x
            case let (nil, y?): scale = y
            default: scale = 1
            }
            scaledW = boxW != nil && sx == scale ? boxW! : rounded(w * scale)
            scaledH = boxH != nil && sy == scale ? boxH! : rounded(h * scale)
            switch effectiveMode {
            case .fill, .pad: finalW = boxW!; finalH = boxH!
            default: finalW = scaledW; finalH = scaledH
            }
        }

        // A box asked for in full (both sides, or fill/pad/fixed's square) over the area limit is
        // an error for any source, as OSS's example `m_fixed,w_5000,h_5000` shows.
        if percent == nil, percentOfMain == nil, let boxW, let boxH, boxW * boxH > Self.maxArea {
            throw ProcessError(.imageTooLarge, ec: "0040-00000007",
                               "resize: the box \(boxW)x\(boxH) is over the output limit (area at most \(Self.maxArea))",
                               action: Self.name)
        }
        // Then limit_1: a result larger than the source (scaled image, or pad's canvas) is never
        // made, so it cannot be over the output limit either (a 1x29000 image with w_200 renders).
        if (limit || neverEnlarge), scaledW > W || scaledH > H || finalW > W || finalH > H {
            return Geometry(scaledWidth: W, scaledHeight: H, width: W, height: H, isIdentity: true)
        }
        if finalW > Self.maxSide || finalH > Self.maxSide || finalW * finalH > Self.maxArea {
            throw ProcessError(.imageTooLarge, ec: "0040-00000007",
                               "resize: the result \(finalW)x\(finalH) is over the output limit (each side at most \(Self.maxSide), area at most \(Self.maxArea))",
                               action: Self.name)
        }
        return Geometry(scaledWidth: scaledW, scaledHeight: scaledH, width: finalW, height: finalH,
                        isIdentity: scaledW == W && scaledH == H && finalW == W && finalH == H)
    }
}
