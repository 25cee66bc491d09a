import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

/// Issue #10, fourth attack, finding 1: HEIC with zeroed coded data rendered garbled with
/// exit 0 (libheif and libde265 report nothing). HEIC is not a watermark format (EC 0040-00000027).
@Suite(.ownThreads)
struct CorruptContainerTests {
    static func zeroed(_ data: Data, at offset: Int, count: Int = 2000) -> Data {
        var copy = data
        copy.replaceSubrange(offset..<(offset + count), with: Data(count: count))
        return copy
    }

    /// 2 000 zero bytes in the middle of the HEVC data: rendered before, refused now.
    @Test(.enabled(if: Fixtures.corpusAvailable, "needs the shared corpus"))
    func zeroedHEICDataIsRefused() throws {
        let good = try Fixtures.corpusFile("generated/landscape.heic")
        _ = try Fixtures.render(good, "image/format,png")
        for offset in [good.count / 3, good.count / 2, good.count * 3 / 4] {
            let error = EngineAttackTests.error(Self.zeroed(good, at: offset), "image/format,png")
            #expect(error?.ec == "0040-00000005" && error?.httpStatus == 400, "\(offset): \(String(describing: error))")
            #expect(error?.message.contains("HEVC") == true, "\(String(describing: error))")
        }
    }
}
