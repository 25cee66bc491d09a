import Confinement
import Foundation
import Testing
import TestSupport

/// `URL(literalFilePath:)` never expands `~`: Foundation's initialiser reads `~root/x` as
/// root's home folder, even relative to a base.
@Suite(.ownThreads) struct LiteralFilePathTests {
    @Test(arguments: ["~", "~root", "~root/x", "~/x", "~nosuchuser/y"])
    func aLeadingTildeIsAFolderName(_ path: String) {
        let base = URL(fileURLWithPath: "/srv/project/")
        #expect(URL(literalFilePath: path, relativeTo: base).standardizedFileURL.path == "/srv/project/" + path)
        let cwd = FileManager.default.currentDirectoryPath
        #expect(URL(literalFilePath: path).standardizedFileURL.path == URL(fileURLWithPath: cwd).appendingPathComponent(path).standardizedFileURL.path)
        #expect(URL.literalStandardPath("/srv/" + path + "/../z") == URL(fileURLWithPath: "/srv/" + path).deletingLastPathComponent().appendingPathComponent("z").path)
    }

    @Test func otherPathsAreFoundationsReading() {
        #expect(URL(literalFilePath: "/a/./b/../c").standardizedFileURL.path == "/a/c")
        #expect(URL(literalFilePath: "x/~y", relativeTo: URL(fileURLWithPath: "/base/")).standardizedFileURL.path == "/base/x/~y")
    }
}
