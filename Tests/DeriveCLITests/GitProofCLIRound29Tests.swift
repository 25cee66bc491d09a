import Foundation
import Testing
import TestSupport
import Planner

/// Attack round 29's F6: a source bucket outside the repository (`src: {path: ../photos}`) made
/// the one `git ls-tree` over every bucket fail, so in a fresh clone after a restyle every
/// committed output was refused with a false "not committed to git" message. Each file is now
/// asked about where it is: the outside bucket proves nothing for its own files only.
@Suite(.ownThreads, .serialized) struct GitProofCLIRound29Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    @Test func aSourceBucketOutsideTheRepositoryLeavesCommittedOutputsProven() throws {
        let project = try Project(index: false)
        let photos = project.root.deletingLastPathComponent().appendingPathComponent("photos-\(UUID().uuidString)")
        defer { project.remove(); try? FileManager.default.removeItem(at: photos) }
        try FileManager.default.moveItem(at: project.url("src"), to: photos)
        let manifest = Project.manifest(outPath: "out", index: false).replacingOccurrences(of: "src: {path: src}", with: "src: {path: ../\(photos.lastPathComponent)}")
        try project.write("derive.yaml", manifest)
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(first.stderr)")
        // A fresh clone: the outputs and the lock committed, no state.
        try FileManager.default.removeItem(at: project.url(".derive"))
        try GitProofCLITests.commitAll(project.root)
        try project.write("derive.yaml", manifest.replacingOccurrences(of: "w_32", with: "w_30"))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(!build.stderr.contains("not committed to git"), "\(build.stderr)")
        #expect(text(build.stdout).contains("built 5,"), "\(text(build.stdout))")
    }
}
