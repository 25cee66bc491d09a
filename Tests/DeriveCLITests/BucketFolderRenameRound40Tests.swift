import Foundation
import Testing
import TestSupport

/// Attack 39c's N4 (issue #9, build safety): the output bucket's folder renamed (`mv outA userB`,
/// then `path: userB`) is the same folder (device and inode), yet the state's records stayed at
/// outA: `clean` removed nothing there and deleted the lock and the state (Derive's outputs in
/// userB then refused as "not written by Derive"), `plan` refused both outputs, `build` rendered
/// them again and failed on the old outA/index.json. The records now follow the folder.
@Suite(.ownThreads, .serialized) struct BucketFolderRenameRound40Tests {
    typealias Project = BuildSafetyAttackTests.Project

    /// The file's inode (a rendered output is a new file: the same inode means it was kept).
    func inode(_ project: Project, _ path: String) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: project.url(path).path))?[.systemFileNumber] as? UInt64
    }

    /// A project built into outA, whose folder is then renamed userB and the bucket pointed at it.
    func renamedProject(index: Bool) throws -> Project {
        let project = try Project(index: index, outPath: "outA")
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try FileManager.default.moveItem(at: project.url("outA"), to: project.url("userB"))
        try project.write("derive.yaml", Project.manifest(outPath: "userB", index: index))
        return project
    }

    /// `clean` removes Derive's outputs and its index where the folder now is.
    @Test func cleanRemovesTheOutputsAndTheIndexInTheRenamedFolder() throws {
        let project = try renamedProject(index: true)
        defer { project.remove() }
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(said(clean).contains("Removed 5 outputs and the build state"), "\(said(clean))")
        #expect(!clean.stderr.contains("warning"), "\(said(clean))")
        for name in project.outputs { #expect(!project.exists("userB/\(name)"), "\(name) was left: \(said(clean))") }
        #expect(!project.exists("userB/index.json") && !project.exists("derive.lock"), "\(said(clean))")
    }

    /// `plan`, `build` and `check` after the rename, with and without an index: nothing to do,
    /// nothing rendered again (the same files), one note that the folder was renamed.
    @Test(arguments: [true, false]) func planBuildAndCheckFollowTheRenamedFolder(index: Bool) throws {
        let project = try renamedProject(index: index)
        defer { project.remove() }
        let before = project.outputs.map { inode(project, "userB/\($0)") }
        let plan = try project.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 0, "nothing to do: \(said(plan))")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(build.stderr.contains("renamed"), "one line says the bucket folder was renamed: \(said(build))")
        #expect(!text(build.stdout).contains("built") && !text(build.stdout).contains("verified"), "\(said(build))")
        #expect(project.outputs.map { inode(project, "userB/\($0)") } == before, "outputs were rendered again: \(said(build))")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(said(check))")
        let again = try project.run(["build"])
        #expect(again.status == 0 && text(again.stdout).contains("Nothing to do"), "\(said(again))")
    }

    /// A fresh clone (no state, the lock only) of a renamed folder: the lock this user's Derive
    /// wrote for that folder (its device and inode) still vouches for the outputs there.
    @Test func withTheLockOnlyTheRenamedFolderKeepsItsOutputs() throws {
        let project = try Project(index: true, outPath: "outA")
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try FileManager.default.moveItem(at: project.url("outA"), to: project.url("userB"))
        try project.write("derive.yaml", Project.manifest(outPath: "userB", index: true))
        let before = project.outputs.map { inode(project, "userB/\($0)") }
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(project.outputs.map { inode(project, "userB/\($0)") } == before, "\(said(build))")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }

    /// Renamed, a folder of the user's made at the old path (copies of an output and of the
    /// index, a file of theirs), and the rule restyled: the build renders in userB only what the
    /// restyle needs and never touches outA; clean then removes userB's outputs, not outA's files.
    @Test func aNewFolderAtTheOldPathIsNeverTouched() throws {
        let project = try renamedProject(index: true)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("outA"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: project.url("userB/landscape.jpg"), to: project.url("outA/landscape.jpg"))
        try FileManager.default.copyItem(at: project.url("userB/index.json"), to: project.url("outA/index.json"))
        try project.write("outA/mine.txt", "mine")
        let mine = try ["landscape.jpg", "index.json", "mine.txt"].map { try Data(contentsOf: project.url("outA/\($0)")) }
        try project.write("derive.yaml", Project.manifest(outPath: "userB", index: true, width: 30))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(text(build.stdout).contains("built 5") && !text(build.stdout).contains("deleted"), "\(said(build))")
        let clean = try project.run(["clean"])
        #expect(clean.status == 0 && said(clean).contains("Removed 5 outputs"), "\(said(clean))")
        #expect(try ["landscape.jpg", "index.json", "mine.txt"].map { try Data(contentsOf: project.url("outA/\($0)")) } == mine)
        for name in project.outputs { #expect(!project.exists("userB/\(name)"), "\(said(clean))") }
    }
}
