import Foundation
import Testing
import Imaging
import ProcessLanguage

/// Issue #10, fourth attack, finding 2: what can never succeed is refused before the cost, and
/// a watermark's own cost names the watermark.
struct EngineRound4Tests {
    /// 64 × "W" at size_1000 is wider than any text mark can be: EC 0040-00000259, not "raise --max-work".
    @Test func tooWideTextIsRefusedBeforeTheWorkEstimate() throws {
        let source = try Fixtures.quadrants(400, 300, as: .png)
        let text = Base64URL.encode(String(repeating: "W", count: 64))
        let error = EngineAttackTests.error(source, "image/watermark,text_\(text),size_1000")
        #expect(error?.ec == "0040-00000259" && error?.parameter == "size", "\(String(describing: error))")
        #expect(error?.message.contains("max-work") == false, "\(String(describing: error))")
        // Text that fits still renders.
        let fits = try Engine().render(source, try Pipeline.parse("image/watermark,text_\(Base64URL.encode("WWWW")),size_200"))
        #expect(fits.width == 400)
    }

    /// A watermark image that alone is over the work limit is named, not the source image.
    @Test func oversizedWatermarkImageIsNamed() throws {
        let source = try Fixtures.quadrants(100, 100, as: .png)
        let mark = try Fixtures.solid(2000, 2000, Fixtures.red, as: .png)
        var limits = Limits.oss
        limits.maxWork = 50_000_000
        let process = "image/watermark,image_" + Base64URL.encode("big-mark.png")
        let error = EngineAttackTests.error(source, process, limits: limits, resolver: MemoryObjects(objects: ["big-mark.png": mark]))
        #expect(error?.code == .imageTooLarge && error?.message.contains("'big-mark.png'") == true, "\(String(describing: error))")
        #expect(error?.message.contains("for this image") == false, "\(String(describing: error))")
    }
}
