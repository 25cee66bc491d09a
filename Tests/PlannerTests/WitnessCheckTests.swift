import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
import Builder
import Manifest
import Planner

/// One stat pass per command (issue 15): the CLI's no-op check and the session that plans and
/// builds are two sessions; the second takes the first one's witness check over instead of
/// stat'ing every input again, only when it fits (same inputs, no build since), and a file
/// changed after the check is never hidden: when in doubt, rebuild.
@Suite(.ownThreads, .serialized) struct WitnessCheckTests {
    typealias Tree = IncrementalPlanEquivalenceTests.Tree

    /// Twin trees (one incremental, one `DERIVE_INCREMENTAL=0`), built and settled with a witness.
    static func twins() throws -> (fast: Tree, full: Tree) {
        let fast = try Tree(), full = try Tree()
        full.project.incremental = false
        for tree in [fast, full] { try tree.project.build() }
        fast.project.settle()
        for tree in [fast, full] { try tree.project.build() }
        fast.project.settle()
        return (fast, full)
    }

    /// Builds as the CLI does: a no-op check, then (unless nothing is to do) a second session
    /// that adopts it and builds. Returns the building session (nil: nothing to do).
    @discardableResult
    static func cliBuild(_ tree: Tree) throws -> BuildSession? {
        let cli = try tree.project.session()
        if cli.unchanged() != nil { cli.refreshWitness(); return nil }
        let builder = try tree.project.session()
        builder.adopt(cli.witnessCheck())
        _ = try builder.build(options: BuildOptions(jobs: 2, quiet: true)) { tree.project.renderer }
        return builder
    }

    @Test func anEditedSourceBuildStatsItsInputsOnce() throws {
        let (fast, _) = try Self.twins()
        try fast.project.write("photos/a.jpg", "edited")
        fast.project.settle()
        let cli = try fast.project.session()
        #expect(cli.unchanged() == nil)
        #expect(cli.witnessCheck().found?.edited.count == 1)
        let builder = try fast.project.session()
        #expect(builder.adopt(cli.witnessCheck()))
        let outcome = try builder.build(options: BuildOptions(jobs: 2, quiet: true)) { fast.project.renderer }
        #expect(builder.lastPlanPath == .editedSources(1))
        #expect(builder.witnessChecksTaken == 0, "the build stat'ed its inputs again")
        #expect(outcome.report?.built.count == 2)
        // The witness it left holds at once.
        #expect(try fast.project.session().unchanged() == 6)
    }

    /// Sources changed after the witness check, before the plan: an edited one edited again, and
    /// one the check found unchanged. The build may render the newest bytes now or at the next
    /// run, but the witness it leaves never vouches for stale outputs, and the next build ends
    /// with exactly the outputs the full path builds.
    @Test func aSourceChangedBetweenTheWitnessCheckAndThePlanIsRebuilt() throws {
        let (fast, full) = try Self.twins()
        for tree in [fast, full] { try tree.project.write("photos/a.jpg", "edited") }
        fast.project.settle()
        let cli = try fast.project.session()
        #expect(cli.unchanged() == nil)
        let check = cli.witnessCheck()
        #expect(check.found?.edited.keys.sorted() == [fast.project.path("photos/a.jpg")])
        // Between the check and the plan.
        for tree in [fast, full] {
            try tree.project.write("photos/a.jpg", "edited again")
            try tree.project.write("photos/b.jpg", "changed after the check")
        }
        let builder = try fast.project.session()
        #expect(builder.adopt(check))
        _ = try builder.build(options: BuildOptions(jobs: 2, quiet: true)) { fast.project.renderer }
        #expect(builder.witnessChecksTaken == 0)
        try full.project.build()
        let (a, b) = (IncrementalPlanEquivalenceTests.files(fast.project), IncrementalPlanEquivalenceTests.files(full.project))
        if a != b {
            // Not rebuilt yet: the witness must not say "nothing to do".
            #expect(try fast.project.session().unchanged() == nil, "a source changed after the check is hidden by the witness")
            try Self.cliBuild(fast)
        }
        let differing = Set(a.keys).union(b.keys).filter {
            IncrementalPlanEquivalenceTests.files(fast.project)[$0] != IncrementalPlanEquivalenceTests.files(full.project)[$0]
        }
        #expect(differing.isEmpty, "the builds differ in \(differing.sorted())")
        let plan = try full.project.plan()
        #expect(!plan.hasChanges)
        #expect(try fast.project.plan().items.allSatisfy { $0.kind == .upToDate })
    }

    @Test func aCheckIsNotTakenOverForAnotherManifest() throws {
        let (fast, _) = try Self.twins()
        try fast.project.write("photos/a.jpg", "edited")
        fast.project.settle()
        let cli = try fast.project.session()
        #expect(cli.unchanged() == nil)
        // The manifest changes before the planning session loads it.
        fast.width = 201
        try fast.writeManifest()
        let builder = try fast.project.session()
        #expect(!builder.adopt(cli.witnessCheck()))
        _ = try builder.build(options: BuildOptions(jobs: 2, quiet: true)) { fast.project.renderer }
        #expect(builder.witnessChecksTaken == 1)
        #expect(builder.lastPlanPath == .full)
    }

    @Test func aCheckIsNotTakenOverAfterAnotherBuild() throws {
        let (fast, _) = try Self.twins()
        try fast.project.write("photos/a.jpg", "edited")
        fast.project.settle()
        let cli = try fast.project.session()
        #expect(cli.unchanged() == nil)
        let builder = try fast.project.session()
        #expect(builder.adopt(cli.witnessCheck()))
        // Another build runs between the check and this one taking the lock: the check is taken again.
        try fast.project.build()
        _ = try builder.build(options: BuildOptions(jobs: 2, quiet: true)) { fast.project.renderer }
        #expect(builder.witnessChecksTaken == 1)
        // And a session that had not adopted yet refuses it.
        #expect(!(try fast.project.session()).adopt(cli.witnessCheck()))
        #expect(try fast.project.session().unchanged() == 6)
    }

    @Test func aCheckTakenWithTheIncrementalPathsOffIsNotTakenOverWithThemOn() throws {
        let (fast, _) = try Self.twins()
        try fast.project.write("photos/a.jpg", "edited")
        fast.project.settle()
        let off = try fast.project.session()
        off.incrementalPlans = false
        #expect(off.unchanged() == nil)
        #expect(off.witnessCheck().found == nil)
        #expect(!(try fast.project.session()).adopt(off.witnessCheck()))
    }
}
