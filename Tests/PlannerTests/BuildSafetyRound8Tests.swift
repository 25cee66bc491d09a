import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import Builder
import Manifest
import Planner
import ProcessLanguage

/// The eighth attack on build safety (issue 9): a file created in the instant between the
/// builder's ownership check and its write, and a hostile lock with no state.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound8Tests {
    // MARK: F1: a create never replaces a file that appeared during the build

    @Test func aCreateNeverReplacesAFileThatAppearsJustBeforeTheMove() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A", "b.jpg": "B"])
        let target = fixture.path("site/a.thumb.jpg")
        // The user's file lands after the builder's last look and before its move (the race window).
        fixture.disk.beforeWrite = { path in
            if path == target { fixture.disk.put(path, Data("USERDATA".utf8)) }
        }
        let (_, report) = try fixture.build()
        #expect(fixture.disk.contents(target) == Data("USERDATA".utf8), "the user's file was replaced")
        let failure = report.failed.first { $0.output == "site/a.thumb.jpg" }
        #expect(failure?.message.contains("appeared while building") == true, "\(report.failed)")
        #expect(!report.built.contains("site/a.thumb.jpg"))
        #expect(report.built.contains("site/b.thumb.jpg"), "the rest builds: \(report.built)")
        // The next build still refuses it (it is the user's file, not Derive's).
        fixture.disk.beforeWrite = nil
        let again = try fixture.plan()
        #expect(again.errors.contains { $0.message.contains("site/a.thumb.jpg") && $0.message.contains("not written by Derive") }, "\(again.errors)")
    }

    @Test func twoManifestsRacingIntoOneFolderTheLoserReportsAndNeverOverwrites() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        let target = fixture.path("site/a.hero.webp")
        let winner = Data("another manifest's output".utf8)
        fixture.disk.beforeWrite = { path in if path == target { fixture.disk.put(path, winner) } }
        let (_, report) = try fixture.build()
        #expect(fixture.disk.contents(target) == winner)
        #expect(report.failed.contains { $0.output == "site/a.hero.webp" && $0.message.contains("kept") }, "\(report.failed)")
    }

    @Test func aRebuildOverDerivesOwnFileStillReplacesIt() throws {
        let fixture = try Fixture(photosAndSite, sources: ["a.jpg": "A"])
        try fixture.build()
        let before = fixture.disk.contents(fixture.path("site/a.thumb.jpg"))
        try fixture.setManifest(photosAndSite.replacingOccurrences(of: "w_200", with: "w_300"))
        let (_, report) = try fixture.build()
        #expect(report.failed.isEmpty, "\(report.failed)")
        #expect(report.built.contains("site/a.thumb.jpg"))
        #expect(fixture.disk.contents(fixture.path("site/a.thumb.jpg")) != before)
    }

    // MARK: F2: with no state, a lock line authorises deleting only what a rule could have written

    /// A lock line for `path` vouching for the bytes `text`.
    static func lockLine(_ path: String, _ text: String, format: String = "jpg") -> String {
        #"{"path":"\#(path)","actionKey":"\#(String(repeating: "0", count: 64))","digest":"\#(ContentDigests.digest(Data(text.utf8)))","width":1,"height":1,"bytes":\#(text.utf8.count),"format":"\#(format)"}"#
    }

    /// Builds, loses the state (a fresh clone), then appends hostile lines to the lock.
    func freshCloneWithHostileLock(_ lines: [(path: String, file: String, text: String, format: String)]) throws -> Project {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B"])
        try project.build()
        try FileManager.default.removeItem(atPath: project.path(".derive"))
        var lock = project.read("derive.lock") ?? ""
        for line in lines {
            try project.write(line.file, line.text)
            lock += Self.lockLine(line.path, line.text, format: line.format) + "\n"
        }
        try project.write("derive.lock", lock)
        return project
    }

    @Test func aHostileLockNeverDeletesAFileNoRuleCouldHaveWritten() throws {
        let project = try freshCloneWithHostileLock([
            ("photos/notes.txt", "photos/notes.txt", "my notes\n", "jpg"),            // a source-only bucket
            ("site/upload.bin", "site/upload.bin", "user upload\n", "jpg"),           // no rule's to: shape
            ("site/c.thumb.txt", "site/c.thumb.txt", "text\n", "jpg"),                // wrong extension
            ("site/d.thumb.jpg", "site/d.thumb.jpg", "not an output\n", "json"),      // not an output format
        ])
        let plan = try project.plan()
        #expect(plan.items.filter { $0.kind == .delete }.isEmpty, "\(plan.items.filter { $0.kind == .delete }.map(\.output))")
        // Without a state nothing is deleted on the lock's word (attack 16's H2): each is named as
        // left, none is a failure (V3).
        #expect(plan.failures.isEmpty, "\(plan.failures)")
        for path in ["photos/notes.txt", "site/upload.bin", "site/c.thumb.txt", "site/d.thumb.jpg"] {
            #expect(plan.lockLeft.contains { $0.output == path && $0.present && $0.message.hasPrefix("left: known only from derive.lock") }, "\(path): \(plan.lockLeft)")
        }
        // A session's plan opens the state: lose it again so the build sees a fresh clone too.
        try FileManager.default.removeItem(atPath: project.path(".derive"))
        let outcome = try project.build()
        #expect(outcome.report?.deleted.isEmpty == true, "\(String(describing: outcome.report?.deleted))")
        #expect(project.read("photos/notes.txt") == "my notes\n")
        #expect(project.read("site/upload.bin") == "user upload\n")
        #expect(project.read("site/c.thumb.txt") == "text\n")
        #expect(project.read("site/d.thumb.jpg") == "not an output\n")
        #expect(project.exists("site/a.thumb.jpg"))
    }

    @Test func cleanInAFreshCloneNeverDeletesAFileNoRuleCouldHaveWritten() throws {
        let project = try freshCloneWithHostileLock([
            ("photos/notes.txt", "photos/notes.txt", "my notes\n", "jpg"),
            ("site/upload.bin", "site/upload.bin", "user upload\n", "jpg"),
        ])
        // The renderer proves the file a build would adopt Derive's before it is removed (issue 13's finding 1).
        let report = try project.session().clean(renderer: { project.renderer })
        #expect(project.read("photos/notes.txt") == "my notes\n")
        #expect(project.read("site/upload.bin") == "user upload\n")
        #expect(report.left.contains { $0.contains("photos/notes.txt  left: known only from derive.lock") }, "\(report.left)")
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(!project.exists("site/a.thumb.jpg"), "Derive's own outputs still go")
    }

    /// Attack 16's H2: without a state the lock alone deletes nothing, even Derive's own old
    /// output: left, named, and its line dropped from the lock; with the state it is deleted.
    @Test func aFreshCloneLeavesAnOutputWhoseSourceWentAway() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B"])
        try project.build()
        try FileManager.default.removeItem(atPath: project.path(".derive"))
        try project.remove("photos/b.jpg")
        let outcome = try project.build()
        #expect(project.exists("site/b.thumb.jpg"), "\(outcome.plan.items.map { "\($0.kind) \($0.output)" })")
        #expect(outcome.plan.lockLeft.map(\.output) == ["site/b.thumb.jpg"], "\(outcome.plan.lockLeft)")
        // No output line any more; a `left` line keeps its ACL while it is there (round 19's V1).
        #expect(outcome.report?.succeeded == true && !(project.read("derive.lock") ?? "").contains(#"{"path":"site/b.thumb.jpg""#))
        #expect((project.read("derive.lock") ?? "").contains(#"{"left":"site/b.thumb.jpg""#))
        // With a state, its record decides: an output whose source goes is deleted.
        try project.remove("site/b.thumb.jpg")
        try project.write("photos/b.jpg", "B")
        try project.build()
        try project.remove("photos/b.jpg")
        try project.build()
        #expect(!project.exists("site/b.thumb.jpg"))
    }

    // MARK: F7: check's words

    @Test func checkDoesNotCallAnOutputWhoseWatermarkFailedNotProduced() throws {
        let project = try Project(DependencyTests.manifest, files: ["photos/a.jpg": "A", "photos/marks/logo.png": "L1"])
        try project.build()
        try project.remove("photos/marks/logo.png")
        let problems = try project.check().problems
        #expect(problems.contains { $0.hasPrefix("site/a.hero.webp: the watermark object 'marks/logo.png' does not exist") }, "\(problems)")
        #expect(!problems.contains { $0.contains("not produced by the manifest") }, "\(problems)")
    }

    @Test func checkNamesAUsersIndexOnceAsASentence() throws {
        let project = try Project(siteManifest + "index: site/index.json\n", files: ["photos/a.jpg": "A"])
        try project.build()
        try project.write("site/index.json", "mine")
        let problems = try project.check().problems
        #expect(problems.contains { $0.hasPrefix("site/index.json exists and was not written by Derive") }, "\(problems)")
        #expect(!problems.contains { $0.contains("index.json: exists") }, "\(problems)")
    }
}
