import Testing
import TestSupport
@testable import Manifest

/// Whether a pattern would descend into a folder (attack 17's N3: a folder replaced by a link
/// is named only when the rule would have taken files below it).
@Suite(.ownThreads) struct GlobDescentTests {
    @Test func patternsThatReachBelowAFolder() throws {
        #expect(try Glob("**/*.jpg").mayMatchBelow("photos"))
        #expect(try Glob("**/*.jpg").mayMatchBelow("a/b/c"))
        #expect(try Glob("**").mayMatchBelow("photos"))
        #expect(try Glob("photos/*.jpg").mayMatchBelow("photos"))
        #expect(try Glob("*/*.jpg").mayMatchBelow("photos"))
        #expect(try Glob("{a,photos}/**/x.jpg").mayMatchBelow("photos"))
        #expect(try Glob("p?otos/*.jpg").mayMatchBelow("photos"))
        #expect(try Glob("[op]hotos/*.jpg").mayMatchBelow("photos"))
        #expect(try Glob("ph*/**").mayMatchBelow("photos"))
        #expect(try Glob("2026/**/*.jpg").mayMatchBelow("2026"))
        #expect(try Glob("a/**/x.jpg").mayMatchBelow("a/b"))
    }

    @Test func patternsThatDoNot() throws {
        #expect(try !Glob("*.jpg").mayMatchBelow("photos"))
        #expect(try !Glob("other/*.jpg").mayMatchBelow("photos"))
        #expect(try !Glob("photos").mayMatchBelow("photos"))
        #expect(try !Glob("photos*.jpg").mayMatchBelow("photos"))
        #expect(try !Glob("*/*.jpg").mayMatchBelow("a/b"))
        #expect(try !Glob("[!p]hotos/*.jpg").mayMatchBelow("photos"))
        #expect(try !Glob("a/**/x.jpg").mayMatchBelow("b"))
    }

    @Test func excludesThatTakeAWholeFolder() throws {
        #expect(try Glob("photos/**").matchesEverythingBelow("photos"))
        #expect(try Glob("**/photos/**").matchesEverythingBelow("photos"))
        #expect(try Glob("**/photos/**").matchesEverythingBelow("a/photos"))
        #expect(try Glob("**").matchesEverythingBelow("photos"))
        #expect(try Glob("ph*/**").matchesEverythingBelow("photos"))
        #expect(try !Glob("photos/*").matchesEverythingBelow("photos"))
        #expect(try !Glob("photos/**/*.png").matchesEverythingBelow("photos"))
        #expect(try !Glob("other/**").matchesEverythingBelow("photos"))
    }
}
