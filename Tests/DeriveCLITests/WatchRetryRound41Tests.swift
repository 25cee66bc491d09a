import Foundation
import Builder
import Manifest
import Testing
import TestSupport
@testable import derive
#if canImport(Glibc)
import Glibc
#endif

/// Attack 41b's watch findings. M3: after a build failed writing (`chmod 555 _site`: "permission
/// denied"; `chmod 555 .`: "derive.lock: cannot write"), the `chmod 755` that fixed it rebuilt
/// nothing: only what builds read was followed. L5: a source saved during a watch's build was
/// counted as failed though the watch builds it again at once. L4: `derive build --watch
/// nosuch.yaml` watched forever.
@Suite(.ownThreads, .serialized) struct WatchRetryRound41Tests {
    /// The manifest of a site: sources in photos/, outputs in site/trip/ (another bucket).
    static let siteManifest = """
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: site}
        styles:
          small: image/resize,w_64
        derivatives:
          - name: small
            from: photos/src/*.jpg
            styles: [small]
            to: site/trip/{name}.{ext}
        """

    @Test func theFoldersBuildsWriteIntoAreWriteTargets() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos/src"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("site"), withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("derive.yaml").path
        try Data(Self.siteManifest.utf8).write(to: URL(literalFilePath: path))
        let manifest = try #require(ManifestLoader().load(path).manifest)
        let watched = WatchMode.watched(manifest, manifestPath: path)
        let project = WatchMode.real(folder.path + "/derive.yaml").dropLast("/derive.yaml".count)
        #expect(watched.writeTargets.contains(String(project)), "\(watched.writeTargets)")
        #expect(watched.writeTargets.contains(String(project) + "/site"), "\(watched.writeTargets)")
        #expect(!watched.writeTargets.contains(String(project) + "/photos"), "\(watched.writeTargets)")
    }

    @Test func aWriteTargetMadeWritableAfterAFailedBuildIsAChange() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let site = WatchMode.real(folder.path + "/site")
        try FileManager.default.createDirectory(atPath: site, withIntermediateDirectories: true)
        // The watched folder's own chmod is reported on it, as an attribute change.
        let watcher = try FolderWatcher(skipping: [])
        try watcher.watch(site, recursive: false)
        #expect(chmod(site, 0o555) == 0 && chmod(site, 0o755) == 0)
        let events = try watcher.read()
        #expect(events.contains { $0.path == site && $0.attributes && $0.isFolder }, "\(events)")
        let watched = WatchMode.Watched(manifestFiles: [], sourceRoots: [], skipped: [], writeTargets: [site])
        func relevant(_ readability: WatchMode.Readability) -> Bool {
            WatchMode.isRelevant(FolderWatcher.Event(path: site, isFolder: true, appeared: false, moved: false, attributes: true),
                                 watched: watched, written: [:], readability: readability)
        }
        // Unwritable when the failed build started ("permission denied"), writable now: rebuild.
        var failed = WatchMode.Readability.of(watched, writing: [site])
        failed.followsWrites = true
        _ = failed.unwritable.insert(site)
        #expect(relevant(failed))
        // Writable then and now (a chmod that changes nothing for this user): no rebuild.
        #expect(WatchMode.Readability.writable(site))
        failed.unwritable = []
        #expect(!relevant(failed))
        // After a build that succeeded, a chmod of an output folder is no change.
        var succeeded = WatchMode.Readability.of(watched, writing: [site])
        succeeded.unwritable = [site]
        #expect(!relevant(succeeded))
    }

    @Test func aFailedBuildIsTriedAgainAfterABoundedBackOff() {
        var waits: [Double] = []
        while let wait = WatchMode.failureRetry(after: waits.count) { waits.append(wait); if waits.count > 100 { break } }
        #expect(!waits.isEmpty && waits.count <= 10, "\(waits)")
        #expect(waits.first.map { $0 >= 1 } == true, "never a busy loop: \(waits)")
        #expect(zip(waits, waits.dropFirst()).allSatisfy { $0 < $1 }, "backs off: \(waits)")
    }

    /// What the watch cannot see: a file blocking an output folder (site/trip) removed, in a bucket
    /// the rules only write to. The failed build is tried again and builds.
    @Test func aFixTheWatchCannotSeeIsBuiltByTheRetry() throws {
        let watch = try WatchSession(manifestText: Self.siteManifest) { root in
            try FileManager.default.createDirectory(at: root.appendingPathComponent("site"), withIntermediateDirectories: true)
            try Data("not a folder".utf8).write(to: root.appendingPathComponent("site/trip"))
        }
        defer { watch.remove() }
        #expect(watch.waitForLines(1), "\(watch.standardError)")
        #expect(watch.lines.first?.contains("errors above") == true, "\(watch.lines) \(watch.standardError)")
        try FileManager.default.removeItem(at: watch.root.appendingPathComponent("site/trip"))
        let output = watch.root.appendingPathComponent("site/trip/a.jpg").path
        #expect(watch.wait(40) { FileManager.default.fileExists(atPath: output) }, "\(watch.lines) \(watch.standardError)")
        #expect(watch.wait { watch.lines.contains { $0.contains("the failed build tried again (1 of ") && $0.contains("built 1") } }, "\(watch.lines)")
        #expect(watch.terminate() == 0)
    }

    @Test func aSourceChangedWhileAWatchBuildsIsNoFailure() {
        let failed: [(output: String, message: String)] = [
            ("site/a-1.jpg", "photos/a.jpg" + SourceChanged.suffix), ("site/a-2.jpg", "photos/a.jpg" + SourceChanged.suffix),
            ("site/b.jpg", "photos/b.jpg: cannot decode"),
        ]
        let watching = BuildCommand.changedWhileBuilding(failed, watching: true)
        #expect(watching.failed.map(\.output) == ["site/b.jpg"])
        #expect(watching.again == ["photos/a.jpg changed"] && watching.changed == 2)
        // A one-shot build keeps them as failures ("run the build again").
        let once = BuildCommand.changedWhileBuilding(failed, watching: false)
        #expect(once.failed.count == 3 && once.again.isEmpty)
        #expect(failed[0].message == "photos/a.jpg changed while building; run the build again")
    }

    @Test func aMissingManifestEndsTheWatchAtOnce() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["build", "--watch", "--quiet", "nosuch.yaml"]
        process.currentDirectoryURL = folder
        let err = folder.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        let ended = !process.isRunning
        if !ended { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let said = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        #expect(ended && process.terminationStatus == 1, "\(said)")
        #expect(said.hasPrefix("derive: error: ") && said.contains("nosuch.yaml") && !said.contains("Watching"), "\(said)")
    }
}
