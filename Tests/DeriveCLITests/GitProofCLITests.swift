import Foundation
import Testing
import TestSupport
import Planner

/// Round 28's H1: in a fresh clone, a `derive.lock` line of another action key (stale: the
/// manifest changed since; or forged) whose digest, size and header are the file's at a literal
/// output path made the first build render over that file: a pull request adding such a line for
/// a user's photo destroyed it. The lock is only the lock's word. A file Derive would replace or
/// delete on that word alone (this, and an output adopted unverified whose recipe cannot be
/// rendered again) is replaced only when git proves its bytes recoverable: tracked at HEAD at that
/// path with exactly those bytes. Any other is the user's.
@Suite(.ownThreads, .serialized) struct GitProofCLITests {
    typealias Project = BuildSafetyAttackTests.Project
    let clone = FreshCloneVerifyTests()
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
    static let staleKey = String(repeating: "0", count: 64)

    @discardableResult
    func git(_ arguments: [String], in folder: URL) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"] + arguments
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"]
        process.currentDirectoryURL = folder
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Commits everything in `folder` (but `.derive/`) to a git repository there, made on first
    /// use: what a test whose state is lost and whose manifest is restyled needs for the build to
    /// render over its outputs (stale lock lines are taken only on git's proof).
    static func commitAll(_ folder: URL) throws {
        let suite = GitProofCLITests()
        if !FileManager.default.fileExists(atPath: folder.appendingPathComponent(".git").path) {
            #expect(try suite.git(["init", "-q"], in: folder) == 0)
            try Data(".derive/\nold-derive/\n".utf8).write(to: folder.appendingPathComponent(".gitignore"))
        }
        #expect(try suite.git(["add", "-A"], in: folder) == 0)
        #expect(try suite.git(["commit", "-q", "--allow-empty", "-m", "build"], in: folder) == 0)
    }

