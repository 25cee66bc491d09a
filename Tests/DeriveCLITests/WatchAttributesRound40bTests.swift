import Foundation
import Testing
import TestSupport
@testable import derive
#if canImport(Glibc)
import Glibc
#endif

/// Attack 40b's M2: `chmod 644` of the source a watch's build failed on ("permission denied"), or
/// `chmod 755` of the folder it could not read, rebuilt nothing until an unrelated change: inotify's
/// attribute events were not followed. Now they are, and one is a change only when it makes what a
/// build reads readable or unreadable (a chmod or `touch -a` alone does not rebuild).
@Suite(.ownThreads) struct WatchAttributesRound40bTests {
    @Test func aChmodIsReportedAsAnAttributeChange() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let root = WatchMode.real(folder.path + "/photos")
        try FileManager.default.createDirectory(atPath: root + "/trip", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: root + "/a.jpg", contents: Data("x".utf8)))
        let watcher = try FolderWatcher(skipping: [])
        try watcher.watch(root, recursive: true)
        #expect(chmod(root + "/a.jpg", 0o600) == 0 && chmod(root + "/trip", 0o700) == 0)
        let events = try watcher.read()
        #expect(events.contains { $0.path == root + "/a.jpg" && $0.attributes && !$0.isFolder }, "\(events)")
        #expect(events.contains { $0.path == root + "/trip" && $0.attributes && $0.isFolder }, "\(events)")
    }

    @Test func anAttributeChangeCountsOnlyWhenReadabilityChanged() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let root = WatchMode.real(folder.path + "/photos")
        try FileManager.default.createDirectory(atPath: root + "/trip", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: root + "/a.jpg", contents: Data("x".utf8)))
        let manifest = WatchMode.real(folder.path + "/derive.yaml")
        let watched = WatchMode.Watched(manifestFiles: [manifest], sourceRoots: [root], skipped: [])
        func relevant(_ path: String, folder isFolder: Bool = false, _ readability: WatchMode.Readability) -> Bool {
            WatchMode.isRelevant(FolderWatcher.Event(path: path, isFolder: isFolder, appeared: false, moved: false, attributes: true),
                                 watched: watched, written: [:], readability: readability)
        }
        let now = WatchMode.Readability.of(watched)
        // Readable then and now (a chmod 644 of a readable file, a touch -a): no rebuild.
        #expect(!relevant(root + "/a.jpg", now))
        #expect(!relevant(root + "/trip", folder: true, now))
        #expect(!relevant(root, folder: true, now))
        // Unreadable when the build started (its "permission denied"), readable now: rebuild.
        var before = now
        _ = before.unreadable.insert(root + "/a.jpg")
        _ = before.unreadable.insert(root + "/trip")
        #expect(relevant(root + "/a.jpg", before))
        #expect(relevant(root + "/trip", folder: true, before))
        // Outside what builds read (a file beside the manifest): never.
        #expect(!relevant(folder.path + "/notes.txt", now))
        // Not covered by the snapshot (a root the manifest added since): when in doubt, rebuild.
        #expect(relevant(root + "/a.jpg", WatchMode.Readability()))
    }
}

/// Attack 40b's L4: in a clone, the watch repeated "N outputs adopted from derive.lock unverified"
/// after every rebuild, and the first was glued to "Watching 5 folders" on one line.
@Suite(.ownThreads) struct WatchAdoptedNoteRound40bTests {
    @Test func theAdoptedNoteIsSaidOnceOnItsOwnLine() {
        let note = "32 outputs adopted from derive.lock unverified (derive.lock vouches for their bytes; …)"
        var said: [String] = []
        let first = WatchMode.statusLines("Nothing to do: 32 outputs up to date.\n" + note, ending: " Watching 5 folders (Ctrl-C stops).", said: &said)
        #expect(first.status == "Nothing to do: 32 outputs up to date. Watching 5 folders (Ctrl-C stops).")
        #expect(first.notes == [note])
        let again = WatchMode.statusLines("built 5, 32 up to date in 2.55 s.\n" + note, ending: "", said: &said)
        #expect(again.status == "built 5, 32 up to date in 2.55 s." && again.notes.isEmpty, "\(again)")
        // Its number changed (a rebuild rendered some): said again, once.
        let fewer = WatchMode.statusLines("built 2 in 1.00 s.\n30" + note.dropFirst(2), ending: "", said: &said)
        #expect(fewer.notes.count == 1)
    }
}
