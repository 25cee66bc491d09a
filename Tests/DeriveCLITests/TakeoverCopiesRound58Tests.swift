import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Planner
import Testing
import TestSupport

/// Issue #9, attack 57b's 4: B took A's file over (noted by the very file), then the user restored
/// the folder from a backup (`cp -a`: the same bytes, a new inode); B lost its state and lock, A
/// its state. The note no longer matched (not that very file), and A adopted the copy as its own
/// and `clean` deleted it. A note keeps the installed file's bytes (size and SHA-256): a file at
/// its path with those bytes is a copy of the taker's, doubt for every other project.
extension TakeoverNotesRound56Tests {
    @Test(arguments: ["cp -a", "written anew"])
    func aRestoredCopyOfTheTakersFileStaysTheTakers(how: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let (a, b, environment) = try takenOver(root)
        let file = root.appendingPathComponent("shared/a.jpg")
        let bytes = try Data(contentsOf: file)
        let installed = fileInode(file)
        if how == "cp -a" {
            let backup = root.appendingPathComponent("backup")
            let shared = root.appendingPathComponent("shared"), restored = root.appendingPathComponent("restored")
            try copyTree(shared, to: backup)
            // Copied back beside, then moved into place: the copy never gets the freed inode number.
            try copyTree(backup, to: restored)
            try fm.removeItem(at: shared)
            try fm.moveItem(at: restored, to: shared)
        } else {
            // Written beside first: the new file never gets the freed inode number.
            let beside = root.appendingPathComponent("shared/a.jpg.new")
            try bytes.write(to: beside)
            try fm.removeItem(at: file)
            try fm.moveItem(at: beside, to: file)
        }
        let copy = fileInode(file)
        let restored = try Data(contentsOf: file)
        #expect(copy != installed && restored == bytes, "the restore did not make a copy")
        for lost in [b.appendingPathComponent(".derive"), b.appendingPathComponent("derive.lock"), a.appendingPathComponent(".derive")] {
            try fm.removeItem(at: lost)
        }
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("a copy of the file its build took over"), "A's plan: \(said(plan))")
        try expectBuildAndCleanKeep(a, file, installed: copy, environment, "A (\(how))")
    }

    /// Only the taker's bytes are its copy: other bytes at that path (the user's own file) are not
    /// called the taker's, and the note of a file that is gone from there goes with the next notes
    /// written (a build installing its own file at that path drops it).
    @Test func aBuildInstallingItsOwnFileWhereTheTakersWasGoneDropsTheNote() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let (a, b, environment) = try takenOver(root)
        let file = root.appendingPathComponent("shared/a.jpg")
        try fm.removeItem(at: file)
        // A's build makes the file again where nothing is (no --overwrite): its own now.
        let rebuilt = try CLI.run(["build", "-q"], in: a, environment: environment)
        #expect(rebuilt.status == 0 && fm.fileExists(atPath: file.path), "\(said(rebuilt))")
        let notes = (try? String(contentsOf: root.appendingPathComponent("st/derive/states/takeovers"), encoding: .utf8)) ?? ""
        #expect(!notes.contains("\"\(file.path)\"") && !notes.contains("/shared/a.jpg\""), "B's note outlived A's own file there: \(notes)")
        // B removed for good, A, its state lost, adopts its own file again (B's note kept would
        // call it a copy of B's: the same rule, the same bytes).
        try fm.removeItem(at: b)
        try fm.removeItem(at: a.appendingPathComponent(".derive"))
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 0, "A's plan after losing its state: \(said(plan))")
    }

    /// 58a's 4: B took the file over, then `shared` was restored from a backup (the same bytes,
    /// a new inode); B's state intact records another file there and A's state these bytes too, so
    /// the taker itself was refused as "both build states record these very bytes". The note names
    /// B's build as the one whose bytes these are: B adopts its copy; A stays refused.
    @Test func theTakerAdoptsARestoredCopyOfItsOwnFile() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (a, b, environment) = try takenOver(root)
        try expectTheTakerAdoptsARestoredCopy(root, a: a, b: b, environment)
    }

    /// 58a's 5: A's lock line holds other bytes than the file B installed (another recipe); the
    /// refusal said "this manifest's lock records these very bytes there too" and advised taking
    /// it back as "this manifest's copy restored".
    @Test func aRefusalSaysWhenThisManifestsLockHoldsOtherBytes() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let (a, b, environment) = try projects(root)
        try Data(Self.manifest("B", process: "image/resize,w_80").utf8).write(to: b.appendingPathComponent("derive.yaml"))
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: b, environment: environment).status == 0)
        for lost in [b.appendingPathComponent(".derive"), b.appendingPathComponent("derive.lock"), a.appendingPathComponent(".derive")] {
            try fm.removeItem(at: lost)
        }
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 1 && !said(plan).contains("these very bytes there too") && !said(plan).contains("this manifest's copy restored")
                && said(plan).contains("this manifest's lock records other bytes there"), "A's plan: \(said(plan))")
    }

    /// 58a's 6: a note named its manifest's file by device and inode with its birth always 0, so
    /// a new manifest given the freed inode number at the taker's path would be the taker.
    @Test func aNoteKeepsItsManifestsBirth() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (_, b, _) = try takenOver(root)
        let manifest = b.appendingPathComponent("derive.yaml").path
        var info = stat()
        #expect(lstat(manifest, &info) == 0)
        let notes = (try? String(contentsOf: root.appendingPathComponent("st/derive/states/takeovers"), encoding: .utf8)) ?? ""
        let line = notes.split(separator: "\n").first { $0.hasPrefix("took ") }.map(String.init) ?? ""
        // A time of change stands in where the file system keeps no birth: not a birth (a rename
        // changes it), so not noted.
        let birth = max(0, FileBirth.of(manifest) ?? 0)
        #expect(line.contains("\"\(info.st_dev) \(info.st_ino) \(birth)\""), "\(notes)")
    }
}

