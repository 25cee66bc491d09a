import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 37b's finding 9: `state: /abs/home` where the user had made `home/` (empty) before the
/// first build, and `derive clean` removed that folder. Derive removes only the folders it made:
/// the state folder (and the folders above it) only when its build made them, once empty; a
/// folder the user made is kept and named.
@Suite(.ownThreads, .serialized) struct StateFolderMadeRound38Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func inode(_ url: URL) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: url.path))?[.systemFileNumber] as? UInt64
    }

    func isFolder(_ url: URL) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &folder) && folder.boolValue
    }

    /// Whether anything (a file, a folder, a link) is at `url`.
    func anything(at url: URL) -> Bool {
        var info = stat()
        return lstat(url.path, &info) == 0
    }

    @Test func cleanKeepsAStateFolderTheUserMade() throws {
        let project = try Project(index: false)
        let outside = try CLI.temporaryFolder()
        defer { project.remove(); try? FileManager.default.removeItem(at: outside) }
        let home = outside.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let made = inode(home)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false) + "state: \(home.path)\n")
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "\(said)")
        #expect(isFolder(home) && inode(home) == made, "clean removed the user's folder \(home.path): \(said)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: home.path)) == [], "Derive's own files there are removed: \(said)")
        #expect(said.contains("\(home.path) is kept") && said.contains("Derive did not make it"), "the kept folder is named with why: \(said)")
    }

    /// A folder the user made above a state folder Derive made: the state folder goes, the user's stays.
    @Test func cleanKeepsTheUsersFolderAboveAStateFolderDeriveMade() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("mine"), withIntermediateDirectories: true)
        let made = inode(project.url("mine"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: false) + "state: mine/st\n")
        #expect(try project.run(["build", "-q"]).status == 0)
        let clean = try project.run(["clean"])
        let said = text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "\(said)")
        #expect(!anything(at: project.url("mine/st")), "the state folder Derive made is removed once empty: \(said)")
        #expect(isFolder(project.url("mine")) && inode(project.url("mine")) == made, "clean removed the user's folder mine/: \(said)")
    }

    /// Control: state folders Derive made (the default `.derive/derive`, and `made/deep`) go once empty.
    @Test func cleanRemovesTheStateFoldersDeriveMade() throws {
        for state in ["", "made/deep"] {
            let project = try Project(index: false)
            defer { project.remove() }
            try project.write("derive.yaml", Project.manifest(outPath: "out", index: false) + (state.isEmpty ? "" : "state: \(state)\n"))
            #expect(try project.run(["build", "-q"]).status == 0)
            let top = state.isEmpty ? ".derive" : "made"
            #expect(isFolder(project.url(top)))
            let clean = try project.run(["clean"])
            let said = text(clean.stdout) + clean.stderr
            #expect(clean.status == 0 && !said.contains("is kept"), "\(state): \(said)")
            #expect(!anything(at: project.url(top)), "\(state): the folders Derive made are removed once empty: \(said)")
        }
    }
}
