import Foundation
import Testing
import TestSupport
@testable import Imaging
import ProcessLanguage

/// Issue #10, fifth attack, finding 1: the cost estimate saturates; a chain whose estimate is
/// past Int's range is refused, never a trap that kills the worker.
@Suite(.ownThreads)
struct SaturatingEstimateTests {
    static func rotations(_ n: Int) -> String {
        "image/" + Array(repeating: "rotate,45", count: n).joined(separator: "/")
    }

    /// 30 and 32 (the most a chain holds) × rotate,45 on a 4000² image: refused with an error
    /// value (the second rotate already meets a side over 4096), before the cost; 100 is over the
    /// chain limit.
    @Test(arguments: [30, 32]) func manyRotationsAreRefusedNotTrapped(n: Int) throws {
        let source = try Fixtures.solid(4000, 4000, Fixtures.red, as: .png)
        let error = EngineAttackTests.error(source, Self.rotations(n))
        #expect(error?.ec == "0040-00000006", "\(String(describing: error))")
        #expect(error?.message.contains("max-work") == false, "\(String(describing: error))")
        let hundred = EngineAttackTests.error(source, Self.rotations(100))
        #expect(hundred?.ec == "0017-00000288", "\(String(describing: hundred))")
    }

    /// A large source (the 9643x10328 size of the corpus JPEG): rotate can never succeed, so the
    /// answer names rotate's side limit, not the work estimate.
    @Test(arguments: [1, 30]) func rotatingALargeSourceNamesTheRotateLimit(n: Int) throws {
        let source = try EngineAttackTests.claimedJPEG(9643, 10328)
        let error = EngineAttackTests.error(source, Self.rotations(n))
        #expect(error?.ec == "0040-00000006", "\(String(describing: error))")
        #expect(error?.message.contains("9643x10328") == true, "\(String(describing: error))")
    }

    /// The estimate itself: 100 and 1000 arbitrary rotations stay finite, the largest limit the
    /// flags accept still refuses them, and the message states the size without trapping.
    @Test(arguments: [30, 100, 1000]) func estimateSaturates(n: Int) throws {
        // The estimate is also run on watermark pre-processes and future chains: more actions
        // than a chain holds must not trap either.
        let actions = try Pipeline.parse(Self.rotations(10)).actions
        let many = Array(repeating: actions, count: n / 10).flatMap { $0 }
        let estimate = WorkEstimate.of(actions: many, format: .png, width: 4000, height: 4000, bands: 3, frames: 1,
                                       decodedWidth: 4000, decodedHeight: 4000, output: .png, hasProfile: false, orients: false)
        #expect(estimate.work.isFinite && estimate.memory.isFinite)
        var limits = Limits.oss
        limits.maxWork = 2_305_843_009_213_693_951
        limits.maxMemory = 2_305_843_009_213_693_951
        #expect(throws: ProcessError.self) { try limits.checkEstimate(estimate, resizing: false) }
        // NaN is too large, not "within the limit".
        #expect(throws: ProcessError.self) { try limits.checkEstimate(WorkEstimate(work: .nan, memory: 0), resizing: false) }
        #expect(throws: ProcessError.self) { try limits.checkEstimate(WorkEstimate(work: .infinity, memory: 0), resizing: false) }
        do {
            try Limits.oss.checkEstimate(WorkEstimate(work: 1e30, memory: 1e30), resizing: false)
        } catch let error as ProcessError {
            #expect(error.message.contains("more than"), "\(error.message)")
        }
    }

    /// A resize by percent of a side the estimate saturated does not trap either.
    @Test func resizeGeometryOfAHugeSideSaturates() throws {
        let resize = try #require(try Pipeline.parse("image/resize,p_1000").actions.first)
        guard case .resize(let r) = resize else { Issue.record("not a resize"); return }
        #expect(throws: ProcessError.self) { _ = try r.geometry(sourceWidth: Int.max / 2, sourceHeight: Int.max / 2) }
    }

    /// Right angles are exact: a 4096-px side still rotates (the limit is inclusive).
    @Test func rotateAtTheLimitStillRenders() throws {
        let source = try Fixtures.solid(4096, 16, Fixtures.red, as: .png)
        let out = try Engine().render(source, try Pipeline.parse("image/rotate,90/rotate,90"))
        #expect(out.width == 4096 && out.height == 16)
    }
}

