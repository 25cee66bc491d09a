import Foundation
import Testing
import TestSupport

/// Issue #9, attack 56c's H3: B built a file in a shared folder (`../shared`, A's output removed
/// by hand first), lost its build state, and its manifest was cut to `version: 1`. B's next
/// build kept the file as one it left in place, but rewrote its line in the registry of built
/// projects with no bucket at all: the folder its lock's line counts through was gone, so A
/// adopted the file as a restored copy and `clean` deleted it. A registry line keeps the folder
/// of every bucket its project's lock still records, declared or not.
@Suite(.ownThreads) struct BucketlessTakerRound57Tests {
    static func manifest(_ rule: String) -> String {
        "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: ../shared}\nderivatives:\n  - {name: \(rule), from: \"src/*.jpg\", process: \"image/resize,w_64\", to: \"pub/{name}.jpg\"}\n"
    }

    @Test(arguments: ["version only", "bucket removed"])
    func aTakerThatNoLongerDeclaresTheBucketKeepsItAcrossItsOwnBuilds(change: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        let (a, b) = (root.appendingPathComponent("A"), root.appendingPathComponent("B"))
        try FileManager.default.createDirectory(at: root.appendingPathComponent("shared"), withIntermediateDirectories: true)
        try makeSampleProject(a, manifest: Self.manifest("tA"))
        try makeSampleProject(b, manifest: Self.manifest("tB"))
        let file = root.appendingPathComponent("shared/a.jpg")
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        try FileManager.default.removeItem(at: file)
        let taken = try CLI.run(["build", "-q"], in: b, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        let installed = fileInode(file)
        #expect(installed != nil)
        try FileManager.default.removeItem(at: b.appendingPathComponent(".derive"))
        let cut = change == "version only" ? "version: 1\n" : "version: 1\nbuckets:\n  src: {path: src}\n"
        try Data(cut.utf8).write(to: b.appendingPathComponent("derive.yaml"))
        // Twice: the second build has nothing to write and only checks its registry line.
        for round in 1...2 {
            let rebuilt = try CLI.run(["build"], in: b, environment: environment)
            #expect(rebuilt.status == 0 && fileInode(file) == installed, "B's build \(round): \(said(rebuilt))")
        }
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("may be an output of") && said(plan).contains(b.path), "A's plan: \(said(plan))")
        let build = try CLI.run(["build"], in: a, environment: environment)
        #expect(build.status != 0 && !said(build).contains("adopted 1"), "A's build: \(said(build))")
        let clean = try CLI.run(["clean"], in: a, environment: environment)
        #expect(fileInode(file) == installed, "A's clean removed B's file: \(said(clean))")
    }

    /// Once B's lock no longer records the bucket (its left line released: the file gone), the
    /// registry line lets the folder go (nothing there is B's any more).
    @Test func theFolderGoesOnceTheLockNoLongerRecordsIt() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        let b = root.appendingPathComponent("B")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("shared"), withIntermediateDirectories: true)
        try makeSampleProject(b, manifest: Self.manifest("tB"))
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        try FileManager.default.removeItem(at: b.appendingPathComponent(".derive"))
        try Data("version: 1\n".utf8).write(to: b.appendingPathComponent("derive.yaml"))
        let registry = root.appendingPathComponent("xdg/derive/states/projects")
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        let kept = (try? String(contentsOf: registry, encoding: .utf8)) ?? ""
        #expect(kept.contains(root.appendingPathComponent("shared").path), "\(kept)")
        try FileManager.default.removeItem(at: root.appendingPathComponent("shared/a.jpg"))
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        let lock = (try? String(contentsOf: b.appendingPathComponent("derive.lock"), encoding: .utf8)) ?? ""
        let after = (try? String(contentsOf: registry, encoding: .utf8)) ?? ""
        #expect(lock.contains("pub/") || !after.contains(root.appendingPathComponent("shared").path), "lock: \(lock)\nregistry: \(after)")
    }
}