/// Issue #9, attack 58b: notes dropped while the file they protect is still there, and a taker
/// refused its own restored bytes.
extension TakeoverNotesRound56Tests {
    /// 58b's 1 and 3: B took A's file over (noted, or killed mid-way: a pending note) and moved out
    /// of reach; the user renamed `shared` to `www` (A's bucket follows), a new `shared` appeared,
    /// and another project's takeover there (of the same name) rewrote the notes: the note of B's
    /// file, still in `www`, was dropped as "its folder is there without its very file", and A
    /// adopted and cleaned it. A note keeps its folder's identity: another folder at that path is
    /// not its folder.
    @Test(arguments: ["took", "taking"])
    func aNoteOutlivesANewFolderAtItsOldPath(note: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let fm = FileManager.default
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        let kill = note == "taking" ? ["DERIVE_TEST_KILL_AFTER_INSTALL": "1"] : [:]
        _ = try CLI.run(["build", "-q", "--overwrite"], in: b, environment: environment.merging(kill) { $1 })
        try takerGone(root, b)
        let www = root.appendingPathComponent("www")
        try fm.moveItem(at: root.appendingPathComponent("shared"), to: www)
        try Data(Self.manifest("A", bucket: "../www").utf8).write(to: a.appendingPathComponent("derive.yaml"))
        let shared = root.appendingPathComponent("shared")
        try fm.createDirectory(at: shared, withIntermediateDirectories: false)
        try Data("mine".utf8).write(to: shared.appendingPathComponent("a.jpg"))
        let c = root.appendingPathComponent("C")
        try makeSampleProject(c, manifest: Self.manifest("C", process: "image/resize,w_32"))
        let taken = try CLI.run(["build", "-q", "--overwrite"], in: c, environment: environment)
        #expect(taken.status == 0, "C's takeover: \(said(taken))")
        try expectKeptByTheNote(a, www.appendingPathComponent("a.jpg"), environment, note)
    }

