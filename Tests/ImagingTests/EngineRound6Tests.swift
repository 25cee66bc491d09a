import CVipsShim
import Foundation
import Testing
import TestSupport
@testable import Imaging
import ProcessLanguage

/// Issue #10, sixth attack, finding 1: the chain's geometry walk knows a rotate's output to the
/// pixel (libvips' own bounding box and rounding), so the early rotate refusal refuses exactly
/// what drawing would refuse, and prints the size drawing would meet.
@Suite(.ownThreads)
struct RotateGeometryTests {
    static let angles = [1, 2, 30, 44, 45, 46, 89, 91, 135, 179, 181, 269, 271, 300, 359]
    static let sizes = [(1, 1), (1, 2), (2, 1), (3, 5), (7, 7), (10, 10), (17, 4), (31, 9), (64, 3)]

    static func rotations(_ n: Int, _ degrees: Int = 45) -> String {
        "image/" + Array(repeating: "rotate,\(degrees)", count: n).joined(separator: "/")
    }

    /// libvips' own answer, without pixels: a lazy black image turned by `vips_rotate`.
    static func libvipsSize(_ width: Int, _ height: Int, _ degrees: Int) throws -> (Int, Int) {
        try Vips.start()
        let blank = try VImage.make("blank") { dv_blank($0, Int32(width), Int32(height), 3) }
        var background: [Double] = [0, 0, 0]
        let turned = try blank.apply("rotate") { dv_rotate($0, $1, Double(degrees), &background, 3) }
        return (turned.width, turned.height)
    }

    /// Real renders through the engine, odd sizes and 1×1 included: the walk's size is the size
    /// the rotate draws.
    @Test func outputSizeMatchesRealRenders() throws {
        for (w, h) in Self.sizes {
            let source = try Fixtures.solid(w, h, Fixtures.red, as: .png)
            for degrees in Self.angles {
                let out = try Engine().render(source, try Pipeline.parse("image/rotate,\(degrees)"))
                let walked = Rotate.outputSize(width: w, height: h, degrees: degrees)
                #expect(out.width == walked.width && out.height == walked.height,
                        "\(w)x\(h) rotate,\(degrees): rendered \(out.width)x\(out.height), walked \(walked.width)x\(walked.height)")
            }
        }
    }

    /// libvips itself over many sizes up to the rotate limit (and the squares whose 45° turn is
    /// just under and just over 4 096), at every angle from a fixed pseudo-random sequence.
    @Test func outputSizeMatchesLibvips() throws {
        var cases: [(Int, Int, Int)] = [(2896, 2896, 45), (2897, 2897, 45), (4096, 4096, 45), (4096, 1, 1), (1, 4096, 89),
                                        (4096, 200, 3), (4090, 200, 3), (1, 1, 45), (2, 2, 45), (3, 3, 45)]
        var seed: UInt64 = 0x5DEECE66D
        func next(_ bound: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(bound))
        }
        for _ in 0..<400 { cases.append((1 + next(4096), 1 + next(4096), 1 + next(359))) }
        for (w, h, degrees) in cases {
            let real = try Self.libvipsSize(w, h, degrees)
            let walked = Rotate.outputSize(width: w, height: h, degrees: degrees)
            #expect(real.0 == walked.width && real.1 == walked.height,
                    "\(w)x\(h) rotate,\(degrees): libvips \(real.0)x\(real.1), walked \(walked.width)x\(walked.height)")
        }
    }

    /// 32 (the most a chain holds) × rotate,45 keeps a 1×1 image 1×1: it renders. The old walk
    /// rounded each side up and refused it with a side of thousands.
    @Test func longChainOnATinyImageRenders() throws {
        let source = try Fixtures.solid(1, 1, Fixtures.red, as: .png)
        let out = try Engine().render(source, try Pipeline.parse(Self.rotations(32)))
        #expect(out.width == 1 && out.height == 1)
    }

    /// 18 × rotate,45 on a 10 px image: the 18th rotate meets 3 693 px (17 rotations render
    /// 3693×3693, measured), so it is not refused for its side; 19 × meets 5223×5223 (what
    /// libvips makes of 18) and is refused early, printing exactly that size.
    @Test func tenPixelChainIsRefusedExactly() throws {
        func walk(_ n: Int) throws -> WorkEstimate {
            WorkEstimate.of(actions: try Pipeline.parse(Self.rotations(n)).actions, format: .png, width: 10, height: 10, bands: 3,
                            frames: 1, decodedWidth: 10, decodedHeight: 10, output: .png, hasProfile: false, orients: false)
        }
        #expect(try walk(18).neverSucceeds == nil)
        var side = (10, 10)
        for _ in 0..<18 { side = try Self.libvipsSize(side.0, side.1, 45) }
        #expect(side == (5223, 5223))
        let refused = try #require(try walk(19).neverSucceeds)
        #expect(refused.message.contains("is 5223x5223 where it reaches rotate"), "\(refused.message)")
        // Through the engine, with a work limit that any costing would hit first: refused for
        // the rotate, before the cost.
        var tight = Limits.oss
        tight.maxWork = 1000
        let source = try Fixtures.solid(10, 10, Fixtures.red, as: .png)
        let error = EngineAttackTests.error(source, Self.rotations(19), limits: tight)
        #expect(error?.ec == "0040-00000006" && error?.message.contains("5223x5223") == true, "\(String(describing: error))")
        let ok = EngineAttackTests.error(source, Self.rotations(18), limits: tight)
        #expect(ok?.ec != "0040-00000006", "\(String(describing: ok))")
    }

    /// Just under and just over the limit, rendered for real: 4090×200 turned by 3° is
    /// 4095×414, which still rotates; 4096×200 turned by 3° is 4101×414, and the second
    /// rotate is refused early naming exactly the size the first one renders.
    @Test func justUnderRendersJustOverIsRefusedWithTheRealSize() throws {
        let under = try Fixtures.solid(4090, 200, Fixtures.red, as: .jpg)
        let once = try Engine().render(under, try Pipeline.parse("image/rotate,3"))
        #expect(max(once.width, once.height) <= Rotate.maxSourceSide)
        let twice = try Engine().render(under, try Pipeline.parse("image/rotate,3/rotate,3"))
        #expect((twice.width, twice.height) == Rotate.outputSize(width: once.width, height: once.height, degrees: 3))

        let over = try Fixtures.solid(4096, 200, Fixtures.red, as: .jpg)
        let first = try Engine().render(over, try Pipeline.parse("image/rotate,3"))
        #expect(first.width > Rotate.maxSourceSide)
        var tight = Limits.oss
        tight.maxWork = 1000
        let error = EngineAttackTests.error(over, "image/rotate,3/rotate,3", limits: tight)
        #expect(error?.ec == "0040-00000006", "\(String(describing: error))")
        #expect(error?.message.contains("is \(first.width)x\(first.height) where") == true,
                "\(String(describing: error)) vs rendered \(first.width)x\(first.height)")
    }
}

