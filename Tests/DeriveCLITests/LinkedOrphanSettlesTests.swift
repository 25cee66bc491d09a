import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Round 30's F3: an orphan (an output the manifest no longer produces) whose path leads through
/// a symbolic link is never deleted through the link, and its record is kept so Derive can
/// delete its own file once the link is gone. While the link stays, the tree settles: every
/// later build found the same work again (the lock and the index rewritten, a warning, no no-op
/// witness), plan had changes pending and check failed, for ever. Now such an orphan is named
/// once as `kept` (not pending work): plan exits 0, check exits 0, the control files are not
/// rewritten and the no-op build says "Nothing to do"; once the link is removed the next build
/// deletes Derive's file (or drops the record of a file no longer there).
@Suite(.ownThreads, .serialized) struct LinkedOrphanSettlesTests {
    static func manifest(linked: Bool) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        index: out/index.json
        derivatives:
          - {name: big, from: "src/*.jpg", process: "image/resize,w_40", to: "out/b/{name}.{ext}"}
        \(linked ? "  - {name: thumbs, from: \"src/*.jpg\", process: \"image/resize,w_32\", to: \"out/t/{name}.{ext}\"}\n" : "")
        """
    }

    /// A built project whose `out/t` was then moved to `elsewhere` and replaced by a link to it,
    /// and whose manifest no longer has the rule writing into `out/t`.
    func linkedOrphans() throws -> BuildSafetyAttackTests.Project {
        let project = try BuildSafetyAttackTests.Project(index: true)
        try project.write("derive.yaml", Self.manifest(linked: true))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        try FileManager.default.moveItem(at: project.url("out/t"), to: project.url("elsewhere"))
        try FileManager.default.createSymbolicLink(atPath: project.url("out/t").path, withDestinationPath: "../elsewhere")
        try project.write("derive.yaml", Self.manifest(linked: false))
        return project
    }

    func said(_ result: CLI.Result) -> String { text(result.stdout) + result.stderr }

    /// The stats of the control files and the outputs behind the link (inode, size, mtime).
    func stats(_ project: BuildSafetyAttackTests.Project, _ paths: [String]) -> [String] {
        paths.map { path in
            var info = stat()
            guard lstat(project.url(path).path, &info) == 0 else { return "\(path) -" }
            return "\(path) \(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }
    }

    @Test func anOrphanBehindALinkSettles() throws {
        let project = try linkedOrphans()
        defer { project.remove() }
        let behind = project.outputs.map { "elsewhere/" + $0 }
        let bytes = try behind.map { try Data(contentsOf: project.url($0)) }
        let first = try project.run(["build"])
        #expect(first.status == 0, "\(said(first))")
        #expect(said(first).contains("out/t/cmyk.jpg") && said(first).contains("symbolic link"), "the kept orphan is not named: \(said(first))")
        Thread.sleep(forTimeInterval: 1.2)   // past the racy margin: the no-op witness may hold
        let watched = ["derive.lock", "out/index.json"] + behind
        let before = stats(project, watched)

        let plan = try project.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 0, "plan has changes pending for ever: \(said(plan))")
        let check = try project.run(["check"])
        #expect(check.status == 0, "check fails for ever: \(said(check))")
        let second = try project.run(["build"])
        #expect(second.status == 0, "\(said(second))")
        #expect(text(second.stdout).contains("Nothing to do"), "the build found the same work again: \(said(second))")
        let third = try project.run(["build"])
        #expect(text(third.stdout).contains("Nothing to do"), "the build found the same work again: \(said(third))")
        // The second build left a no-op witness: the third answers from it, and names the kept
        // outputs as a plan does (attack 37a's M1: it named nothing; `KeptLinkWitnessRound37Tests`).
        #expect(text(third.stdout).contains("= out/t/cmyk.jpg  kept: "), "\(said(third))")
        #expect(stats(project, watched) == before, "the settled tree's control files or the files behind the link changed")
        #expect(try behind.map { try Data(contentsOf: project.url($0)) } == bytes, "a file behind the link was touched")

        // The link removed and Derive's folder back: its own old files are deleted.
        try FileManager.default.removeItem(at: project.url("out/t"))
        try FileManager.default.moveItem(at: project.url("elsewhere"), to: project.url("out/t"))
        let back = try project.run(["build"])
        #expect(back.status == 0, "\(said(back))")
        for name in project.outputs { #expect(!project.exists("out/t/" + name), "Derive's own orphan \(name) was not deleted once the link was gone: \(said(back))") }
        #expect(try project.run(["check"]).status == 0)
        #expect(!(try String(contentsOf: project.url("derive.lock"), encoding: .utf8)).contains("out/t/"), "the orphans' records are kept")
    }

    @Test func theLinkRemovedDropsTheRecords() throws {
        let project = try linkedOrphans()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("out/t"))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(!(try String(contentsOf: project.url("derive.lock"), encoding: .utf8)).contains("out/t/"), "the records of files no longer there are kept")
        for name in project.outputs { #expect(project.exists("elsewhere/" + name), "\(name), reached once through the link, was deleted") }
        let plan = try project.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 0, "\(said(plan))")
    }

    /// `build --watch` does not wake again and again for the kept orphan.
    @Test func theWatchDoesNotLoopOnAnOrphanBehindALink() throws {
        let manifest = Self.manifest(linked: true).replacingOccurrences(of: "src/", with: "photos/src/")
            .replacingOccurrences(of: "out/", with: "photos/out/").replacingOccurrences(of: "src: {path: src}\n  out: {path: out}", with: "photos: {path: photos}")
        let watch = try WatchSession(manifestText: manifest)
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        let elsewhere = watch.root.appendingPathComponent("elsewhere")
        #expect(watch.wait(30) { FileManager.default.fileExists(atPath: watch.outputs.appendingPathComponent("t/a.jpg").path) }, "\(watch.lines)")
        usleep(3_000_000)
        try FileManager.default.moveItem(at: watch.outputs.appendingPathComponent("t"), to: elsewhere)
        try FileManager.default.createSymbolicLink(atPath: watch.outputs.appendingPathComponent("t").path, withDestinationPath: elsewhere.path)
        let lines = watch.lines.count
        try Data(manifest.replacingOccurrences(of: #"  - {name: thumbs"#, with: "#  - {name: thumbs").utf8).write(to: watch.manifest)
        #expect(watch.wait(30) { watch.lines.count > lines }, "the watch did not build the edit: \(watch.lines) \(watch.standardError)")
        // Past two of the watch's periodic checks (5 s each): nothing more is built.
        usleep(2_000_000)
        let settled = watch.lines.count
        let lock = watch.root.appendingPathComponent("derive.lock")
        let lockBefore = try FileManager.default.attributesOfItem(atPath: lock.path)[.modificationDate] as? Date
        usleep(12_000_000)
        #expect(watch.lines.count == settled, "the watch kept building: \(watch.lines.suffix(6))")
        let lockAfter = try FileManager.default.attributesOfItem(atPath: lock.path)[.modificationDate] as? Date
        #expect(lockBefore == lockAfter, "the watch rewrote the lock while nothing changed: \(watch.lines.suffix(6))")
        #expect((try? Data(contentsOf: elsewhere.appendingPathComponent("a.jpg")))?.isEmpty == false, "the file behind the link was touched")
        #expect(watch.terminate() == 0)
    }
}
