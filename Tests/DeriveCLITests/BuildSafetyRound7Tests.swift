import Builder
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The seventh attack on build safety (issue 9), end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound7Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    /// Every file below `folder` (relative path → bytes), links not followed.
    func tree(_ folder: URL) -> [String: Data] {
        var result: [String: Data] = [:]
        guard let names = FileManager.default.subpaths(atPath: folder.path) else { return [:] }
        for name in names {
            let url = folder.appendingPathComponent(name)
            var info = stat()
            guard lstat(url.path, &info) == 0 else { continue }
            result[name] = (info.st_mode & S_IFMT) == S_IFREG ? (FileManager.default.contents(atPath: url.path) ?? Data()) : Data("<\(info.st_mode & S_IFMT)>".utf8)
        }
        return result
    }

    static func manifest(outputs: String, index: String, width: Int = 32) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        index: \(index)
        derivatives:
          - name: thumbs
            from: src/*.jpg
            process: image/resize,w_\(width)
            to: \(outputs)/{name}.{ext}

        """
    }

    // MARK: 1: a folder holding the recorded index, replaced by a link to a folder outside the bucket

    /// Builds, then replaces `out/sub` by a link to `victim` (a user's folder holding a note and,
    /// when `userFile`, a file named like an output): plan, build, build --overwrite, check and
    /// clean must all refuse the link and leave the victim folder exactly as it was.
    func linkedIndexFolder(outputs: String, index: String, userFile: Bool) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(outputs: outputs, index: index))
        let first = try project.run(["build", "-q"])
        #expect(first.status == 0, "\(first.stderr)")
        let victim = project.url("victim")
        try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
        try Data("user file\n".utf8).write(to: victim.appendingPathComponent("notes.txt"))
        if userFile { try Data("USER\n".utf8).write(to: victim.appendingPathComponent("landscape.jpg")) }
        try FileManager.default.removeItem(at: project.url("out/sub"))
        try FileManager.default.createSymbolicLink(atPath: project.url("out/sub").path, withDestinationPath: "../victim")
        let before = tree(victim)
        let plan = try project.run(["plan"])
        #expect(plan.status != 0, "plan: \(text(plan.stdout)) \(plan.stderr)")
        #expect((text(plan.stdout) + plan.stderr).contains("symbolic link"), "\(text(plan.stdout)) \(plan.stderr)")
        let build = try project.run(["build"])
        #expect(build.status != 0, "build: \(text(build.stdout)) \(build.stderr)")
        #expect(tree(victim) == before, "build wrote through the link: \(tree(victim).keys.sorted())")
        let overwrite = try project.run(["build", "--overwrite"])
        #expect(overwrite.status != 0, "build --overwrite: \(text(overwrite.stdout)) \(overwrite.stderr)")
        #expect(tree(victim) == before, "build --overwrite wrote through the link: \(tree(victim).keys.sorted())")
        let check = try project.run(["check"])
        #expect(check.status != 0, "check called it clean: \(text(check.stdout))")
        _ = try project.run(["clean"])
        #expect(tree(victim) == before, "clean removed through the link: \(tree(victim).keys.sorted())")
        #expect(FileManager.default.fileExists(atPath: victim.appendingPathComponent("notes.txt").path))
    }

    /// T1: outputs and index in out/sub.
    @Test func aLinkedIndexFolderIsNeverWrittenThrough() throws {
        try linkedIndexFolder(outputs: "out/sub", index: "out/sub/index.json", userFile: false)
    }

    /// T9: with a user's file named like an output there, --overwrite must not replace it.
    @Test func overwriteNeverReplacesAUserFileThroughALinkedIndexFolder() throws {
        try linkedIndexFolder(outputs: "out/sub", index: "out/sub/index.json", userFile: true)
    }

    /// U1: outputs in out/sub, the index one folder further down.
    @Test func anIndexBelowALinkedOutputFolderIsNeverWrittenThrough() throws {
        try linkedIndexFolder(outputs: "out/sub", index: "out/sub/x/index.json", userFile: false)
    }

    /// U2: outputs below the index's folder.
    @Test func outputsBelowALinkedIndexFolderAreNeverWrittenThrough() throws {
        try linkedIndexFolder(outputs: "out/sub/x", index: "out/sub/index.json", userFile: false)
    }

    // MARK: 2: a plan with errors builds nothing

    @Test func aPlanWithAnEditedIndexBuildsNothing() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        var index = try Data(contentsOf: project.url("out/index.json"))
        index.append(contentsOf: Array(" \n".utf8))
        try index.write(to: project.url("out/index.json"))
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true, width: 20))
        let before = tree(project.url("out")), lock = try Data(contentsOf: project.url("derive.lock"))
        let plan = try project.run(["plan"])
        #expect(plan.status != 0)
        let build = try project.run(["build"])
        #expect(build.status != 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(text(build.stdout).contains("built 0") || !text(build.stdout).contains("built"), "\(text(build.stdout))")
        #expect(tree(project.url("out")) == before, "the build wrote outputs though the plan had errors")
        #expect(try Data(contentsOf: project.url("derive.lock")) == lock, "the build rewrote derive.lock though the plan had errors")
    }

    @Test func aPlanWithALinkedIndexBuildsNothingAndKeepsALinkedLock() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let vic = project.url("vic")
        try FileManager.default.createDirectory(at: vic, withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: project.url("out/index.json"), to: vic.appendingPathComponent("i.json"))
        try FileManager.default.createSymbolicLink(atPath: project.url("out/index.json").path, withDestinationPath: "../vic/i.json")
        try FileManager.default.moveItem(at: project.url("derive.lock"), to: vic.appendingPathComponent("derive.lock"))
        try FileManager.default.createSymbolicLink(atPath: project.url("derive.lock").path, withDestinationPath: "vic/derive.lock")
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true, width: 20))
        let before = tree(project.url("out")), vicBefore = tree(vic)
        let plan = try project.run(["plan"])
        #expect(plan.status != 0)
        let build = try project.run(["build"])
        #expect(build.status != 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(tree(project.url("out")) == before, "the build wrote outputs though the plan had errors")
        #expect(tree(vic) == vicBefore)
        var info = stat()
        #expect(lstat(project.url("derive.lock").path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK, "derive.lock is no longer a link")
    }
}