/// Issue #9, attacks 56b's M3 and 56c's L1: the state home's note of who took a very file over
/// decides between two lock lines with these bytes when a build state is lost.
extension TakeoverNotesRound56Tests {
    /// 56b's M3: two manifests in one folder, `b.yaml` took `a.yaml`'s output over (noted), then
    /// lost only its build state. b was refused its own file, told it may be a's, and advised to
    /// build a with --overwrite (which replaces b's output). The note says b installed it: b's
    /// own lock line is its word, and b adopts it.
    @Test func theTakerThatLostItsStateAdoptsTheFileItsNoteNames() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let proj = root.appendingPathComponent("proj")
        try makeSampleProject(proj, manifest: nil)
        let manifest = "version: 1\nbuckets:\n  src: {path: src}\n  out: {path: out}\nderivatives:\n  - {name: t, from: \"src/*.jpg\", process: \"image/resize,w_8\", to: \"out/{name}.jpg\"}\n"
        for name in ["a.yaml", "b.yaml"] { try Data(manifest.utf8).write(to: proj.appendingPathComponent(name)) }
        let environment = ["XDG_STATE_HOME": root.appendingPathComponent("xdg").path]
        #expect(try CLI.run(["build", "-q", "a.yaml"], in: proj, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite", "b.yaml"], in: proj, environment: environment).status == 0)
        try FileManager.default.removeItem(at: proj.appendingPathComponent(".derive/b"))
        let file = proj.appendingPathComponent("out/a.jpg")
        let before = fileInode(file)
        let planA = try CLI.run(["plan", "a.yaml"], in: proj, environment: environment)
        #expect(planA.status == 1 && said(planA).contains("b.yaml"), "a's plan: \(said(planA))")
        let build = try CLI.run(["build", "b.yaml"], in: proj, environment: environment)
        #expect(build.status == 0 && said(build).contains("adopted 1") && fileInode(file) == before, "b's build: \(said(build))")
        let check = try CLI.run(["check", "b.yaml"], in: proj, environment: environment)
        #expect(check.status == 0, "b's check: \(said(check))")
    }

    /// 56c's L1: B took A's file over (noted), moved away and lost its records; a copy of A
    /// (`cp -a A A2`, its state removed) was told the file may be A's and advised to build A with
    /// --overwrite. It names B, whose build the notes say installed this very file, and keeps it.
    @Test func aCopyOfTheOriginalNamesTheTakerTheNotesName() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let (a, b, environment) = try takenOver(root)
        try takerGone(root, b)
        let a2 = root.appendingPathComponent("A2")
        try copyTree(a, to: a2)
        try FileManager.default.removeItem(at: a2.appendingPathComponent(".derive"))
        let file = root.appendingPathComponent("shared/a.jpg")
        let before = fileInode(file)
        let plan = try CLI.run(["plan"], in: a2, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("as this user's state home notes") && !said(plan).contains("derive build \(a.path)/derive.yaml --overwrite"),
                "A2's plan: \(said(plan))")
        let build = try CLI.run(["build"], in: a2, environment: environment)
        #expect(build.status == 1 && !said(build).contains("adopted 1"), "A2's build: \(said(build))")
        let clean = try CLI.run(["clean"], in: a2, environment: environment)
        #expect(fileInode(file) == before, "A2's clean removed B's file: \(said(clean))")
    }
}

/// Issue #9, attack 57a: takeovers made un-noted, and notes naming their taker by path alone.
extension TakeoverNotesRound56Tests {
    /// 57a's 1: notes that could not be written (an immutable file, a read-only state home) let
    /// `--overwrite` take the file over with a warning, and A later adopted and deleted it. The
    /// takeover is noted before anything is written, or refused, leaving nothing behind.
    @Test func aTakeoverWhoseNoteCannotBeWrittenIsRefused() throws {
        let root = try CLI.temporaryFolder()
        defer {
            chmod(root.appendingPathComponent("st/derive/states").path, 0o700)
            try? FileManager.default.removeItem(at: root)
        }
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        let file = root.appendingPathComponent("shared/a.jpg")
        let before = fileInode(file)
        let states = root.appendingPathComponent("st/derive/states")
        // A token folder no one may write (root writes anyway: the note's rename is what fails).
        #expect(chmod(states.path, 0o500) == 0)
        let blocked = geteuid() != 0
        if !blocked {
            // As root, a folder in the way of the notes' temporary name stands in for it.
            chmod(states.path, 0o700)
            try FileManager.default.createDirectory(at: states.appendingPathComponent("takeovers"), withIntermediateDirectories: false)
        }
        let taken = try CLI.run(["build", "--overwrite"], in: b, environment: environment)
        #expect(taken.status != 0 && said(taken).contains("notes each such takeover in the state home first"), "\(said(taken))")
        #expect(fileInode(file) == before, "the file was taken over un-noted")
        #expect(!FileManager.default.fileExists(atPath: b.appendingPathComponent(".derive/derive/state.sqlite").path), "the refused build left a state")
    }