/// Finding 2: a watermark's own sub-pipeline (text with `rotate_`, an image's pre-process) is
/// checked for what can never succeed before any costing, and the message names the
/// watermark (its position in the chain and its text or object key) and the limit.
@Suite(.ownThreads)
struct WatermarkNeverSucceedsTests {
    static var tight: Limits {
        var limits = Limits.oss
        limits.maxWork = 1000
        limits.maxMemory = 1000
        return limits
    }

    @Test func rotatedTextOverTheRotateLimitIsRefusedFirst() throws {
        let source = try Fixtures.quadrants(400, 300, as: .png)
        let words = "Derive offline image processing, rotated"
        let process = "image/resize,w_200/watermark,text_\(Base64URL.encode(words)),size_300,rotate_45"
        for limits in [Self.tight, .oss] {
            let error = EngineAttackTests.error(source, process, limits: limits)
            #expect(error?.ec == "0040-00000006" && error?.parameter == "rotate", "\(String(describing: error))")
            let message = error?.message ?? ""
            #expect(message.contains("action 2") && message.contains(words) && message.contains("4096"), "\(message)")
            #expect(!message.contains("max-work") && !message.contains("max-memory"), "\(message)")
        }
        // The same text at a size that fits still renders, turned.
        let fits = try Engine().render(source, try Pipeline.parse("image/watermark,text_\(Base64URL.encode(words)),size_20,rotate_45"))
        #expect(fits.width == 400 && fits.height == 300)
    }

    @Test func imagePreProcessThatCanNeverRotateIsRefusedFirst() throws {
        let source = try Fixtures.quadrants(400, 300, as: .png)
        let objects = MemoryObjects(objects: ["big.png": try Fixtures.solid(2900, 2900, Fixtures.blue, as: .png)])
        let turned = Rotate.outputSize(width: 2900, height: 2900, degrees: 45)
        let mark = Base64URL.encode("big.png?x-oss-process=image/rotate,45/rotate,45")
        let process = "image/bright,10/format,png/watermark,image_\(mark),g_nw"
        for limits in [Self.tight, .oss] {
            let error = EngineAttackTests.error(source, process, limits: limits, resolver: objects)
            #expect(error?.ec == "0040-00000006" && error?.action == "watermark", "\(String(describing: error))")
            let message = error?.message ?? ""
            #expect(message.contains("action 3") && message.contains("'big.png'") && message.contains("4096")
                    && message.contains("\(turned.width)x\(turned.height)"), "\(message)")
            #expect(!message.contains("max-work") && !message.contains("max-memory"), "\(message)")
        }
        // One rotate of the same object is within the limit: not refused for the rotate.
        let once = Base64URL.encode("big.png?x-oss-process=image/resize,w_100/rotate,45/rotate,45")
        let fine = EngineAttackTests.error(source, "image/watermark,image_\(once),g_nw", resolver: objects)
        #expect(fine == nil, "\(String(describing: fine))")
    }
}

