import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 9's leftovers in pending-write notes (round 39). A build notes each output file in the
/// state before it moves it into place; a kill between the move and the record leaves the note.
/// 1. The note held a path and a digest only: a byte-identical copy of the user's put at that
///    path after the kill (`cp` from a backup: another file, another inode) was "Derive's pending
///    bytes", deleted (or written over) by the next build. The note now holds the file installed
///    (device, inode, birth), and a file there is judged by both, as recorded outputs are.
/// 2. A note whose path lay in no bucket folder of the manifest now (the bucket re-pointed or
///    removed after the kill) was never judged: the note and its file stayed forever. The note
///    now holds the output and the bucket folder it was written in, and is judged there.
@Suite(.ownThreads, .serialized) struct PendingNotesRound39Tests {
    typealias Project = KilledInstallRound38Tests.Project
    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Replaces the file at `url` by a copy of its bytes: another file (another inode: the copy
    /// is made while the old file still exists), as `cp` from a backup makes.
    static func replaceByCopy(_ url: URL) throws -> (bytes: Data, inode: UInt64) {
        let bytes = try Data(contentsOf: url)
        let copy = url.deletingLastPathComponent().appendingPathComponent("backup-copy")
        try bytes.write(to: copy)
        #expect(rename(copy.path, url.path) == 0)
        return (bytes, inode(url))
    }

    static func inode(_ url: URL) -> UInt64 {
        var info = stat()
        return lstat(url.path, &info) == 0 ? UInt64(info.st_ino) : 0
    }

    /// A copy of the very bytes at the killed build's path, no output of the manifest any more:
    /// not Derive's file. Planned as left (named), the build leaves it (exit 0, as for a file
    /// whose bytes changed) and drops the note; `clean` leaves it too.
    @Test func aCopyAtAStrayFilesPathIsLeftAndNamed() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        let copy = try Self.replaceByCopy(project.url(stray))
        try project.restyle(width: 32)

        let plan = try project.planned()
        #expect(plan.kinds[stray] == "left", "\(plan.kinds)")
        #expect(plan.reasons[stray]?.contains { $0.contains("\(stray) is not the file Derive wrote there (its device and inode differ") } == true,
                "\(plan.reasons[stray] ?? [])")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stderr.contains("\(stray) is not the file Derive wrote there"), "\(build.stderr)")
        #expect(Self.text(build.stdout).contains("deleted 3"), "only the three old renders: \(Self.text(build.stdout))")
        #expect((try? Data(contentsOf: project.url(stray))) == copy.bytes && Self.inode(project.url(stray)) == copy.inode, "the copy was deleted or replaced")
        // Said once: the note is dropped, the copy is the user's like any other file.
        #expect(Self.text(try project.run(["plan"]).stdout).hasPrefix("No changes"))
        #expect(try project.run(["clean"]).status == 0)
        #expect(project.exists(stray), "clean removed the user's copy")
    }

    /// `clean` right after the kill: the copy stays (and is named), Derive's other files go.
    @Test func cleanLeavesACopyAtAStrayFilesPath() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        let copy = try Self.replaceByCopy(project.url(stray))
        let clean = try project.run(["clean"])
        #expect(clean.stderr.contains("\(stray) is not the file Derive wrote there"), "\(clean.status) \(clean.stderr)")
        #expect((try? Data(contentsOf: project.url(stray))) == copy.bytes && Self.inode(project.url(stray)) == copy.inode, "clean removed the copy")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: project.url("out/h").path)) ?? []
        #expect(left == [(stray as NSString).lastPathComponent], "\(left)")
    }

    /// An output the manifest still produces, at a plain name: the first build is killed just
    /// after it moved its first output into place, and the user puts a copy of those bytes there.
    /// The next build does not write over the copy: the plan stops and names it (exit 1), as for
    /// any file at an output's path Derive did not write.
    @Test func aCopyAtAPlannedOutputsPathIsNotWrittenOver() throws {
        let project = try BuildSafetyAttackTests.Project(index: false)
        defer { project.remove() }
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["build", "--jobs", "1", "--quiet"]
        process.currentDirectoryURL = project.root
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["XDG_STATE_HOME": CLI.userStateHome.path, "DERIVE_TEST_KILL_AFTER_INSTALL": "1"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)
        let installed = project.outputs.filter { project.exists("out/\($0)") }
        try #require(installed.count == 1, "\(installed)")
        let path = "out/" + installed[0]
        let copy = try Self.replaceByCopy(project.url(path))

        let build = try project.run(["build"])
        #expect(build.status == 1, "\(build.stderr)")
        #expect(build.stderr.contains("\(path) exists and was not written by Derive"), "\(build.stderr)")
        #expect(Self.inode(project.url(path)) == copy.inode && (try? Data(contentsOf: project.url(path))) == copy.bytes, "the copy was written over")

        // Control: the file the killed build installed itself (not a copy) is Derive's to replace.
        let again = try BuildSafetyAttackTests.Project(index: false)
        defer { again.remove() }
        let rerun = Process()
        rerun.executableURL = CLI.executable
        rerun.arguments = ["build", "--jobs", "1", "--quiet"]
        rerun.currentDirectoryURL = again.root
        rerun.environment = process.environment
        rerun.standardOutput = FileHandle.nullDevice
        rerun.standardError = FileHandle.nullDevice
        try rerun.run()
        rerun.waitUntilExit()
        try #require(rerun.terminationReason == .uncaughtSignal)
        let control = try again.run(["build"])
        #expect(control.status == 0, "\(control.stderr)")
        #expect(try again.run(["check"]).status == 0)
    }

    /// The bucket re-pointed after the kill: the stray file in the folder it was written in is
    /// judged there (Derive's file with Derive's bytes: deleted), never looked for in the new one.
    @Test func aStrayFileInABucketsOldFolderIsJudgedThere() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        try repoint(project, to: "out2", width: 32)

        let plan = try project.planned()
        #expect(plan.kinds[stray] == "delete", "\(plan.kinds)")
        #expect(plan.reasons[stray]?.contains { $0.contains("killed or stopped before it recorded it") } == true, "\(plan.reasons[stray] ?? [])")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(!project.exists(stray), "the stray file stayed in the old folder")
        let old = (try? FileManager.default.contentsOfDirectory(atPath: project.url("out/h").path)) ?? []
        #expect(old.isEmpty, "\(old)")
        #expect(Self.text(try project.run(["plan"]).stdout).hasPrefix("No changes"))
    }

    /// Control: a copy at that path in the old folder is the user's: left and named, never deleted.
    @Test func aCopyInABucketsOldFolderIsLeft() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        let copy = try Self.replaceByCopy(project.url(stray))
        try repoint(project, to: "out2", width: 32)

        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stderr.contains("\(stray) is not the file Derive wrote there"), "\(build.stderr)")
        #expect(Self.inode(project.url(stray)) == copy.inode, "the copy was deleted")
        #expect(Self.text(try project.run(["plan"]).stdout).hasPrefix("No changes"))
    }

    /// The bucket removed from the manifest after the kill: `clean` judges the note in the folder
    /// it was written in too (Derive's file: removed).
    @Test func cleanRemovesAStrayFileOfARemovedBucket() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        try repoint(project, to: "out2", width: 32, bucket: "elsewhere")
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(!project.exists(stray), "\(Self.text(clean.stdout)) \(clean.stderr)")
    }

    /// The project moved after the kill (its state taken over at the new place): the note's
    /// folder moves with its path, so the stray file is judged where it is now (Derive's: deleted).
    @Test func aStrayFileOfAMovedProjectIsJudgedWhereItIsNow() throws {
        let project = try Project()
        let moved = project.root.deletingLastPathComponent().appendingPathComponent(project.root.lastPathComponent + "-moved")
        defer { project.remove(); try? FileManager.default.removeItem(at: moved) }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.restyle(width: 40)
        let stray = try project.killedBuild()
        try project.restyle(width: 32)
        #expect(rename(project.root.path, moved.path) == 0)
        let build = try CLI.run(["build"], in: moved)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(!FileManager.default.fileExists(atPath: moved.appendingPathComponent(stray).path), "the stray file stayed: \(Self.text(build.stdout)) \(build.stderr)")
        #expect(Self.text(try CLI.run(["plan"], in: moved).stdout).hasPrefix("No changes"))
    }

    /// The manifest with bucket `bucket` (its outputs' bucket) at folder `folder`.
    func repoint(_ project: Project, to folder: String, width: Int, bucket: String = "out") throws {
        try Data("""
        version: 1
        buckets:
          src: {path: src}
          \(bucket): {path: \(folder)}
        derivatives:
          - name: h
            from: src/*.jpg
            process: image/resize,w_\(width)
            to: \(bucket)/h/{name}.{hash}.jpg

        """.utf8).write(to: project.url("derive.yaml"))
    }
}
