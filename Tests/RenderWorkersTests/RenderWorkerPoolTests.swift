import Foundation
import Imaging
import ProcessLanguage
import RenderWorkers
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Sources made in memory for the worker tests.
enum Sources {
    /// Pseudo-random noise (deterministic): the worst case for encoders.
    static func noise(_ side: Int, as format: Format.Kind = .jpg) throws -> Data {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var pixels = [UInt8](repeating: 0, count: side * side * 3)
        for i in pixels.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            pixels[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        return try Raster(width: side, height: side, bands: 3, pixels: pixels).encoded(as: format, quality: 95)
    }

    static func gradient(_ w: Int, _ h: Int, as format: Format.Kind = .png) throws -> Data {
        try Raster(width: w, height: h, bands: 3) { x, y in [UInt8(x * 255 / max(1, w - 1)), UInt8(y * 255 / max(1, h - 1)), 90] }
            .encoded(as: format, quality: 95)
    }
}

/// Objects served from memory, as a bucket would.
struct MemoryObjects: ObjectResolver {
    let objects: [String: Data]
    func object(_ key: String) throws -> Data {
        guard let data = objects[key] else {
            throw ProcessError(.watermarkError, ec: "0040-00000024", "watermark: the object '\(key)' does not exist in the bucket",
                               action: "watermark", parameter: "image")
        }
        return data
    }
}

final class RenderWorkerPoolTests: XCTestCase {
    func pipeline(_ text: String) throws -> Pipeline { try Pipeline.parse(text) }

    /// The attack of issue #10: HEIC encoders run outside libvips' evaluation loop, so the
    /// in-process deadline could not stop them (a 2048² noise image ran over 150 s with a 1 s
    /// deadline). The worker is killed instead.
    func testHEICEncodeOfNoiseStopsAtTheDeadline() throws {
        let pool = try RenderWorkerPool(size: 1)
        // 3072² (9.4 MP): with the ultrafast preset 2048² took about 1.06 s, too close to the 1 s
        // deadline to be stopped every time; this takes over twice that.
        let source = try Sources.noise(3072)
        var limits = Limits(renderSeconds: 1)
        limits.maxWork = 100_000_000_000
        limits.maxMemory = 4_000_000_000
        let started = Date()
        XCTAssertThrowsError(try pool.render(source, try pipeline("image/format,heic"), limits: limits)) { error in
            XCTAssertEqual(error as? ProcessError, ProcessError.renderDeadline(limits))
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5)
        // The pool goes on with a fresh worker.
        let output = try pool.render(try Sources.gradient(64, 48), try pipeline("image/resize,w_32"), limits: .oss)
        XCTAssertEqual(output.width, 32)
    }

    func testAVIFEncodeOfLargeNoiseStopsAtTheDeadline() throws {
        let pool = try RenderWorkerPool(size: 1)
        let source = try Sources.noise(3000)
        let started = Date()
        XCTAssertThrowsError(try pool.render(source, try pipeline("image/format,avif"), limits: Limits(renderSeconds: 1))) { error in
            XCTAssertEqual((error as? ProcessError)?.code, .requestTimeout)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5)
    }

    func testCancelledRenderEndsWithinASecond() throws {
        let pool = try RenderWorkerPool(size: 1)
        let source = try Sources.noise(2048)
        let cancellation = RenderCancellation()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { cancellation.cancel() }
        let started = Date()
        XCTAssertThrowsError(try pool.render(source, try pipeline("image/format,heic"), limits: Limits(renderSeconds: 60),
                                             cancellation: cancellation)) { error in
            XCTAssertEqual(error as? ProcessError, ProcessError.renderCancelled)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.3)
    }

    /// A crash (here a SIGSEGV sent to the worker mid-render) fails only that render, says
    /// which signal, and the next render gets a fresh worker.
    func testWorkerKilledBySIGSEGVFailsOnlyItsRender() throws {
        let pool = try RenderWorkerPool(size: 1)
        let source = try Sources.noise(2048)
        _ = try pool.render(try Sources.gradient(16, 16), try pipeline("image/resize,w_8"), limits: .oss)
        let pid = try XCTUnwrap(pool.workerIDs.first)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { kill(pid, SIGSEGV) }
        XCTAssertThrowsError(try pool.render(source, try pipeline("image/format,heic"), limits: Limits(renderSeconds: 60))) { error in
            let error = error as? ProcessError
            XCTAssertEqual(error?.code, .internalError)
            XCTAssertTrue(error?.message.contains("SIGSEGV") == true, error?.message ?? "")
        }
        let output = try pool.render(try Sources.gradient(64, 48), try pipeline("image/resize,w_32/format,png"), limits: .oss)
        XCTAssertEqual(output.width, 32)
        XCTAssertEqual(output.height, 24)
        XCTAssertFalse(pool.workerIDs.contains(pid))
    }

