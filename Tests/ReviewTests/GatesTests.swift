import Foundation
import Testing
import TestSupport
@testable import Review

@Suite(.ownThreads) struct GatesTests {
    static func review(ssim: Double?, before: Int64?, after: Int64?, kind: Review.Entry.Kind = .rebuilt) -> Review {
        let entry = Review.Entry(kind: kind, output: "site/a.jpg", source: "photos/a.jpg", before: "image/resize,w_1", after: "image/resize,w_2",
                                 bytesBefore: before, bytesAfter: after, ssim: ssim)
        return Review(before: "HEAD", after: "working tree", manifest: "derive.yaml", styles: [], rules: [],
                      groups: [.init(rule: "r", style: nil, entries: [entry])],
                      totals: .init(created: 0, rebuilt: 1, deleted: 0, bytesBefore: before ?? 0, bytesAfter: after), rendered: true)
    }

    @Test func parsesEveryForm() throws {
        #expect(try Gates("ssim<0.98,bytes>+10%").conditions == [.ssimBelow(0.98), .bytesGrowth(10)])
        #expect(try Gates(" bytes>200k , total>+5% ,bytes>2m").conditions == [.bytesAbove(200_000), .totalGrowth(5), .bytesAbove(2_000_000)])
        for bad in ["", "ssim<2", "ssim>0.9", "bytes>+ten%", "bytes>-5", "size>1", ",", "bytes>99999999999999999999m"] {
            #expect(throws: Gates.ParseError.self, "\(bad)") { try Gates(bad) }
        }
    }

    @Test func ssimFiresStrictlyBelowTheThreshold() throws {
        let gates = try Gates("ssim<0.98")
        var at = Self.review(ssim: 0.98, before: 100, after: 100)
        #expect(gates.apply(to: &at).outputs == 0)
        var below = Self.review(ssim: 0.9799, before: 100, after: 100)
        #expect(gates.apply(to: &below).outputs == 1)
        #expect(below.entries[0].gateFailures == ["ssim 0.9799 < 0.98"])
        var unknown = Self.review(ssim: nil, before: 100, after: 100, kind: .created)
        #expect(gates.apply(to: &unknown).outputs == 0)
    }

    @Test func bytesGrowthFiresStrictlyAboveThePercentage() throws {
        let gates = try Gates("bytes>+10%")
        var at = Self.review(ssim: 1, before: 1000, after: 1100)
        #expect(gates.apply(to: &at).outputs == 0)
        var above = Self.review(ssim: 1, before: 1000, after: 1101)
        #expect(gates.apply(to: &above).outputs == 1)
        #expect(above.entries[0].gateFailures == ["bytes +10.1% > +10%"])
        // A created output has no old size to grow from.
        var created = Self.review(ssim: nil, before: nil, after: 5000, kind: .created)
        #expect(gates.apply(to: &created).outputs == 0)
    }

    @Test func absoluteAndTotalLimits() throws {
        var review = Self.review(ssim: 1, before: 1000, after: 2001)
        let result = try Gates("bytes>2k,total>+100%").apply(to: &review)
        #expect(result.outputs == 1)
        #expect(result.total == ["total bytes +100.1% > +100%"])
        var under = Self.review(ssim: 1, before: 1000, after: 2000)
        let none = try Gates("bytes>2k,total>+100%").apply(to: &under)
        #expect(none.outputs == 0 && none.total.isEmpty)
    }

    @Test func junitEscapesAndCountsFailures() throws {
        var review = Self.review(ssim: 0.5, before: 10, after: 20)
        review.groups[0].entries[0].output = "site/a&<\"b\u{1}.jpg"
        let total = try Gates("ssim<0.9").apply(to: &review).total
        let xml = JUnitReport.xml(review, totalFailures: total)
        #expect(xml.contains("name=\"site/a&amp;&lt;&quot;b\u{FFFD}.jpg\""))
        #expect(xml.contains("<testsuites name=\"derive diff\" tests=\"2\" failures=\"1\">"))
        #expect(xml.contains("<failure message=\"ssim 0.5000 &lt; 0.9\">"))
    }
}

/// Attack 12 (review): broken outputs fail every gate, a total from nothing fails, sampled
/// totals are estimates over every output, control characters are escaped in text.
@Suite(.ownThreads) struct GatesAttack12Tests {
    @Test func anOutputTheChangeBreaksFailsAnyGate() throws {
        var review = GatesTests.review(ssim: nil, before: 100, after: nil, kind: .failed)
        review.groups[0].entries[0].failure = "the watermark object 'nope.png' does not exist"
        let result = try Gates("ssim<0.1").apply(to: &review)
        #expect(result.outputs == 1)
        #expect(review.entries[0].gateFailures == ["fails to build: the watermark object 'nope.png' does not exist"])
        #expect(JUnitReport.xml(review, totalFailures: result.total).contains("failures=\"1\""))
        // The page and the text say the failure once, as a gate failure here and on its own without gates.
        func count(_ text: String) -> Int { text.components(separatedBy: "fails to build: the watermark").count - 1 }
        #expect(count(ReviewHTML.page(review)) == 1)
        #expect(count(ReviewText.text(review, colour: false)) == 1)
        var ungated = review
        ungated.groups[0].entries[0].gateFailures = []
        #expect(count(ReviewHTML.page(ungated)) == 1)
        #expect(count(ReviewText.text(ungated, colour: false)) == 1)
    }

