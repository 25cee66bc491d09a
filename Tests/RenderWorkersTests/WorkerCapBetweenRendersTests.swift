import Foundation
import Imaging
import ProcessLanguage
import RenderWorkers
import XCTest

/// Issue #10, attack 12's G1: with a raised byte limit, serve's reused worker crashed (SIGILL,
/// a 500) on every other large render. The memory cap of one render (its limit plus the bytes
/// it was sent) stayed while the worker received the next request, which holds the frame and
/// its decoded copy at once: the allocation failed and Swift trapped. The cap is lifted
/// between renders; a render's own cap is set once its request is decoded.
final class WorkerCapBetweenRendersTests: XCTestCase {
    func testALargeSourceRendersAgainInTheSameWorker() throws {
        let pool = try RenderWorkerPool(size: 1)
        defer { pool.shutdown() }
        var source = try Raster(width: 100, height: 100, bands: 3, pixels: [UInt8](repeating: 90, count: 30_000)).encoded(as: .png)
        // Bytes after IEND are ignored: a valid PNG of 600 MB (400 MB failed in serve too).
        source.append(Data(count: 600 << 20))
        let limits = Limits(maxBytes: 700 << 20)
        var workers = Set<pid_t>()
        for width in [41, 42, 43] {
            let output = try pool.render(source, try Pipeline.parse("image/resize,w_\(width)/format,png"), limits: limits)
            XCTAssertEqual(output.width, width)
            workers.formUnion(pool.workerIDs)
        }
        XCTAssertEqual(workers.count, 1, "a worker was replaced: \(workers)")
    }
}
