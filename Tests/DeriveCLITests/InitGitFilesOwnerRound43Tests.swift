import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13, attack 42c's L4: init extended a `.gitignore` (or `.gitattributes`) this user may
/// not write by renaming a new file over it, which then belonged to this user. A file this user
/// does not own, or may not write, is left as it is, with the warning naming the line to add.
@Suite(.ownThreads) struct InitGitFilesOwnerRound43Tests {
    @Test(.enabled(if: Nobody.canActAs, "needs root and setpriv to act as nobody"), arguments: [0o644, 0o666])
    func anotherUsersGitFilesAreLeftAsTheyAre(mode: Int) throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let home = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("photos/a.jpg"))
        giveToNobody(folder)
        giveToNobody(home)
        // Root's files, in nobody's folder.
        let files = [".gitignore": "node_modules/\n", ".gitattributes": "*.png binary\n"]
        for (name, text) in files {
            let url = folder.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            #expect(chown(url.path, 0, 0) == 0 && chmod(url.path, mode_t(mode)) == 0)
        }
        let made = try runAsNobody(["init", "photos"], in: folder, stateHome: home)
        #expect(made.status == 0, "\(said(made))")
        #expect(made.stderr.contains(".gitignore was left as it is") && made.stderr.contains("/.derive/"), "\(said(made))")
        #expect(made.stderr.contains(".gitattributes was left as it is"), "\(said(made))")
        for (name, text) in files {
            let url = folder.appendingPathComponent(name)
            #expect(try Data(contentsOf: url) == Data(text.utf8), "\(name) was changed")
            var info = stat()
            #expect(lstat(url.path, &info) == 0 && info.st_uid == 0, "\(name) is no longer root's")
        }
        // Nobody's own file in the same folder is extended as before.
        let own = folder.appendingPathComponent(".gitignore")
        try FileManager.default.removeItem(at: own)
        try Data("node_modules/\n".utf8).write(to: own)
        #expect(chown(own.path, Nobody.uid, Nobody.uid) == 0)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("derive.yaml"))
        let again = try runAsNobody(["init", "photos"], in: folder, stateHome: home)
        #expect(again.status == 0, "\(said(again))")
        #expect(String(decoding: try Data(contentsOf: own), as: UTF8.self).contains("/.derive/"), "\(said(again))")
    }
}