    @Test func totalFromNothingFails() throws {
        var review = GatesTests.review(ssim: nil, before: nil, after: 4621, kind: .created)
        review.totals.bytesBefore = 0
        #expect(try Gates("total>+5%").apply(to: &review).total == ["total bytes 0 → 4621 (all new) > +5%"])
        var empty = GatesTests.review(ssim: nil, before: nil, after: 0, kind: .created)
        empty.totals.bytesBefore = 0
        #expect(try Gates("total>+5%").apply(to: &empty).total.isEmpty)
    }

    /// Six rebuilt outputs that all grow by 15 %, the one sampled a tiny one: each unrendered
    /// output is estimated from its own before size, so the total grows by 15 %, not -93 %.
    @Test func sampledTotalsScaleEachBeforeByTheSampledRatio() throws {
        func entry(_ name: String, before: Int64, after: Int64?) -> Review.Entry {
            Review.Entry(kind: .rebuilt, output: name, source: "photos/" + name, before: nil, after: nil, bytesBefore: before, bytesAfter: after)
        }
        let group = Review.Group(rule: "g", style: "thumb", entries: [entry("tiny", before: 400, after: 460)]
            + (1...5).map { entry("b\($0)", before: 8000, after: nil) })
        let totals = ReviewRenderer.totals([group], rendered: ["tiny"])
        #expect(totals.before == 40400)
        #expect(totals.after == 46460)
        #expect(totals.estimated && totals.trusted)
        var review = GatesTests.review(ssim: nil, before: 1, after: 1)
        review.groups = [group]
        review.rendered = true
        review.totals.bytesBefore = totals.before; review.totals.bytesAfter = totals.after
        review.totals.estimated = true; review.totals.sampledOutputs = 1
        #expect(try Gates("total>+5%").apply(to: &review).total == ["total bytes +15.0% > +5% (estimated from a sample)"])
        // The group line says it shows the rendered outputs only.
        #expect(ReviewText.text(review, colour: false).contains("rule 'g', thumb: 6 rebuilt; bytes of the 1 rendered 400 → 460 (+15.0%)"))
    }

    /// An unrendered output of unknown size: no estimate can be trusted, the gate judges the
    /// rendered outputs' own ratio and says so.
    @Test func untrustedEstimateJudgesTheRenderedSubset() throws {
        let sampled = Review.Entry(kind: .rebuilt, output: "a", source: "photos/a", before: nil, after: nil, bytesBefore: 1000, bytesAfter: 1200)
        let unknown = Review.Entry(kind: .rebuilt, output: "b", source: "photos/b", before: nil, after: nil, bytesBefore: nil, bytesAfter: nil)
        let totals = ReviewRenderer.totals([.init(rule: "g", style: nil, entries: [sampled, unknown])], rendered: ["a"])
        #expect(totals.estimated && !totals.trusted)
        #expect(totals.renderedBefore == 1000 && totals.renderedAfter == 1200)
        var review = GatesTests.review(ssim: nil, before: 1, after: 1)
        review.totals.bytesBefore = 1; review.totals.bytesAfter = 1
        review.totals.estimated = true; review.totals.estimateTrusted = false
        review.totals.renderedBytesBefore = 1000; review.totals.renderedBytesAfter = 1200
        #expect(try Gates("total>+5%").apply(to: &review).total
                == ["total bytes +20.0% > +5% (the rendered sample's own ratio: an output of unknown size was not rendered, so no estimated total can be trusted)"])
    }

    /// Four rebuilt outputs known before, one rendered after: the other three count at its size.
    @Test func sampledTotalsFillEachGroupAtItsMean() {
        func entry(_ name: String, _ kind: Review.Entry.Kind, before: Int64?, after: Int64?) -> Review.Entry {
            Review.Entry(kind: kind, output: name, source: "photos/" + name, before: nil, after: nil, bytesBefore: before, bytesAfter: after)
        }
        let big = Review.Group(rule: "big", style: nil, entries: (1...4).map { entry("b\($0)", .rebuilt, before: 1000, after: $0 == 1 ? 1500 : nil) })
        let new = Review.Group(rule: "new", style: nil, entries: [entry("n1", .created, before: nil, after: 200), entry("n2", .created, before: nil, after: nil)])
        let broken = Review.Group(rule: "broken", style: nil, entries: [{ var e = entry("x", .rebuilt, before: 9999, after: nil); e.failure = "no"; return e }()])
        let totals = ReviewRenderer.totals([big, new, broken], rendered: ["b1", "n1"])
        #expect(totals.before == 4000)
        #expect(totals.after == 4 * 1500 + 2 * 200)
        #expect(totals.estimated)
        let exact = ReviewRenderer.totals([big], rendered: ["b1", "b2", "b3", "b4"])
        #expect(exact.estimated == false)
    }

    @Test func textEscapesControlCharacters() {
        #expect(ReviewText.clean("a\u{1B}]0;x\u{07}b\u{9B}c") == "a\\u{1B}]0;x\\u{7}b\\u{9B}c")
        #expect(ReviewText.clean("plain → é") == "plain → é")
    }
}
