import Foundation
import Testing
import TestSupport
import ProcessLanguage
import Builder
@testable import Planner

/// The witness's output lines are read into `PathBytes` (issue 15): a path with nothing escaped
/// is its bytes between the quotes, copied, with no String made. It must give exactly the path
/// `unquote` gives (the slow path, a String per line), and refuse exactly the lines it refuses.
@Suite(.ownThreads) struct WitnessOutputBytesTests {
    @Test func appendUnquotedGivesUnquotesPath() {
        let names = ["/p/site/d0/s0.a.jpg", "", "a", "q\"uote", "back\\slash", "tab\there", "new\nline", "é🙂", "\u{1}\u{7F}",
                     "/p/site/\\\"/x", "ends with \\", "\u{2028}"]
        var lines = names.map { Array(JSONText.string($0).utf8) }
        // Not quoted, half quoted, a lone quote, an escape that is not JSON, bytes that are no UTF-8.
        let malformed = ["", "\"", "a", "\"a", "a\"", "\"a\\q\"", "\"a\\\"", "'a'", " \"a\""]
        lines += malformed.map { Array($0.utf8) }
        lines += [[0x22, 0xFF, 0x61, 0x22], [0x22, 0xC3, 0x22], [0x22, 0x5C, 0x75, 0x30, 0x30, 0x65, 0x39, 0x22]]
        var expectedAccepted = 0
        for line in lines {
            // A slice that does not start at 0, as the witness body's lines are.
            let padded = [0x7A] + line + [0x20]
            let quoted = padded[1..<(padded.count - 1)]
            var paths = PathBytes()
            let accepted = NoOpWitness.appendUnquoted(quoted, to: &paths)
            let slow = NoOpWitness.unquote(quoted)
            #expect(accepted == (slow != nil), "\(line)")
            #expect(paths.count == (accepted ? 1 : 0))
            if let slow, accepted {
                #expect(paths.string(0) == slow, "\(line)")
                expectedAccepted += 1
            }
        }
        #expect(expectedAccepted >= names.count)
        // Many in one buffer keep their order and bounds.
        var all = PathBytes()
        for name in names { #expect(NoOpWitness.appendUnquoted(Array(JSONText.string(name).utf8)[...], to: &all)) }
        #expect(all.strings == names)
        #expect(all == PathBytes(names))
    }

    /// Through a whole no-op: outputs whose names the witness escapes (a quote, a backslash, a
    /// tab) and others (another script) are read and stat'ed from their bytes; the witness holds
    /// for them, and one of them changed (touched, edited, deleted) is seen: the full plan runs.
    @Test func escapedOutputNamesHoldAndTheirChangesAreSeen() throws {
        let files = ["photos/q\"u\\o.jpg": "A", "photos/tab\there.jpg": "BB", "photos/é🙂.jpg": "CCC", "photos/plain.jpg": "D"]
        let project = try Project(IncrementalPlanEquivalenceTests.galleryManifest(width: 200, pattern: "{dir}/{name}.{style}.{ext}"), files: files)
        try project.write("photos/logo.png", "LOGO")
        try project.build()
        project.settle()
        try project.build()
        project.settle()
        #expect(try project.session().unchanged() == 8)
        for (index, output) in ["site/q\"u\\o.thumb.jpg", "site/tab\there.marked.jpg", "site/é🙂.thumb.jpg"].enumerated() {
            #expect(project.exists(output), "\(output)")
            switch index {
            case 0:   // the same bytes, a new stat
                try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3_600)], ofItemAtPath: project.path(output))
            case 1: try project.write(output, "edited")
            default: try project.remove(output)
            }
            #expect(try project.session().unchanged() == nil, "\(output) changed, yet the witness held")
            // The edited file is the user's now: out of the way, so the build makes Derive's again.
            if index == 1 { try project.remove(output) }
            try project.build()
            project.settle()
            try project.build()
            project.settle()
            #expect(try project.session().unchanged() == 8)
        }
    }
}
