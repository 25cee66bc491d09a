import Foundation
import Imaging
import ProcessLanguage
import RenderWorkers
import XCTest

/// Not a test: the cost of the worker protocol per render, printed for
/// Tests/Benchmarks/bench-workers (runs only with DERIVE_BENCH_WORKERS=1; timing goals live there).
final class OverheadMeasurement: XCTestCase {
    func testMeasureOverheadPerRender() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["DERIVE_BENCH_WORKERS"] == "1", "set DERIVE_BENCH_WORKERS=1")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let source = try Data(contentsOf: root.appendingPathComponent("Samples/landscape.jpg"))
        let chain = try Pipeline.parse("image/resize,w_200")
        let pool = try RenderWorkerPool(size: 1)
        let engine = InProcessRenderer()
        let rounds = 200
        _ = try pool.render(source, chain, limits: .oss)
        _ = try engine.render(source, chain, limits: .oss, resolver: NoObjects(), cancellation: nil)
        var inProcess = 0.0, inWorker = 0.0
        for _ in 0..<rounds {
            var started = Date()
            _ = try engine.render(source, chain, limits: .oss, resolver: NoObjects(), cancellation: nil)
            inProcess += Date().timeIntervalSince(started)
            started = Date()
            _ = try pool.render(source, chain, limits: .oss)
            inWorker += Date().timeIntervalSince(started)
        }
        // A 16x16 source: the render itself costs almost nothing, what remains is the protocol.
        let tiny = try Raster(width: 16, height: 16, bands: 3) { x, y in [UInt8(x * 16), UInt8(y * 16), 0] }.encoded(as: .png, quality: 90)
        let small = try Pipeline.parse("image/resize,w_8")
        var tinyIn = 0.0, tinyWorker = 0.0
        for _ in 0..<rounds {
            var started = Date()
            _ = try engine.render(tiny, small, limits: .oss, resolver: NoObjects(), cancellation: nil)
            tinyIn += Date().timeIntervalSince(started)
            started = Date()
            _ = try pool.render(tiny, small, limits: .oss)
            tinyWorker += Date().timeIntervalSince(started)
        }
        print(String(format: "render-workers: resize,w_8 of a 16x16 PNG, %d rounds: in-process %.2f ms, in a worker %.2f ms, overhead %.2f ms per render",
                     rounds, tinyIn / Double(rounds) * 1000, tinyWorker / Double(rounds) * 1000, (tinyWorker - tinyIn) / Double(rounds) * 1000))
        let launch = Date()
        let fresh = try RenderWorkerPool(size: 1)
        _ = try fresh.render(source, chain, limits: .oss)
        let first = Date().timeIntervalSince(launch)
        print(String(format: "render-workers: resize,w_200 of a %d-byte 1200x800 JPEG, %d rounds: in-process %.2f ms, in a worker %.2f ms, overhead %.2f ms per render; first render with a new worker %.0f ms",
                     source.count, rounds, inProcess / Double(rounds) * 1000, inWorker / Double(rounds) * 1000,
                     (inWorker - inProcess) / Double(rounds) * 1000, first * 1000))
    }
}
