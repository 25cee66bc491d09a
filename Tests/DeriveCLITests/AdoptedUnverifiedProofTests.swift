import Foundation
import Testing
import TestSupport

/// Issue 13's finding 1: a plain build in a fresh clone adopts a file on its lock line's word (a
/// pull request, or a retouched output whose line was rewritten, then the project moved) and the
/// state marks it adopted unverified. A later build must not overwrite it (a literal `to:`),
/// delete it (a `{hash}` orphan) nor `clean` remove it on that word alone: before replacing or
/// deleting such a file, Derive renders what the record says it was built from and compares the
/// bytes. A file that holds them is replaced or deleted as before; any other is the user's.
@Suite(.ownThreads, .serialized) struct AdoptedUnverifiedProofTests {
    typealias Project = BuildSafetyAttackTests.Project
    let clone = FreshCloneVerifyTests()
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Any restyle of the rule: every output's action key changes.
    func restyle(_ project: Project, hashed: Bool) throws {
        try project.write("derive.yaml", FreshCloneVerifyTests.manifest(hashed: hashed)
            .replacingOccurrences(of: "/format,webp", with: "/quality,q_60/format,webp"))
    }

    func files(_ project: Project) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: project.url("out").path).filter { $0.hasSuffix(".webp") }.sorted()
    }

    /// A literal `to:`: the forged file a plain build adopted is refused at the restyle, as any
    /// user's file is, with why; `--overwrite` then takes it.
    @Test func aRestyleDoesNotOverwriteAForgedAdoptedFile() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: false)
        let adopt = try project.run(["build"])
        #expect(adopt.status == 0 && text(adopt.stdout).contains("2 outputs adopted from derive.lock unverified"), "\(text(adopt.stdout)) \(adopt.stderr)")
        try restyle(project, hashed: false)
        let plan = try project.run(["plan"])
        #expect(text(plan.stdout).contains("out/landscape-100.webp  rebuild: ") && text(plan.stdout).contains("adopted from derive.lock unverified: the build first renders what it was recorded from, and replaces the file only if it holds exactly those bytes"),
                "plan says the build proves it first: \(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("out/landscape-100.webp exists and was not written by Derive: it was adopted from derive.lock unverified, and it differs from what rule 'pic' renders from src/landscape.jpg"), "\(build.stderr)")
        #expect(build.stderr.contains("move it or pass --overwrite"), "\(build.stderr)")
        // `--verify` would refuse it too: no hint that it would replace it.
        #expect(!build.stderr.contains("derive build --verify renders it again and replaces it"), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/" + forged.file)) == forged.bytes, "the user's file was overwritten")
        let overwrite = try project.run(["build", "--overwrite"])
        #expect(overwrite.status == 0, "\(text(overwrite.stdout)) \(overwrite.stderr)")
        #expect(try Data(contentsOf: project.url("out/" + forged.file)) != forged.bytes)
    }

    /// The genuine case: outputs adopted from a true lock are still replaced at a restyle (the
    /// proof passes), and what is left verifies in full.
    @Test func aRestyleStillReplacesGenuineAdoptedFiles() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let before = try files(project).map { try Data(contentsOf: project.url("out/" + $0)) }
        #expect(try project.run(["build", "-q"]).status == 0)
        try restyle(project, hashed: false)
        let build = try project.run(["build"])
        #expect(build.status == 0 && text(build.stdout).hasPrefix("built 2,"), "\(text(build.stdout)) \(build.stderr)")
        #expect(!text(build.stdout).contains("unverified"), "\(text(build.stdout))")
        let after = try files(project).map { try Data(contentsOf: project.url("out/" + $0)) }
        #expect(after.count == 2 && after[0] != before[0] && after[1] != before[1])
        let verify = try project.run(["check", "--verify-all"])
        #expect(verify.status == 0, "\(text(verify.stdout)) \(verify.stderr)")
    }

    /// A `{hash}` output: the forged file a plain build adopted is no orphan to delete at the
    /// restyle; it is left in place (its record dropped), while the genuine old file is deleted.
    @Test func aRestyleDoesNotDeleteAForgedAdoptedHashedFile() throws {
        let project = try clone.freshClone(hashed: true)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: true)
        #expect(try project.run(["build", "-q"]).status == 0)
        let genuineOld = try clone.outputFile(project, width: 200)
        try restyle(project, hashed: true)
        let plan = try project.run(["plan"])
        #expect(text(plan.stdout).contains("and deletes the file only if it holds exactly those bytes"), "\(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(text(build.stdout).contains("deleted 1") && text(build.stdout).contains("left 1 in place (not proven Derive's"), "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/" + forged.file)) == forged.bytes, "the user's file was deleted")
        #expect(!FileManager.default.fileExists(atPath: project.url("out/" + genuineOld).path), "Derive's own old file stays")
        let lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
        // No output line for it; a `left` line (gaps 28), as every file a build leaves in place.
        #expect(!lock.contains("\"path\":\"out/\(forged.file)\"") && lock.contains("\"left\":\"out/\(forged.file)\""), "\(lock)")
        // Three files: the two new outputs and the kept forged one; the genuine old 200 px one went.
        let left = try files(project)
        #expect(left.count == 3, "\(left)")
    }

    /// The bucket's folder moved: the outputs are written in the new folder, and the old copy of
    /// the forged file is left where it is (Derive's own old copy goes).
    @Test func aMovedBucketDoesNotDeleteTheOldCopyOfAForgedAdoptedFile() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: false)
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", FreshCloneVerifyTests.manifest(hashed: false).replacingOccurrences(of: "out: {path: out}", with: "out: {path: out2}"))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/" + forged.file)) == forged.bytes, "the user's file was deleted: \(text(build.stdout)) \(build.stderr)")
        #expect(!FileManager.default.fileExists(atPath: project.url("out/landscape-200.webp").path), "\(text(build.stdout))")
        #expect(FileManager.default.fileExists(atPath: project.url("out2/landscape-100.webp").path))
    }

    /// `clean` after a plain build adopted a forged file: the file is kept, named; Derive's own
    /// (adopted, proven by rendering) is removed.
    @Test func cleanKeepsAForgedAdoptedFile() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: false)
        #expect(try project.run(["build", "-q"]).status == 0)
        let clean = try project.run(["clean"])
        #expect(try Data(contentsOf: project.url("out/" + forged.file)) == forged.bytes, "clean deleted the user's file: \(text(clean.stdout)) \(clean.stderr)")
        #expect(!FileManager.default.fileExists(atPath: project.url("out/landscape-200.webp").path), "\(text(clean.stdout)) \(clean.stderr)")
        #expect((text(clean.stdout) + clean.stderr).contains("out/landscape-100.webp is left in place: it was adopted from derive.lock unverified, and it differs"), "\(text(clean.stdout)) \(clean.stderr)")
    }

    /// `clean` in a fresh clone (no state) with the forged line: the file a build would adopt on
    /// the line's word is rendered again first, and kept; the true one is removed.
    @Test func cleanWithoutAStateKeepsAForgedLockFile() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: false)
        let clean = try project.run(["clean"])
        #expect(try Data(contentsOf: project.url("out/" + forged.file)) == forged.bytes, "clean deleted the user's file: \(text(clean.stdout)) \(clean.stderr)")
        #expect(!FileManager.default.fileExists(atPath: project.url("out/landscape-200.webp").path), "\(text(clean.stdout)) \(clean.stderr)")
        #expect((text(clean.stdout) + clean.stderr).contains("out/landscape-100.webp is left in place: only derive.lock vouches for it, and it differs"), "\(text(clean.stdout)) \(clean.stderr)")
    }

    /// A source changed since the adoption: what the record was built from cannot be rendered
    /// again, so nothing proves the file Derive's; the rebuild refuses it and says how to go on.
    @Test func anAdoptedFileWhoseSourceChangedCannotBeProven() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let before = try Data(contentsOf: project.url("out/landscape-100.webp"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: project.url("src/landscape.jpg"))
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("out/landscape-100.webp exists and was not written by Derive: it was adopted from derive.lock unverified, and cannot be proven Derive's"), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == before)
    }
}
