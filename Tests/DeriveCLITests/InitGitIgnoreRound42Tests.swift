import Foundation
import Testing
import TestSupport
@testable import derive

/// Attack 42b's L-d: init prepared the project for git (`.gitattributes`) but did not keep the
/// build state out of it: `git add -A` committed `.derive/derive/state.sqlite` and `build.lock`,
/// every clone then set that state aside as another project's (untracked files left), and
/// `git status` was dirty after every build. init now makes sure `.gitignore` names `/.derive/`.
@Suite(.ownThreads) struct InitGitIgnoreRound42Tests {
    func git(_ arguments: [String], in folder: URL) throws -> CLI.Result {
        try CLI.run(["-c", "user.name=a", "-c", "user.email=a@b"] + arguments, in: folder, executable: "/usr/bin/git")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/git"), "needs git"))
    func aProjectInitMadeCommitsNoBuildStateAndStaysClean() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        #expect(try git(["init", "-q", "."], in: folder).status == 0)
        let made = try CLI.run(["init", "photos"], in: folder)
        #expect(made.status == 0, "\(said(made))")
        #expect(String(decoding: made.stdout, as: UTF8.self).contains("Wrote .gitignore"), "\(said(made))")
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        #expect(try git(["add", "-A"], in: folder).status == 0)
        #expect(try git(["commit", "-qm", "site"], in: folder).status == 0)
        let files = String(decoding: try git(["ls-files"], in: folder).stdout, as: UTF8.self)
        #expect(!files.contains(".derive/") && files.contains("derive.lock") && files.contains("_site/derive-index.json"), "\(files)")
        // A build that changes nothing leaves the work tree clean.
        #expect(try CLI.run(["build", "-q"], in: folder).status == 0)
        let status = String(decoding: try git(["status", "--porcelain"], in: folder).stdout, as: UTF8.self)
        #expect(status.isEmpty, "\(status)")
    }

    @Test func aUsersGitIgnoreKeepsEveryLineAndGetsTheLineOnce() throws {
        let added = try #require(InitGitIgnore.extended(Array("node_modules/\npublic".utf8)))
        #expect(String(decoding: added, as: UTF8.self) == "node_modules/\npublic\n\(InitGitIgnore.comment)\n/.derive/\n")
        #expect(InitGitIgnore.extended(added) == nil)
        for covering in [".derive", ".derive/", "/.derive", "/.derive/", ".derive/  "] {
            #expect(InitGitIgnore.extended(Array("x\n\(covering)\n".utf8)) == nil, "\(covering)")
        }
        let crlf = try #require(InitGitIgnore.extended(Array("x\r\n".utf8)))
        #expect(String(decoding: crlf, as: UTF8.self) == "x\r\n\(InitGitIgnore.comment)\r\n/.derive/\r\n")
        // Another folder of that name below is not the project's state.
        #expect(InitGitIgnore.extended(Array("sub/.derive/\n".utf8)) != nil)
    }

    /// Attack 42c's L3: a line counts as covering `.derive` exactly when git ignores the state
    /// folder by it (a leading space or tab, a trailing tab, a no-break space: git matches
    /// nothing; unescaped trailing spaces: git drops them). Asked of git itself, line by line.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/git"), "needs git"))
    func aLineCountsExactlyWhenGitIgnoresTheStateByIt() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try git(["init", "-q", "."], in: folder).status == 0)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent(".derive/derive"), withIntermediateDirectories: true)
        try Data("x".utf8).write(to: folder.appendingPathComponent(".derive/derive/state.sqlite"))
        let lines = [".derive", " .derive", "\t.derive", ".derive\t", ".derive  ", "/.derive/ ", ".derive\u{A0}", "  .derive/  ",
                     ".derive\\ ", "\t/.derive/"]
        for line in lines {
            let spelled = line
            try Data((spelled + "\n").utf8).write(to: folder.appendingPathComponent(".gitignore"))
            let ignored = try git(["check-ignore", "-q", ".derive/derive/state.sqlite"], in: folder).status == 0
            #expect(InitGitIgnore.covers(Substring(spelled)) == ignored, "\(line.debugDescription): git ignores it: \(ignored)")
            #expect((InitGitIgnore.extended(Array((spelled + "\n").utf8)) == nil) == ignored, "\(line.debugDescription)")
        }
    }
}
