import Foundation
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 37b's finding 13: when `lock:` moved, each old lock stayed where it was, named by
/// nothing, and `clean` never removed the folders Derive made for the lock. The lock now gets
/// the index's one mechanism: the state records the lock Derive wrote (path, digest, device and
/// inode; its folders as created folders), an old lock still holding those bytes is removed
/// (never through a link), one changed since is left and named, folders made for it go once empty.
/// Finding 10: `index:` moved onto the folder Derive made for the old index was refused.
/// And the leftover: `clean` and `release` rewrote the lock without recording its provenance.
@Suite(.ownThreads, .serialized) struct LockMoveRound38Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
    func said(_ result: CLI.Result) -> String { text(result.stdout) + result.stderr }

    func manifest(lock: String? = nil, index: String? = nil) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        \(lock.map { "lock: \($0)\n" } ?? "")\(index.map { "index: \($0)\n" } ?? "")derivatives:
          - name: thumbs
            from: src/*.jpg
            process: image/resize,w_32
            to: out/{name}.{ext}

        """
    }

    func isFolder(_ project: Project, _ path: String) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: project.url(path).path, isDirectory: &folder) && folder.boolValue
    }

    // MARK: Finding 13: an old lock

    @Test func anOldLockStillDerivesIsRemovedWithTheFoldersMadeForItAndPlanSaysSo() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("usermeta"), withIntermediateDirectories: true)
        try project.write("derive.yaml", manifest(lock: "usermeta/site.lock"))
        #expect(try project.run(["build", "-q"]).status == 0)

        try project.write("derive.yaml", manifest(lock: "dmeta/x/site.lock"))
        let plan = try project.run(["plan"])
        #expect(plan.status == 0, "\(said(plan))")
        #expect(text(plan.stdout).contains("- usermeta/site.lock  remove"), "the plan does not say the old lock goes: \(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(text(build.stdout).contains("removed usermeta/site.lock"), "\(said(build))")
        #expect(!project.exists("usermeta/site.lock"), "the old lock, still Derive's, was left")
        #expect(isFolder(project, "usermeta"), "the user's folder went with the old lock")

        try project.write("derive.yaml", manifest())
        let plan2 = try project.run(["plan"])
        #expect(text(plan2.stdout).contains("- dmeta/x/site.lock  remove"), "\(text(plan2.stdout))")
        let build2 = try project.run(["build"])
        #expect(build2.status == 0, "\(said(build2))")
        #expect(text(build2.stdout).contains("removed dmeta/x/site.lock"), "\(said(build2))")
        #expect(!project.exists("dmeta"), "the folders Derive made for the old lock stayed")
        #expect(try project.run(["check"]).status == 0)
    }

    @Test func anOldLockChangedSinceOrALinkThereIsLeftAndNamed() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(lock: "dmeta/x/site.lock"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let edited = try Data(contentsOf: project.url("dmeta/x/site.lock")) + Data("# mine\n".utf8)
        try edited.write(to: project.url("dmeta/x/site.lock"))
        try project.write("derive.yaml", manifest(lock: "meta2/site.lock"))
        let plan = try project.run(["plan"])
        #expect(text(plan.stdout).contains("dmeta/x/site.lock  keep"), "\(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(said(build).contains("dmeta/x/site.lock was changed since Derive wrote it as the lock"), "the old lock left is not named: \(said(build))")
        #expect(try Data(contentsOf: project.url("dmeta/x/site.lock")) == edited)

        // A link where the old lock was, to a copy with the bytes Derive wrote: never followed, never removed.
        let written = try Data(contentsOf: project.url("meta2/site.lock"))
        try written.write(to: project.url("copy.lock"))
        try FileManager.default.removeItem(at: project.url("meta2/site.lock"))
        #expect(symlink(project.url("copy.lock").path, project.url("meta2/site.lock").path) == 0)
        try project.write("derive.yaml", manifest())
        let moved = try project.run(["build"])
        #expect(moved.status == 0, "\(said(moved))")
        #expect(said(moved).contains("meta2/site.lock"), "the link at the old lock's path is not named: \(said(moved))")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: project.url("meta2/site.lock").path)) == project.url("copy.lock").path)
        #expect(try Data(contentsOf: project.url("copy.lock")) == written)
    }

    @Test func cleanRemovesTheFoldersMadeForTheLock() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(lock: "dmeta/x/site.lock"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(!project.exists("dmeta"), "clean left the folders Derive made for the lock")
        #expect(project.exists("src/landscape.jpg"))
    }

    // MARK: Finding 10: the index moved onto the folder made for the old one

    @Test func anIndexMovedOntoTheFolderMadeForItsOldOneReplacesIt() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(index: "out/a/b/idx.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", manifest(index: "out/a"))
        let plan = try project.run(["plan"])
        #expect(plan.status == 0, "\(said(plan))")
        #expect(text(plan.stdout).contains("- out/a/b/idx.json  remove"), "\(text(plan.stdout))")
        #expect(text(plan.stdout).contains("~ out/a  rewrite"), "\(text(plan.stdout))")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let index = try? Data(contentsOf: project.url("out/a"))
        #expect(index.flatMap { try? JSONSerialization.jsonObject(with: $0) } != nil, "no index at out/a")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(said(check))")
    }

    @Test func anIndexMovedOntoItsOldFolderHoldingAUsersFileIsRefusedAsBefore() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(index: "out/a/b/idx.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let old = try Data(contentsOf: project.url("out/a/b/idx.json"))
        try Data("mine\n".utf8).write(to: project.url("out/a/notes.txt"))
        try project.write("derive.yaml", manifest(index: "out/a"))
        for command in ["plan", "build"] {
            let result = try project.run([command])
            #expect(result.status == 1, "\(command): \(said(result))")
            #expect(said(result).contains("out/a exists and is not a regular file Derive wrote (a folder)"), "\(command): \(said(result))")
        }
        #expect(try Data(contentsOf: project.url("out/a/notes.txt")) == Data("mine\n".utf8))
        #expect(try Data(contentsOf: project.url("out/a/b/idx.json")) == old)
    }

    // MARK: The leftover: every command that writes the lock records its provenance

    @Test func cleanRecordsTheProvenanceOfTheLockItRewrites() throws {
        // Private files left in place under renamed keys: clean writes the lock back holding their `left` lines.
        let project = try LeftInPlaceRound21Tests().leftProject(freshClone: false)
        defer { project.remove() }
        let before = try Data(contentsOf: project.url("derive.lock"))
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        let lock = try Data(contentsOf: project.url("derive.lock"))
        #expect(lock != before && text(lock).contains(#"{"left":"site/"#), "\(text(lock))")
        // The next build's state is at the same path (its folder made again, as that build makes it).
        try FileManager.default.createDirectory(at: project.url(".derive/derive"), withIntermediateDirectories: true)
        let database = project.url(".derive/derive/state.sqlite").path
        #expect(LockProvenance.vouches(lockDigest: ContentDigests.digest(lock), lockPath: project.url("derive.lock").path, forState: database),
                "clean rewrote the lock without recording it as Derive's own record")
    }

    @Test func releaseRecordsTheProvenanceOfTheLockItRewrites() throws {
        let r21 = LeftInPlaceRound21Tests()
        let project = try r21.leftProject(freshClone: false)
        defer { project.remove() }
        let released = try project.run(["release", "site/" + LeftInPlaceRound19Tests.oldKeys[0]])
        #expect(released.status == 0, "\(said(released))")
        let lock = try Data(contentsOf: project.url("derive.lock"))
        let database = project.url(".derive/derive/state.sqlite").path
        #expect(FileManager.default.fileExists(atPath: database))
        #expect(LockProvenance.vouches(lockDigest: ContentDigests.digest(lock), lockPath: project.url("derive.lock").path, forState: database),
                "release rewrote the lock without recording it as Derive's own record")
    }
}
