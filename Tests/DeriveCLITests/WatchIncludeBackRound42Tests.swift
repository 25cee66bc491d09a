import Foundation
import Manifest
import Testing
import TestSupport
@testable import derive

/// Attack 42b's L-f: an include moved away and back (`mv styles.yaml x; mv x styles.yaml`) during
/// a watch was not seen coming back: the manifest that no longer read it named no such file, so
/// the watch stopped following it, and only the failed build's back-off retry built again
/// ("no change seen; the failed build tried again"); after the retries, never. An include that
/// cannot be read is followed as well.
@Suite(.ownThreads, .serialized) struct WatchIncludeBackRound42Tests {
    static let manifest = """
        version: 1
        include: [styles.yaml]
        buckets:
          photos: {path: photos}
        derivatives:
          - name: small
            from: photos/src/*.jpg
            styles: [small]
            to: photos/out/{name}.{ext}

        """

    @Test func aMissingIncludeIsFollowed() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos/src"), withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("derive.yaml").path
        try Data(Self.manifest.utf8).write(to: URL(literalFilePath: path))
        let loaded = ManifestLoader().load(path)
        let manifest = try #require(loaded.manifest, "\(loaded.diagnostics)")
        let include = WatchMode.real(folder.path + "/styles.yaml")
        #expect(manifest.unreadIncludes.map(WatchMode.real) == [include])
        let watched = WatchMode.watched(manifest, manifestPath: path)
        #expect(watched.manifestFiles.contains(include), "\(watched.manifestFiles)")
        let event = FolderWatcher.Event(path: include, isFolder: false, appeared: true, moved: true, attributes: false)
        #expect(WatchMode.isRelevant(event, watched: watched, written: [:], readability: WatchMode.Readability()))
    }

    @Test func anIncludeMovedAwayAndBackIsBuiltAtOnce() throws {
        let watch = try WatchSession(manifestText: Self.manifest) { root in
            try Data("styles:\n  small: image/resize,w_64\n".utf8).write(to: root.appendingPathComponent("styles.yaml"))
        }
        defer { watch.remove() }
        let styles = watch.root.appendingPathComponent("styles.yaml"), aside = watch.root.appendingPathComponent("x")
        #expect(watch.wait { watch.lines.contains { $0.contains("built 1") } }, "\(watch.lines) \(watch.standardError)")
        try FileManager.default.moveItem(at: styles, to: aside)
        #expect(watch.wait { watch.lines.contains { $0.contains("styles.yaml changed: not built") } }, "\(watch.lines) \(watch.standardError)")
        let before = watch.lines.count
        try FileManager.default.moveItem(at: aside, to: styles)
        #expect(watch.wait { watch.lines.count > before }, "\(watch.lines)")
        let next = watch.lines.dropFirst(before).first ?? ""
        #expect(next.contains("styles.yaml changed") && !next.contains("no change seen"), "\(watch.lines)")
    }
}
