import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

/// Issue #10 point 5: corrupt sources are refused with EC 0040-00000005, harmless warnings are not.
@Suite(.ownThreads)
struct CorruptInputTests {
    static func refusedAsCorrupt(_ source: Data, _ process: String, limits: Limits = .oss) -> Bool {
        do {
            _ = try Engine(limits: limits).render(source, try Pipeline.parse(process))
            return false
        } catch let error as ProcessError {
            return error.code == .badRequest && error.ec == "0040-00000005"
        } catch { return false }
    }

    static func photo() throws -> Data { try Fixtures.sample("landscape.jpg") }

    /// A JPEG whose SOF claims 12000x20000 over a small image rendered flat grey.
    @Test func jpegClaimingAHugeSize() throws {
        let lying = try JPEGPatch.withSize(try Self.photo(), width: 12000, height: 20000)
        for process in ["image/resize,w_100", "image/format,png", "image/info"] {
            #expect(Self.refusedAsCorrupt(lying, process), "\(process)")
        }
        // A claim the data could back but does not fill fails in the decoder (fail_on warning).
        let small = try JPEGPatch.withSize(try Self.photo(), width: 1300, height: 900)
        #expect(Self.refusedAsCorrupt(small, "image/format,png"))
    }

    /// 2 000 garbage bytes in the middle of the entropy-coded data rendered washed out.
    @Test func jpegWithGarbageMidStream() throws {
        var bytes = [UInt8](try Self.photo())
        let garbage = (0..<2000).map { UInt8(($0 * 37 + 11) % 256) }
        bytes.insert(contentsOf: garbage, at: bytes.count / 2)
        for process in ["image/resize,w_100", "image/format,png", "image/format,jpg"] {
            #expect(Self.refusedAsCorrupt(Data(bytes), process), "\(process)")
        }
    }

    /// A GIF cut at 90 % rendered 41 of its 44 frames.
    @Test func truncatedGIF() throws {
        let whole = try SoundnessTests.animation(frames: 12, side: 60)
        #expect(try Engine().render(whole, try Pipeline.parse("image/resize,w_30")).frames == 12)
        let cut = whole.prefix(whole.count * 9 / 10)
        for process in ["image/resize,w_30", "image/format,png", "image/format,gif"] {
            #expect(Self.refusedAsCorrupt(Data(cut), process), "\(process)")
        }
    }

    /// Harmless: bytes after the JPEG's end-of-image marker; the image renders as it is.
    @Test func bytesAfterTheEndStillRender() throws {
        let clean = try Self.photo()
        let padded = clean + Data(repeating: 0, count: 100) + Data("trailing".utf8)
        let a = try Fixtures.render(clean, "image/resize,w_100/format,png").1
        let b = try Fixtures.render(padded, "image/resize,w_100/format,png").1
        #expect(a == b)
    }

    /// Truncated PNGs and JPEGs fail in the decoder, whatever the chain.
    @Test func truncatedStillsAreRefused() throws {
        let png = try Fixtures.quadrants(300, 200, as: .png)
        let jpg = try Self.photo()
        for source in [png.prefix(png.count / 2), jpg.prefix(jpg.count * 3 / 4)] {
            for process in ["image/resize,w_50", "image/format,webp", "image/rotate,90"] {
                #expect(Self.refusedAsCorrupt(Data(source), process), "\(process)")
            }
        }
    }
}