/// Finding 3: every limit message names what raises it where the limits were set, sizes under
/// 1 MiB are not "0 MiB", and README's limits table lists every cap the engine enforces.
@Suite(.ownThreads)
struct LimitMessagesRound6Tests {
    /// The deadline names `limits: render_seconds in the manifest` for `derive build` and
    /// `serve` (whose limits come from the manifest), the flag for `derive process`.
    @Test func deadlineNamesWhereItIsSet() throws {
        let source = try Fixtures.quadrants(1500, 1500, as: .png)
        for setBy in [Limits.Setting.flags, .manifest] {
            var limits = Limits.oss
            limits.setBy = setBy
            limits.renderSeconds = 0.000_001
            let error = EngineAttackTests.error(source, "image/blur,r_10,s_10", limits: limits)
            #expect(error?.code == .requestTimeout, "\(String(describing: error))")
            let message = error?.message ?? ""
            if setBy == .flags {
                #expect(message.contains("--render-seconds") && !message.contains("manifest"), "\(message)")
            } else {
                #expect(message.contains("limits: render_seconds in the manifest") && !message.contains("--"), "\(message)")
            }
        }
    }

    /// The output side refusal names the flag or key; WebP's own 16 383 says it cannot be raised.
    @Test func outputSideNamesWhereItIsSet() throws {
        let source = try Fixtures.quadrants(400, 300, as: .png)
        for setBy in [Limits.Setting.flags, .manifest] {
            var limits = Limits.oss
            limits.setBy = setBy
            limits.maxOutputSide = 100
            let error = EngineAttackTests.error(source, "image/resize,w_200", limits: limits)
            #expect(error?.ec == "0040-00000007", "\(String(describing: error))")
            let message = error?.message ?? ""
            #expect(message.contains(setBy == .flags ? "--max-output-side" : "limits: output_side in the manifest"), "\(message)")
        }
        do {
            try Limits.oss.checkOutput(width: 20_000, height: 10, format: .webp, resized: false)
            Issue.record("a 20000 px WebP was accepted")
        } catch let error as ProcessError {
            #expect(error.message.contains("16383") && error.message.contains("WebP cannot hold more"), "\(error.message)")
        }
    }

    /// A memory limit or estimate under 1 MiB is written in KiB or bytes, never "0 MiB".
    @Test func smallSizesAreNotZeroMiB() throws {
        #expect(Limits.size(1000) == "1000 bytes")
        #expect(Limits.size(400 * 1024) == "400 KiB")
        #expect(Limits.size(Double(384 << 20)) == "384 MiB")
        var limits = Limits.oss
        limits.maxMemory = 1000
        let source = try Fixtures.quadrants(200, 100, as: .png)
        let error = EngineAttackTests.error(source, "image/rotate,45", limits: limits)
        let message = error?.message ?? ""
        #expect(error?.code == .imageTooLarge && message.contains("the limit is 1000 bytes") && !message.contains("0 MiB"), "\(message)")
    }

    /// Every cap the engine enforces is in README's limits table, with its error code.
    @Test func readmeListsEveryCap() throws {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(readme.range(of: "## Limits and errors"))
        let table = try #require(readme[start.upperBound...].components(separatedBy: "\n\n").first { $0.hasPrefix("| limit") })
        func spaced(_ n: Int) -> String {
            var digits = String(n), groups: [String] = []
            while digits.count > 3 { groups.insert(String(digits.suffix(3)), at: 0); digits.removeLast(3) }
            return ([digits] + groups).joined(separator: " ")
        }
        let caps: [(Int, String)] = [(Resize.maxArea, "0040-00000007"), (Resize.maxSide, "0040-00000007"), (16_383, "0040-00000007"),
                                     (Rotate.maxSourceSide, "0040-00000006"), (Watermark.maxTextSide, "0040-00000259"),
                                     (64, "0040-00000259"), (Pipeline.maxLength, "0017-00000288"), (Pipeline.maxActions, "0017-00000288"),
                                     (Limits.oss.maxFrames, "0040-00000012"), (Limits.oss.maxOutputSide, "0040-00000007")]
        for (cap, ec) in caps {
            let row = table.components(separatedBy: "\n").first { $0.contains(spaced(cap)) && $0.contains(ec) }
            #expect(row != nil, "README's limits table has no row with \(spaced(cap)) and \(ec)")
        }
    }
}