    /// 57a's 2: a build killed between installing a file it took over and noting it left the
    /// takeover un-noted; A adopted and deleted the file. The note is made before the install.
    @Test func aTakeoverKilledBeforeItsNoteIsStillNoted() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        let file = root.appendingPathComponent("shared/a.jpg")
        let killed = try CLI.run(["build", "--overwrite"], in: b, environment: environment.merging(["DERIVE_TEST_KILL_AFTER_INSTALL": "1"]) { $1 })
        #expect(killed.status != 0, "\(said(killed))")
        let installed = fileInode(file)
        let notes = (try? String(contentsOf: root.appendingPathComponent("st/derive/states/takeovers"), encoding: .utf8)) ?? ""
        #expect(notes.contains("taking "), "\(notes)")
        // B goes: its manifest moved out of reach, its records lost.
        try? FileManager.default.removeItem(at: b.appendingPathComponent(".derive"))
        try? FileManager.default.removeItem(at: b.appendingPathComponent("derive.lock"))
        let away = try CLI.temporaryFolder()
        try FileManager.default.moveItem(at: b, to: away.appendingPathComponent("B"))
        awayFolders.append(away)
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("was taking the file at this path over"), "A's plan: \(said(plan))")
        try expectBuildAndCleanKeep(a, file, installed: installed, environment, "A")
    }

    /// 57a's 3: the note named its taker by manifest path alone: B moved away (`mv B B2`), A moved
    /// to B's old path, both states lost; A counted as the taker, adopted the file and `clean`
    /// deleted it. A note names the very manifest file too.
    @Test func anotherManifestAtTheTakersPathIsNotTheTaker() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let (a, b, environment) = try takenOver(root)
        let file = root.appendingPathComponent("shared/a.jpg")
        let installed = fileInode(file)
        for project in [a, b] { try fm.removeItem(at: project.appendingPathComponent(".derive")) }
        try fm.moveItem(at: b, to: root.appendingPathComponent("B2"))
        try fm.moveItem(at: a, to: b)
        let plan = try CLI.run(["plan"], in: b, environment: environment)
        #expect(plan.status == 1 && !said(plan).contains("No changes"), "A at B's path, plan: \(said(plan))")
        try expectBuildAndCleanKeep(b, file, installed: installed, environment, "A at B's path")
    }

    /// 57a's 8: an empty notes file was "more than 1 MiB, or not this user's".
    @Test func anEmptyNotesFileIsSaidToBeEmpty() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let (a, b, environment) = try takenOver(root)
        try takerGone(root, b)
        try Data().write(to: root.appendingPathComponent("st/derive/states/takeovers"))
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("is empty") && !said(plan).contains("more than"), "\(said(plan))")
    }
}

