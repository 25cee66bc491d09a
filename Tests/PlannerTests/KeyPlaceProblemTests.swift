@testable import Planner
import Testing
import TestSupport

/// The check on every output key once its variables are filled in (attack 38a's H1, M3): a `.`,
/// `..` or empty part, or a part longer than a file name may be, is a plan failure of its source.
@Suite(.ownThreads) struct KeyPlaceProblemTests {
    @Test func dotAndEmptyPartsAndOverlongNamesAreFound() {
        #expect(KeyPlaceProblem.of("img/a.webp") == nil)
        #expect(KeyPlaceProblem.of("img/.../a..webp") == nil)
        for key in ["../a.webp", "img/../../a.webp", "img/./a.webp", "img//a.webp", "img/..", "/a.webp", "a/"] {
            #expect(KeyPlaceProblem.of(key) == .dotSegment, "\(key)")
        }
        // A folder part may take 255 bytes; the file name 224, its temporary name 31 more (attack 58d's M1).
        #expect(KeyPlaceProblem.of(String(repeating: "n", count: 255) + "/a.webp") == nil)
        #expect(KeyPlaceProblem.of("img/" + String(repeating: "n", count: 224)) == nil)
        #expect(KeyPlaceProblem.of("img/" + String(repeating: "n", count: 225)) == .fileNameTooLong(225))
        #expect(KeyPlaceProblem.of("img/" + String(repeating: "n", count: 255)) == .fileNameTooLong(255))
        #expect(KeyPlaceProblem.of("img/" + String(repeating: "n", count: 256)) == .nameTooLong(256))
        // Bytes, not characters: 128 two-byte letters are 256 bytes.
        #expect(KeyPlaceProblem.of(String(repeating: "é", count: 128)) == .nameTooLong(256))
        #expect(KeyPlaceProblem.dotSegment.message(output: "out/../a.webp").contains("'.' or '..' part"))
    }
}