    /// A worker killed while idle (from outside) is replaced without failing the next render.
    func testWorkerKilledWhileIdleIsReplaced() throws {
        let pool = try RenderWorkerPool(size: 1)
        _ = try pool.render(try Sources.gradient(16, 16), try pipeline("image/resize,w_8"), limits: .oss)
        let pid = try XCTUnwrap(pool.workerIDs.first)
        kill(pid, SIGKILL)
        usleep(100_000)
        let output = try pool.render(try Sources.gradient(16, 16), try pipeline("image/resize,w_4"), limits: .oss)
        XCTAssertEqual(output.width, 4)
    }

    /// Round 22's V2: a worker draws text as the fontconfig configuration it loaded at start, so
    /// a long-lived process (watch) retires its workers when the configuration changed. An idle
    /// worker stops at once, a busy one ends its render and stops then; neither renders again.
    func testRetiredWorkersAreNotUsedAgain() throws {
        let pool = try RenderWorkerPool(size: 1)
        _ = try pool.render(try Sources.gradient(16, 16), try pipeline("image/resize,w_8"), limits: .oss)
        let idle = try XCTUnwrap(pool.workerIDs.first)
        pool.retire()
        XCTAssertEqual(pool.workerIDs, [])
        _ = try pool.render(try Sources.gradient(16, 16), try pipeline("image/resize,w_4"), limits: .oss)
        let fresh = try XCTUnwrap(pool.workerIDs.first)
        XCTAssertNotEqual(fresh, idle)

        // Busy when retired (the pool empty first, so the one worker seen is the render's):
        // its render completes, then it goes.
        pool.retire()
        let source = try Sources.noise(2048)
        let heic = try pipeline("image/format,heic")
        let done = DispatchSemaphore(value: 0)
        let result = RenderResultBox()
        DispatchQueue.global().async {
            result.set(Result { try pool.render(source, heic, limits: Limits(renderSeconds: 60)).width })
            done.signal()
        }
        let deadline = Date().addingTimeInterval(10)
        while pool.workerIDs.isEmpty && Date() < deadline { usleep(10_000) }
        let busy = try XCTUnwrap(pool.workerIDs.first)
        pool.retire()
        done.wait()
        XCTAssertEqual(try result.get()?.get(), 2048)
        XCTAssertFalse(pool.workerIDs.contains(busy), "\(pool.workerIDs)")
        _ = try pool.render(try Sources.gradient(16, 16), try pipeline("image/resize,w_4"), limits: .oss)
        XCTAssertFalse(pool.workerIDs.contains(busy))
    }

    /// A render that needs more memory than the worker's cap fails cleanly and the pool goes on.
    func testRenderOverTheMemoryCapFailsCleanly() throws {
        let pool = try RenderWorkerPool(size: 1)
        pool.memoryHeadroom = 0
        // The engine's estimate (2048² × 8 bytes) passes 64 MB; the HEIC encoder needs ~180 MB.
        let limits = Limits(maxMemory: 64 << 20)
        let source = try Sources.noise(2048)
        let started = Date()
        XCTAssertThrowsError(try pool.render(source, try pipeline("image/format,heic"), limits: limits)) { error in
            let error = error as? ProcessError
            XCTAssertNotNil(error)
            XCTAssertNotEqual(error?.code, .requestTimeout, error?.message ?? "")
            print("over the cap: \(error.map(String.init(describing:)) ?? "")")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 15)
        pool.memoryHeadroom = RenderWorkerPool.defaultMemoryHeadroom
        let output = try pool.render(try Sources.gradient(64, 48), try pipeline("image/resize,w_32"), limits: .oss)
        XCTAssertEqual(output.width, 32)
    }

    /// Errors come back with the engine's code, EC, message, action and parameter.
    func testErrorsRoundTripFieldForField() throws {
        let pool = try RenderWorkerPool(size: 1)
        let engine = InProcessRenderer()
        let cases: [(Data, String, Limits)] = [
            (Data("not an image at all".utf8), "image/resize,w_10", .oss),
            (try Sources.gradient(100, 100), "image/resize,w_10", Limits(maxSide: 50)),
            (try Sources.gradient(100, 100), "image/watermark,image_bWlzc2luZy5wbmc", .oss),
            (try Sources.gradient(100, 100, as: .gif), "image/rounded-corners,r_10", .oss),
            (try Sources.gradient(100, 100), "image/resize,w_2000,limit_0", Limits(maxOutputSide: 1000)),
        ]
        for (source, text, limits) in cases {
            let chain = try pipeline(text)
            let objects = MemoryObjects(objects: [:])
            var expected: ProcessError?
            XCTAssertThrowsError(try engine.render(source, chain, limits: limits, resolver: objects, cancellation: nil)) { expected = $0 as? ProcessError }
            XCTAssertThrowsError(try pool.render(source, chain, limits: limits, resolver: objects)) { error in
                XCTAssertEqual(error as? ProcessError, expected, text)
            }
            XCTAssertNotNil(expected, text)
        }
    }

