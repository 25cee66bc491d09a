import Builder
import Foundation
import GRDB
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The seventeenth round on build safety (issue 9, attack 17's N7, N3, N4, N6 and N5), end to
/// end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound17Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    func state(_ project: Project) throws -> DatabaseQueue {
        try BuildSafetyRound15Tests().state(project)
    }

    /// The device and inode of what is at `path` (links not followed).
    static func identity(_ path: String) -> (device: Int64, inode: Int64)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (Int64(bitPattern: UInt64(info.st_dev)), Int64(bitPattern: UInt64(info.st_ino)))
    }

    /// Whether the state's `controlFiles` table has the device and inode columns.
    func controlFilesHaveIdentity(_ db: Database) throws -> Bool {
        try db.columns(in: "controlFiles").contains { $0.name == "device" }
    }

    /// Writes a user's file at `relative` (in a bucket) and points the index's state record at it,
    /// with its digest, as a tampered `.derive/` would (attack 17's N7); returns the file's bytes.
    func pointTheIndexRecord(_ project: Project, at relative: String, holding bytes: Data) throws -> Data {
        try bytes.write(to: project.url(relative))
        let target = RealFolder.of(project.url((relative as NSString).deletingLastPathComponent).path) + "/" + (relative as NSString).lastPathComponent
        try state(project).write { db in
            try db.execute(sql: "UPDATE controlFiles SET path = ?, digest = ?", arguments: [target, ContentDigests.digest(bytes)])
        }
        return bytes
    }

    // MARK: N7: an old index is removed only when it is the file Derive wrote (device and inode)

    /// Attack 17's N7: the index's record pointed at a user's `src/meta.json` (in the SOURCE
    /// bucket) with its digest, `index:` moved. Before the fix, build removed it.
    @Test func anIndexRecordAtAJSONFileInTheSourceBucketIsNotRemovedByBuild() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let mine = try pointTheIndexRecord(project, at: "src/meta.json", holding: Data("{\"mine\":1}\n".utf8))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect((try? Data(contentsOf: project.url("src/meta.json"))) == mine, "src/meta.json was removed as an old index: \(built)")
    }

    /// N7 with the record's device and inode forged too (read with `stat`): a source bucket no
    /// `index:` ever named never held Derive's index, so nothing there is removed as one.
    @Test func anIndexRecordWithAForgedIdentityInTheSourceBucketIsNotRemoved() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let mine = Data("{\"mine\":1}\n".utf8)
        try mine.write(to: project.url("src/meta.json"))
        let target = RealFolder.of(project.url("src").path) + "/meta.json"
        let identity = try #require(Self.identity(target))
        try state(project).write { db in
            try db.execute(sql: "UPDATE controlFiles SET path = ?, digest = ?", arguments: [target, ContentDigests.digest(mine)])
            if try controlFilesHaveIdentity(db) {
                try db.execute(sql: "UPDATE controlFiles SET device = ?, inode = ?", arguments: [identity.device, identity.inode])
            }
        }
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect((try? Data(contentsOf: project.url("src/meta.json"))) == mine, "src/meta.json was removed as an old index: \(built)")
        #expect(built.contains("src/meta.json"), "the ignored record is not named: \(built)")
    }

    /// N7 in the output bucket: a user's `out/data.json` (a file Derive never wrote, so not the
    /// file whose device and inode it recorded) named by the index's record.
    @Test func anIndexRecordAtAUsersJSONFileInTheOutputBucketIsNotRemoved() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let mine = try pointTheIndexRecord(project, at: "out/data.json", holding: Data("{\"data\":2}\n".utf8))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect((try? Data(contentsOf: project.url("out/data.json"))) == mine, "out/data.json was removed as an old index: \(built)")
        #expect(built.contains("out/data.json"), "the file left is not named: \(built)")
    }

    /// N7, clean: the index's record at `src/meta.json` and at `out/data.json`, nothing else changed.
    @Test func cleanDoesNotRemoveUsersJSONFilesRecordedAsTheIndex() throws {
        for file in ["src/meta.json", "out/data.json"] {
            let project = try Project(index: true)
            defer { project.remove() }
            #expect(try project.run(["build", "-q"]).status == 0)
            let mine = try pointTheIndexRecord(project, at: file, holding: Data("{\"mine\":3}\n".utf8))
            let clean = try project.run(["clean"])
            #expect((try? Data(contentsOf: project.url(file))) == mine, "clean removed \(file) as the index: \(text(clean.stdout)) \(clean.stderr)")
        }
    }

    /// A record of an old index without a device and inode (a state from before they were kept)
    /// proves nothing a copy would not: the old index is left, with a warning.
    @Test func anOldIndexRecordWithoutAnIdentityIsLeftWithAWarning() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try state(project).write { db in
            #expect(try controlFilesHaveIdentity(db), "the index's device and inode are not recorded")
            if try controlFilesHaveIdentity(db) { try db.execute(sql: "UPDATE controlFiles SET device = 0, inode = 0") }
        }
        // As an older Derive wrote it (sealed with the user's secret).
        try BuildSafetyRound18Tests.sealAsTheUser(project)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(built)")
        #expect(project.exists("out/index.json"), "an unproven old index was removed: \(built)")
        #expect(built.contains("out/index.json") && built.contains("left in place"), "\(built)")
        #expect(project.exists("out/index2.json"))
    }

    /// The legitimate case, end to end: the index Derive wrote (its device and inode recorded)
    /// is removed by clean and by an `index:` move.
    @Test func derivesOwnIndexIsStillRemovedByCleanAndByAMove() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let recorded = try state(project).read { db in try Row.fetchOne(db, sql: "SELECT * FROM controlFiles") }
        #expect(recorded?["device"] != nil && (recorded?["inode"] as Int64?) == Self.identity(project.url("out/index.json").path)?.inode,
                "the index's inode is not recorded: \(String(describing: recorded))")
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true)
            .replacingOccurrences(of: "index: out/index.json", with: "index: out/index2.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(!project.exists("out/index.json"))
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(!project.exists("out/index2.json"), "\(text(clean.stdout)) \(clean.stderr)")
    }

    // MARK: N3: an output is deleted only while it is the file Derive installed (device and inode)

    /// The manifest with outputs in a subfolder `t` of the bucket at `outPath`.
    static func subfolderManifest(_ outPath: String) -> String {
        Project.manifest(outPath: outPath, index: false).replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/t/{name}.{ext}")
    }

    /// Attack 17's N3: the user emptied and removed Derive's `outA/t`, made a new `outA/t` (ext4
    /// hands the freed inode number straight back: the state's `createdFolders` row is set to the
    /// new folder's, as that reuse leaves it) and copied the outputs into it; the bucket then
    /// moved to `outB`. Before the fix, the copies were deleted as Derive's old copies.
    @Test func copiesInAReCreatedFolderWithTheOldInodeNumberAreKept() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        try project.write("derive.yaml", Self.subfolderManifest("outA"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let keep = project.url("keep")
        try FileManager.default.moveItem(at: project.url("outA/t"), to: keep)
        try FileManager.default.createDirectory(at: project.url("outA/t"), withIntermediateDirectories: true)
        for name in project.outputs { try FileManager.default.copyItem(at: keep.appendingPathComponent(name), to: project.url("outA/t/\(name)")) }
        try FileManager.default.removeItem(at: keep)
        let folder = RealFolder.of(project.url("outA/t").path)
        let identity = try #require(Self.identity(folder))
        try state(project).write { db in
            try db.execute(sql: "UPDATE createdFolders SET device = ?, inode = ? WHERE path = ?", arguments: [identity.device, identity.inode, folder])
        }
        try project.write("derive.yaml", Self.subfolderManifest("outB"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        for name in project.outputs {
            #expect(project.exists("outA/t/\(name)"), "the user's copy \(name) in a re-created outA/t was deleted: \(built)")
            #expect(project.exists("outB/t/\(name)"))
        }
        #expect(built.contains("outA/t/landscape.jpg") && built.contains("left in place"), "the copies left are not named: \(built)")
    }

    /// N3 with the folder itself kept: the user replaced each of Derive's files in `outA` by a
    /// copy (same bytes, a new file written beside it and renamed over it, as editors and sync
    /// tools do); the bucket moved. The copies are the user's: kept.
    @Test func copiesReplacingDerivesFilesInTheOldBucketFolderAreKept() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        for name in project.outputs {
            let bytes = try Data(contentsOf: project.url("outA/\(name)"))
            try bytes.write(to: project.url("outA/\(name).copy"))
            #expect(rename(project.url("outA/\(name).copy").path, project.url("outA/\(name)").path) == 0)
        }
        try project.write("derive.yaml", Project.manifest(outPath: "outB", index: false))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        for name in project.outputs { #expect(project.exists("outA/\(name)"), "the user's copy \(name) was deleted: \(built)") }
        #expect(build.status == 0, "\(built)")
    }

    /// The legitimate move stays: Derive's own files (their device and inode recorded) are
    /// deleted from the old folder, and the folders it created there removed.
    @Test func derivesOwnFilesAreStillDeletedWhenTheBucketMoves() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        try project.write("derive.yaml", Self.subfolderManifest("outA"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let rows = try state(project).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM outputFiles") }
        #expect(rows == project.outputs.count, "the outputs' device and inode are not recorded")
        try project.write("derive.yaml", Self.subfolderManifest("outB"))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("deleted 5 old copies"), "\(text(build.stdout))")
        #expect(!project.exists("outA/t"))
        // And clean removes the new ones.
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        for name in project.outputs { #expect(!project.exists("outB/t/\(name)")) }
    }

    /// A record from before device and inode were kept, at a folder that is not its bucket's now:
    /// nothing proves the file is not a copy, so it is left, named.
    @Test func anOldRecordWithoutAnIdentityOutsideTheCurrentFolderIsLeft() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        // As the upgrade records them (0, 0: no device and inode), sealed with the user's secret.
        try state(project).write { db in
            if try db.tableExists("outputFiles") { try db.execute(sql: "UPDATE outputFiles SET device = 0, inode = 0") }
        }
        try BuildSafetyRound18Tests.sealAsTheUser(project)
        try project.write("derive.yaml", Project.manifest(outPath: "outB", index: false))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(built)")
        for name in project.outputs { #expect(project.exists("outA/\(name)"), "\(built)") }
        #expect(built.contains("outA/landscape.jpg") && built.contains("left in place"), "\(built)")
        // In the bucket's current folder, today's rule: an orphan of an old record is deleted.
        try state(project).write { db in try db.execute(sql: "UPDATE outputFiles SET device = 0, inode = 0") }
        try BuildSafetyRound18Tests.sealAsTheUser(project)
        try project.write("derive.yaml", Project.manifest(outPath: "outB", index: false)
            .replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/u/{name}.{ext}"))
        let again = try project.run(["build"])
        #expect(again.status == 0, "\(again.stderr)")
        for name in project.outputs { #expect(!project.exists("outB/\(name)"), "\(text(again.stdout))") }
    }

    // MARK: N4: a build state is trusted only when this user holds its token

    /// Another user's folder of state tokens (`XDG_STATE_HOME`): a state built with it is one
    /// this test's user did not make (a `.derive/` committed to a repository, a tarball).
    static func otherUser() throws -> (environment: [String: String], folder: URL) {
        let folder = try CLI.temporaryFolder()
        return (["XDG_STATE_HOME": folder.path], folder)
    }

    /// Forges the rows attack 17's N4 added: `docs/` recorded as the bucket `out`'s earlier
    /// folder (its real device and inode) and an output record of `docs/notes.txt` with its digest.
    func forgeDocsRows(_ project: Project, notes: Data) throws {
        let docs = RealFolder.of(project.url("docs").path)
        let identity = try #require(Self.identity(docs))
        try state(project).write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO bucketFolders (bucket, folder, device, inode) VALUES ('out', ?, ?, ?)",
                           arguments: [docs, identity.device, identity.inode])
            try db.execute(sql: """
                INSERT INTO outputs (path, rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder,
                                     actionKey, acl, outputDigest, size, width, height, format, builtAt, folder)
                SELECT 'out/notes.txt', rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies,
                       encoder, actionKey, acl, ?, ?, width, height, format, builtAt, ? FROM outputs LIMIT 1
                """, arguments: [ContentDigests.digest(notes), notes.count, docs])
            if try db.tableExists("outputFiles") {
                let file = try #require(Self.identity(docs + "/notes.txt"))
                try db.execute(sql: "INSERT OR REPLACE INTO outputFiles (path, device, inode) VALUES ('out/notes.txt', ?, ?)",
                               arguments: [file.device, file.inode])
            }
        }
    }

    /// A token that cannot be kept (no writable XDG_STATE_HOME) is said, with the fix: else every
    /// build silently starts afresh from the lock (found by the lead after the merge).
    @Test func aTokenThatCannotBeKeptIsSaid() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let build = try CLI.run(["build", "-q"], in: project.root, environment: ["XDG_STATE_HOME": "/proc/derive-no-such-folder"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stderr.contains("build state's token") && build.stderr.contains("set XDG_STATE_HOME or HOME to a folder you can write"), "\(build.stderr)")
    }

    /// Attack 17's N4, as a planted state: the project comes with a `.derive/` another user's
    /// Derive made (its owner row naming this very manifest), holding forged rows that vouch for
    /// the user's unique `docs/notes.txt`. Before the fix, build deleted it.
    @Test func aPlantedStateWithForgedRowsDeletesNothing() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let other = try Self.otherUser()
        defer { try? FileManager.default.removeItem(at: other.folder) }
        #expect(try CLI.run(["build", "-q"], in: project.root, environment: other.environment).status == 0)
        try FileManager.default.createDirectory(at: project.url("docs"), withIntermediateDirectories: true)
        let notes = Data("my unique notes\n".utf8)
        try notes.write(to: project.url("docs/notes.txt"))
        try forgeDocsRows(project, notes: notes)
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect((try? Data(contentsOf: project.url("docs/notes.txt"))) == notes, "docs/notes.txt was deleted on a planted state's word: \(built)")
        #expect(build.status == 0, "\(built)")
        #expect(built.contains("moved it to"), "the foreign state is not named: \(built)")
        for name in project.outputs { #expect(project.exists("out/\(name)")) }
        // The user's own state from then on: a second build is a no-op, check agrees.
        let again = try project.run(["build"])
        #expect(again.status == 0 && !(text(again.stdout) + again.stderr).contains("moved it to"), "\(text(again.stdout)) \(again.stderr)")
        #expect(try project.run(["check"]).status == 0)
    }

    /// N4, clean: a planted state whose records all lead to `docs/` (recorded as the bucket's
    /// earlier folder, with its device and inode, and `docs/t` as a folder Derive created).
    /// Before the fix, clean deleted the copies in `docs/t` and the folder.
    @Test func cleanWithAPlantedStateDeletesNothingOutsideTheBucket() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        let other = try Self.otherUser()
        defer { try? FileManager.default.removeItem(at: other.folder) }
        try project.write("derive.yaml", Self.subfolderManifest("out"))
        #expect(try CLI.run(["build", "-q"], in: project.root, environment: other.environment).status == 0)
        try FileManager.default.createDirectory(at: project.url("docs/t"), withIntermediateDirectories: true)
        for name in project.outputs { try FileManager.default.copyItem(at: project.url("out/t/\(name)"), to: project.url("docs/t/\(name)")) }
        let docs = RealFolder.of(project.url("docs").path)
        let docsIdentity = try #require(Self.identity(docs)), tIdentity = try #require(Self.identity(docs + "/t"))
        try state(project).write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO bucketFolders (bucket, folder, device, inode) VALUES ('out', ?, ?, ?)",
                           arguments: [docs, docsIdentity.device, docsIdentity.inode])
            try db.execute(sql: "INSERT OR REPLACE INTO createdFolders (path, device, inode) VALUES (?, ?, ?)",
                           arguments: [docs + "/t", tIdentity.device, tIdentity.inode])
            try db.execute(sql: "UPDATE outputs SET folder = ?", arguments: [docs])
            if try db.tableExists("outputFiles") {
                for name in project.outputs {
                    let file = try #require(Self.identity(docs + "/t/" + name))
                    try db.execute(sql: "UPDATE outputFiles SET device = ?, inode = ? WHERE path = ?", arguments: [file.device, file.inode, "out/t/" + name])
                }
            }
        }
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        for name in project.outputs { #expect(project.exists("docs/t/\(name)"), "clean deleted the user's docs/t/\(name): \(said)") }
    }

    /// A state with records but no token at all (its token row removed, or from before tokens
    /// were kept) is not trusted either: moved aside, nothing deleted on its word.
    @Test func aStateWithoutATokenIsForeign() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.createDirectory(at: project.url("docs"), withIntermediateDirectories: true)
        let notes = Data("my unique notes\n".utf8)
        try notes.write(to: project.url("docs/notes.txt"))
        try forgeDocsRows(project, notes: notes)
        try state(project).write { db in
            if try db.tableExists("binding") { try db.execute(sql: "DELETE FROM binding") }
        }
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect((try? Data(contentsOf: project.url("docs/notes.txt"))) == notes, "\(built)")
        #expect(built.contains("moved it to"), "\(built)")
    }

    /// The user's own state: a second build under the same user trusts it (a bucket move deletes
    /// Derive's old copies), and the token is kept outside the project, under `XDG_STATE_HOME`.
    @Test func theUsersOwnStateIsTrustedAndItsTokenIsKeptOutsideTheProject() throws {
        let project = try Project(index: false, outPath: "outA")
        defer { project.remove() }
        let user = try Self.otherUser()
        defer { try? FileManager.default.removeItem(at: user.folder) }
        #expect(try CLI.run(["build", "-q"], in: project.root, environment: user.environment).status == 0)
        let tokens = (try? FileManager.default.contentsOfDirectory(atPath: user.folder.appendingPathComponent("derive/states").path)) ?? []
        #expect(tokens.filter { !$0.hasSuffix(".lock") && !$0.hasSuffix(".folders") && $0 != "projects" }.count == 1, "\(tokens)")   // the secret (and the lock's `LockProvenance`, and the folders the build made)
        try project.write("derive.yaml", Project.manifest(outPath: "outB", index: false))
        let build = try CLI.run(["build"], in: project.root, environment: user.environment)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).contains("deleted 5 old copies"), "\(text(build.stdout)) \(build.stderr)")
    }

    // MARK: N6: a link seen for a moment keeps the records

    /// Attack 17's N6: Derive's `out/t` replaced by a symbolic link (to the same files, moved
    /// aside) while a build deletes its orphans. Before the fix, the records were dropped for
    /// good (files said "already gone" or left, then nobody's); now they are kept, and once
    /// `out/t` is the real folder again the next build deletes the orphans.
    @Test func aTransientLinkAtAnOutputFolderKeepsTheRecords() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.subfolderManifest("out"))
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.moveItem(at: project.url("out/t"), to: project.url("out/t.real"))
        try FileManager.default.createSymbolicLink(atPath: project.url("out/t").path, withDestinationPath: "t.real")
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false)
            .replacingOccurrences(of: "to: out/{name}.{ext}", with: "to: out/u/{name}.{ext}"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect(!built.contains("already gone"), "\(built)")
        #expect(built.contains("symbolic link") && built.contains("record kept"), "\(built)")
        for name in project.outputs { #expect(project.exists("out/t.real/\(name)")) }
        let kept = try state(project).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM outputs WHERE path LIKE 'out/t/%'") }
        #expect(kept == project.outputs.count, "the records of files still there were dropped: \(built)")
        // The link goes, the real folder is back: the next build deletes Derive's orphans.
        try FileManager.default.removeItem(at: project.url("out/t"))
        try FileManager.default.moveItem(at: project.url("out/t.real"), to: project.url("out/t"))
        let again = try project.run(["build"])
        #expect(again.status == 0, "\(again.stderr)")
        for name in project.outputs { #expect(!project.exists("out/t/\(name)"), "\(text(again.stdout)) \(again.stderr)") }
    }
}
