import Foundation
import Testing
import TestSupport

/// Issue #9, attack 56b: holes in this session's takeover notes and state checks. Projects A and
/// B side by side write `pub/{name}.jpg` into `../shared` with the same recipe (the same bytes).
@Suite(.ownThreads) struct TakeoverNotesRound56Tests {
    static func manifest(_ rule: String, bucket: String = "../shared", process: String = "image/resize,w_64") -> String {
        "version: 1\nbuckets:\n  src: {path: src}\n  pub: {path: \(bucket)}\nderivatives:\n  - {name: t\(rule), from: src/*.jpg, process: \"\(process)\", to: \"pub/{name}.jpg\"}\n"
    }


    /// `root/A` and `root/B`, each with `src/a.jpg`; the state home `root/st`.
    func projects(_ root: URL) throws -> (a: URL, b: URL, environment: [String: String]) {
        let a = root.appendingPathComponent("A"), b = root.appendingPathComponent("B")
        for (project, name) in [(a, "A"), (b, "B")] {
            try makeSampleProject(project, manifest: Self.manifest(name))
        }
        return (a, b, ["XDG_STATE_HOME": root.appendingPathComponent("st").path])
    }

    /// H1: B built the file, A took it over (`--overwrite`), both lost `.derive`; B moved its
    /// bucket to a folder of its own. B's plan left the old file as A's, B's build deleted it as
    /// "old copy where the bucket folder used to be": the build's own new state was taken for one
    /// that was there, so its claim check did not doubt.
    @Test func aBuildLeavesTheOldCopyItsPlanLeaves() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: b, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: a, environment: environment).status == 0)
        for project in [a, b] { try FileManager.default.removeItem(at: project.appendingPathComponent(".derive")) }
        try Data(Self.manifest("B", bucket: "bout").utf8).write(to: b.appendingPathComponent("derive.yaml"))
        try FileManager.default.createDirectory(at: b.appendingPathComponent("bout"), withIntermediateDirectories: true)
        let file = root.appendingPathComponent("shared/a.jpg")
        let before = fileInode(file)
        let plan = try CLI.run(["plan"], in: b, environment: environment)
        #expect(said(plan).contains("left: old copy where the bucket folder used to be"), "\(said(plan))")
        let build = try CLI.run(["build"], in: b, environment: environment)
        #expect(!said(build).contains("deleted 1 old copy") && fileInode(file) == before, "\(said(build))")
    }

    /// B took A's file over (noted) and then went: moved away, its lock and state gone. A's
    /// plan, build and clean refuse and keep the file (`context`: what else happened first).
    func expectKeptByTheNote(_ a: URL, _ file: URL, _ environment: [String: String], _ context: String) throws {
        let before = fileInode(file)
        #expect(before != nil, "\(context): the file is not there")
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        #expect(plan.status == 1 && said(plan).contains("as this user's state home notes"), "\(context) plan: \(said(plan))")
        let build = try CLI.run(["build"], in: a, environment: environment)
        #expect(build.status == 1 && !said(build).contains("adopted 1") && fileInode(file) == before, "\(context) build: \(said(build))")
        let clean = try CLI.run(["clean"], in: a, environment: environment)
        #expect(fileInode(file) == before, "\(context): clean removed B's file: \(said(clean))")
    }

    /// B, having taken A's file over, moved out of reach (no folder A's search looks at) with
    /// its lock and state removed: only the state home's note says it installed the file.
    func takerGone(_ root: URL, _ b: URL) throws {
        // Either may be missing (a build killed before it wrote its lock).
        try? FileManager.default.removeItem(at: b.appendingPathComponent(".derive"))
        try? FileManager.default.removeItem(at: b.appendingPathComponent("derive.lock"))
        let away = try CLI.temporaryFolder()
        try FileManager.default.moveItem(at: b, to: away.appendingPathComponent("B"))
        awayFolders.append(away)
    }
    final class Folders: @unchecked Sendable { var all: [URL] = [] }
    let away = Folders()
    var awayFolders: [URL] {
        get { away.all }
        nonmutating set { away.all = newValue }
    }

    /// H2: the note outranks A's own lock line (written before the takeover) when A's state is
    /// lost too: A's lock adopted the file and clean deleted it.
    @Test func theNoteOutranksTheOriginalsLock() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: b, environment: environment).status == 0)
        try takerGone(root, b)
        try FileManager.default.removeItem(at: a.appendingPathComponent(".derive"))
        try expectKeptByTheNote(a, root.appendingPathComponent("shared/a.jpg"), environment, "A's state lost")
    }

    /// H3: B rebuilt its output after the takeover (a new file, the same bytes): the note goes
    /// over to the new file.
    @Test func aTakersRebuildCarriesTheNoteOver() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: b, environment: environment).status == 0)
        let file = root.appendingPathComponent("shared/a.jpg")
        let taken = fileInode(file)
        try Data(Self.manifest("B", process: "image/resize,w_64/format,jpg").utf8).write(to: b.appendingPathComponent("derive.yaml"))
        let rebuilt = try CLI.run(["build", "-q"], in: b, environment: environment)
        #expect(rebuilt.status == 0 && fileInode(file) != taken, "\(said(rebuilt))")
        try takerGone(root, b)
        try expectKeptByTheNote(a, file, environment, "B rebuilt")
    }

    /// M1: notes that cannot be read (garbled, cut short, a folder at their path) are doubt, as
    /// an unreadable registry is, never "no note"; a takeover build then says its takeovers are
    /// not noted. H4: full notes drop none still there, and the build says so.
    @Test(arguments: ["garbled", "folder"])
    func unreadableNotesAreDoubt(breakage: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: b, environment: environment).status == 0)
        try takerGone(root, b)
        let notes = root.appendingPathComponent("st/derive/states/takeovers")
        try FileManager.default.removeItem(at: notes)
        if breakage == "garbled" { try Data("derive-takeovers 1\ntook 1 2 x [\"/p".utf8).write(to: notes) } else {
            try FileManager.default.createDirectory(at: notes, withIntermediateDirectories: false)
        }
        let file = root.appendingPathComponent("shared/a.jpg")
        let plan = try CLI.run(["plan"], in: a, environment: environment)
        // The advice keeps the other notes where it can (attack 57a's 5): a bad line is repaired.
        let advice = breakage == "garbled" ? "repair or remove that line" : "move it away"
        #expect(plan.status == 1 && said(plan).contains("takeover notes") && said(plan).contains(advice), "\(said(plan))")
        let clean = try CLI.run(["clean"], in: a, environment: environment)
        #expect(FileManager.default.fileExists(atPath: file.path), "\(said(clean))")
        // A takeover while they cannot be read is refused (attack 56c's M1: never made un-noted),
        // and nothing is written over them.
        try Data(Self.manifest("C").utf8).write(to: a.appendingPathComponent("c.yaml"))
        let before = fileInode(file)
        let taker = try CLI.run(["build", "-q", "--overwrite", "c.yaml"], in: a, environment: environment)
        #expect(taker.status != 0 && said(taker).contains("the takeover notes") && said(taker).contains("nothing was built"), "\(said(taker))")
        #expect(fileInode(file) == before && before != nil)
    }

    /// Attack 56c's H1: notes were matched by path. The shared folder renamed (`mv shared
    /// shared2`, A's bucket path changed to it) held B's very file under another path, and A
    /// adopted it; a folder away for a moment while another takeover rewrote the notes lost its
    /// note. Notes follow the very file (device, inode, birth), and one whose folder is gone is kept.
    @Test(arguments: ["renamed", "away for a moment"])
    func aNoteFollowsItsFileThroughAFolderRename(variant: String) throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root); for folder in awayFolders { try? FileManager.default.removeItem(at: folder) } }
        let fm = FileManager.default
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: b, environment: environment).status == 0)
        try takerGone(root, b)
        let shared = root.appendingPathComponent("shared"), renamed = root.appendingPathComponent("shared2")
        try fm.moveItem(at: shared, to: renamed)
        if variant == "renamed" {
            try Data(Self.manifest("A", bucket: "../shared2").utf8).write(to: a.appendingPathComponent("derive.yaml"))
            try expectKeptByTheNote(a, renamed.appendingPathComponent("a.jpg"), environment, variant)
        } else {
            // Another project's takeover rewrites the notes while the folder is away.
            let c = root.appendingPathComponent("C")
            try makeSampleProject(c, manifest: Self.manifest("C", bucket: "out"))
            try fm.createDirectory(at: c.appendingPathComponent("out"), withIntermediateDirectories: true)
            try Data("not Derive's".utf8).write(to: c.appendingPathComponent("out/a.jpg"))
            #expect(try CLI.run(["build", "-q", "--overwrite"], in: c, environment: environment).status == 0)
            try fm.moveItem(at: renamed, to: shared)
            try expectKeptByTheNote(a, shared.appendingPathComponent("a.jpg"), environment, variant)
        }
    }

    /// Attack 56b's H4: at the notes' limit a takeover evicted a live note (B's), and A then
    /// adopted and deleted B's file. Full notes drop none whose file is there, and (56c's M1) the
    /// new takeover is refused rather than made un-noted: nothing is built.
    @Test func fullNotesDropNoLiveNote() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let (a, b, environment) = try projects(root)
        #expect(try CLI.run(["build", "-q"], in: a, environment: environment).status == 0)
        #expect(try CLI.run(["build", "-q", "--overwrite"], in: b, environment: environment).status == 0)
        // 4 095 more live notes: files that are there (birth 0: matched by device and inode).
        let many = root.appendingPathComponent("many")
        try fm.createDirectory(at: many, withIntermediateDirectories: true)
        let notes = root.appendingPathComponent("st/derive/states/takeovers")
        var text = try String(contentsOf: notes, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 2, "\(text)")
        for index in 0..<4_095 {
            let file = many.appendingPathComponent("f\(index)")
            try Data().write(to: file)
            var info = stat()
            #expect(lstat(file.path, &info) == 0)
            text += "took \(UInt64(info.st_dev)) \(UInt64(info.st_ino)) 0 [\"\(file.resolvingSymlinksInPath().path)\",\"/elsewhere/m.yaml\"]\n"
        }
        try Data(text.utf8).write(to: notes)
        // A third project takes a file of its own folder over: its note does not fit.
        let c = root.appendingPathComponent("C")
        try fm.createDirectory(at: c.appendingPathComponent("src"), withIntermediateDirectories: true)
        try fm.createDirectory(at: c.appendingPathComponent("out"), withIntermediateDirectories: true)
        try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: c.appendingPathComponent("src/a.jpg"))
        try Data(Self.manifest("C", bucket: "out").utf8).write(to: c.appendingPathComponent("derive.yaml"))
        try Data("not Derive's".utf8).write(to: c.appendingPathComponent("out/a.jpg"))
        let taken = try CLI.run(["build", "-q", "--overwrite"], in: c, environment: environment)
        #expect(taken.status != 0 && said(taken).contains("are full") && said(taken).contains("nothing was built"), "\(said(taken))")
        #expect((try? String(contentsOf: c.appendingPathComponent("out/a.jpg"), encoding: .utf8)) == "not Derive's", "the file was written over")
        let after = try String(contentsOf: notes, encoding: .utf8)
        #expect(after == text, "the notes changed")
        // B's note still holds: gone B's file stays B's.
        try takerGone(root, b)
        try expectKeptByTheNote(a, root.appendingPathComponent("shared/a.jpg"), environment, "notes full")
        for folder in awayFolders { try? fm.removeItem(at: folder) }
    }
}
