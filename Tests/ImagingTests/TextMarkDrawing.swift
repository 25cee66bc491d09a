import Foundation
import ProcessLanguage
@testable import Imaging

/// Draws a text watermark on a white 240×80 canvas and counts its ink: the font suites'
/// (`FontCoverageRound37Tests`, `FontNamesRound37Tests`) one helper.
protocol TextMarkDrawing {}

extension TextMarkDrawing {
    /// `text` in the font of `type` at `size`, top left, as PNG bytes.
    func render(_ text: String, type: String, size: Int = 40) throws -> Data {
        let process = "image/format,png/watermark,g_nw,x_0,y_0,size_\(size),text_\(Base64URL.encode(text)),type_\(Base64URL.encode(type))"
        return try Engine().render(try Fixtures.solid(240, 80, [255, 255, 255]), try Pipeline.parse(process)).bytes
    }

    /// Pixels that are not white.
    func ink(_ png: Data) throws -> Int {
        let raster = try Raster.decode(png)
        var count = 0
        for y in 0..<raster.height { for x in 0..<raster.width where raster.pixel(x, y).prefix(3).contains(where: { $0 < 200 }) { count += 1 } }
        return count
    }
}
