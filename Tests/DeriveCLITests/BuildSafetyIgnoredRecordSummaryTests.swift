import Foundation
import Testing
import TestSupport

/// The build's summary and failure lines for state records it ignores (left by session 25's
/// report-places): before, each ignored record went through the failure groups, so a build that
/// built every output said `built 5, 5 failed` and `src/landscape.jpg: in the build state but its
/// folder …, 1 derivative not built` although nothing failed to build. Now the record is named by
/// its own path and counted as what it is.
@Suite(.ownThreads, .serialized) struct BuildSafetyIgnoredRecordSummaryTests {
    typealias Project = BuildSafetyAttackTests.Project

    /// Attack 15's F8 shape: Derive's `outA` moved away and a new `outA` of copies made, the
    /// bucket then moved to `outB`: every output is built in `outB`, every old record ignored.
    @Test func ignoredRecordsAreCountedAsIgnoredNotAsFailed() throws {
        let project = try Project.withCopiesAtItsOldBucketPath()
        defer { project.remove() }
        let plan = try project.run(["plan"])
        let planned = text(plan.stdout)
        #expect(plan.status == 1, "\(planned) \(plan.stderr)")
        #expect(!planned.contains("failure"), "ignored records called failures by plan: \(planned)")
        #expect(planned.contains("5 build-state records ignored"), "\(planned)")
        let build = try project.run(["build"])
        let summary = text(build.stdout)
        #expect(build.status == 1, "the build drops the records and says so once (exit 1): \(summary) \(build.stderr)")
        #expect(summary.contains("built 5"), "\(summary)")
        #expect(!summary.contains("failed"), "ignored records counted as failed: \(summary)")
        #expect(summary.contains("5 build-state records ignored"), "\(summary)")
        for name in project.outputs {
            #expect(build.stderr.contains("out/\(name): in the build state but"), "\(name): \(build.stderr)")
        }
        #expect(!build.stderr.contains("not built"), "built outputs said not built: \(build.stderr)")
        // Once: the records are dropped.
        let again = try project.run(["build"])
        #expect(again.status == 0, "\(text(again.stdout)) \(again.stderr)")
    }
}