    /// 58b's 2: the taker's manifest saved by rename (`sed -i`, an editor: a new inode), then its
    /// rebuild of the file it took over: the note was not carried over (it names the manifest
    /// file, no longer this one), and A, B out of reach, took B's file with `--verify` and cleaned
    /// it. A build writing anew a file its own state records as the one it installed carries that
    /// file's note over, whichever manifest file the note named.
    @Test func aTakersRebuildAfterItsManifestWasSavedByRenameCarriesTheNoteOver() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let (a, b, environment) = try takenOver(root)
        for (project, name) in [(a, "A"), (b, "B")] {
            let saved = project.appendingPathComponent("derive.yaml.saving")
            try Data(Self.manifest(name, process: "image/resize,w_70").utf8).write(to: saved)
            #expect(rename(saved.path, project.appendingPathComponent("derive.yaml").path) == 0)
        }
        let file = root.appendingPathComponent("shared/a.jpg")
        let before = fileInode(file)
        let rebuilt = try CLI.run(["build", "-q"], in: b, environment: environment)
        #expect(rebuilt.status == 0 && fileInode(file) != before, "B's rebuild: \(said(rebuilt))")
        try takerGone(root, b)
        let installed = fileInode(file)
        let verify = try CLI.run(["build", "--verify"], in: a, environment: environment)
        #expect(verify.status == 1 && fileInode(file) == installed, "A's build --verify: \(said(verify))")
        try expectKeptByTheNote(a, file, environment, "B's manifest saved by rename")
    }

    /// 58b's 4: with another recipe than A's, the taker (its state intact) was refused a restored
    /// copy of the bytes it installed ("A's rule writes that name").
    @Test func theTakerAdoptsARestoredCopyWhateverTheOriginalsRecipe() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (a, b, environment) = try projects(root)
        try Data(Self.manifest("B", process: "image/resize,w_80").utf8).write(to: b.appendingPathComponent("derive.yaml"))
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: b, environment: environment).status == 0)
        try expectTheTakerAdoptsARestoredCopy(root, a: a, b: b, environment)
    }

    /// 58b: B's file renamed in its folder for a moment (`mv a.jpg a.old`) while another
    /// project's takeover rewrote the notes: its note was dropped ("its folder is there without
    /// its very file"), and once it was back A adopted and cleaned it. A note stays while its very
    /// file lies in its folder under another name.
    @Test func aNoteOutlivesItsFileRenamedInItsFolder() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let fm = FileManager.default
        let (a, b, environment) = try takenOver(root)
        try takerGone(root, b)
        let shared = root.appendingPathComponent("shared")
        let file = shared.appendingPathComponent("a.jpg"), aside = shared.appendingPathComponent("a.old")
        try fm.moveItem(at: file, to: aside)
        try Data("mine".utf8).write(to: shared.appendingPathComponent("c-a.jpg"))
        let c = root.appendingPathComponent("C")
        try makeSampleProject(c, manifest: Self.manifest("C", process: "image/resize,w_32").replacingOccurrences(of: "pub/{name}", with: "pub/c-{name}"))
        let taken = try CLI.run(["build", "-q", "--overwrite"], in: c, environment: environment)
        #expect(taken.status == 0, "C's takeover: \(said(taken))")
        try fm.moveItem(at: aside, to: file)
        try expectKeptByTheNote(a, file, environment, "renamed in its folder")
    }

    /// 58c's 2: B's `--overwrite` killed after it had installed (and recorded) some files left
    /// their pending notes; B's next plain build found those files up to date and kept the notes
    /// (doubt for every other project, counted against the notes' limit). A build clears the
    /// pending notes of every output whose very file its state records as its own, up to date
    /// ones too. (The kill is stood in for by the pending line it leaves: the test hook kills
    /// before the state records the file.)
    @Test func aTakersPlainBuildClearsThePendingNotesOfItsFiles() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (_, b, environment) = try takenOver(root)
        let notesFile = root.appendingPathComponent("st/derive/states/takeovers")
        let notes = try String(contentsOf: notesFile, encoding: .utf8)
        let took = try #require(notes.split(separator: "\n").first { $0.hasPrefix("took ") })
        let fields = try #require(JSONSerialization.jsonObject(with: Data(took[took.firstIndex(of: "[")!...].utf8)) as? [String])
        let pending = try JSONSerialization.data(withJSONObject: [fields[0], fields[1], fields[2], fields[4]], options: [.withoutEscapingSlashes])
        try Data((notes + "taking 1 2 3 " + String(decoding: pending, as: UTF8.self) + "\n").utf8).write(to: notesFile)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: b.appendingPathComponent("src/b.jpg"))
        let build = try CLI.run(["build"], in: b, environment: environment)
        #expect(build.status == 0 && said(build).contains("built 1"), "B's build: \(said(build))")
        let after = (try? String(contentsOf: notesFile, encoding: .utf8)) ?? ""
        #expect(!after.contains("taking ") && after.contains("took "), "\(after)")
    }

    /// `shared` restored from a backup (`cp -a`, copied beside then moved into place: new inodes,
    /// the same bytes): the taker B plans and builds, adopting its copy; A is refused.
    func expectTheTakerAdoptsARestoredCopy(_ root: URL, a: URL, b: URL, _ environment: [String: String]) throws {
        let fm = FileManager.default
        let shared = root.appendingPathComponent("shared"), restored = root.appendingPathComponent("restored")
        try copyTree(shared, to: restored)
        try fm.removeItem(at: shared)
        try fm.moveItem(at: restored, to: shared)
        let file = shared.appendingPathComponent("a.jpg")
        let copy = fileInode(file)
        let planB = try CLI.run(["plan"], in: b, environment: environment)
        #expect(planB.status == 0, "the taker's plan: \(said(planB))")
        let buildB = try CLI.run(["build"], in: b, environment: environment)
        #expect(buildB.status == 0 && fileInode(file) == copy, "the taker's build: \(said(buildB))")
        let planA = try CLI.run(["plan"], in: a, environment: environment)
        #expect(planA.status == 1 && fileInode(file) == copy, "A's plan: \(said(planA))")
    }
}
