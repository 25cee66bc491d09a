import Foundation
import Testing
import TestSupport

/// `derive init` marks Derive's control files `-text` in a `.gitattributes` (issue #13, after
/// round 29's F11): the lock and the index are compared byte for byte, and a clone made with
/// git's `core.autocrlf=true` turned their LF into CRLF. A user's `.gitattributes` keeps every line.
@Suite(.ownThreads, .serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/git"))) struct InitGitAttributesTests {
    static let lines = ["/derive.lock -text", "/_site/derive-index.json -text"]

    func folderWithPhotos() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        return folder
    }

    func attributes(_ folder: URL) throws -> String {
        String(decoding: try Data(contentsOf: folder.appendingPathComponent(".gitattributes")), as: UTF8.self)
    }

    func git(_ arguments: [String], in folder: URL) throws -> CLI.Result {
        try CLI.run(["-c", "user.name=a", "-c", "user.email=a@b"] + arguments, in: folder, executable: "/usr/bin/git")
    }

    @Test func aFreshInitMarksTheLockAndTheIndexAndARerunAddsNothing() throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        let made = try CLI.run(["init", "photos"], in: folder)
        #expect(made.status == 0, "\(made.stderr)")
        let written = try #require(try? attributes(folder), "init wrote no .gitattributes: \(text(made.stdout))")
        let lines = written.split(separator: "\n").map(String.init)
        for line in Self.lines { #expect(lines.filter { $0 == line }.count == 1, "\(line) is not in .gitattributes once: \(written)") }
        #expect(text(made.stdout).contains(".gitattributes"), "init does not say it wrote .gitattributes: \(text(made.stdout))")
        // A second init (the manifest moved away) adds nothing.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("derive.yaml"))
        let again = try CLI.run(["init", "photos"], in: folder)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try attributes(folder) == written, "a re-run changed .gitattributes")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains("derive-tmp") }.isEmpty)
    }

    @Test func aUsersGitAttributesKeepsEveryLineAndIsExtendedOnce() throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        // No final newline, and a line for the lock of another attribute: kept as they are.
        let mine = "*.psd binary\n# my notes\nderive.lock diff=json"
        try Data(mine.utf8).write(to: folder.appendingPathComponent(".gitattributes"))
        let made = try CLI.run(["init", "photos"], in: folder)
        #expect(made.status == 0, "\(made.stderr)")
        let extended = try attributes(folder)
        #expect(extended.hasPrefix(mine + "\n"), "the user's lines were not kept as written: \(extended)")
        for line in Self.lines { #expect(extended.components(separatedBy: "\n").filter { $0 == line }.count == 1, "\(line) missing: \(extended)") }
        try FileManager.default.removeItem(at: folder.appendingPathComponent("derive.yaml"))
        #expect(try CLI.run(["init", "photos"], in: folder).status == 0)
        #expect(try attributes(folder) == extended, "a re-run extended .gitattributes again")
        // A user's own line marking the lock already is enough for it.
        let covered = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: covered) }
        try Data("derive.lock -text\n".utf8).write(to: covered.appendingPathComponent(".gitattributes"))
        #expect(try CLI.run(["init", "photos"], in: covered).status == 0)
        let added = try attributes(covered)
        #expect(added.hasPrefix("derive.lock -text\n") && !added.contains("/derive.lock") && added.contains(Self.lines[1]), "\(added)")
    }

    @Test func aGitAttributesThatIsALinkIsNotFollowed() throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("elsewhere")
        try Data("*.psd binary\n".utf8).write(to: target)
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent(".gitattributes").path, withDestinationPath: "elsewhere")
        let made = try CLI.run(["init", "photos"], in: folder)
        #expect(made.status == 0, "\(made.stderr)")
        #expect(try Data(contentsOf: target) == Data("*.psd binary\n".utf8), "init wrote through the link")
        #expect(made.stderr.contains(".gitattributes") && made.stderr.contains("/derive.lock -text"), "the lines to add are not named: \(made.stderr)")
    }

    /// The property the lines are for: with `core.autocrlf=true`, a commit and a clone keep the
    /// lock's and the index's bytes, and the clone is up to date.
    @Test func anAutoCRLFCloneKeepsTheControlFilesBytes() throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        let project = folder.appendingPathComponent("p")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: folder.appendingPathComponent("photos"), to: project.appendingPathComponent("photos"))
        #expect(try CLI.run(["init", "photos"], in: project).status == 0)
        let build = try CLI.run(["build", "-q"], in: project)
        try #require(build.status == 0, "\(build.stderr)")
        try Data(".derive/\n".utf8).write(to: project.appendingPathComponent(".gitignore"))
        #expect(try git(["-c", "core.autocrlf=true", "init", "-q", "."], in: project).status == 0)
        #expect(try git(["-c", "core.autocrlf=true", "add", "-A"], in: project).status == 0)
        #expect(try git(["-c", "core.autocrlf=true", "commit", "-qm", "site"], in: project).status == 0)
        #expect(try git(["-c", "core.autocrlf=true", "clone", "-q", "p", "c"], in: folder).status == 0)
        let clone = folder.appendingPathComponent("c")
        for file in ["derive.lock", "_site/derive-index.json"] {
            let original = try Data(contentsOf: project.appendingPathComponent(file))
            try #require(original.contains(0x0A))
            #expect(try Data(contentsOf: clone.appendingPathComponent(file)) == original, "the clone changed \(file)'s bytes")
        }
        let check = try CLI.run(["check"], in: clone)
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }

    /// Attack 36c's M5: a `.gitattributes` written with CRLF line ends. Swift reads "\r\n" as one
    /// character, so its lines were not split and init's own lines went unrecognised: each init
    /// appended the block again. Now it is extended once, in CRLF, and a rerun adds nothing.
    @Test func aCRLFGitAttributesIsExtendedOnceInKind() throws {
        let folder = try folderWithPhotos()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("*.jpg binary\r\n".utf8).write(to: folder.appendingPathComponent(".gitattributes"))
        let made = try CLI.run(["init", "photos"], in: folder)
        #expect(made.status == 0, "\(made.stderr)")
        let written = try attributes(folder)
        #expect(written.hasPrefix("*.jpg binary\r\n#"), "the user's line is not kept as it was: \(written.debugDescription)")
        #expect(!written.contains("\r\n\r\n"), "a blank line was added: \(written.debugDescription)")
        for line in Self.lines {
            #expect(written.components(separatedBy: line + "\r\n").count == 2, "\(line) is not in .gitattributes once, in CRLF: \(written.debugDescription)")
        }
        try FileManager.default.removeItem(at: folder.appendingPathComponent("derive.yaml"))
        let again = try CLI.run(["init", "photos"], in: folder)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try attributes(folder) == written, "a re-run changed .gitattributes: \((try? attributes(folder))?.debugDescription ?? "")")
    }
}