/// Header numbers multiply without trapping, whatever a header claims.
@Suite(.ownThreads)
struct SaturatingHeaderProductTests {
    @Test func productSaturates() {
        #expect(Limits.product(4_000_000_000, 4_000_000_000, 2) == Int.max)
        #expect(Limits.product(Int.max / 2, 3) == Int.max)
        #expect(Limits.product(4000, 3000, 2) == 24_000_000)
        #expect(throws: ProcessError.self) {
            try Limits.oss.checkSource(width: 4_000_000_000, height: 4_000_000_000, frames: 2, resizing: false)
        }
    }
}

/// Finding 4: what can never succeed is refused before the cost, naming the right side.
@Suite(.ownThreads)
struct NeverSucceedsBeforeCostTests {
    /// 32 lines at size_1000 are too tall (not too wide), and that is the answer, not "raise the work limit".
    @Test func tooTallTextIsRefusedBeforeTheWorkEstimate() throws {
        let source = try Fixtures.quadrants(400, 300, as: .png)
        let text = Base64URL.encode(String(repeating: "a\n", count: 32))
        let error = EngineAttackTests.error(source, "image/watermark,text_\(text),size_1000")
        #expect(error?.ec == "0040-00000259" && error?.parameter == "size", "\(String(describing: error))")
        #expect(error?.message.contains("tall") == true && error?.message.contains("wide") == false, "\(String(describing: error))")
        #expect(error?.message.contains("max-work") == false, "\(String(describing: error))")
        // Also with the work limit raised: the same answer when drawing.
        var limits = Limits.oss
        limits.maxWork = 1 << 50
        let drawn = EngineAttackTests.error(source, "image/watermark,text_\(text),size_1000", limits: limits)
        #expect(drawn?.ec == "0040-00000259" && drawn?.message.contains("tall") == true, "\(String(describing: drawn))")
        // A few lines that fit still render.
        let fits = try Engine().render(source, try Pipeline.parse("image/watermark,text_\(Base64URL.encode("a\nb\nc")),size_40"))
        #expect(fits.width == 400)
    }

    /// A rotate after a resize that brings the image under 4096 px still renders; one whose
    /// input the chain grows past it is refused before the cost.
    @Test func rotateLimitFollowsTheChain() throws {
        let source = try Fixtures.solid(3000, 3000, Fixtures.red, as: .png)
        let ok = try Engine().render(source, try Pipeline.parse("image/resize,w_1000/rotate,45"))
        #expect(ok.width >= 1414 && ok.width <= 1416)
        let error = EngineAttackTests.error(source, "image/rotate,45/rotate,45")
        #expect(error?.ec == "0040-00000006" && error?.message.contains("is 4243x4243 where it reaches rotate") == true, "\(String(describing: error))")
    }
}

/// Finding 5: messages name the flags of `derive process`, or the manifest's `limits:` keys when
/// the limits come from a manifest (`derive build`, `serve`), never a flag the command lacks.
@Suite(.ownThreads)
struct LimitNamingTests {
    @Test func messagesNameWhereTheLimitIsSet() throws {
        let source = try Fixtures.quadrants(400, 300, as: .png)
        for setBy in [Limits.Setting.flags, .manifest] {
            var limits = Limits.oss
            limits.setBy = setBy
            limits.maxWork = 1000
            let work = EngineAttackTests.error(source, "image/resize,w_100", limits: limits)
            var small = Limits.oss
            small.setBy = setBy
            small.maxBytes = 10
            let bytes = EngineAttackTests.error(source, "image/resize,w_100", limits: small)
            if setBy == .flags {
                #expect(work?.message.contains("--max-work") == true, "\(String(describing: work))")
                #expect(bytes?.message.contains("--max-bytes") == true, "\(String(describing: bytes))")
            } else {
                #expect(work?.message.contains("limits: work in the manifest") == true && work?.message.contains("--") == false,
                        "\(String(describing: work))")
                #expect(bytes?.message.contains("limits: bytes in the manifest") == true && bytes?.message.contains("--") == false,
                        "\(String(describing: bytes))")
            }
        }
    }
}

/// Finding 7: a cut TIFF is named as a damaged TIFF, not "not an image in a supported format".
@Suite(.ownThreads)
struct CutSourceMessageTests {
    @Test func cutTIFFIsNamedAsDamaged() throws {
        let whole = try Fixtures.quadrants(400, 300, as: .tiff)
        let cut = whole.prefix(whole.count / 2)
        let error = EngineAttackTests.error(Data(cut), "image/format,png")
        #expect(error?.ec == "0040-00000005", "\(String(describing: error))")
        #expect(error?.message.contains("TIFF") == true && error?.message.contains("cut short") == true, "\(String(describing: error))")
        // Text is still "not an image".
        let text = EngineAttackTests.error(Data("hello, not an image".utf8), "image/format,png")
        #expect(text?.message.contains("not an image") == true, "\(String(describing: text))")
    }
}
