import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 36c's M4: a state folder moved away (or lost) mid-build left a lock whose lines are of
/// the old recipe, and the next build refused every output as a fresh clone's (`lists it under
/// another recipe, and nothing proves it Derive's`), its `--verify` hint too. The lock this user's
/// Derive wrote is its own record (`LockProvenance`); any other lock is the lock's word, as before.
@Suite(.ownThreads, .serialized) struct StateRecoveryRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    @Test func aLockThisUsersDeriveWroteRecoversAStateLostMidRestyle() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        // The new recipe's bytes of one output, as an interrupted build would have left them.
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 24))
        #expect(try project.run(["build", "-q"]).status == 0)
        let replaced = try Data(contentsOf: project.url("out/landscape.jpg"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 32))
        #expect(try project.run(["build", "-q"]).status == 0)
        let lock = try Data(contentsOf: project.url("derive.lock"))
        // The restyle's build loses its state folder after replacing one output.
        #expect(rename(project.url(".derive/derive").path, project.url(".derive/moved").path) == 0)
        try replaced.write(to: project.url("out/landscape.jpg"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 24))

        // The control: the same lock and files in a copy elsewhere are a fresh clone's, refused.
        let copy = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: copy) }
        for name in ["src", "out", "derive.yaml", "derive.lock"] {
            try FileManager.default.copyItem(at: project.url(name), to: copy.appendingPathComponent(name))
        }
        let clone = try CLI.run(["build"], in: copy)
        #expect(clone.status == 1, "a copy's lock is not this state's record: \(clone.stderr)")
        #expect(clone.stderr.contains("out/orientation-1.jpg exists and was not written by Derive: derive.lock lists it under another recipe, and nothing proves it Derive's"), "\(clone.stderr)")

        // Here: only the output the interrupted build replaced is refused, naming --verify.
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(build.stderr)")
        #expect(build.stderr.contains("out/landscape.jpg exists and Derive cannot prove it wrote it: its build state is gone"), "\(build.stderr)")
        #expect(build.stderr.contains("derive build --verify"), "\(build.stderr)")
        for name in project.outputs where name != "landscape.jpg" {
            #expect(!build.stderr.contains("out/\(name) exists"), "\(name), whose bytes the lock this user's Derive wrote records, was refused: \(build.stderr)")
        }
        #expect(try Data(contentsOf: project.url("derive.lock")) == lock, "a refused build changed the lock")

        let verify = try project.run(["build", "--verify"])
        #expect(verify.status == 0, "the hint does not recover it: \(verify.stderr)")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape.jpg")) == replaced)
    }

    /// A lock edited since this user's Derive wrote it is the lock's word alone again.
    @Test func aLockEditedSinceIsNotDerivesOwnRecord() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        // One line removed: the other lines are as Derive wrote them, the lock is not.
        let lines = try String(contentsOf: project.url("derive.lock"), encoding: .utf8).split(separator: "\n").filter { !$0.contains("out/cmyk.jpg") }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: project.url("derive.lock"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 24))
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(build.stderr)")
        #expect(build.stderr.contains("derive.lock lists it under another recipe, and nothing proves it Derive's"), "\(build.stderr)")
    }
}
