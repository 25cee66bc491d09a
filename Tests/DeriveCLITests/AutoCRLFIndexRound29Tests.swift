import Foundation
import Testing
import TestSupport

/// Attack round 29's finding 11: a clone made with git's `core.autocrlf=true` turns the committed
/// index into CRLF, refused on every build as "not written by Derive" with no word of why. The
/// bytes are still not Derive's (nothing replaces them), but the refusal now names the cause and
/// the fix when the file is exactly Derive's index with LF made CRLF; following it builds.
@Suite(.ownThreads, .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/git"))) struct AutoCRLFIndexRound29Tests {
    typealias Site = SiteRound11Tests.Site

    static let manifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - {name: t, from: "src/*.jpg", process: "image/resize,w_100", to: "out/{name}.jpg"}
        index: out/i.json

        """

    func git(_ arguments: [String], in folder: URL) throws -> CLI.Result {
        try CLI.run(["-c", "user.name=a", "-c", "user.email=a@b"] + arguments, in: folder, executable: "/usr/bin/git")
    }

    @Test func aCRLFIndexIsRefusedNamingLineEndingsAndTheFixWorks() throws {
        let site = try Site(["p/src/landscape.jpg": "landscape.jpg"], manifest: nil)
        defer { site.remove() }
        let project = site.url("p")
        try Data(Self.manifest.utf8).write(to: project.appendingPathComponent("derive.yaml"))
        #expect(try CLI.run(["build", "-q"], in: project).status == 0)
        try Data(".derive/\n".utf8).write(to: project.appendingPathComponent(".gitignore"))
        #expect(try git(["init", "-q", "."], in: project).status == 0)
        #expect(try git(["add", "-A"], in: project).status == 0)
        #expect(try git(["commit", "-qm", "i"], in: project).status == 0)
        #expect(try git(["-c", "core.autocrlf=true", "clone", "-q", "p", "c"], in: site.root).status == 0)
        let clone = site.url("c")
        let index = try Data(contentsOf: clone.appendingPathComponent("out/i.json"))
        try #require(index.contains(0x0D), "git did not convert the index (the test no longer sets up the finding)")
        let build = try CLI.run(["build"], in: clone)
        #expect(build.status != 0, "\(said(build))")
        #expect(build.stderr.contains("out/i.json") && build.stderr.contains("CRLF") && build.stderr.contains("core.autocrlf")
                && build.stderr.contains("i.json -text"), "\(build.stderr)")
        #expect(try Data(contentsOf: clone.appendingPathComponent("out/i.json")) == index, "the CRLF index was changed")
        // A file that is not Derive's index with CRLF gets no such hint.
        try Data("{\r\n\"mine\": 1\r\n}\r\n".utf8).write(to: clone.appendingPathComponent("out/i.json"))
        let mine = try CLI.run(["build"], in: clone)
        #expect(mine.status != 0 && !mine.stderr.contains("CRLF"), "\(said(mine))")
        // The fix it names: the attribute, then the file checked out again.
        try Data("i.json -text\n".utf8).write(to: clone.appendingPathComponent("out/.gitattributes"))
        try FileManager.default.removeItem(at: clone.appendingPathComponent("out/i.json"))
        #expect(try git(["-c", "core.autocrlf=true", "checkout", "--", "out/i.json"], in: clone).status == 0)
        let fixed = try CLI.run(["build"], in: clone)
        #expect(fixed.status == 0, "\(said(fixed))")
    }
}
