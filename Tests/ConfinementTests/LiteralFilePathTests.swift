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

/// One constructor for file URLs in Sources: `URL(fileURLWithPath:)` or `standardizingPath` on a
/// path a user spelt expands a leading `~` (round 28, finding 2), so Sources use
/// `URL(literalFilePath:)` only. Fails naming file and line.
@Suite(.ownThreads) struct NoTildeExpansionInSourcesTests {
    @Test func sourcesNeverBuildFileURLsThatExpandTilde() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
        let walker = try #require(FileManager.default.enumerator(atPath: sources.path))
        var offenders: [String] = []
        var seen = 0
        for case let file as String in walker where file.hasSuffix(".swift") && !file.hasSuffix("LiteralFilePath.swift") {
            seen += 1
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("URL(fileURLWithPath:") || line.contains("standardizingPath") || line.contains("expandingTildeInPath") {
                offenders.append("Sources/\(file):\(number + 1)")
            }
        }
        #expect(seen > 50)
        #expect(offenders.isEmpty, "use URL(literalFilePath:): \(offenders)")
    }
}
