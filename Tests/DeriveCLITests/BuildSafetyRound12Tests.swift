import Builder
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The twelfth round on build safety (issue 9, attack 11's A1 to A5), end to end through the binary.
@Suite(.serialized) struct BuildSafetyRound12Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Rewrites the lock's first line to name `path` as the old index, with that file's digest.
    func pointLockHeader(_ project: Project, at path: String) throws {
        var lines = try String(contentsOf: project.url("derive.lock"), encoding: .utf8).components(separatedBy: "\n")
        // Keys keep their order: a lock's first line starts with its format.
        let digest = SHA256Hex.of(try Data(contentsOf: project.url(path)))
        lines[0] = lines[0].replacingOccurrences(of: #""index":"[^"]*","indexDigest":"[0-9a-f]*""#,
                                                 with: #""index":"\#(path)","indexDigest":"\#(digest)""#, options: .regularExpression)
        #expect(lines[0].contains(digest), "\(lines[0])")
        try lines.joined(separator: "\n").write(to: project.url("derive.lock"), atomically: true, encoding: .utf8)
    }

    // MARK: A1: an old index named only by the lock is never deleted in a fresh clone

    /// A user's byte-exact copy of the index (a data file of a site generator, a backup), in a
    /// source-only bucket, the output bucket or a bucket no rule touches: kept by plan, build and
    /// clean, each naming it with how to delete it by hand.
    @Test(arguments: ["src/copy.json", "out/backup/index.json", "meta/site-images.json"])
    func aCopyOfTheIndexTheLockNamesIsKeptAndNamed(_ victim: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", BuildSafetyRound8Tests.manifest(index: "out/index.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url(".derive"))   // a fresh clone
        try FileManager.default.createDirectory(at: project.url(victim).deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: project.url("out/index.json"), to: project.url(victim))
        let bytes = try Data(contentsOf: project.url(victim))
        try pointLockHeader(project, at: victim)
        let plan = try project.run(["plan"])
        let planned = text(plan.stdout)
        #expect(!planned.contains("\(victim)  remove"), "\(planned)")
        #expect(planned.contains("! \(victim)  keep:") && planned.contains("delete it by hand"), "\(planned)")
        let build = try project.run(["build"])
        #expect(try Data(contentsOf: project.url(victim)) == bytes, "the build deleted a copy of the index: \(text(build.stdout))")
        #expect(!text(build.stdout).contains("removed \(victim)"), "\(text(build.stdout))")
        #expect(build.stderr.contains(victim) && build.stderr.contains("delete it by hand"), "\(build.stderr)")
        try FileManager.default.removeItem(at: project.url(".derive"))
        try pointLockHeader(project, at: victim)
        let clean = try project.run(["clean"])
        #expect(try Data(contentsOf: project.url(victim)) == bytes, "clean deleted a copy of the index: \(text(clean.stdout))")
        #expect(!text(clean.stdout).contains("the old index"), "\(text(clean.stdout))")
        #expect((text(clean.stdout) + clean.stderr).contains(victim) && clean.stderr.contains("delete it by hand"), "\(clean.stderr)")
    }
}
