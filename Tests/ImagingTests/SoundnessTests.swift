import Foundation
import Testing
import TestSupport
import Imaging
import ProcessLanguage

/// Issue #10: no crash, bounded cost, deadlines and cancellation.
@Suite(.ownThreads)
struct SoundnessTests {
    /// Limits with the cost checks out of the way, to reach libvips with big work.
    static let unbounded = Limits(renderSeconds: 0, maxWork: Int.max / 2, maxMemory: Int.max / 2)

    /// An animation of `frames` frames of `side`×`side` (or `width`×`side`), each a different flat grey.
    static func animation(frames: Int, side: Int, width: Int? = nil, as format: Format.Kind = .gif) throws -> Data {
        let width = width ?? side
        var pixels = [UInt8]()
        pixels.reserveCapacity(frames * width * side * 3)
        for frame in 0..<frames {
            let value = UInt8((frame * 37) % 256)
            pixels += [UInt8](repeating: value, count: width * side * 3)
        }
        return try Raster(width: width, height: side * frames, bands: 3, pixels: pixels, frames: frames)
            .encoded(as: format)
    }

    /// A flat `width`×`height` image, built without a per-pixel closure (fast in debug builds).
    static func flat(_ width: Int, _ height: Int, _ colour: [UInt8], as format: Format.Kind = .jpg) throws -> Data {
        var pixels = [UInt8]()
        pixels.reserveCapacity(width * height * colour.count)
        for _ in 0..<(width * height) { pixels.append(contentsOf: colour) }
        return try Raster(width: width, height: height, bands: colour.count, pixels: pixels).encoded(as: format)
    }

    /// Was a segfault: 1000x1000x36 frames (36 MP) crashed on every action that keeps the frame
    /// size (libvips' disc-backed random access); frames now stream one at a time.
    @Test(arguments: ["image/format,gif", "image/crop,w_100,h_100", "image/watermark,text_SGk", "image/format,webp"])
    func bigAnimationsRender(_ process: String) throws {
        let source = try Self.animation(frames: 40, side: 1000)
        let output = try Engine(limits: Self.unbounded).render(source, try Pipeline.parse(process))
        #expect(output.frames == 40)
        let raster = try Raster.decode(output.bytes, allFrames: true)
        #expect(raster.frames == 40)
        // Frame 3 keeps its own grey.
        let frame3 = raster.pixel(raster.width / 2, raster.frameHeight * 3 + raster.frameHeight / 2)
        #expect(Fixtures.near(frame3, [111, 111, 111], tolerance: 4), "\(frame3)")
    }