/// Issue #9, attack 57b: takeover notes lost to concurrent takers, to a folder renamed after a
/// killed takeover, and pending notes no build ever cleared.
extension TakeoverNotesRound56Tests {
    /// 57b's 1: four takers at once over the same outputs dropped each other's notes (a note
    /// checked before the lock, written over the note of the file installed since); A's `clean`
    /// then deleted files a taker installed. Every file a taker installed keeps its note.
    @Test func concurrentTakersKeepEveryInstalledFilesNote() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let (a, _, environment) = try projects(root)
        for index in 1..<8 { try fm.copyItem(at: a.appendingPathComponent("src/a.jpg"), to: a.appendingPathComponent("src/a\(index).jpg")) }
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        var takers: [URL] = []
        for index in 0..<4 {
            let taker = root.appendingPathComponent("T\(index)")
            try makeSampleProject(taker, manifest: Self.manifest("T\(index)"))
            for copy in 1..<8 { try fm.copyItem(at: taker.appendingPathComponent("src/a.jpg"), to: taker.appendingPathComponent("src/a\(copy).jpg")) }
            takers.append(taker)
        }
        let all = takers
        DispatchQueue.concurrentPerform(iterations: all.count) { index in
            _ = try? CLI.run(["build", "-q", "--overwrite"], in: all[index], environment: environment)
        }
        let notes = (try? String(contentsOf: root.appendingPathComponent("st/derive/states/takeovers"), encoding: .utf8)) ?? ""
        for name in (0..<8).map({ $0 == 0 ? "a.jpg" : "a\($0).jpg" }) {
            guard let inode = fileInode(root.appendingPathComponent("shared/" + name)) else { continue }
            // Its installed file's note, or (a taker that failed in the race before noting) its pending one.
            #expect(notes.split(separator: "\n").contains { line in
                (line.hasPrefix("took ") && line.split(separator: " ")[2] == Substring(String(inode))) || (line.hasPrefix("taking ") && line.contains("/shared/\(name)\""))
            }, "shared/\(name) (inode \(inode)) has no note:\n\(notes)")
        }
    }

    /// 57b's 2: a taker killed after its install left a pending note by path; the shared folder
    /// renamed after it (`mv shared shared2`, A re-pointed) lost the protection: A, its state
    /// lost, adopted the file and `clean` deleted it. A pending note also knows its folder.
    @Test func aPendingNoteFollowsItsFolderThroughARename() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        let killed = try CLI.run(["build", "--overwrite"], in: b, environment: environment.merging(["DERIVE_TEST_KILL_AFTER_INSTALL": "1"]) { $1 })
        #expect(killed.status != 0, "\(said(killed))")
        for project in [a, b] { try? fm.removeItem(at: project.appendingPathComponent(".derive")) }
        try fm.removeItem(at: b.appendingPathComponent("derive.yaml"))
        try fm.moveItem(at: root.appendingPathComponent("shared"), to: root.appendingPathComponent("shared2"))
        try Data(Self.manifest("A", bucket: "../shared2").utf8).write(to: a.appendingPathComponent("derive.yaml"))
        let file = root.appendingPathComponent("shared2/a.jpg")
        let installed = fileInode(file)
        try expectBuildAndCleanKeep(a, file, installed: installed, environment, "A")
    }

    /// 57b's 5: a killed taker's pending notes made every file it had not replaced yet the
    /// taker's in doubt for ever. A pending note does not count while the file it was taking
    /// over is still there: A, its state lost, adopts that one and keeps the other in doubt.
    @Test func aPendingNoteOfAFileNeverReplacedDoesNotCount() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let (a, b, environment) = try projects(root)
        for project in [a, b] { try fm.copyItem(at: project.appendingPathComponent("src/a.jpg"), to: project.appendingPathComponent("src/b.jpg")) }
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        let before = ["a.jpg", "b.jpg"].map { fileInode(root.appendingPathComponent("shared/" + $0)) }
        _ = try CLI.run(["build", "--overwrite"], in: b, environment: environment.merging(["DERIVE_TEST_KILL_AFTER_INSTALL": "1"]) { $1 })
        let after = ["a.jpg", "b.jpg"].map { fileInode(root.appendingPathComponent("shared/" + $0)) }
        let replaced = zip(before, after).filter { $0 != $1 }.count
        #expect(replaced == 1, "\(before) \(after)")
        try fm.removeItem(at: b)
        try fm.removeItem(at: a.appendingPathComponent(".derive"))
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("was taking the file at this path over"), "\(said(plan))")
        // The one error is about the file the taker replaced; the other is adopted.
        #expect(said(plan).components(separatedBy: "was taking the file at this path over").count == 2, "\(said(plan))")
    }

    /// 57b's 5: a pending note of a dead taker outlived every build of the site: A's
    /// `--overwrite` installs its own file there, and the note goes; A, its state lost later,
    /// adopts its own file again.
    @Test func aBuildThatInstallsAFileClearsAPendingNoteThere() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        _ = try CLI.run(["build", "--overwrite"], in: b, environment: environment.merging(["DERIVE_TEST_KILL_AFTER_INSTALL": "1"]) { $1 })
        try fm.removeItem(at: b)
        let notesFile = root.appendingPathComponent("st/derive/states/takeovers")
        #expect(((try? String(contentsOf: notesFile, encoding: .utf8)) ?? "").contains("taking "))
        let taken = try CLI.run(["build", "--overwrite"], in: a, environment: environment)
        #expect(taken.status == 0, "\(said(taken))")
        let notes = (try? String(contentsOf: notesFile, encoding: .utf8)) ?? ""
        #expect(!notes.contains("taking "), "\(notes)")
        try fm.removeItem(at: a.appendingPathComponent(".derive"))
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 0, "A's plan after losing its state: \(said(plan))")
    }
}

/// `project`'s build refuses (adopting nothing) and its `clean` leaves the very file at `file`
/// (`installed`: its inode), which another project's build installed.
func expectBuildAndCleanKeep(_ project: URL, _ file: URL, installed: UInt64?, _ environment: [String: String], _ context: String) throws {
    #expect(installed != nil, "\(context): the file is not there")
    let build = try CLI.run(["build"], in: project, environment: environment)
    #expect(build.status != 0 && !said(build).contains("adopted 1") && fileInode(file) == installed, "\(context) build: \(said(build))")
    let clean = try CLI.run(["clean"], in: project, environment: environment)
    #expect(fileInode(file) == installed, "\(context): clean removed the other project's file: \(said(clean))")
}

extension TakeoverNotesRound56Tests {
    /// `projects(root)` after A built `shared/a.jpg` and B took it over with `--overwrite` (noted).
    func takenOver(_ root: URL) throws -> (a: URL, b: URL, environment: [String: String]) {
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: b, environment: environment).status == 0)
        return (a, b, environment)
    }
}
