import Foundation
import Testing
import TestSupport

/// Issue #9: `derive check` with a folder at the lock path said the right error, and also
/// "derive.lock is missing; run derive build", which is not true (something is there) and
/// advises a build that refuses. Only the true thing is said.
@Suite(.ownThreads) struct CheckLockFolderRound26Tests {
    typealias Project = BuildSafetyAttackTests.Project

    @Test func aFolderAtTheLockPathIsNamedOnceAndNotCalledMissing() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("derive.lock"))
        try FileManager.default.createDirectory(at: project.url("derive.lock"), withIntermediateDirectories: false)
        let check = try project.run(["check"])
        let said = text(check.stdout) + check.stderr
        #expect(check.status == 1, "\(said)")
        #expect(said.contains("derive.lock is a folder"), "\(said)")
        #expect(!said.contains("missing"), "\(said)")
        #expect(said.components(separatedBy: "derive.lock is a folder").count == 2, "named more than once: \(said)")
    }

    /// `lock: afile/x.lock` with `afile` a file: the lock cannot be written there, which the plan
    /// says; "missing; run derive build" would advise a build that refuses.
    @Test func aFileWhereTheLocksFolderGoesIsNamedAndNotCalledMissing() throws {
        let folder = try LockPathRound25Tests().project(lock: "afile/x.lock")
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("mine".utf8).write(to: folder.appendingPathComponent("afile"))
        let check = try CLI.run(["check"], in: folder)
        let said = text(check.stdout) + check.stderr
        #expect(check.status == 1, "\(said)")
        #expect(said.contains("afile is not a folder, so the lock"), "\(said)")
        #expect(!said.contains("missing"), "\(said)")
    }

    /// A lock really missing is still called missing.
    @Test func aMissingLockIsStillCalledMissing() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("derive.lock"))
        let check = try project.run(["check"])
        let said = text(check.stdout) + check.stderr
        #expect(check.status == 1 && said.contains("derive.lock is missing; run derive build"), "\(said)")
    }
}
