import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 9's leftovers, round 39.
/// 3. `derive clean` left the state folder `.derive/<name>` it had not recorded making (made by
///    `derive serve` before any build, or by a Derive from before the `.folders` note), though
///    it held only Derive's files: clean now removes them by name and the folder once empty at
///    that default place; a user's file there keeps the folder, named.
/// 5. An output whose file was altered (same size, same modification time) after the build
///    state was lost is not vouched for by the lock this user's Derive wrote: the next build
///    does not record it as Derive's.
@Suite(.ownThreads, .serialized) struct StateLeftoversRound39Tests {
    typealias Project = BuildSafetyAttackTests.Project
    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Forgets which folders Derive made for the project's states (a Derive from before the
    /// `.folders` note made them): the notes naming a folder below `root` are removed.
    static func forgetMadeFolders(below root: URL) throws {
        let tokens = CLI.userStateHome.appendingPathComponent("derive/states")
        var forgot = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: tokens.path) where name.hasSuffix(".folders") {
            let file = tokens.appendingPathComponent(name)
            let lines = String(decoding: (try? Data(contentsOf: file)) ?? Data(), as: UTF8.self)
            if lines.contains(root.path) || lines.contains(root.resolvingSymlinksInPath().path) {
                try FileManager.default.removeItem(at: file)
                forgot += 1
            }
        }
        #expect(forgot == 1, "the build noted the folders it made once")
    }

    func anything(at url: URL) -> Bool {
        var info = stat()
        return lstat(url.path, &info) == 0
    }

    @Test func cleanRemovesADefaultStateFolderItDidNotRecordMaking() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try Self.forgetMadeFolders(below: project.root)
        let clean = try project.run(["clean"])
        let said = Self.text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "\(said)")
        #expect(!anything(at: project.url(".derive/derive")), "the state folder holding only Derive's files stayed: \(said)")
        #expect(!said.contains("is kept"), "\(said)")
    }

    /// Control: a user's file in it keeps the folder (and the file), named.
    @Test func aUsersFileKeepsTheStateFolder() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try Self.forgetMadeFolders(below: project.root)
        try Data("mine".utf8).write(to: project.url(".derive/derive/notes.txt"))
        let clean = try project.run(["clean"])
        let said = Self.text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "\(said)")
        #expect((try? Data(contentsOf: project.url(".derive/derive/notes.txt"))) == Data("mine".utf8))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: project.url(".derive/derive").path)) == ["notes.txt"], "Derive's own files are removed")
        #expect(said.contains(".derive/derive is kept") && said.contains("notes.txt (a file Derive does not write there)"), "\(said)")
    }

    /// Control: a folder of the user's named by `state:` stays (attack 37b's F9), recorded or not.
    @Test func anExplicitStateFolderTheUserMadeStays() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("mine"), withIntermediateDirectories: true)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false) + "state: mine\n")
        #expect(try project.run(["build", "-q"]).status == 0)
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        var folder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: project.url("mine").path, isDirectory: &folder) && folder.boolValue)
    }

    /// Point 5: the state lost, one output's bytes altered in place with its size and times kept.
    @Test(arguments: [false, true])
    func anOutputAlteredAfterTheStateWasLostIsNotVouchedFor(onlyTheDatabase: Bool) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        if onlyTheDatabase {
            for name in ["state.sqlite", "state.sqlite-wal", "state.sqlite-shm"] { _ = unlink(project.url(".derive/derive/" + name).path) }
        } else {
            try FileManager.default.removeItem(at: project.url(".derive"))
        }
        let file = project.url("out/landscape.jpg")
        var before = stat()
        #expect(stat(file.path, &before) == 0)
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count / 2] ^= 0xFF
        let handle = try FileHandle(forWritingTo: file)
        try handle.write(contentsOf: bytes)
        try handle.close()
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, file.path, &times, 0) == 0)
        var after = stat()
        #expect(stat(file.path, &after) == 0 && after.st_size == before.st_size && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec && after.st_ino == before.st_ino)

        let build = try project.run(["build"])
        let said = Self.text(build.stdout) + build.stderr
        #expect(build.status == 1, "\(said)")
        #expect(build.stderr.contains("out/landscape.jpg"), "\(said)")
        #expect((try? Data(contentsOf: file)) == bytes, "the altered file was written over")
        let check = try project.run(["check"])
        #expect(check.status != 0, "check calls the altered output up to date: \(Self.text(check.stdout)) \(check.stderr)")
    }
}