    /// Commits the project's tree (but `untracked`) in a new repository and replaces the project's
    /// folder with a clone of it (the untracked files copied in beside, as a user's files are).
    func commitAndClone(_ project: Project, untracked: [String] = []) throws {
        let origin = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: origin) }
        for name in try FileManager.default.contentsOfDirectory(atPath: project.root.path) {
            try FileManager.default.moveItem(at: project.url(name), to: origin.appendingPathComponent(name))
        }
        #expect(try git(["init", "-q"], in: origin) == 0)
        #expect(try git(["add", "-A"], in: origin) == 0)
        for path in untracked { #expect(try git(["rm", "-q", "--cached", path], in: origin) == 0) }
        #expect(try git(["commit", "-qm", "site"], in: origin) == 0)
        #expect(try git(["clone", "-q", origin.path, project.root.path], in: origin) == 0)
        for path in untracked { try FileManager.default.copyItem(at: origin.appendingPathComponent(path), to: project.url(path)) }
        #expect(!project.exists(".derive"))
        // A clone made elsewhere: no lock this user's Derive remembers writing for a state at
        // this path (`LockProvenance`), as on another machine.
        let state = RealFolder.of(project.root.path) + "/.derive/derive/state.sqlite"
        try? FileManager.default.removeItem(at: CLI.userStateHome.appendingPathComponent("derive/states/" + ContentDigests.digest(Data(state.utf8)) + ".lock"))
    }

    /// The stale line: the 100 px output's line given another action key, its file as it is.
    func staleLine(_ project: Project) throws {
        var lines = try clone.lockLines(project)
        let index = try #require(lines.firstIndex { $0.contains("\"out/landscape-100.webp\"") })
        lines[index] = lines[index].replacingOccurrences(of: #""actionKey":"[0-9a-f]{64}""#, with: #""actionKey":"\#(Self.staleKey)""#,
                                                         options: .regularExpression)
        try clone.writeLock(project, lines)
    }

    static let refusal = "out/landscape-100.webp exists and was not written by Derive: derive.lock lists it under another recipe, "
        + "and nothing proves it Derive's (it is not committed to git as it is at HEAD); move it or pass --overwrite"

    /// The attack: the pull request's line over a file git does not track (a user's photo at the
    /// output's path). Refused, in plan and build; the file intact byte for byte.
    @Test func aStaleLineOverAnUntrackedFileIsRefused() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: false, actionKey: Self.staleKey)
        try commitAndClone(project, untracked: ["out/landscape-100.webp"])
        let plan = try project.run(["plan"])
        #expect(plan.status != 0 && (text(plan.stdout) + plan.stderr).contains(Self.refusal), "\(text(plan.stdout)) \(plan.stderr)")
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains(Self.refusal), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == forged.bytes, "the user's file was overwritten")
        // `--overwrite` renders over it, as over any user's file.
        let overwrite = try project.run(["build", "--overwrite"])
        #expect(overwrite.status == 0, "\(text(overwrite.stdout)) \(overwrite.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) != forged.bytes)
    }

    /// The file is committed, but what is there now is other bytes (the line forged to them): git
    /// cannot give them back, so they are the user's.
    @Test func aStaleLineOverAFileModifiedSinceTheCommitIsRefused() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        try commitAndClone(project)
        let forged = try clone.forge(project, hashed: false, actionKey: Self.staleKey)
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains(Self.refusal), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == forged.bytes, "the user's file was overwritten")
    }

    /// The honest case: the manifest was restyled before cloning, the outputs committed as the old
    /// recipe wrote them. git holds their bytes, so the build renders over them as before, and
    /// says why in --verbose.
    @Test func aCommittedOutputWithAStaleLineIsRebuilt() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        try commitAndClone(project)
        try project.write("derive.yaml", FreshCloneVerifyTests.manifest(hashed: false)
            .replacingOccurrences(of: "/format,webp", with: "/quality,q_60/format,webp"))
        let plan = try project.run(["plan", "-v"])
        #expect(plan.status == 0, "\(text(plan.stdout)) \(plan.stderr)")
        #expect(text(plan.stdout).contains("committed to git as it is at HEAD (proven Derive's by git)"), "\(text(plan.stdout))")
        let before = try Data(contentsOf: project.url("out/landscape-100.webp"))
        let build = try project.run(["build", "--verbose"])
        #expect(build.status == 0 && text(build.stdout).contains("built 2,"), "\(text(build.stdout)) \(build.stderr)")
        #expect((text(build.stdout) + build.stderr).contains("proven Derive's by git"), "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) != before)
    }

    /// No repository: nothing can prove the file, whatever the line says; the stale line's file
    /// is refused (before, it was rendered over).
    @Test func withoutARepositoryAStaleLineIsRefused() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let before = try Data(contentsOf: project.url("out/landscape-100.webp"))
        try staleLine(project)
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        // The true reason (round 29: the message said "not committed to git" whatever the cause).
        #expect(build.stderr.contains("derive.lock lists it under another recipe, and nothing proves it Derive's (no git repository holds "), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == before)
    }

    /// A plain build of the clone adopts the committed outputs unverified; a source edited then
    /// makes what they were built from impossible to render again. git holds them as they are:
    /// rebuilt (before, refused until `build --verify` had run first).
    @Test func anEditedSourceRebuildsCommittedAdoptedOutputs() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        try commitAndClone(project)
        let adopt = try project.run(["build"])
        #expect(adopt.status == 0 && text(adopt.stdout).contains("2 outputs adopted from derive.lock unverified"), "\(text(adopt.stdout)) \(adopt.stderr)")
        let before = try Data(contentsOf: project.url("out/landscape-100.webp"))
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: project.url("src/landscape.jpg"))
        let build = try project.run(["build", "--verbose"])
        #expect(build.status == 0 && text(build.stdout).contains("built 2,"), "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) != before)
        #expect((text(build.stdout) + build.stderr).contains("proven Derive's by git"), "\(text(build.stdout)) \(build.stderr)")
    }

    /// The same, with the output edited by hand before the adoption (its line rewritten to its new
    /// bytes): git does not hold those bytes, so the file is the user's and refused.
    @Test func anEditedSourceDoesNotReplaceAnAdoptedOutputEditedByHand() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        try commitAndClone(project)
        let edited = try clone.forge(project, hashed: false)
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: project.url("src/landscape.jpg"))
        let build = try project.run(["build"])
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("out/landscape-100.webp exists and was not written by Derive: it was adopted from derive.lock unverified, and cannot be proven Derive's"), "\(build.stderr)")
        #expect(build.stderr.contains("not committed to git as it is at HEAD"), "\(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/" + edited.file)) == edited.bytes)
    }

    /// `clean` without a state removes a stale line's file by the same rule: left when git does
    /// not hold it (the other output, adopted and proven by rendering, goes)...
    @Test func cleanWithoutAStateLeavesAStaleLinesUntrackedFile() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: false, actionKey: Self.staleKey)
        try commitAndClone(project, untracked: ["out/landscape-100.webp"])
        let clean = try project.run(["clean"])
        #expect(try Data(contentsOf: project.url("out/landscape-100.webp")) == forged.bytes, "clean deleted the user's file: \(text(clean.stdout)) \(clean.stderr)")
        #expect(!project.exists("out/landscape-200.webp"), "\(text(clean.stdout)) \(clean.stderr)")
    }

    /// ... and removed when it is committed as it is (git gives it back).
    @Test func cleanWithoutAStateRemovesAStaleLinesCommittedFile() throws {
        let project = try clone.freshClone(hashed: false)
        defer { project.remove() }
        try commitAndClone(project)
        try project.write("derive.yaml", FreshCloneVerifyTests.manifest(hashed: false)
            .replacingOccurrences(of: "/format,webp", with: "/quality,q_60/format,webp"))
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(text(clean.stdout)) \(clean.stderr)")
        #expect(!project.exists("out/landscape-100.webp") && !project.exists("out/landscape-200.webp"), "\(text(clean.stdout)) \(clean.stderr)")
    }
}
