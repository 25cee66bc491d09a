import Foundation
import Testing
import TestSupport
import Planner

/// Attack 17's N5: a project folder moved (or deleted) while a build runs is never made again,
/// empty, at its old path: the disk a build uses makes no folder while the project's is gone.
@Suite(.ownThreads) struct BuildSafetyRound17DiskTests {
    func temporaryFolder() throws -> URL {
        let url = (try ScratchFolder.make("derive-r17"))
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Before the fix, the lock's write (a file outside every bucket) made `mm/` again.
    @Test func theLocksWriteNeverMakesAMovedProjectFolderAgain() throws {
        let outer = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outer) }
        let project = outer.appendingPathComponent("mm")
        try FileManager.default.createDirectory(at: project.appendingPathComponent("out"), withIntermediateDirectories: true)
        let disk = RealDisk(confiningTo: [project.appendingPathComponent("out").path], project: project.path)
        try FileManager.default.moveItem(at: project, to: outer.appendingPathComponent("mm2"))
        #expect(throws: DiskError.self) { try disk.writeAtomically(Data("lock\n".utf8), to: project.appendingPathComponent("derive.lock").path) }
        #expect(throws: DiskError.self) { try disk.writeAtomically(Data("x".utf8), to: project.appendingPathComponent("out/t/a.jpg").path) }
        #expect(!FileManager.default.fileExists(atPath: project.path), "the moved project's old folder was made again")
        // While the project is there, missing folders inside it are made as before.
        let moved = outer.appendingPathComponent("mm2")
        let there = RealDisk(confiningTo: [moved.appendingPathComponent("out").path], project: moved.path)
        try there.writeAtomically(Data("x".utf8), to: moved.appendingPathComponent("out/t/a.jpg").path)
        try there.writeAtomically(Data("lock\n".utf8), to: moved.appendingPathComponent("locks/site.lock").path)
        #expect(FileManager.default.fileExists(atPath: moved.appendingPathComponent("out/t/a.jpg").path))
        #expect(FileManager.default.fileExists(atPath: moved.appendingPathComponent("locks/site.lock").path))
    }
}
