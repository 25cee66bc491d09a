import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

/// Issue #10, third attack: per-frame action costs, corrupt pixels read outside the encoder,
/// corrupt watermark objects, oversized watermark text.
@Suite(.ownThreads)
struct EngineRound3Tests {
    static func error(_ source: Data, _ process: String, limits: Limits = .oss,
                      resolver: any ObjectResolver = NoObjects()) -> ProcessError? {
        EngineAttackTests.error(source, process, limits: limits, resolver: resolver)
    }

    static func truncatedPNG() throws -> Data {
        // Cut inside the image data, past the header.
        let whole = try Fixtures.quadrants(400, 300, as: .png)
        return Data(whole.prefix(whole.count / 2))
    }

    // MARK: 1. Work estimate

    /// Each action costs a fixed amount per frame: 32 circles on 2000 tiny frames ran to the deadline.
    @Test(arguments: ["image/" + Array(repeating: "circle,r_10", count: 32).joined(separator: "/"),
                      "image/watermark,text_SGk,size_1000,fill_1"])
    func everyActionCostsPerFrame(_ process: String) throws {
        let gif = try EngineAttackTests.manyFrames(2000)
        let error = Self.error(gif, process)
        #expect(error?.code == .imageTooLarge && error?.message.contains("work estimate") == true, "\(String(describing: error))")
    }

    /// A cheap chain on a short animation still renders.
    @Test func cheapAnimationStillRenders() throws {
        let gif = try EngineAttackTests.manyFrames(100)
        let output = try Engine().render(gif, try Pipeline.parse("image/circle,r_10/watermark,text_SGk,size_20"))
        #expect(output.frames == 100)
    }

    /// Stills: circles and tiled text cost what they measured (5.4 s and 4.8 s estimated as 3 s).
    @Test(arguments: ["image/" + Array(repeating: "circle,r_4096", count: 32).joined(separator: "/"),
                      "image/" + Array(repeating: "watermark,text_SGk,fill_1,size_1", count: 8).joined(separator: "/")])
    func expensiveStillChainsAreRefused(_ process: String) throws {
        let jpeg = try SoundnessTests.flat(2000, 1500, [90, 120, 200])
        let error = Self.error(jpeg, process)
        #expect(error?.code == .imageTooLarge && error?.message.contains("work estimate") == true, "\(String(describing: error))")
    }

    // MARK: 2, 6. Corrupt pixels read outside the encoder

    @Test func averageHueOfCorruptSourceIsBadRequest() throws {
        let cut = try Self.truncatedPNG()
        let error = Self.error(cut, "image/average-hue")
        #expect(error?.code == .badRequest && error?.ec == "0040-00000005" && error?.httpStatus == 400, "\(String(describing: error))")
        #expect(error?.message.contains("corrupt or truncated") == true, "\(String(describing: error))")
    }

    @Test(.enabled(if: Fixtures.corpusAvailable, "needs the shared corpus"))
    func averageHueOfCorpusTruncatedPNGIsBadRequest() throws {
        let cut = try Fixtures.corpusFile("generated/truncated-half.png")
        for process in ["image/average-hue", "image/format,png", "image/resize,w_10"] {
            let error = Self.error(cut, process)
            #expect(error?.ec == "0040-00000005" && error?.httpStatus == 400, "\(process): \(String(describing: error))")
        }
    }

    /// Only the first libvips reason is kept, not "vips2png: unable to write to target target".
    @Test func corruptErrorKeepsOneReason() throws {
        let cut = try Self.truncatedPNG()
        for process in ["image/format,png", "image/average-hue", "image/format,jpg"] {
            let error = Self.error(cut, process)
            #expect(error?.ec == "0040-00000005", "\(process): \(String(describing: error))")
            #expect(error?.message.contains("\n") == false && error?.message.contains("unable to write") == false,
                    "\(process): \(String(describing: error?.message))")
        }
    }

    // MARK: 3. Corrupt watermark object

    @Test func corruptWatermarkImageIsNamed() throws {
        let main = try SoundnessTests.flat(200, 150, [250, 250, 250], as: .png)
        let resolver = MemoryObjects(objects: ["marks/logo.png": try Self.truncatedPNG()])
        let error = Self.error(main, "image/watermark,image_" + Base64URL.encode("marks/logo.png"), resolver: resolver)
        #expect(error?.ec == "0040-00000005" && error?.httpStatus == 400, "\(String(describing: error))")
        #expect(error?.message.contains("the watermark image 'marks/logo.png' is corrupt or truncated") == true, "\(String(describing: error))")
        #expect(error?.message.contains("source image") == false, "\(String(describing: error))")
    }

    // MARK: 4, 5. Oversized watermark text

    @Test func textTooWideToDrawIsBadRequest() throws {
        let main = try SoundnessTests.flat(200, 150, [250, 250, 250], as: .png)
        let text = Base64URL.encode(String(repeating: "W", count: 64))
        let error = Self.error(main, "image/watermark,text_\(text),size_1000", limits: SoundnessTests.unbounded)
        #expect(error?.code == .invalidArgument && error?.httpStatus == 400 && error?.ec != nil, "\(String(describing: error))")
        #expect(error?.message.contains("size_") == true, "\(String(describing: error))")
    }

    @Test func rotatedHugeTextBlamesWatermarkRotate() throws {
        let main = try SoundnessTests.flat(200, 150, [250, 250, 250], as: .png)
        let text = Base64URL.encode(String(repeating: "W", count: 8))
        let error = Self.error(main, "image/watermark,text_\(text),size_1000,rotate_45", limits: SoundnessTests.unbounded)
        #expect(error?.httpStatus == 400, "\(String(describing: error))")
        #expect(error?.message.contains("watermark") == true && error?.message.contains("rotate_45") == true
                && error?.message.contains("resize it first") == false, "\(String(describing: error))")
    }
}