    /// Was a segfault: 900 x bright,1. Chains are limited in actions and bytes (EC 0017-00000288).
    @Test func longChainsAreRefused() throws {
        for count in [33, 900, 9000] {
            let chain = "image/" + Array(repeating: "bright,1", count: count).joined(separator: "/")
            #expect { try Pipeline.parse(chain) } throws: { ($0 as? ProcessError)?.ec == "0017-00000288" }
        }
        let long = "image/resize,w_100" + String(repeating: "/", count: Pipeline.maxLength)
        #expect { try Pipeline.parse(long) } throws: {
            ($0 as? ProcessError)?.ec == "0017-00000288" && ($0 as? ProcessError)?.code == .invalidArgument
        }
        #expect { try Pipeline.parse("style/a", styles: ["a": long]) } throws: { ($0 as? ProcessError)?.ec == "0017-00000288" }
    }

    /// The longest chain allowed renders, for each kind of deep pipeline that used to crash.
    @Test(arguments: ["bright,1", "contrast,1", "sharpen,100", "blur,r_1,s_1", "circle,r_30", "rounded-corners,r_5"])
    func longestChainRenders(_ action: String) throws {
        let chain = "image/" + Array(repeating: action, count: Pipeline.maxActions - 1).joined(separator: "/") + "/format,png"
        let source = try Fixtures.quadrants(200, 100)
        let output = try Engine(limits: Self.unbounded).render(source, try Pipeline.parse(chain))
        #expect(output.width > 0 && output.height > 0)
    }

    /// Point 3 of the issue: expensive chains within OSS's size limits are refused from the
    /// header, before any pixel is decoded (timings live in Tests/Benchmarks/bench-limits).
    @Test func expensiveChainsAreRefusedBeforeDecoding() throws {
        // A 20000x10000 JPEG header over a tiny body: refusing must not need the pixels.
        // (Padded after its end so the file is as long as a real one of that size could be.)
        let big = try Self.flat(2000, 1000, [90, 90, 90])
        let header = try JPEGPatch.withSize(big, width: 20000, height: 10000) + Data(repeating: 0, count: 400_000)
        for process in ["image/blur,r_50,s_50", "image/watermark,text_SGVsbG8,fill_1", "image/format,webp",
                        "image/" + Array(repeating: "sharpen,100", count: 30).joined(separator: "/")] {
            #expect { try Engine().render(header, try Pipeline.parse(process)) } throws: {
                let error = $0 as? ProcessError
                return error?.code == .imageTooLarge && error?.ec == "0040-00000012" && error?.message.contains("--max-work") == true
            }
        }
        // With a resize in the chain the EC is resize's.
        #expect { try Engine().render(header, try Pipeline.parse("image/blur,r_50,s_50/resize,w_100")) } throws: {
            ($0 as? ProcessError)?.ec == "0040-00000009"
        }
        // The same chains on a web-sized image are cheap enough.
        let small = try Self.flat(800, 600, [90, 90, 90])
        _ = try Engine().render(small, try Pipeline.parse("image/blur,r_50,s_50"))
        // An animation enlarged frame by frame is refused for its memory and work.
        let frames = try Self.animation(frames: 99, side: 169, width: 13, as: .webp)
        #expect { try Engine().render(frames, try Pipeline.parse("image/resize,w_400,limit_0")) } throws: {
            ($0 as? ProcessError)?.code == .imageTooLarge
        }
        // Raising the limit lets it through.
        #expect(try Engine(limits: Limits(maxWork: Int.max / 2, maxMemory: Int.max / 2))
            .render(try Self.flat(800, 600, [90, 90, 90]), try Pipeline.parse("image/blur,r_50,s_50")).width == 800)
    }

    /// The deadline stops libvips itself: a blur that runs for minutes ends right after it.
    @Test func deadlineStopsLibvips() throws {
        let source = try Self.flat(4000, 3000, [90, 120, 150])
        var limits = Self.unbounded
        limits.renderSeconds = 0.5
        let started = Date()
        #expect { try Engine(limits: limits).render(source, try Pipeline.parse("image/blur,r_50,s_50/blur,r_50,s_50/format,png")) } throws: {
            let error = $0 as? ProcessError
            return error?.code == .requestTimeout && error?.message.contains("deadline") == true && error?.httpStatus == 400
        }
        // Unstopped, this chain takes minutes; stopped, a fraction of a second past the deadline.
        #expect(Date().timeIntervalSince(started) < 10)
    }

    /// Cancelling from another thread stops a render in libvips, and a cancelled handle
    /// refuses later renders at once.
    @Test func cancellationStopsARender() async throws {
        let source = try Self.flat(4000, 3000, [90, 120, 150])
        let cancellation = RenderCancellation()
        #expect(!cancellation.isCancelled)
        let engine = Engine(limits: Self.unbounded)
        let pipeline = try Pipeline.parse("image/blur,r_50,s_50/blur,r_50,s_50/format,png")
        // Timed on the rendering thread: the test's own task may wait for a busy cooperative pool.
        let (result, seconds): (Result<RenderOutput, ProcessError>, Double) = await withCheckedContinuation { continuation in
            Thread {
                let started = Date()
                do {
                    let output = try engine.render(source, pipeline, cancellation: cancellation)
                    continuation.resume(returning: (.success(output), Date().timeIntervalSince(started)))
                } catch {
                    continuation.resume(returning: (.failure(error as! ProcessError), Date().timeIntervalSince(started)))
                }
            }.start()
            Thread.sleep(forTimeInterval: 0.3)
            cancellation.cancel()
        }
        guard case .failure(let error) = result else { Issue.record("the render was not stopped"); return }
        #expect(error.code == .requestTimeout && error.message.contains("cancelled"), "\(error)")
        #expect(seconds < 10, "\(seconds) s")
        #expect(cancellation.isCancelled)
        #expect { try engine.render(try Fixtures.solid(10, 10, [1, 2, 3]), try Pipeline.parse("image/format,png"), cancellation: cancellation) } throws: {
            ($0 as? ProcessError)?.code == .requestTimeout
        }
    }

    /// Renders without deadline or cancellation are unaffected by an unrelated handle.
    @Test func anotherHandleDoesNotCancel() throws {
        let other = RenderCancellation()
        other.cancel()
        let output = try Engine().render(try Fixtures.solid(10, 10, [1, 2, 3]), try Pipeline.parse("image/format,png"),
                                         cancellation: RenderCancellation())
        #expect(output.width == 10)
    }
}

/// Rewrites parts of a JPEG to build broken or misleading files.
enum JPEGPatch {
    /// The offset of the first SOF0/SOF1/SOF2 marker.
    static func sofOffset(_ bytes: [UInt8]) -> Int? {
        var i = 2
        while i + 4 < bytes.count {
            guard bytes[i] == 0xFF else { return nil }
            let marker = bytes[i + 1]
            if [0xC0, 0xC1, 0xC2].contains(marker) { return i }
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            i += 2 + length
        }
        return nil
    }

    /// The same JPEG with its SOF claiming `width`×`height`.
    static func withSize(_ data: Data, width: Int, height: Int) throws -> Data {
        var bytes = [UInt8](data)
        guard let sof = sofOffset(bytes) else { throw ProcessError(.internalError, "no SOF") }
        bytes[sof + 5] = UInt8(height >> 8); bytes[sof + 6] = UInt8(height & 0xFF)
        bytes[sof + 7] = UInt8(width >> 8); bytes[sof + 8] = UInt8(width & 0xFF)
        return Data(bytes)
    }
}