    /// The same bytes as the in-process engine, for every output format and both watermarks.
    func testOutputIsByteIdenticalToTheEngine() throws {
        let pool = try RenderWorkerPool(size: 2)
        let engine = InProcessRenderer()
        let photo = try Sources.gradient(320, 200, as: .jpg)
        let logo = try Sources.gradient(40, 30, as: .png)
        let objects = MemoryObjects(objects: ["logo.png": logo])
        let chains = [
            "image/resize,w_200/quality,q_80",
            "image/resize,m_fill,w_120,h_120/format,png",
            "image/crop,w_100,h_80,g_center/format,webp",
            "image/rotate,90/format,avif",
            "image/blur,r_3,s_2/format,gif",
            "image/watermark,image_" + Base64URL.encode("logo.png") + ",g_se,x_10,y_10",
            "image/watermark,text_" + Base64URL.encode("Derive") + ",size_30,color_FF0000",
            "image/info",
            "image/average-hue",
        ]
        for text in chains {
            let chain = try pipeline(text)
            let expected = try engine.render(photo, chain, limits: .oss, resolver: objects, cancellation: nil)
            let got = try pool.render(photo, chain, limits: .oss, resolver: objects)
            XCTAssertEqual(got.bytes, expected.bytes, text)
            XCTAssertEqual(got.kind, expected.kind, text)
            XCTAssertEqual([got.width, got.height, got.frames, got.decodedPixels],
                           [expected.width, expected.height, expected.frames, expected.decodedPixels], text)
        }
    }

    /// Several workers at once, many renders: every answer is right and the pool ends with its workers.
    func testConcurrentRendersShareThePool() throws {
        let pool = try RenderWorkerPool(size: 2)
        let photo = try Sources.gradient(200, 100, as: .jpg)
        let results = UnsafeMutableBufferPointer<Int>.allocate(capacity: 40)
        defer { results.deallocate() }
        let box = SendableBox(results)
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            let output = try? pool.render(photo, try! Pipeline.parse("image/resize,w_\(10 + i)"), limits: .oss)
            box.value[i] = output?.width ?? -1
        }
        XCTAssertEqual(Array(results), (0..<40).map { 10 + $0 })
        XCTAssertLessThanOrEqual(pool.workerIDs.count, 2)
    }

    /// A descriptor the parent holds without close-on-exec (a server's socket, a source) does not
    /// stay open in the worker.
    func testWorkerKeepsNoInheritedDescriptor() throws {
        let file = open("/dev/null", O_RDONLY)
        XCTAssertGreaterThanOrEqual(file, 0)
        XCTAssertEqual(dup2(file, 900), 900)
        defer { close(900); close(file) }
        let pool = try RenderWorkerPool(size: 1)
        _ = try pool.render(try Sources.gradient(16, 16), try pipeline("image/resize,w_8"), limits: .oss)
        let pid = try XCTUnwrap(pool.workerIDs.first)
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        XCTAssertFalse(open.contains("900"), "\(open)")
        XCTAssertTrue(open.contains("3"))
    }

    func testMissingWorkerIsAClearError() throws {
        XCTAssertThrowsError(try WorkerLocation.find(environment: [WorkerLocation.environmentVariable: "/nonexistent/derive-render-worker"])) { error in
            XCTAssertTrue("\(error)".contains("DERIVE_RENDER_WORKER"), "\(error)")
        }
        XCTAssertNoThrow(try WorkerLocation.find(environment: [:]))
    }

    func testShutdownKillsWorkersAndFailsTheRenderInProgress() throws {
        let pool = try RenderWorkerPool(size: 1)
        let source = try Sources.noise(2048)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { pool.shutdown() }
        let started = Date()
        XCTAssertThrowsError(try pool.render(source, try pipeline("image/format,heic"), limits: Limits(renderSeconds: 60))) { error in
            XCTAssertEqual(error as? ProcessError, ProcessError.renderCancelled)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.3)
        XCTAssertEqual(pool.workerIDs, [])
    }
}

final class SendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// One result handed from a render thread to the test.
final class RenderResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<Int, any Error>?
    func set(_ result: Result<Int, any Error>) { lock.withLock { value = result } }
    func get() -> Result<Int, any Error>? { lock.withLock { value } }
}
