import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import Builder
import Manifest
import Planner

/// What the build, plan and check say agrees with what they did and found (attack findings on #9).
@Suite(.ownThreads, .serialized) struct ReportingTests {
    @Test func deletedCountsOnlyFilesActuallyDeleted() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B", "photos/c.jpg": "C"])
        try project.build()
        try project.write("site/a.thumb.jpg", "edited by the user")
        try project.remove("site/c.thumb.jpg")
        try project.write("derive.yaml", siteManifest.replacingOccurrences(of: "from: photos/**/*.jpg", with: "from: photos/**/*.png"))
        let report = try #require(try project.build().report)
        #expect(report.deleted == ["site/b.thumb.jpg"], "\(report.deleted)")
        #expect(report.left.map(\.message) == ["site/a.thumb.jpg was changed since Derive wrote it; left in place"])
        #expect(report.forgotten == ["site/c.thumb.jpg"], "\(report.forgotten)")
        #expect(project.read("site/a.thumb.jpg") == "edited by the user")
    }

    @Test func checkSaysAnEditedOutputWasModified() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        try project.build()
        try project.write("site/a.thumb.jpg", "edited by the user")
        let problems = try project.check().problems
        #expect(problems.contains { $0.contains("site/a.thumb.jpg was changed since Derive wrote it") }, "\(problems)")
        #expect(!problems.contains { $0.contains("not produced by the manifest") }, "\(problems)")
    }

    @Test func aStateThatIsAFileIsAClearError() throws {
        let project = try Project(siteManifest + "state: notes.txt\n", files: ["photos/a.jpg": "A", "notes.txt": "mine"])
        do {
            try project.build()
            Issue.record("the build went on with state: naming a file")
        } catch {
            let message = "\(error)"
            #expect(message.contains("notes.txt") && message.contains("not a folder") && message.contains("'state:'"), "\(message)")
        }
        #expect(project.read("notes.txt") == "mine")
    }

    @Test func aFIFOOrFolderNamedLikeASourceFailsItsOwnDerivatives() throws {
        let project = try Project(siteManifest.replacingOccurrences(of: "photos/**/*.jpg", with: "photos/*.jpg"),
                                  files: ["photos/a.jpg": "A", "photos/album.jpg/readme.txt": "a folder"])
        #expect(mkfifo(project.path("photos/pipe.jpg"), 0o644) == 0)
        let outcome = try project.build()
        let report = try #require(outcome.report)
        #expect(report.built == ["site/a.thumb.jpg"])
        #expect(Set(report.failed.map(\.output)) == ["photos/album.jpg", "photos/pipe.jpg"], "\(report.failed)")
        #expect(report.failed.allSatisfy { $0.message.contains("not a regular file") }, "\(report.failed)")
        #expect(!report.succeeded)
        // The witness never hides them: plan and check see them on every run.
        project.settle()
        #expect(try project.session().unchanged() == nil)
        #expect(try project.check().problems.contains { $0.hasPrefix("photos/pipe.jpg: ") })
    }

    @Test func anEmptyBuildLockDerivDidNotWriteIsLeftAlone() throws {
        let project = try Project(siteManifest + "state: data\n", files: ["photos/a.jpg": "A", "data/build.lock": ""])
        #expect(throws: PlanError.self) { try project.build() }
        #expect(throws: PlanError.self) { try project.session().clean() }
        #expect(project.exists("data/build.lock") && project.read("data/build.lock") == "")
        #expect(!project.exists("site/a.thumb.jpg"))
    }

    @Test func derivesOwnBuildLockIsRecognisedAfterRelease() throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A"])
        try project.build()
        #expect(project.read(".derive/derive/build.lock")?.hasPrefix("pid ") == true)
        try project.build()
        // An empty lock beside Derive's own state (written by an older Derive) is still Derive's.
        try project.write(".derive/derive/build.lock", "")
        try project.build()
        _ = try project.session().clean()
        #expect(!project.exists(".derive/derive/build.lock"))
    }
}
