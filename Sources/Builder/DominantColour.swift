/// A picture's dominant colour, for the index's `dominant` (issue #13; attack 36a's M6: `color`
/// is OSS's `average-hue` answer, the colour of the minority hues). Computed from the picture
/// drawn within 100x100 (`Placeholder.pixels`, rendered by the engine like any derivative):
/// each pixel falls in one cell of a coarse colour histogram (8 levels a channel, 512 cells);
/// the most populated cell wins, and its colour is the mean of its pixels (rounded half up), so
/// a flat area answers its own colour exactly.
/// - Transparent pixels (alpha under 128) are not part of the picture: they are left out, and a
///   picture with none left has no dominant colour (nil: the index leaves the field out).
/// - A tie goes to the cell met first reading the pixels row by row from the top left, so a
///   picture half blue (left) and half red answers blue, and its mirror image red.
public enum DominantColour {
    /// Levels of each channel that share a cell: 256 / 32 = 8 cells a channel.
    static let cellWidth = 32

    /// `#rrggbb` in lowercase hex for `rgba` (`width` × `height` pixels, 4 bytes each), or nil.
    public static func hex(width: Int, height: Int, rgba: [UInt8]) -> String? {
        let count = min(width * height, rgba.count / 4)
        guard count > 0 else { return nil }
        let cells = (256 / cellWidth) * (256 / cellWidth) * (256 / cellWidth)
        var population = [Int](repeating: 0, count: cells)
        var sums = [(r: Int, g: Int, b: Int)](repeating: (0, 0, 0), count: cells)
        // Where each cell was first met (reading order): the tie-break.
        var firstSeen = [Int](repeating: Int.max, count: cells)
        for pixel in 0..<count {
            let at = pixel * 4
            guard rgba[at + 3] >= 128 else { continue }
            let r = Int(rgba[at]), g = Int(rgba[at + 1]), b = Int(rgba[at + 2])
            let side = 256 / cellWidth
            let cell = (r / cellWidth * side + g / cellWidth) * side + b / cellWidth
            population[cell] += 1
            sums[cell].r += r; sums[cell].g += g; sums[cell].b += b
            if firstSeen[cell] == Int.max { firstSeen[cell] = pixel }
        }
        var best: Int?
        for cell in 0..<cells where population[cell] > 0 {
            guard let current = best else { best = cell; continue }
            if population[cell] > population[current] || (population[cell] == population[current] && firstSeen[cell] < firstSeen[current]) {
                best = cell
            }
        }
        guard let best else { return nil }
        let n = population[best]
        func mean(_ sum: Int) -> Int { (2 * sum + n) / (2 * n) }
        let sum = sums[best]
        return "#" + [mean(sum.r), mean(sum.g), mean(sum.b)].map { value in
            let digits = String(value, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }
}
