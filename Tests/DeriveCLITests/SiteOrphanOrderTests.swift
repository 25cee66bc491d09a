import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Attack 20's S3: a site served from its output folder while it is built (the preview with
/// `--watch`, a host building in place) must never be given an index naming files already
/// deleted. The build writes the new outputs, then the index, and only then deletes orphans.
@Suite(.serialized) struct SiteIndexBeforeOrphanTests {
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

    /// The order of what happens in `site/`, seen by inotify while the rebuild runs: the index is
    /// written (renamed into place) before the first old `{hash}` file is removed.
    @Test func theIndexIsWrittenBeforeTheOldHashedFilesAreDeleted() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Data(Self.manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: root.appendingPathComponent("photos/a.jpg"))
        let first = try CLI.run(["build", "--quiet", "derive.yaml"], in: root)
        try #require(first.status == 0, "\(first.stderr)")
        let site = root.appendingPathComponent("site")
        let old = Set(try FileManager.default.contentsOfDirectory(atPath: site.path).filter { $0.hasPrefix("a-") })
        try #require(old.count == 2, "\(old)")
        // New bytes: new names for both outputs, the old two become orphans.
        try FileManager.default.removeItem(at: root.appendingPathComponent("photos/a.jpg"))
        try copySample("portrait.jpg", to: root.appendingPathComponent("photos/a.jpg"))

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
        #expect(now.allSatisfy { text.contains($0) } && old.allSatisfy { !text.contains($0) }, text)
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
