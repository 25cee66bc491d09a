import Foundation
import Testing
import TestSupport
@testable import Planner

/// An engine's name replaces the spaces of library names and versions with dashes byte for
/// byte when they are ASCII (issue 15): it must be Foundation's `replacingOccurrences` for every
/// text, ASCII or not (a space followed by a combining mark, NUL, DEL, non-ASCII spaces), so
/// every action key and witness stays as it was.
@Suite(.ownThreads) struct EngineNameTests {
    @Test func dashedIsFoundationsReplacement() {
        var texts = ["", " ", "  ", "a", "libjpeg-turbo", "lib jpeg turbo", " 3.0.2 ", "8.14.1 (abc)", "a\u{0} b", "\u{7F} \u{7F}", "a\tb",
                     "a \u{301}b", " \u{301}", "caf\u{E9} x", "e\u{301} x", "a\u{A0}b", "a\u{3000}b", "🙂 🙂", "x \u{200D}y"]
        let pieces = [" ", "a", "-", "\u{301}", "\u{E9}", "\u{0}", "\u{7F}", "1.2", "\u{A0}", "\u{10000}"]
        var state: UInt64 = 0x1234_5678_9ABC_DEF1
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<400 { texts.append((0..<next(7)).map { _ in pieces[next(pieces.count)] }.joined()) }
        let disagreements = texts.filter { Array(EngineIdentity.dashed($0).utf8) != Array(EngineIdentity.dashedSlowly($0).utf8) }
        #expect(disagreements.isEmpty, "\(disagreements.map { Array($0.unicodeScalars) })")
        let identity = EngineIdentity(renderVersion: "1", libvips: "8.15.1", encoder: "e", libraries: ["lib a": "1 2", "b": "3", "c \u{301}d": "x y"])
        #expect(identity.engine == "derive-render/1 libvips/8.15.1 b/3 " + EngineIdentity.dashedSlowly("c \u{301}d") + "/x-y lib-a/1-2")
    }
}
