import Foundation
import Testing
import TestSupport

/// Attack 37b's F6: outputs built in outA, the user keeps byte-identical copies in userB, the
/// state is lost and the `out` bucket is re-pointed at userB. `derive clean` took derive.lock's
/// lines as proof that userB's copies were Derive's and deleted them ("Removed 5 outputs"),
/// though Derive never wrote there. The lock was written for outA: without a state, a line does
/// not make a file in another folder Derive's; those files are left and named, exit 0.
@Suite(.ownThreads, .serialized) struct RepointedBucketCleanRound38Tests {
    typealias Project = BuildSafetyAttackTests.Project

    /// The bytes of every output in `folder` of `project`.
    func copies(_ project: Project, in folder: String) -> [String: Data] {
        var bytes: [String: Data] = [:]
        for name in project.outputs { bytes[name] = FileManager.default.contents(atPath: project.url("\(folder)/\(name)").path) }
        return bytes
    }

    @Test func cleanWithoutStateLeavesTheCopiesInARepointedBucket() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.createDirectory(at: project.url("userB"), withIntermediateDirectories: true)
        for name in project.outputs { try FileManager.default.copyItem(at: project.url("outA/\(name)"), to: project.url("userB/\(name)")) }
        let before = copies(project, in: "userB")
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("derive.yaml", Project.manifest(outPath: "userB", index: false))
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "files left in place on the lock's word exit 0: \(said)")
        #expect(copies(project, in: "userB") == before, "the user's copies in userB were changed or removed: \(said)")
        #expect(before.values.allSatisfy { !$0.isEmpty } && before.count == project.outputs.count)
        #expect(said.contains("Removed 0 outputs"), "\(said)")
        for name in project.outputs {
            #expect(said.contains("userB/\(name)") && said.contains("was written for outA"), "\(name) is named with why: \(said)")
        }
        #expect(copies(project, in: "outA") == before, "outA is no bucket of the manifest now: untouched")
    }

    /// The same through a build: the lock's lines no longer adopt the copies in the re-pointed
    /// bucket (the build adopted them, and the next clean, proving them by a render, deleted
    /// them): the build refuses them as files Derive did not write, and clean leaves them.
    @Test func aBuildInARepointedBucketDoesNotAdoptTheCopies() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.createDirectory(at: project.url("userB"), withIntermediateDirectories: true)
        for name in project.outputs { try FileManager.default.copyItem(at: project.url("outA/\(name)"), to: project.url("userB/\(name)")) }
        let before = copies(project, in: "userB")
        try FileManager.default.removeItem(at: project.url(".derive"))
        try project.write("derive.yaml", Project.manifest(outPath: "userB", index: false))
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("userB/landscape.jpg exists and was not written by Derive"), "\(build.stderr)")
        #expect(!text(build.stdout).contains("adopted"), "\(text(build.stdout))")
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(copies(project, in: "userB") == before, "the user's copies in userB were changed or removed: \(text(clean.stdout)) \(clean.stderr)")
    }

    /// Control: the same clean in the bucket the lock was written for still removes Derive's outputs.
    @Test func cleanWithoutStateInTheUnmovedBucketRemovesDerivesOutputs() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "\(said)")
        #expect(said.contains("Removed 5 outputs (there was no usable build state)"), "\(said)")
        #expect(copies(project, in: "outA").isEmpty, "Derive's outputs are removed: \(said)")
    }

    /// Control: the folder the lock was written for renamed (`mv outA outC`, the bucket re-pointed
    /// at it) is the same folder (device and inode): its outputs are still Derive's to remove.
    @Test func cleanWithoutStateInTheRenamedBucketFolderRemovesDerivesOutputs() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))
        try FileManager.default.moveItem(at: project.url("outA"), to: project.url("outC"))
        try project.write("derive.yaml", Project.manifest(outPath: "outC", index: false))
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        #expect(clean.status == 0 && said.contains("Removed 5 outputs (there was no usable build state)"), "\(said)")
        #expect(copies(project, in: "outC").isEmpty, "Derive's outputs are removed: \(said)")
    }
}
