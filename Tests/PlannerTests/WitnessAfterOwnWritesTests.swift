import Foundation
import Testing
import TestSupport
import Builder
import Planner

/// Issue 15 and round 22's note: where outputs go into a folder the rules read (`photos/` holding
/// `photos/src` and `photos/out`), the build's own writes moved that folder's listing after the
/// input snapshot it took before planning, so its witness never held: the next run planned in
/// full, and the watch made a silent full-plan build 1.1 s after each of its own (holding the
/// build lock). The witness is now saved with the inputs as they are after the build when they
/// differ only by files this build wrote (`NoOpWitness.afterOwnWrites`); anything else that
/// moved while it ran is still seen.
@Suite(.ownThreads, .serialized) struct WitnessAfterOwnWritesTests {
    static let manifest = """
    version: 1
    buckets:
      photos: {path: photos}
    styles:
      thumb: image/resize,w_200
    derivatives:
      - from: photos/src/*.jpg
        styles: [thumb]
        to: photos/out/{name}.{style}.{ext}
    index: photos/index.json
    """

    /// Built twice (settled), so `photos/out` exists, then `a.jpg` edited and settled.
    static func project() throws -> Project {
        let project = try Project(manifest, files: ["photos/src/a.jpg": "A", "photos/src/b.jpg": "BB"])
        try project.build()
        project.settle()
        try project.build()
        project.settle()
        try project.write("photos/src/a.jpg", "edited")
        project.settle()
        return project
    }

    /// The build of the edit leaves a witness that holds at once, and the full plan and `check`
    /// agree that nothing is to do.
    @Test func aBuildIntoAFolderTheRulesReadLeavesAWitnessThatHoldsAtOnce() throws {
        let project = try Self.project()
        let outcome = try project.build()
        #expect(outcome.plan.work.count == 1 && outcome.report?.succeeded == true)
        let session = try project.session()
        #expect(session.unchanged() == 2, "the witness of a build into photos/ does not hold")
        let plan = try project.plan()
        #expect(plan.items.count == 2 && plan.items.allSatisfy { $0.kind == .upToDate }, "\(plan.items.map { "\($0.output) \($0.kind)" })")
        #expect(plan.controlFiles.isEmpty && plan.errors.isEmpty)
        #expect(try project.check().problems.isEmpty)
    }

    /// A source edited while the build runs is not the build's write: the witness is saved with
    /// the snapshot taken before planning, so the next run sees the edit and builds it.
    @Test func aSourceEditedWhileTheBuildRunsIsStillSeen() throws {
        let project = try Self.project()
        project.renderer.duringRender = { try? project.write("photos/src/b.jpg", "changed while building") }
        let outcome = try project.build()
        #expect(outcome.plan.work.count == 1)
        #expect(try project.session().unchanged() == nil, "the edit made during the build is hidden")
        let next = try project.build()
        #expect(next.plan.work.map(\.output) == ["photos/out/b.thumb.jpg"], "\(next.plan.work.map(\.output))")
    }

    /// An output of the build changed by hand after the build put it in place (a file in the
    /// folder the rules read, with other bytes than the build wrote) is no write of the build.
    @Test func anOutputChangedAfterTheBuildWroteItIsStillSeen() throws {
        let project = try Self.project()
        project.renderer.duringRender = {
            // The other source's output is up to date: changed by hand while the build runs.
            try? project.write("photos/out/b.thumb.jpg", "EDITED BY HAND")
        }
        _ = try project.build()
        #expect(try project.session().unchanged() == nil, "the hand edit of an output is hidden")
        #expect(try project.check().problems.isEmpty == false)
    }
}
