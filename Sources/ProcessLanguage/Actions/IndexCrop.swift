/// `indexcrop` (spec §2.3): cut the image into slices along one axis and keep slice `i`.
///
/// Choices: when both `x` and `y` are given, `y` wins (with a warning); the last slice is the
/// remainder, possibly shorter; an index past the last slice returns the image unchanged.
public struct IndexCrop: ProcessAction {
    public static let name = "indexcrop"

    public enum Axis: String, Sendable { case x, y }
    public var axis: Axis
    public var size: Int
    public var index: Int = 0
    var ignoredWarnings: [ProcessWarning] = []

    public init(axis: Axis, size: Int, index: Int = 0) {
        self.axis = axis; self.size = size; self.index = index
    }

    public init(parameters p: inout Parameters, context: ParseContext) throws {
        let x = try p.int("x", in: 1...Int(Int32.max), ec: "0040-00000230")
        let y = try p.int("y", in: 1...Int(Int32.max), ec: "0040-00000230")
        index = try p.int("i", in: 0...Int(Int32.max)) ?? 0
        if let y {
            axis = .y; size = y
            if x != nil {
                ignoredWarnings.append(ProcessWarning(action: Self.name, parameter: "x",
                                                      message: "indexcrop: x is ignored when y is given"))
            }
        } else if let x {
            axis = .x; size = x
        } else {
            throw ProcessError(.missingArgument, ec: "0040-00000230",
                               "indexcrop: give the slice size x (vertical cuts) or y (horizontal cuts), e.g. 'indexcrop,x_100,i_0'")
        }
    }

    public static func == (a: IndexCrop, b: IndexCrop) -> Bool { a.canonical == b.canonical }
    public func hash(into hasher: inout Hasher) { hasher.combine(canonical) }

    public var canonicalItems: [String] { ["\(axis.rawValue)_\(size)", "i_\(index)"] }

    /// The slice rectangle, or nil when `i` is past the last slice (the image is returned as is).
    public func rectangle(imageWidth W: Int, imageHeight H: Int) -> (left: Int, top: Int, width: Int, height: Int)? {
        let extent = axis == .x ? W : H
        let start = index * size
        guard start < extent else { return nil }
        let length = min(size, extent - start)
        return axis == .x ? (start, 0, length, H) : (0, start, W, length)
    }
}
