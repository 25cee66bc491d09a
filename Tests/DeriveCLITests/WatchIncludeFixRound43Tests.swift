import Foundation
import Manifest
import Testing
import TestSupport
@testable import derive

/// Issue #13, attack 42c's M2: the save that fixes a broken include (a YAML syntax error) was
/// never seen by the watch: the manifest that could not parse the include named no such file, so
/// only the failed build's back-off retries built again, and after the last retry nothing did. An
/// include that does not parse is followed as one that cannot be read is.
@Suite(.ownThreads, .serialized) struct WatchIncludeFixRound43Tests {
    static let styles = "styles:\n  small: image/resize,w_64\n"

    @Test func anIncludeThatDoesNotParseIsFollowed() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos/src"), withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("derive.yaml").path
        try Data(WatchIncludeBackRound42Tests.manifest.utf8).write(to: URL(literalFilePath: path))
        try Data((Self.styles + "bogus: [\n").utf8).write(to: folder.appendingPathComponent("styles.yaml"))
        let loaded = ManifestLoader().load(path)
        #expect(loaded.diagnostics.hasErrors)
        let manifest = try #require(loaded.manifest, "\(loaded.diagnostics)")
        let include = WatchMode.real(folder.path + "/styles.yaml")
        #expect(manifest.unreadIncludes.map(WatchMode.real) == [include])
        let watched = WatchMode.watched(manifest, manifestPath: path)
        #expect(watched.manifestFiles.contains(include), "\(watched.manifestFiles)")
        let event = FolderWatcher.Event(path: include, isFolder: false, appeared: false, moved: false, attributes: false)
        #expect(WatchMode.isRelevant(event, watched: watched, written: [:], readability: WatchMode.Readability()))
    }

    /// Broken, then fixed in place (the same inode, as `truncate` or an editor writing in place
    /// leaves it) and by a rename (as most editors save): each fix is a line of its own naming the
    /// include, not a back-off retry.
    @Test(arguments: [false, true]) func theSaveThatFixesABrokenIncludeIsBuiltAtOnce(inPlace: Bool) throws {
        let watch = try WatchSession(manifestText: WatchIncludeBackRound42Tests.manifest) { root in
            try Data(Self.styles.utf8).write(to: root.appendingPathComponent("styles.yaml"))
        }
        defer { watch.remove() }
        let styles = watch.root.appendingPathComponent("styles.yaml")
        #expect(watch.wait { watch.lines.contains { $0.contains("built 1") } }, "\(watch.lines) \(watch.standardError)")
        let handle = try FileHandle(forWritingTo: styles)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("bogus: [\n".utf8))
        try handle.close()
        #expect(watch.wait { watch.lines.contains { $0.contains("styles.yaml changed: not built") } }, "\(watch.lines) \(watch.standardError)")
        let before = watch.lines.count
        // Fixed with another width, so the build has something to do.
        let fixed = Data(Self.styles.replacingOccurrences(of: "w_64", with: "w_48").utf8)
        if inPlace {
            let handle = try FileHandle(forWritingTo: styles)
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: fixed)
            try handle.close()
        } else {
            try fixed.write(to: styles, options: .atomic)
        }
        #expect(watch.wait { watch.lines.count > before }, "\(watch.lines)")
        let next = watch.lines.dropFirst(before).first ?? ""
        #expect(next.contains("styles.yaml changed") && !next.contains("no change seen") && next.contains("built 1"), "\(watch.lines)")
        #expect(watch.size("a.jpg")?.width == 48, "\(watch.lines)")
    }
}
