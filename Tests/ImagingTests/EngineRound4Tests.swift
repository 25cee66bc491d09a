import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

/// Issue #10, fourth attack, finding 2: what can never succeed is refused before the cost, and
/// a watermark's own cost names the watermark.
@Suite(.ownThreads)
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

/// Finding 3: a GIF with bytes after its trailer renders as libvips reads it (the trailer ends
/// the GIF, like a JPEG's end-of-image); one whose blocks never reach a trailer stays refused.
@Suite(.ownThreads)
struct GIFTrailingDataTests {
    @Test func bytesAfterTheTrailerAreIgnored() throws {
        let whole = try SoundnessTests.animation(frames: 12, side: 60)
        let trailing = whole + Data("trailing data, not a GIF block".utf8) + Data(repeating: 0xAB, count: 100)
        #expect(GIFBlocks.frameCount(trailing) == 12)
        #expect(try Engine().render(trailing, try Pipeline.parse("image/format,gif")).frames == 12)
        let clean = try Engine().render(whole, try Pipeline.parse("image/format,png"))
        let extra = try Engine().render(trailing, try Pipeline.parse("image/format,png"))
        #expect(clean.bytes == extra.bytes)
    }
}

/// Finding 3: the CLI's limit flags and the manifest's `limits:` accept the same number forms.
@Suite(.ownThreads)
struct LimitNumberTests {
    @Test func oneSyntaxForLimits() {
        #expect(LimitNumber.parse("20") == 20)
        #expect(LimitNumber.parse("1_000_000") == 1_000_000)
        #expect(LimitNumber.parse("-1") == -1)
        for refused in ["0x10", "1.5", "1e3", "+5", "inf", "nan", "", "-", "_1", "1_", "1__0", " 1", "٣"] {
            #expect(LimitNumber.parse(refused) == nil, "\(refused)")
        }
    }
}
