import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Round 22's S3 row: a reader asking for a public `{hash}` output while the build deleted it got
/// 403 for about 20 ms, then 404. Between an orphan's deletion (its record goes with it) and the
/// lock written last, the lock still lists the key and the state records nothing: the key was
/// then judged as "a key only the lock names that no rule writes" (private), because a width
/// the planner narrowed to a small source's own width (`resize,w_4000` on a 600 px photo names
/// the file `-600`, not `-4000`) was no key the rule's template could give. The template now
/// gives such widths too, so the key gets its rule's ACL: 404 when gone (200 while there), and a
/// private rule's output stays 403.
@Suite(.serialized) struct ServeOrphanWindowTests {
    static let manifest = """
        version: 1
        buckets:
          photos: {path: photos, acl: private}
          site:
            path: site
            acl: public-read
            objects: [{match: "derive-index.json", acl: private}]
        derivatives:
          - name: hero
            from: photos/*.jpg
            process: image/resize,w_{w}/format,webp
            matrix:
              w: [4000]
            to: site/{name}-{w}.{hash:10}.webp
            acl: public-read
          - name: secret
            from: photos/*.jpg
            process: image/resize,w_{w}/format,webp
            matrix:
              w: [4000]
            to: site/internal/{name}-{w}.{hash:10}.webp
            acl: private
        index: site/derive-index.json

        """

    /// The files of `folder` (relative to `root`) whose names start with `a-`.
    static func outputs(_ root: URL, _ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)) ?? [])
            .filter { $0.hasPrefix("a-") }.sorted()
    }

    /// The project as it is in the window: the source changed and built again (the old files and
    /// their records gone), with the lock as it was just before the deletions (copied there by
    /// `DERIVE_TEST_BEFORE_DELETIONS`, put back), which still lists the old outputs.
    @Test func anOldPublicHashedOutputInTheDeletionWindowIsMissingNotForbidden() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Data(Self.manifest.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: root.appendingPathComponent("photos/a.jpg"))
        let first = try CLI.run(["build", "--quiet", "derive.yaml"], in: root)
        try #require(first.status == 0, "\(first.stderr)")
        let old = try #require(Self.outputs(root, "site").first), oldSecret = try #require(Self.outputs(root, "site/internal").first)
        // The width in the name is the photo's own, not the 4000 the matrix gives.
        try #require(!old.contains("-4000."), "\(old)")
        let keptPublic = try Data(contentsOf: root.appendingPathComponent("site/" + old))
        let keptSecret = try Data(contentsOf: root.appendingPathComponent("site/internal/" + oldSecret))

        try FileManager.default.removeItem(at: root.appendingPathComponent("photos/a.jpg"))
        try copySample("portrait.jpg", to: root.appendingPathComponent("photos/a.jpg"))
        let snapshot = root.appendingPathComponent("before-deletions")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        let second = try CLI.run(["build", "derive.yaml"], in: root, environment: ["DERIVE_TEST_BEFORE_DELETIONS": snapshot.path])
        try #require(second.status == 0, "\(second.stderr)")
        try #require(!Self.outputs(root, "site").contains(old) && !Self.outputs(root, "site/internal").contains(oldSecret))
        let windowLock = try Data(contentsOf: snapshot.appendingPathComponent("derive.lock"))
        try #require(String(decoding: windowLock, as: UTF8.self).contains("\"site/\(old)\""))
        try windowLock.write(to: root.appendingPathComponent("derive.lock"))

        let serve = try ServeSession(in: root)
        defer { serve.stop() }
        let gone = try serve.get("/site/" + old)
        #expect(gone.status == 404, "the public output just deleted: \(gone.status) \(String(decoding: gone.body, as: UTF8.self).prefix(200))")
        #expect(try serve.get("/site/internal/" + oldSecret).status == 403, "the private rule's output stays private")
        // Still there (the instant before its deletion, as far as the lock and the state say): its rule's ACL.
        try keptPublic.write(to: root.appendingPathComponent("site/" + old))
        try keptSecret.write(to: root.appendingPathComponent("site/internal/" + oldSecret))
        let there = try serve.get("/site/" + old)
        #expect(there.status == 200 && Data(there.body) == keptPublic, "the public output still there: \(there.status)")
        let secret = try serve.get("/site/internal/" + oldSecret)
        #expect(secret.status == 403 && Data(secret.body) != keptSecret, "the private output still there: \(secret.status)")
        // The new outputs, as ever.
        let new = try #require(Self.outputs(root, "site").first)
        #expect(try serve.get("/site/" + new).status == 200)
    }
}
