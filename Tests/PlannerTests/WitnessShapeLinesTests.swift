import Foundation
import Testing
import TestSupport
@testable import Planner

/// The snapshot's shape lines are built in one buffer (issue 15): they must be the bytes the
/// interpolated lines were (`"\(count) \(path)\n"` per path), so a witness saved before the
/// change still compares equal, for every length (one to several decimal digits, zero) and for
/// paths with multi-byte scalars, NUL and newlines.
@Suite(.ownThreads) struct WitnessShapeLinesTests {
    @Test func shapeLinesAreTheInterpolatedLines() {
        var paths = ["", "a", "src/d1/s1.jpg", "café/e\u{301}.jpg", "\u{0}", "a\nb", "🙂/x", "out/" + String(repeating: "d/", count: 60) + "x.jpg"]
        paths += (0..<1_200).map { String(repeating: "x", count: $0 % 1_100) + "/\($0).jpg" }
        let slowly = paths.reduce(into: Data()) { $0.append(Data("\($1.utf8.count) \($1)\n".utf8)) }
        #expect(NoOpWitness.shapeLines(paths) == slowly)
        #expect(NoOpWitness.shapeLines([]) == Data())
    }
}
