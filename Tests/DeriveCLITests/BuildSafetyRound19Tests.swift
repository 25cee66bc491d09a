import Foundation
import Planner
import Testing
import TestSupport

/// The nineteenth round on build safety (issue 9): the fail-safe findings attack 18 and verify 19
/// left open (V4, S7, S9, B1's message, S3's overwrite), end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound19Tests {
    typealias Project = BuildSafetyAttackTests.Project

    // MARK: V4: a tampered `{hash}` output a plain build adopted

    /// Verify 19's V4: a fresh clone's plain build adopted a forged `{hash}` output (its lock line
    /// edited to the file's digest), so the state recorded it. `build --verify` then found its
    /// bytes differ, yet named the output after that record and refused the file as at a literal
    /// path (`exists and was not written by Derive`, exit 1). As without a state (and as README
    /// says), the true output is written under the name of its own bytes, the forged file is
    /// left and named, and its record and lock line are dropped.
    @Test func aTamperedHashedOutputAPlainBuildAdoptedIsLeftAndTheTrueOneWritten() throws {
        let clone = FreshCloneVerifyTests()
        let project = try clone.freshClone(hashed: true)
        defer { project.remove() }
        let forged = try clone.forge(project, hashed: true)
        let plain = try project.run(["build"])
        #expect(plain.status == 0, "\(text(plain.stdout)) \(plain.stderr)")
        #expect(text(plain.stdout).contains("adopted 2"), "\(text(plain.stdout))")

        let build = try project.run(["build", "--verify"])
        let said = text(build.stdout) + build.stderr
        #expect(build.status == 0, "build --verify refused the forged file instead of writing the true output: \(said)")
        #expect(!said.contains("was not written by Derive; move it"), "\(said)")
        #expect(said.contains(forged.file) && said.contains("left in place"), "the forged file is not named as left: \(said)")
        #expect(try Data(contentsOf: project.url("out/" + forged.file)) == forged.bytes, "the forged file is not Derive's to delete")
        let names = try FileManager.default.contentsOfDirectory(atPath: project.url("out").path).filter { $0.hasPrefix("landscape-100.") }
        #expect(names.count == 2, "the true output is not written beside the forged file: \(names)")
        // No output line names it; a `left` line may (every file a build leaves in place is
        // listed with the ACL it was left under: gaps 28).
        #expect(try !clone.lockLines(project).filter { !$0.hasPrefix("{\"left\":") }.joined().contains(forged.file), "the forged line is kept in the lock")
        let all = try project.run(["check", "--verify-all"])
        #expect(all.status == 0, "\(text(all.stdout)) \(all.stderr)")
        // Named once: the next build knows nothing of it.
        let again = try project.run(["build"])
        #expect(again.status == 0 && !(text(again.stdout) + again.stderr).contains(forged.file), "\(text(again.stdout)) \(again.stderr)")
        #expect(project.exists("out/" + forged.file))
    }

    // MARK: S7: an output folder swapped away for a moment

    /// Swaps the folders `a` and `b` of `project`.
    func swap(_ project: Project, _ a: String, _ b: String) throws {
        let manager = FileManager.default
        try manager.moveItem(at: project.url(a), to: project.url(a + ".swap"))
        try manager.moveItem(at: project.url(b), to: project.url(a))
        try manager.moveItem(at: project.url(a + ".swap"), to: project.url(b))
    }

    /// Attack 18's S7: while a build deleted orphans, the bucket's folder was another (a user's
    /// folder of copies swapped in). Nothing of the user's was touched, but the records of
    /// Derive's orphans were dropped for good: once the folders were back, Derive's own old
    /// files stayed with no record, and bringing their source back failed (`exists and was not
    /// written by Derive`). The orphan's record is kept while the bucket's folder is not the one
    /// Derive wrote to (tried again next build), so the next build deletes Derive's file.
    @Test func anOrphanInABucketFolderSwappedAwayKeepsItsRecord() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.createDirectory(at: project.url("mine"), withIntermediateDirectories: true)
        for name in project.outputs { try FileManager.default.copyItem(at: project.url("out/" + name), to: project.url("mine/" + name)) }
        let unique = Data("my own notes\n".utf8)
        try unique.write(to: project.url("mine/notes.txt"))
        let source = try Data(contentsOf: project.url("src/cmyk.jpg"))
        try FileManager.default.removeItem(at: project.url("src/cmyk.jpg"))

        try swap(project, "out", "mine")
        let during = try project.run(["build"])
        let said = text(during.stdout) + during.stderr
        try swap(project, "out", "mine")
        #expect(project.exists("mine/cmyk.jpg"), "the user's copy was deleted: \(said)")
        #expect(try Data(contentsOf: project.url("mine/notes.txt")) == unique)
        #expect(said.contains("record kept"), "the orphan's record is dropped while its folder is away: \(said)")

        let after = try project.run(["build"])
        #expect(after.status == 0, "\(text(after.stdout)) \(after.stderr)")
        #expect(!project.exists("out/cmyk.jpg"), "Derive's own orphan is left with no record: \(text(after.stdout)) \(after.stderr)")
        #expect(project.exists("mine/cmyk.jpg"))
        try source.write(to: project.url("src/cmyk.jpg"))
        let back = try project.run(["build"])
        #expect(back.status == 0, "\(text(back.stdout)) \(back.stderr)")
        #expect(try project.run(["check"]).status == 0)
    }

    // MARK: B1's message: a bucket renamed

    /// Attack 18's L3 (B1): a bucket renamed over the same folder (`out:` → `www:`). The build
    /// said `forgot 5 (already gone)` of the old records, whose files are all still there (they
    /// are the renamed outputs' files). It says they are kept, and deletes nothing.
    @Test func aRenamedBucketsOldRecordsAreNotCalledGone() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let manifest = Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "  out:\n", with: "  www:\n").replacingOccurrences(of: "to: out/", with: "to: www/")
        #expect(manifest.contains("www:") && manifest.contains("to: www/"), "\(manifest)")
        try project.write("derive.yaml", manifest)
        let plan = try project.run(["plan"])
        #expect(!text(plan.stdout).contains("to delete") || text(plan.stdout).contains("0 to delete"), "\(text(plan.stdout))")
        let build = try project.run(["build"])
        let said = text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(said)")
        #expect(!said.contains("already gone"), "files still there are called gone: \(said)")
        #expect(said.contains("kept 5 in place"), "\(said)")
        for name in project.outputs { #expect(project.exists("out/" + name), "\(name) was deleted") }
        #expect(try project.run(["check"]).status == 0)
    }

    // MARK: S9: two buckets' folders swapped

    /// Two output buckets (`aaa: A`, `bbb: B`) writing 24 and 40 px copies.
    static let twoBuckets = """
        version: 1
        buckets:
          src: {path: src}
          aaa: {path: A}
          bbb: {path: B}
        derivatives:
          - name: small
            from: src/*.jpg
            process: image/resize,w_24
            to: aaa/{name}.{ext}
          - name: large
            from: src/*.jpg
            process: image/resize,w_40
            to: bbb/{name}.{ext}

        """

    /// Attack 18's S9: the folders of two output buckets swapped on disk (`mv A T; mv B A; mv T
    /// B`), the manifest unchanged. Every file is Derive's, byte for byte, recorded with that very
    /// device and inode (as the other bucket's output), yet the build called each "changed since
    /// Derive wrote it" and refused to build (`--overwrite` the only way on). A file that is the
    /// file Derive recorded for another output (its device, inode, birth and bytes) is Derive's
    /// to replace: the build renders each output again in its own bucket, and keeps the user's file.
    @Test func twoBucketsFoldersSwappedAreRebuiltNotCalledChanged() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.twoBuckets)
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(first.stderr)")
        let small = try Data(contentsOf: project.url("A/cmyk.jpg")), large = try Data(contentsOf: project.url("B/cmyk.jpg"))
        #expect(small != large)
        let notes = Data("my notes\n".utf8)
        try notes.write(to: project.url("A/notes.txt"))
        try swap(project, "A", "B")
        let build = try project.run(["build"])
        let said = text(build.stdout) + build.stderr
        #expect(build.status == 0, "Derive's own files are refused: \(said)")
        #expect(!said.contains("changed since Derive wrote it"), "\(said)")
        #expect(try Data(contentsOf: project.url("A/cmyk.jpg")) == small, "\(said)")
        #expect(try Data(contentsOf: project.url("B/cmyk.jpg")) == large, "\(said)")
        #expect(try Data(contentsOf: project.url("B/notes.txt")) == notes, "the user's file moved with its folder and stays")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }

    // MARK: N5b and S11: Derive's own outputs whose records were lost

    /// Attack 18's N5b: a project moved while a restyle build ran. The build had written new
    /// outputs but neither its lock nor a state the new place trusts (the state is the old path's
    /// manifest's, so it is set aside): at the new place every such output is a file nothing
    /// vouches for, and `derive build` (README: "run derive build again in its new place")
    /// refused them for good without `--overwrite`. The refusal now says what to do, and `build
    /// --verify` renders them again: each holds exactly what its rule renders, so it is replaced.
    @Test func aProjectMovedWhileItBuiltIsTakenBackByBuildVerify() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let oldLock = try Data(contentsOf: project.url("derive.lock"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 40))
        #expect(try project.run(["build", "-q"]).status == 0)
        let rendered = try Data(contentsOf: project.url("out/cmyk.jpg"))
        // What the killed build left: the new outputs, the old lock.
        try oldLock.write(to: project.url("derive.lock"))
        let moved = project.root.deletingLastPathComponent().appendingPathComponent(project.root.lastPathComponent + "-moved")
        try FileManager.default.moveItem(at: project.root, to: moved)
        defer { try? FileManager.default.removeItem(at: moved) }
        // A state that moved with its project still vouches for its outputs (attack 31's F7): the
        // records are lost when it did not come along (or the build ran under another HOME).
        try FileManager.default.removeItem(at: moved.appendingPathComponent(".derive"))

        let build = try CLI.run(["build"], in: moved)
        #expect(build.status == 1, "\(text(build.stdout)) \(build.stderr)")
        #expect(build.stderr.contains("derive build --verify"), "the refusal does not say what to do: \(build.stderr)")
        let verify = try CLI.run(["build", "--verify"], in: moved)
        #expect(verify.status == 0, "Derive's own outputs stay refused: \(text(verify.stdout)) \(verify.stderr)")
        #expect(try Data(contentsOf: moved.appendingPathComponent("out/cmyk.jpg")) == rendered)
        let check = try CLI.run(["check"], in: moved)
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }

    /// `build --verify` takes only a file that holds exactly what its rule renders: a user's own
    /// file at an output's path is still refused, and kept.
    @Test func buildVerifyStillRefusesAUsersFileAtAnOutputsPath() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let mine = try Data(contentsOf: CLI.samples.appendingPathComponent("landscape.jpg"))
        try FileManager.default.createDirectory(at: project.url("out"), withIntermediateDirectories: true)
        try mine.write(to: project.url("out/cmyk.jpg"))
        let verify = try project.run(["build", "--verify"])
        #expect(verify.status == 1, "\(text(verify.stdout)) \(verify.stderr)")
        #expect(verify.stderr.contains("out/cmyk.jpg exists and was not written by Derive"), "\(verify.stderr)")
        #expect(try Data(contentsOf: project.url("out/cmyk.jpg")) == mine)
    }

    /// Attack 18's S11: one build under another HOME (another XDG_STATE_HOME: a CI cache, sudo)
    /// set the state aside and left a dropped style's files, known only from the lock, in place;
    /// back under the user's own HOME their lines were gone, and bringing the output back was
    /// refused (`exists and was not written by Derive`) for Derive's own files. `build --verify`
    /// takes them back (their bytes are what the rule renders); so does a plain build now,
    /// rendering first: the lock's `known only from the lock` line keeps the digest of the
    /// output line it replaced (attack 46c's t24).
    @Test func anOrphanLeftUnderAnotherHomeIsTakenBackByBuildVerify() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let rendered = try Data(contentsOf: project.url("out/cmyk.jpg"))
        let source = try Data(contentsOf: project.url("src/cmyk.jpg"))
        try FileManager.default.removeItem(at: project.url("src/cmyk.jpg"))
        let other = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: other) }
        let away = try CLI.run(["build"], in: project.root, environment: ["XDG_STATE_HOME": other.path])
        #expect(away.status == 0, "\(text(away.stdout)) \(away.stderr)")
        #expect(project.exists("out/cmyk.jpg"), "nothing is deleted on a state set aside")
        #expect(try project.run(["build", "-q"]).status == 0)
        try source.write(to: project.url("src/cmyk.jpg"))

        let build = try project.run(["build"])
        #expect(build.status == 0, "Derive's own file stays refused: \(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("out/cmyk.jpg")) == rendered)
        let verify = try project.run(["build", "--verify"])
        #expect(verify.status == 0, "\(text(verify.stdout)) \(verify.stderr)")
        #expect(try Data(contentsOf: project.url("out/cmyk.jpg")) == rendered)
        #expect(try project.run(["check"]).status == 0)
    }

    // MARK: S3: replacing a re-created copy that holds the recorded bytes

    /// The lead's note on attack 18's S3: deletion requires the very file Derive wrote (device,
    /// inode, birth), but a rebuild replaces a file at the output's path that holds the bytes
    /// Derive recorded for it, whoever made it. Kept on purpose (README, "Replacing is another
    /// matter"): those bytes are Derive's output, and `git checkout` re-creates every file it
    /// touches, so requiring the very file would refuse every output a checkout touched. This
    /// pins it: a re-created copy with the recorded bytes is rendered over when restyled.
    @Test func aReCreatedCopyWithTheRecordedBytesIsReplacedWhenRebuilt() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let path = project.url("out/cmyk.jpg")
        let bytes = try Data(contentsOf: path)
        try FileManager.default.removeItem(at: path)
        try bytes.write(to: path)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 40))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: path) != bytes, "the re-created copy was not rendered over")
        #expect(try project.run(["check"]).status == 0)
    }
}
