/// `crop` (spec §2.2): a rectangle anchored on a 3×3 grid, shifted by `x`/`y`, clipped to the image.
///
/// Choices: `g` defaults to `nw`; `w_0`/`h_0` mean "up to the edge", the same as leaving them out.
/// A start point outside the image is `BadRequest` (decided at render time, when the size is known).
public struct Crop: ProcessAction {
    public static let name = "crop"

    public var width: Int?
    public var height: Int?
    public var x: Int = 0
    public var y: Int = 0
    public var gravity: Gravity = .nw

    public init(width: Int? = nil, height: Int? = nil, x: Int = 0, y: Int = 0, gravity: Gravity = .nw) {
        self.width = width; self.height = height; self.x = x; self.y = y; self.gravity = gravity
    }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        let w = try p.int("w", in: 0...Int(Int32.max), ec: "0040-00000225")
        let h = try p.int("h", in: 0...Int(Int32.max), ec: "0040-00000226")
        width = w == 0 ? nil : w
        height = h == 0 ? nil : h
        x = try p.int("x", in: 0...Int(Int32.max)) ?? 0
        y = try p.int("y", in: 0...Int(Int32.max)) ?? 0
        if let g = try p.choice("g", of: Gravity.allCases.map(\.rawValue)) { gravity = Gravity(rawValue: g)! }
    }

    public var canonicalItems: [String] {
        var items: [String] = []
        if let width { items.append("w_\(width)") }
        if let height { items.append("h_\(height)") }
        items += ["x_\(x)", "y_\(y)", "g_\(gravity.rawValue)"]
        return items
    }

    /// The clipped rectangle inside a `W`×`H` image.
    public func rectangle(imageWidth W: Int, imageHeight H: Int) throws -> (left: Int, top: Int, width: Int, height: Int) {
        let w = min(width ?? W, W)
        let h = min(height ?? H, H)
        let origin = gravity.origin(containerWidth: W, containerHeight: H, width: w, height: h)
        let left = origin.x + x
        let top = origin.y + y
        guard left < W, top < H else {
            throw ProcessError(.badRequest, "Advance cut's position is out of image. (crop starts at \(left),\(top) in a \(W)x\(H) image)",
                               action: Self.name)
        }
        return (left, top, min(w, W - left), min(h, H - top))
    }
}

/// The nine anchors shared by `crop` and `watermark`.
public enum Gravity: String, Sendable, CaseIterable {
    case nw, north, ne, west, center, east, sw, south, se

    public var column: Int { [0, 1, 2, 0, 1, 2, 0, 1, 2][Gravity.allCases.firstIndex(of: self)!] }
    public var row: Int { [0, 0, 0, 1, 1, 1, 2, 2, 2][Gravity.allCases.firstIndex(of: self)!] }

    /// Top-left corner of a `width`×`height` box anchored in the container (crop's table in spec §2.2).
    public func origin(containerWidth W: Int, containerHeight H: Int, width w: Int, height h: Int) -> (x: Int, y: Int) {
        let x = [0, W / 2 - w / 2, W - w][column]
        let y = [0, H / 2 - h / 2, H - h][row]
        return (x, y)
    }
}
