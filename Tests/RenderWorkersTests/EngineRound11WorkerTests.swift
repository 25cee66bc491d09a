import Foundation
import Imaging
import ProcessLanguage
import RenderWorkers
import XCTest

/// Issue #10, round 11, N1: under a worker's data cap (RLIMIT_DATA: the memory limit plus the
/// headroom), a valid still WebP either renders or is refused as ImageTooLarge naming the
/// limit, as it is in process: libvips' header read used to allocate the whole RGBA frame
/// (4000²: 64 MB) before the memory check, and the render failed as "corrupt or truncated".
final class EngineRound11WorkerTests: XCTestCase {
    static func lossyAlphaWebP(_ side: Int) throws -> Data {
        var pixels = [UInt8](repeating: 0, count: side * side * 4)
        for index in stride(from: 3, to: pixels.count, by: 4) { pixels[index] = UInt8(truncatingIfNeeded: 128 + index / (side * 16)) }   // varying alpha: kept
        return try Raster(width: side, height: side, bands: 4, pixels: pixels).encoded(as: .webp)
    }

    func testAStillWebPRendersOrIsRefusedForMemoryInAWorker() throws {
        let source = try Self.lossyAlphaWebP(4000)
        let pool = try RenderWorkerPool(size: 1)
        pool.memoryHeadroom = 40 << 20
        // The limit below the alpha plane: refused from the file's header, naming the limit
        // (the cap, 40 MB, is below libvips' full-size header frame: it failed as "corrupt").
        var tight = Limits.oss
        tight.maxMemory = 1
        XCTAssertThrowsError(try pool.render(source, try Pipeline.parse("image/resize,w_10"), limits: tight)) { error in
            let error = error as? ProcessError
            XCTAssertEqual(error?.code, .imageTooLarge, "\(String(describing: error))")
            XCTAssertTrue(error?.message.contains("--max-memory") == true, "\(String(describing: error))")
            XCTAssertFalse(error?.message.contains("corrupt") == true, "\(String(describing: error))")
        }
        // At the estimate (alpha plane 96 MB, frames at 1/8): renders within the cap, where the
        // worker peaks at 161 MB of private data with its own 19 MB and libwebp's threads (the
        // full-size header frame, 64 MB more, would not fit).
        var fits = Limits.oss
        fits.maxMemory = 104 << 20
        for output in ["/format,png", "", "/format,jpg"] {
            let pool = try RenderWorkerPool(size: 1)
            pool.memoryHeadroom = 96 << 20
            let rendered = try pool.render(source, try Pipeline.parse("image/resize,w_10" + output), limits: fits)
            XCTAssertEqual(rendered.width, 10)
            let inProcess = try Engine(limits: fits).render(source, try Pipeline.parse("image/resize,w_10" + output))
            XCTAssertEqual(inProcess.bytes, rendered.bytes)
        }
    }
}
