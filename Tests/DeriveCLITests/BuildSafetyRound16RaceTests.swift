import Foundation
import Testing
import TestSupport

/// The sixteenth round on build safety (issue 9, verify 16's F1 at the lock and the index, V3,
/// V4 and V5), end to end through the binary: a file moved onto Derive's temporary name at any
/// instant of a write (the lock, the index, an output; a create or a replacement) is never
/// removed and never installed under the file's name.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound16RaceTests {
    typealias Project = BuildSafetyAttackTests.Project

    /// One write a test races: the file (its name for the test hook, its path in the project),
    /// the instant the user's file is moved onto the temporary name, and whether the write
    /// replaces a file Derive wrote before (a rebuild) or creates it (a first build).
    struct Race: CustomTestStringConvertible, Sendable {
        let name: String, path: String, instant: String, replaces: Bool
        var testDescription: String { "\(path) \(replaces ? "replaced" : "created") @\(instant)" }

        static let all: [Race] = [("derive.lock", "derive.lock"), ("index.json", "out/index.json"), ("landscape.jpg", "out/landscape.jpg")]
            .flatMap { file in ["before-install", "removing"].flatMap { instant in
                [false, true].map { Race(name: file.0, path: file.1, instant: instant, replaces: $0) }
            } }
    }

    /// The test hook exchanges the user's file with the temporary name at the instant picked:
    /// `before-install` (linked, not yet moved into place: verify 16's V3 and V4's second half,
    /// where the user's file became `derive.lock` or the index and the build said "rewrote …"
    /// and exited 0) or `removing` (the name's identity checked, the unlink next: V4 and V5, where
    /// the user's file was unlinked by name and lost). Afterwards the user's bytes are somewhere
    /// in the project; not at the file's path; and either nothing was exchanged (exit 0, the
    /// user's file untouched) or the build failed naming where they were kept. Once the user has
    /// moved them away, the next build is clean and `check` agrees.
    @Test(arguments: Race.all)
    func aFileMovedOntoTheTemporaryNameIsNeitherRemovedNorInstalled(race: Race) throws {
        let project = try Project(index: true)
        defer { project.remove() }
        if race.replaces {
            #expect(try project.run(["build", "-q"]).status == 0)
            try project.write("derive.yaml", Project.manifest(outPath: "out", index: true, width: 31))
        }
        let user = Data("USER PRECIOUS \(race.name)\n".utf8)
        try user.write(to: project.url("user.jpg"))
        let build = try CLI.run(["build"], in: project.root,
                                environment: ["DERIVE_TEST_ONTO_TEMPORARY": "\(race.name)@\(race.instant)=" + project.url("user.jpg").path])
        let said = text(build.stdout) + build.stderr
        let holding = files(holding: user, below: project.root)
        #expect(!holding.isEmpty, "the user's file was deleted: \(said)")
        #expect((try? Data(contentsOf: project.url(race.path))) != user, "the user's file was installed as \(race.path): \(said)")
        if build.status == 0 {
            #expect(holding == ["user.jpg"], "the build succeeded, but the user's file is at \(holding): \(said)")
        } else {
            #expect(build.status == 1, "\(said)")
            #expect(!holding.isEmpty && holding.allSatisfy { $0.contains(".kept-") && said.contains(($0 as NSString).lastPathComponent) },
                    "the error names where the user's file was kept (\(holding)): \(said)")
        }
        for path in holding + ["user.jpg"] { try? FileManager.default.removeItem(at: project.url(path)) }
        let again = try project.run(["build", "-q"])
        #expect(again.status == 0, "\(text(again.stdout)) \(again.stderr)")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }

    /// The same unlink by a checked name, where Derive removes a file it wrote that no write
    /// replaces: the old index after `index:` moved, and an orphan output after `to:` moved. The
    /// test hook exchanges the user's file with the file's own name after its bytes and identity
    /// were checked, before the unlink: before the fix the user's file was unlinked and lost.
    /// Now the file leaves its name for a fresh one before it is checked, and only that is
    /// unlinked: the user's file is never removed, and the build goes on.
    @Test(arguments: [("index.json", "out/index.json"), ("landscape.jpg", "out/landscape.jpg")])
    func aFileMovedOntoAnOldFileAsItIsRemovedIsKept(name: String, path: String) throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json")
            .replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/u/{name}.{ext}"))
        let user = Data("USER PRECIOUS \(name)\n".utf8)
        try user.write(to: project.url("user.jpg"))
        let build = try CLI.run(["build"], in: project.root,
                                environment: ["DERIVE_TEST_ONTO_TEMPORARY": "\(name)@removing=" + project.url("user.jpg").path])
        let said = text(build.stdout) + build.stderr
        let holding = files(holding: user, below: project.root)
        #expect(!holding.isEmpty, "the user's file was deleted: \(said)")
        if build.status == 0 {
            #expect(holding == ["user.jpg"], "the build succeeded, but the user's file is at \(holding): \(said)")
            #expect(!project.exists(path), "Derive's old file was left: \(said)")
        } else {
            #expect(build.status == 1, "\(said)")
            #expect(holding.allSatisfy { said.contains(($0 as NSString).lastPathComponent) }, "\(holding): \(said)")
        }
    }

    /// The one instant left: a file exchanged onto the fresh name Derive moved its old lock to,
    /// between the check there and the unlink. No system call unlinks "only this inode", so the
    /// user's file is removed; but Derive's old file still has its other name, which the
    /// descriptor's link count shows, and the build fails naming the name instead of saying
    /// "rewrote derive.lock". (Before round 16 there was no such name and no such report.)
    @Test func aFileRemovedInThePlaceOfDerivesOwnIsReported() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true, width: 31))
        try Data("USER FILE\n".utf8).write(to: project.url("user.jpg"))
        let build = try CLI.run(["build"], in: project.root,
                                environment: ["DERIVE_TEST_ONTO_TEMPORARY": "derive.lock@unlinking=" + project.url("user.jpg").path])
        let said = text(build.stdout) + build.stderr
        #expect(build.status == 1, "\(said)")
        #expect(said.contains("was removed in its place") && said.contains(".derive.lock."), "\(said)")
        #expect(!said.contains("rewrote derive.lock"), "\(said)")
    }
}
