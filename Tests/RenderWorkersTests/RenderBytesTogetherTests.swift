import Foundation
import ImagingCore
import ProcessLanguage
import RenderWorkers
import XCTest

/// A source and its watermark images travel to the worker in one message: each within the
/// byte limit, together over what one render takes, they are refused before the request is
/// encoded (nothing is copied, no worker is sent anything), naming both and how to fix it.
final class RenderBytesTogetherTests: XCTestCase {
    func testASourceAndAMarkOverOneRenderTogetherAreRefusedBeforeSending() throws {
        let pool = try RenderWorkerPool(size: 1)
        defer { pool.shutdown() }
        // Zero-filled (not touched): the refusal must come before any copy of them.
        let half = Limits.renderBytes / 2 + 1
        let marks = MemoryObjects(objects: ["mark.png": Data(count: half)])
        let key = Data("mark.png".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        let limits = Limits(maxBytes: Limits.renderBytes)
        XCTAssertThrowsError(try pool.render(Data(count: half), try Pipeline.parse("image/watermark,image_\(key)"),
                                             limits: limits, resolver: marks)) { error in
            guard let error = error as? ProcessError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.ec, "0040-00000012", "\(error)")
            XCTAssertTrue(error.message.contains("are \(2 * half) bytes together"), error.message)
            XCTAssertTrue(error.message.contains("at most \(Limits.renderBytes) bytes"), error.message)
            XCTAssertTrue(error.message.contains("use smaller files or fewer watermark images"), error.message)
        }
    }
}
