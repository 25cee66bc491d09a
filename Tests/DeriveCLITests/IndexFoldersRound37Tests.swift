import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 36b's Low 8: folders Derive made for the index stayed for ever when the index moved or
/// on `clean`; a FIFO at the index path was called "not written by Derive as the index (or was
/// edited since)".
@Suite(.ownThreads, .serialized) struct IndexFoldersRound37Tests {
    typealias Project = BuildSafetyAttackTests.Project

    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    func manifest(index: String) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        index: \(index)
        derivatives:
          - name: thumbs
            from: src/*.jpg
            process: image/resize,w_32
            to: out/{name}.{ext}

        """
    }

    @Test func foldersMadeForTheIndexGoWhenItMovesAndOnClean() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", manifest(index: "out/deep/er/idx.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        // A user's file in one of them keeps that one (and the user's bytes).
        try Data("mine\n".utf8).write(to: project.url("out/deep/notes.txt"))
        try project.write("derive.yaml", manifest(index: "out/index.json"))
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(!project.exists("out/deep/er"), "the folder Derive made for the old index stayed")
        #expect(try Data(contentsOf: project.url("out/deep/notes.txt")) == Data("mine\n".utf8))

        try project.write("derive.yaml", manifest(index: "out/a/b/idx.json"))
        #expect(try project.run(["build", "-q"]).status == 0)
        let clean = try project.run(["clean"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(!project.exists("out/a"), "clean left the folders Derive made for the index")
        #expect(project.exists("out/deep/notes.txt") && project.exists("src/landscape.jpg"))
    }

    @Test func aFIFOAtTheIndexPathIsSaidAsWhatItIs() throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.removeItem(at: project.url("out/index.json"))
        #expect(mkfifo(project.url("out/index.json").path, 0o644) == 0)
        for command in [["check"], ["plan"], ["build"]] {
            let result = try project.run(command)
            let said = text(result.stdout) + result.stderr
            #expect(result.status == 1, "\(command): \(said)")
            #expect(said.contains("out/index.json exists and is not a regular file Derive wrote (a FIFO (named pipe))"), "\(command): \(said)")
            #expect(!said.contains("or was edited since"), "\(command): \(said)")
        }
    }
}
