import Foundation
import GRDB
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 37a's M2: one empty SQLite file stamped with Derive's application id ("DrSt", no
/// tables), planted as `state.sqlite` in any folder above a project (`/tmp`, a shared CI
/// workspace), even by another user, made `plan`, `check` and `build` of every project below it
/// fail validation, "a folder holding another manifest's Derive build state". A folder counts as
/// holding another manifest's state only when its database really is one: this user's (Derive
/// never opens another user's state, and the kernel keeps this user's builds out of that user's
/// folders) and naming its manifest in its owner record (or the state folder of a manifest
/// found by its `state:`). Round 29's and 31's refusals of real neighbours' states stand
/// (`ForeignStateFolderRound29Tests`, `NestedForeignStateRound31Tests`).
@Suite(.ownThreads, .serialized) struct AncestorStateRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func said(_ result: CLI.Result) -> String { text(result.stdout) + result.stderr }

    /// A built project two folders below `outer` (`outer/alice/proj`).
    func projectBelow() throws -> (outer: URL, project: URL) {
        let outer = try CLI.temporaryFolder()
        let built = try Project(index: false)
        let project = outer.appendingPathComponent("alice/proj")
        try FileManager.default.createDirectory(at: outer.appendingPathComponent("alice"), withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: built.root, to: project)
        let build = try CLI.run(["build", "-q"], in: project)
        #expect(build.status == 0, "\(said(build))")
        return (outer, project)
    }

    /// An SQLite file stamped Derive's; with `owner`, an owner table naming that manifest.
    func plantState(at path: String, owner: String?) throws {
        let database = try DatabaseQueue(path: path, configuration: .patientTest)
        try database.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA application_id = 1148343156")
            if let owner {
                try db.execute(sql: "CREATE TABLE owner (manifest TEXT NOT NULL, place TEXT NOT NULL DEFAULT '')")
                try db.execute(sql: "INSERT INTO owner (manifest) VALUES (?)", arguments: [owner])
            }
        }
        try database.close()
    }

    /// Every command of a project below the planted file runs, and none says it is inside another manifest's state.
    func expectUnblocked(_ project: URL) throws {
        for command in [["validate"], ["plan"], ["check"], ["build"]] {
            let result = try CLI.run(command, in: project)
            #expect(result.status == 0, "\(command): \(said(result))")
            #expect(!said(result).contains("another manifest's Derive build state"), "\(command) claims what it did not check: \(said(result))")
        }
    }

    @Test func aStampedFileWithoutAnOwnerAboveAProjectBlocksNothing() throws {
        let (outer, project) = try projectBelow()
        defer { try? FileManager.default.removeItem(at: outer) }
        let planted = outer.appendingPathComponent("state.sqlite").path
        try plantState(at: planted, owner: nil)
        try expectUnblocked(project)
        // This user's own stray file is named, as what it is (no manifest is claimed).
        let validate = try CLI.run(["validate"], in: project)
        #expect(said(validate).contains(planted) && said(validate).contains("names no manifest"), "\(said(validate))")
    }

    @Test func anotherUsersStateAboveAProjectBlocksNothing() throws {
        guard geteuid() == 0 else { return }   // only root can give a file to another user
        let (outer, project) = try projectBelow()
        defer { try? FileManager.default.removeItem(at: outer) }
        let planted = outer.appendingPathComponent("state.sqlite").path
        // A state whose owner record names a manifest, but another user's: Derive never opens it.
        try plantState(at: planted, owner: outer.appendingPathComponent("derive.yaml").path)
        #expect(lchown(planted, Nobody.uid, Nobody.uid) == 0)
        try expectUnblocked(project)
        let validate = try CLI.run(["validate"], in: project)
        #expect(!said(validate).contains(planted), "another user's file is not this project's business: \(said(validate))")
    }

    /// This user's real state of another manifest (its owner record names it) still refuses, naming that manifest.
    @Test func thisUsersStateOfAnotherManifestAboveAProjectIsStillRefused() throws {
        let (outer, project) = try projectBelow()
        defer { try? FileManager.default.removeItem(at: outer) }
        let planted = outer.appendingPathComponent("state.sqlite").path
        let other = outer.appendingPathComponent("elsewhere/site.yaml").path
        try plantState(at: planted, owner: other)
        let validate = try CLI.run(["validate"], in: project)
        #expect(validate.status != 0, "\(said(validate))")
        #expect(said(validate).contains("another manifest's Derive build state") && said(validate).contains(other), "\(said(validate))")
    }
}
