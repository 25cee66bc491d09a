import Builder
import Foundation
import GRDB
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The sixteenth round on build safety (issue 9, verify 16's V1, V1b, V2 and attack 15's F8):
/// where the build state's records may lead, end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound16Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func state(_ project: Project) throws -> DatabaseQueue {
        try BuildSafetyRound15Tests().state(project)
    }

    /// A user's folder `docs/` inside the manifest's folder (not a bucket) holding copies of
    /// every output and a note.
    struct Docs {
        let project: Project
        var copies: [String: Data] = [:]
        let notes = Data("the user's notes\n".utf8)
        init(_ project: Project) throws {
            self.project = project
            try FileManager.default.createDirectory(at: project.url("docs"), withIntermediateDirectories: true)
            for name in project.outputs {
                let bytes = try Data(contentsOf: project.url("out/\(name)"))
                try bytes.write(to: project.url("docs/\(name)"))
                copies[name] = bytes
            }
            try notes.write(to: project.url("docs/notes.txt"))
        }
        var real: String { RealFolder.of(project.url("docs").path) }
        func intact() -> Bool {
            copies.allSatisfy { (try? Data(contentsOf: project.url("docs/\($0.key)"))) == $0.value }
                && (try? Data(contentsOf: project.url("docs/notes.txt"))) == notes
        }
    }

    // MARK: V1: an output record is followed only to its bucket's folder, a folder rules write
    // to, or a folder recorded as that bucket's earlier folder with the same device and inode

    /// Verify 16's V1 (build): one record's folder set to `docs/`, the rule's `to:` moved so the
    /// record is an orphan. Before the fix, build deleted the user's copy in `docs/`.
    @Test func anOrphanRecordedInANonBucketFolderOfTheProjectIsNotDeletedThere() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let docs = try Docs(project)
        try state(project).write { db in
            try db.execute(sql: "UPDATE outputs SET folder = ? WHERE path = 'out/landscape.jpg'", arguments: [docs.real])
        }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/u/{name}.{ext}"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect(docs.intact(), "a copy in a folder that is no bucket was deleted: \(built)")
        #expect(built.contains("out/landscape.jpg") && built.contains("ignored"), "\(built)")
        let again = try project.run(["build", "-q"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(docs.intact())
    }

    /// Verify 16's V1 (clean): every record's folder set to `docs/`. Before the fix, clean
    /// deleted every copy there and left the real outputs.
    @Test func cleanDoesNotFollowRecordsIntoANonBucketFolderOfTheProject() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let docs = try Docs(project)
        try state(project).write { db in try db.execute(sql: "UPDATE outputs SET folder = ?", arguments: [docs.real]) }
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        #expect(docs.intact(), "clean deleted the user's copies in docs/: \(said)")
        #expect(said.contains("ignored"), "\(said)")
    }

    /// A folder the state records as the bucket's earlier folder, with device and inode of a
    /// folder that is not the one there now (a forged or stale row): ignored, nothing deleted.
    @Test func aRecordedEarlierFolderWithAnotherIdentityIsNotFollowed() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let docs = try Docs(project)
        try state(project).write { db in
            try db.execute(sql: "UPDATE outputs SET folder = ?", arguments: [docs.real])
            try db.execute(sql: "INSERT OR REPLACE INTO bucketFolders (bucket, folder, device, inode) VALUES ('out', ?, 1, 1)", arguments: [docs.real])
        }
        try project.write("derive.yaml", Project.manifest(outPath: "out2", index: false))
        let build = try project.run(["build"])
        #expect(docs.intact(), "\(text(build.stdout)) \(build.stderr)")
    }

    // MARK: V1b: an old index is followed only where an `index:` could have named it

    /// Verify 16's V1b: the index's record pointed at `notes.txt` in the project's folder (with
    /// its digest), `index:` moved. Before the fix, build removed notes.txt as "the old index".
    @Test func anIndexRecordAtAFileOutsideEveryBucketOfTheProjectIsNotRemoved() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let notes = Data("my notes\n".utf8)
        try notes.write(to: project.url("notes.txt"))
        let target = RealFolder.of(project.root.path) + "/notes.txt"
        try state(project).write { db in
            try db.execute(sql: "UPDATE controlFiles SET path = ?, digest = ?", arguments: [target, ContentDigests.digest(notes)])
        }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect((try? Data(contentsOf: project.url("notes.txt"))) == notes, "notes.txt was removed as an old index: \(built)")
        #expect(built.contains("notes.txt") && built.contains("ignored"), "\(built)")
    }

    /// Verify 16's V1b, clean: the record at `docs/notes.txt`, nothing else changed.
    @Test func cleanDoesNotRemoveAFileOutsideEveryBucketRecordedAsTheIndex() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let docs = try Docs(project)
        let target = docs.real + "/notes.txt"
        try state(project).write { db in
            try db.execute(sql: "UPDATE controlFiles SET path = ?, digest = ?", arguments: [target, ContentDigests.digest(docs.notes)])
        }
        let clean = try project.run(["clean"])
        #expect(docs.intact(), "clean removed docs/notes.txt as the index: \(text(clean.stdout)) \(clean.stderr)")
    }

    /// A file inside a bucket that an `index:` could not have named (not `.json`), recorded as the
    /// old index with its digest: kept.
    @Test func anIndexRecordAtANonJSONFileInABucketIsNotRemoved() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let notes = Data("my notes\n".utf8)
        try notes.write(to: project.url("out/notes.txt"))
        let target = RealFolder.of(project.url("out").path) + "/notes.txt"
        try state(project).write { db in
            try db.execute(sql: "UPDATE controlFiles SET path = ?, digest = ?", arguments: [target, ContentDigests.digest(notes)])
        }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json"))
        let build = try project.run(["build"])
        #expect((try? Data(contentsOf: project.url("out/notes.txt"))) == notes, "\(text(build.stdout)) \(build.stderr)")
    }

    /// The legitimate move stays: `index:` moved within the bucket removes Derive's old index.
    @Test func anIndexMovedInItsBucketStillRemovesTheOldOne() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json"))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(!project.exists("out/index.json"), "\(text(build.stdout))")
        #expect(project.exists("out/index2.json"))
    }

    // MARK: F8 / V2: a folder at an old path that is not the one Derive used is left

    /// Attack 15's F8: the user moved Derive's `outA` away and made a new `outA` of copies; the
    /// bucket then moved to `outB`. Before the fix, the copies in the user's new folder were deleted.
    @Test func copiesInANewFolderAtTheOldBucketPathAreKept() throws {
        let project = try Project.withCopiesAtItsOldBucketPath()
        defer { project.remove() }
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        for name in project.outputs {
            #expect(project.exists("outA/\(name)"), "the user's copy \(name) in a new outA was deleted: \(built)")
            #expect(project.exists("outA.old/\(name)"))
            #expect(project.exists("outB/\(name)"))
        }
        #expect(built.contains("outA"), "the records left there are not named: \(built)")
    }

    /// Verify 16's V2: Derive's `outA/t` kept by the user as `outA/t.mine`, a new `outA/t` of
    /// copies made; the bucket moved to `outB`. Before the fix, the new folder was emptied and removed.
    @Test func aNewSubfolderAtAFolderPathDeriveCreatedIsNotEmptiedNorRemoved() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "outA", index: false)
            .replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/t/{name}.{ext}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.moveItem(at: project.url("outA/t"), to: project.url("outA/t.mine"))
        try FileManager.default.createDirectory(at: project.url("outA/t"), withIntermediateDirectories: true)
        for name in project.outputs { try FileManager.default.copyItem(at: project.url("outA/t.mine/\(name)"), to: project.url("outA/t/\(name)")) }
        try project.write("derive.yaml", Project.manifest(outPath: "outB", index: false)
            .replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/t/{name}.{ext}"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        for name in project.outputs {
            #expect(project.exists("outA/t/\(name)"), "the user's copy \(name) in a new outA/t was deleted: \(built)")
            #expect(project.exists("outB/t/\(name)"))
        }
        #expect(built.contains("outA/t"), "the folder left is not named: \(built)")
    }

    /// The legitimate move stays: a subfolder Derive created at the old bucket path is emptied
    /// of Derive's files and removed.
    @Test func aSubfolderDeriveCreatedIsRemovedWhenTheBucketMoves() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        try project.write("derive.yaml", Project.manifest(outPath: "outA", index: false)
            .replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/t/{name}.{ext}"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "outB", index: false)
            .replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/t/{name}.{ext}"))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("deleted 5 old copies"), "\(text(build.stdout))")
        #expect(!project.exists("outA/t"), "Derive's own emptied folder was left")
        for name in project.outputs { #expect(project.exists("outB/t/\(name)")) }
    }

    // MARK: F7: messages

    /// Attack 15's F7: a source that cannot be read keeps its outputs as built; `check` said they
    /// were "in derive.lock but not produced by the manifest". (A folder at the source's name:
    /// the same failure as mode 000, which root reads anyway.)
    @Test func checkSaysAnUnreadableSourcesOutputsAreKeptNotUnproduced() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false, width: 30))
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        try FileManager.default.createDirectory(at: project.url("src/landscape.jpg"), withIntermediateDirectories: true)
        let build = try project.run(["build", "-q"])
        #expect(build.status == 1, "\(build.stderr)")
        #expect(project.exists("out/landscape.jpg"))
        let check = try project.run(["check"])
        let said = text(check.stdout) + check.stderr
        #expect(check.status == 1)
        #expect(!said.contains("out/landscape.jpg: in derive.lock but not produced by the manifest"), "\(said)")
        #expect(said.contains("out/landscape.jpg") && said.contains("src/landscape.jpg could not be read"), "\(said)")
    }

    /// Attack 15's F7: a watermark object reached through a linked folder was reported as "does
    /// not exist"; it is there, behind a link Derive does not follow.
    @Test func aWatermarkObjectBehindALinkedFolderIsNamedAsSuch() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let outside = project.url("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("logo-alpha.png"), to: outside.appendingPathComponent("logo.png"))
        try FileManager.default.createSymbolicLink(atPath: project.url("src/wm").path, withDestinationPath: "../outside")
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "process: image/resize,w_32", with: "process: image/resize,w_32/watermark,image_d20vbG9nby5wbmc"))
        let build = try project.run(["build"])
        let said = text(build.stdout) + build.stderr
        #expect(build.status == 1)
        #expect(said.contains("symbolic link") && said.contains("'wm'"), "\(said)")
        #expect(!said.contains("does not exist"), "\(said)")
    }
}
