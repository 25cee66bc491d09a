import Foundation
import Testing
import TestSupport
import Builder
import Manifest
import Planner

/// The lock and the index are part of what `plan` shows and `check` verifies: a missing, moved
/// or edited index (or lock) is never "No changes" / "Up to date" while `build` rewrites it.
@Suite(.ownThreads, .serialized) struct ControlFileStatusTests {
    static let manifest = siteManifest + "index: site/index.json\n"

    /// Built twice with the racy margin waited out, so the next run may answer from the witness.
    func settledProject(_ yaml: String = Self.manifest) throws -> Project {
        let project = try Project(yaml, files: ["photos/a.jpg": "A", "photos/b.jpg": "B"])
        try project.build()
        project.settle()
        try project.build()
        project.settle()
        try project.build()
        return project
    }

    func controlFiles(_ plan: Plan) -> [String] { plan.controlFiles.map(\.file) }

    @Test func aMissingIndexIsInThePlanAndTheCheckAndRewritten() throws {
        let project = try settledProject()
        let index = try #require(project.read("site/index.json"))
        #expect(try project.check().problems == [])
        try project.remove("site/index.json")
        #expect(try project.session().unchanged() == nil)
        let plan = try project.plan()
        #expect(plan.hasChanges)
        #expect(controlFiles(plan) == ["site/index.json"], "\(plan.controlFiles)")
        #expect(plan.controlFiles.first?.reason == "missing")
        let problems = try project.check().problems
        #expect(problems.contains { $0.hasPrefix("site/index.json: missing") }, "\(problems)")
        let report = try #require(try project.build().report)
        #expect(report.rewritten == ["site/index.json"])
        #expect(project.read("site/index.json") == index)
        #expect(try project.check().problems == [])
        #expect(!(try project.plan().hasChanges))
    }

    /// An edited index is no longer the file Derive wrote: shown, never overwritten.
    @Test func anEditedIndexIsInThePlanAndTheCheckAndLeftAlone() throws {
        let project = try settledProject()
        let index = try #require(project.read("site/index.json"))
        let edited = index.replacingOccurrences(of: "\"version\": 2", with: "\"version\": 3")
        #expect(edited != index)
        try project.write("site/index.json", edited)
        #expect(try project.session().unchanged() == nil)
        let plan = try project.plan()
        #expect(plan.blockedControlFiles.map(\.file) == ["site/index.json"], "\(plan.controlFiles)")
        #expect(try project.check().problems.contains { $0.hasPrefix("site/index.json exists and was not written by Derive") })
        // A plan with errors builds nothing (round 7 #2): refused before rendering, the index named.
        let outcome = try project.build()
        #expect(outcome.report == nil)
        #expect(outcome.plan.blockedControlFiles.contains { $0.file == "site/index.json" && $0.reason.contains("was not written by Derive") })
        #expect(project.read("site/index.json") == edited)
        try project.remove("site/index.json")
        try project.build()
        #expect(project.read("site/index.json") == index)
    }

    /// A build killed after recording an output but before rewriting the index leaves Derive's
    /// index with other bytes than the state's: listed as a rewrite, not as a user's file.
    @Test func aDeriveIndexBehindTheStateIsRewritten() throws {
        let project = try settledProject()
        let index = try #require(project.read("site/index.json"))
        let store = try project.session().store()
        var record = try #require(try store.allOutputs()["site/a.thumb.jpg"])
        record.acl = record.acl == "private" ? "public-read" : "private"
        try store.updateOutput(record)
        let plan = try project.plan()
        // The plan's update puts the manifest's ACL back, so the index the build writes is the one
        // on disk: the plan names no rewrite, as the build does none (round 5, finding 8).
        #expect(plan.updates.map(\.output) == ["site/a.thumb.jpg"], "\(plan.items.map(\.reasons))")
        #expect(controlFiles(plan).isEmpty, "\(plan.controlFiles)")
        try project.build()   // the ACL goes back to the manifest's: the record is updated, the index rewritten
        #expect(project.read("site/index.json") == index)
        #expect(try project.plan().controlFiles.isEmpty)
    }

    @Test func aMovedIndexIsInThePlanAndTheCheck() throws {
        let project = try settledProject()
        let index = try #require(project.read("site/index.json"))
        try project.write("derive.yaml", siteManifest + "index: site/all.json\n")
        let plan = try project.plan()
        // The lock's first line names the index, so it is rewritten too.
        #expect(Set(controlFiles(plan)) == ["site/index.json", "site/all.json", "derive.lock"], "\(plan.controlFiles)")
        #expect(plan.controlFiles.contains { $0.file == "site/index.json" && $0.action == .remove })
        let problems = try project.check().problems
        #expect(problems.contains { $0.hasPrefix("site/index.json: ") && $0.contains("removes it") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("site/all.json: missing") }, "\(problems)")
        try project.build()
        #expect(!project.exists("site/index.json") && project.read("site/all.json") == index)
        #expect(try project.check().problems == [])
    }

    @Test func aMissingOrReorderedLockIsInThePlanAndTheCheck() throws {
        let project = try settledProject()
        let lock = try #require(project.read("derive.lock"))
        try project.remove("derive.lock")
        var plan = try project.plan()
        #expect(controlFiles(plan) == ["derive.lock"] && plan.controlFiles.first?.reason == "missing")
        try project.build()
        #expect(project.read("derive.lock") == lock)
        // Entries in another order still parse and agree one by one: the bytes differ all the same.
        var lines = lock.split(separator: "\n").map(String.init)
        lines.swapAt(1, 2)
        try project.write("derive.lock", lines.joined(separator: "\n") + "\n")
        plan = try project.plan()
        #expect(controlFiles(plan) == ["derive.lock"] && plan.controlFiles.first?.reason == "differs from the build state")
        #expect(try project.check().problems.contains { $0.hasPrefix("derive.lock: differs from the build state") })
        try project.build()
        #expect(project.read("derive.lock") == lock)
    }

    /// After a build, a no-op `plan` and `check` are clean, with the witness and without it.
    @Test func aSettledTreeHasNoControlFileChanges() throws {
        let project = try settledProject()
        #expect(try project.session().unchanged() == 2)
        #expect(try project.plan().controlFiles.isEmpty)
        #expect(try project.check().problems == [])
    }
}
