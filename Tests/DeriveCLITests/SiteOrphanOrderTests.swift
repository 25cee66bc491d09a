import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Attack 20's S3: a site served from its output folder while it is built (the preview with
/// `--watch`, a host building in place) must never be given an index naming files already
/// deleted. The build writes the new outputs, then the index, and only then deletes orphans.
@Suite(.ownThreads, .serialized) struct SiteIndexBeforeOrphanTests {
    static let manifest = """
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: site}
        derivatives:
          - name: hero
            from: photos/*.jpg
            process: image/resize,w_{w}
            matrix:
              w: [32, 48]
            to: site/{name}-{w}.{hash:8}.{ext}
        index: site/derive-index.json

        """

    /// A project (in a new folder the caller removes) built once from `photos/a.jpg`: its folder,
    /// its `site/` and the names of the two outputs there, sorted.
    static func builtOnce() throws -> (root: URL, site: URL, old: [String]) {
        let root = try CLI.temporaryFolder()
        do {
            try Data(Self.manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
            try copySample("landscape.jpg", to: root.appendingPathComponent("photos/a.jpg"))
            let first = try CLI.run(["build", "--quiet", "derive.yaml"], in: root)
            try #require(first.status == 0, "\(first.stderr)")
            let site = root.appendingPathComponent("site")
            let old = try FileManager.default.contentsOfDirectory(atPath: site.path).filter { $0.hasPrefix("a-") }.sorted()
            try #require(old.count == 2, "\(old)")
            return (root, site, old)
        } catch {
            try? FileManager.default.removeItem(at: root)
            throw error
        }
    }

    /// New bytes for the source: new names for both outputs, the old two become orphans.
    static func replaceTheSource(in root: URL) throws {
        try FileManager.default.removeItem(at: root.appendingPathComponent("photos/a.jpg"))
        try copySample("portrait.jpg", to: root.appendingPathComponent("photos/a.jpg"))
    }

    /// The order of what happens in `site/`, seen by inotify while the rebuild runs: the index is
    /// written (renamed into place) before the first old `{hash}` file is removed.
    @Test func theIndexIsWrittenBeforeTheOldHashedFilesAreDeleted() throws {
        let (root, site, oldNames) = try Self.builtOnce()
        defer { try? FileManager.default.removeItem(at: root) }
        let old = Set(oldNames)
        try Self.replaceTheSource(in: root)

        let watch = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        try #require(watch >= 0)
        defer { close(watch) }
        try #require(inotify_add_watch(watch, site.path, UInt32(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM)) >= 0)
        let second = try CLI.run(["build", "--quiet", "derive.yaml"], in: root)
        try #require(second.status == 0, "\(second.stderr)")
        let events = Self.read(watch)
        let written = UInt32(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE), gone = UInt32(IN_DELETE | IN_MOVED_FROM)
        let indexAt = events.firstIndex { $0.name == "derive-index.json" && $0.mask & written != 0 }
        let deletedAt = events.firstIndex { old.contains($0.name) && $0.mask & gone != 0 }
        let seen = events.map { "\($0.name) \(String($0.mask, radix: 16))" }
        let index = try #require(indexAt, "the index was not written: \(seen)")
        let deleted = try #require(deletedAt, "the old files were not deleted: \(seen)")
        #expect(index < deleted, "an old {hash} file was deleted while the index on disk still named it: \(seen)")
        // And the end state: only the new files, the index naming them.
        let now = Set(try FileManager.default.contentsOfDirectory(atPath: site.path).filter { $0.hasPrefix("a-") })
        #expect(now.count == 2 && now.isDisjoint(with: old), "\(now)")
        let text = try String(contentsOf: site.appendingPathComponent("derive-index.json"), encoding: .utf8)
        #expect(now.allSatisfy { text.contains($0) } && old.allSatisfy { !text.contains($0) }, "\(text)")
        #expect(try CLI.run(["check", "derive.yaml"], in: root).status == 0)
    }

    /// The lock written before the deletions (copied by the test hook at that instant) still
    /// covers every file that is there: the orphans keep their own lines (one is about to be left
    /// in place, changed by hand: it must never be less protected than before the build), the old
    /// index left in place has its `left` line (round 19's V2) already, and the index it goes with
    /// names only the new files. After the build: both files left in place keep their `left`
    /// lines (the old index's too, though the reconcile that left it ran before the deletions).
    @Test func theLockWrittenBeforeTheDeletionsStillCoversEveryFileThere() throws {
        let (root, site, old) = try Self.builtOnce()
        defer { try? FileManager.default.removeItem(at: root) }
        // The old index edited by hand (left in place when `index:` moves), one old output too.
        let oldIndex = site.appendingPathComponent("derive-index.json")
        try (try Data(contentsOf: oldIndex) + Data("\n".utf8)).write(to: oldIndex)
        let changed = site.appendingPathComponent(old[0])
        try (try Data(contentsOf: changed) + Data([0])).write(to: changed)
        try Data(Self.manifest.replacingOccurrences(of: "site/derive-index.json", with: "site/new-index.json").utf8)
            .write(to: root.appendingPathComponent("derive.yaml"))
        try Self.replaceTheSource(in: root)

        let snapshot = root.appendingPathComponent("before-deletions")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        let second = try CLI.run(["build", "derive.yaml"], in: root, environment: ["DERIVE_TEST_BEFORE_DELETIONS": snapshot.path])
        try #require(second.status == 0, "\(second.stderr)")
        let now = try FileManager.default.contentsOfDirectory(atPath: site.path).filter { $0.hasPrefix("a-") && !old.contains($0) }
        try #require(now.count == 2, "\(now)")
        let earlyLock = try #require(try? String(contentsOf: snapshot.appendingPathComponent("derive.lock"), encoding: .utf8),
                                     "no lock at the instant before the deletions: \(String(decoding: second.stdout, as: UTF8.self))")
        let earlyIndex = try #require(try? String(contentsOf: snapshot.appendingPathComponent("new-index.json"), encoding: .utf8),
                                      "the new index was not written before the deletions: \(String(decoding: second.stdout, as: UTF8.self))")
        #expect(now.allSatisfy { earlyIndex.contains($0) } && old.allSatisfy { !earlyIndex.contains($0) }, "\(earlyIndex)")
        #expect(old.allSatisfy { earlyLock.contains("{\"path\":\"site/\($0)\"") }, "an old file still there has no line: \(earlyLock)")
        #expect(now.allSatisfy { earlyLock.contains("{\"path\":\"site/\($0)\"") }, "\(earlyLock)")
        #expect(earlyLock.contains("{\"left\":\"site/derive-index.json\""), "the old index left in place has no left line: \(earlyLock)")
        // After the build: the changed old output and the old index stay, each with its left line.
        let lock = try String(contentsOf: root.appendingPathComponent("derive.lock"), encoding: .utf8)
        #expect(lock.contains("{\"left\":\"site/derive-index.json\""), "\(lock)")
        #expect(lock.contains("{\"left\":\"site/\(old[0])\""), "\(lock)")
        #expect(!lock.contains("{\"path\":\"site/\(old[0])\"") && !lock.contains(old[1]), "\(lock)")
        #expect(!FileManager.default.fileExists(atPath: site.appendingPathComponent(old[1]).path))
        let said = String(decoding: second.stdout, as: UTF8.self)
        #expect(said.contains("= site/derive-index.json  left in place") && said.contains("= site/\(old[0])  left in place"), "\(said)")
        #expect(!said.contains("no longer left in place"), "\(said)")
        #expect(try CLI.run(["check", "derive.yaml"], in: root).status == 0)
    }

    static func read(_ descriptor: Int32) -> [(name: String, mask: UInt32)] {
        var events: [(name: String, mask: UInt32)] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            var offset = 0
            while offset + 16 <= count {
                let (mask, length) = buffer.withUnsafeBytes { raw in
                    (raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self), Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
                }
                let name = buffer[(offset + 16)..<min(count, offset + 16 + length)].prefix { $0 != 0 }
                events.append((String(decoding: name, as: UTF8.self), mask))
                offset += 16 + length
            }
        }
        return events
    }
}
