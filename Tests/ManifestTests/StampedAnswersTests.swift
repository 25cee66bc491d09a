import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import Manifest
import Testing
import TestSupport

/// Attack 50c's M5: the neighbour checks of one load listed `/tmp` and read each sibling's
/// manifest and state many times over. Their answers are kept per process while the files they
/// came from keep their stamps (`StampedAnswers`); a kept answer must be the one a fresh read gives.
@Suite(.ownThreads) struct StampedAnswersTests {
    /// Sets the modification time of `path` (not following a link) to `seconds` past the epoch:
    /// two writes within one clock tick would otherwise share their times.
    static func stamp(_ path: String, seconds: Int) {
        var times = [timespec(tv_sec: seconds, tv_nsec: 0), timespec(tv_sec: seconds, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
    }

    @Test func aKeptAnswerIsReadAgainWhenItsFileChanges() throws {
        let root = try ScratchFolder.make("stamped-answers").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = root + "/f", other = root + "/g"
        let answers = StampedAnswers<String>(settleSeconds: 0)
        var reads = 0
        func answer() -> String {
            answers.answer(file, stamping: [file]) {
                reads += 1
                return (try? String(contentsOfFile: file, encoding: .utf8)) ?? "none"
            }
        }
        try "aaaa".write(toFile: file, atomically: false, encoding: .utf8)
        Self.stamp(file, seconds: 1_000_000)
        #expect(answer() == "aaaa")
        #expect(answer() == "aaaa")
        #expect(reads == 1, "the kept answer was not used: the fast path is not tested")
        // The same size, other bytes, in place (same inode).
        try "bbbb".write(toFile: file, atomically: false, encoding: .utf8)
        Self.stamp(file, seconds: 1_000_001)
        #expect(answer() == "bbbb")
        // Its times put back as they were: the change time still moved.
        try "cccc".write(toFile: file, atomically: false, encoding: .utf8)
        Self.stamp(file, seconds: 1_000_001)
        #expect(answer() == "cccc")
        // Replaced by a link to another file.
        try "dddd".write(toFile: other, atomically: false, encoding: .utf8)
        Self.stamp(other, seconds: 1_000_001)
        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.createSymbolicLink(atPath: file, withDestinationPath: other)
        #expect(answer() == "dddd")
        // The link's target changed in place.
        try "eeee".write(toFile: other, atomically: false, encoding: .utf8)
        Self.stamp(other, seconds: 1_000_001)
        #expect(answer() == "eeee")
        try FileManager.default.removeItem(atPath: file)
        #expect(answer() == "none")
        #expect(reads == 6)
    }

    @Test func anAnswerFromAFileChangedJustNowIsNotKept() throws {
        let root = try ScratchFolder.make("stamped-racy").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = root + "/f"
        try "aaaa".write(toFile: file, atomically: false, encoding: .utf8)
        let answers = StampedAnswers<Int>()
        var reads = 0
        for _ in 0..<3 { _ = answers.answer(file, stamping: [file]) { reads += 1; return reads } }
        // Its change time is now: a change within the same clock tick would keep the stamp.
        #expect(reads == 3)
        #expect(answers.keptCount == 0)
    }

    @Test func aManifestTextJudgedBeforeIsJudgedAsParsingItNow() {
        let texts = ["version: 1\nbuckets:\n  s: {path: s}\n", "version: 1\n", "hello: world\n", "version: 1\nbuckets: [\n", "{}", "",
                     "{\"version\": 1, \"derivatives\": []}", String(repeating: "# pad\n", count: 20_000) + "version: 1\ninclude: [a.yaml]\n"]
        for round in 0..<2 {
            for text in texts {
                let data = Data(text.utf8)
                #expect(ControlFiles.couldBeManifest(contents: data) == ControlFiles.couldBeManifestParsing(contents: data), "round \(round): \(text.suffix(40))")
            }
        }
    }

    /// The checks' own kept answers (folder listings, a sibling's lock and state, a folder's
    /// state database) against the same read made now, across changes; once the files have
    /// settled (two seconds), so the kept answers are used.
    @Test func theNeighbourChecksKeptAnswersAreTheAnswersReadNow() throws {
        let root = try ScratchFolder.make("stamped-neighbours").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let manifest = "version: 1\nbuckets:\n  src: {path: src}\nderivatives: []\n"
        try FileManager.default.createDirectory(atPath: root + "/p/.derive/derive", withIntermediateDirectories: true)
        try manifest.write(toFile: root + "/p/derive.yaml", atomically: false, encoding: .utf8)
        try ("lock: meta/p.lock\n" + manifest).write(toFile: root + "/p/site.yml", atomically: false, encoding: .utf8)
        try "not a database".write(toFile: root + "/p/.derive/derive/state.sqlite", atomically: false, encoding: .utf8)
        func same(_ step: String) {
            let folder = root + "/p"
            #expect(ControlFiles.manifestNames(in: folder).sorted() == ControlFiles.manifestNamesListedNow(in: folder).sorted(), "\(step): names")
            for name in ["derive.yaml", "site.yml"] {
                let kept = ControlFiles.controlFiles(ofSibling: folder + "/" + name)
                #expect([kept.lock, kept.state] == ControlFiles.controlFilesReadNow(ofSibling: folder + "/" + name), "\(step): \(name)")
            }
            let state = folder + "/.derive/derive"
            #expect(String(describing: ControlFiles.stateDatabase(in: state)) == String(describing: ControlFiles.stateDatabaseReadNow(in: state)),
                    "\(step): state")
        }
        let before = (ControlFiles.listedManifestNames.keptCount, ControlFiles.siblingControlFiles.keptCount, ControlFiles.statesRead.keptCount)
        Thread.sleep(forTimeInterval: 2.2)
        same("settled")
        same("kept")
        #expect(ControlFiles.listedManifestNames.keptCount > before.0 || before.0 >= 8000, "no listing was kept: the fast path is not tested")
        #expect(ControlFiles.siblingControlFiles.keptCount > before.1 || before.1 >= 8000, "no sibling's files were kept")
        #expect(ControlFiles.statesRead.keptCount > before.2 || before.2 >= 8000, "no state was kept")
        try manifest.write(toFile: root + "/p/other.json", atomically: false, encoding: .utf8)
        same("a manifest added")
        #expect(ControlFiles.manifestNames(in: root + "/p").contains("other.json"))
        try ("lock: meta/q.lock\n" + manifest).write(toFile: root + "/p/site.yml", atomically: false, encoding: .utf8)
        same("a sibling's lock moved in place")
        #expect(ControlFiles.controlFiles(ofSibling: root + "/p/site.yml").lock == root + "/p/meta/q.lock")
        try FileManager.default.removeItem(atPath: root + "/p/.derive/derive/state.sqlite")
        same("the state removed")
    }
}
