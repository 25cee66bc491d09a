import Foundation
import Testing
import TestSupport

/// Attack 36's F9 (wording): `derive init` beside a `derive.lock` that is not a Derive lock wrote a
/// manifest whose first build then failed; a FIFO at an output path was called "a folder or a
/// symbolic link".
@Suite(.ownThreads) struct WordingRound36Tests {
    typealias Project = BuildSafetyAttackTests.Project

    @Test func initBesideAForeignLockRefusesNamingIt() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try copySample("landscape.jpg", to: folder.appendingPathComponent("photos/a.jpg"))
        try Data("mine\n".utf8).write(to: folder.appendingPathComponent("derive.lock"))
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(result.status == 1, "\(text(result.stdout)) \(result.stderr)")
        #expect(result.stderr.contains("derive.lock is here and is not a Derive lock"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("derive.yaml").path))
        #expect(try String(contentsOf: folder.appendingPathComponent("derive.lock"), encoding: .utf8) == "mine\n")
    }

    @Test func aFIFOAtAnOutputPathIsCalledAFIFO() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("out/cmyk.jpg"))
        #expect(mkfifo(project.url("out/cmyk.jpg").path, 0o644) == 0)
        let plan = try project.run(["plan"])
        let said = text(plan.stdout) + plan.stderr
        #expect(plan.status == 1, "\(said)")
        #expect(said.contains("out/cmyk.jpg exists and is not a regular file Derive wrote (a FIFO (named pipe))"), "\(said)")
        #expect(!said.contains("a folder or a symbolic link"), "\(said)")
    }
}
