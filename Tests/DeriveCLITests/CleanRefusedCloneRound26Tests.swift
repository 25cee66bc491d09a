import Foundation
import Testing
import TestSupport

/// Issue #9: a fresh clone (committed outputs and derive.lock, no state) whose first build is
/// refused, then `derive clean`: the refused build left an empty state, which records nothing,
/// and clean removed the outputs by the lock's lines, yet said "Removed N outputs and the build
/// state". Its last line says what was really removed: the lock was the record.
@Suite(.ownThreads, .serialized) struct CleanRefusedCloneRound26Tests {
    @Test func cleanAfterARefusedFirstBuildDoesNotClaimABuildState() throws {
        let clone = try ReportsAndCleanRound25Tests.refusedClone()
        defer { clone.remove() }
        try Data("user's own file".utf8).write(to: clone.url("out/landscape.jpg"))
        #expect(try clone.run(["build", "-q"]).status != 0, "the user's file at an output path refuses the build")
        let clean = try clone.run(["clean"])
        let out = text(clean.stdout)
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(out.contains("Removed 4 outputs (there was no usable build state)"), "\(out)\n\(clean.stderr)")
        #expect(!out.contains("and the build state"), "\(out)")
    }

    /// A state that records the outputs is still named as removed.
    @Test func cleanAfterABuildStillSaysTheBuildState() throws {
        let project = try BuildSafetyAttackTests.Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let clean = try project.run(["clean"])
        #expect(clean.status == 0 && text(clean.stdout).contains("Removed 5 outputs and the build state"), "\(text(clean.stdout))\n\(clean.stderr)")
    }
}
