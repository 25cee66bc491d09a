import Foundation
import Testing
import TestSupport

/// Issue #9, attack 50c's M1: `cp derive.lock _site/` (to publish it, or a deploy step copying the
/// project) made every command refuse the manifest: "bucket 'site' (_site) holds the lock
/// _site/derive.lock of _site/derive.yaml, another project, which is no longer there", a project
/// that never existed, with the advice to put a manifest back inside the public bucket. A lock
/// whose first line names this manifest and whose every line is one of this manifest's own lock
/// is a copy of it: said so (what, where, how to fix), never another project; nothing is blocked
/// (no rule writes that key), and serve keeps it from anonymous readers as any lock in a bucket.
@Suite(.ownThreads) struct OwnLockCopyRound51Tests {
    static let manifest = """
        version: 1
        buckets:
          src: {path: src, acl: private}
          site: {path: _site, acl: public-read}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_16
            to: site/{name}.jpg
            acl: public-read

        """

    @Test func aCopyOfTheOwnLockInAPublicBucketIsNamedAsSuchAndBlocksNothing() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(Self.manifest.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        try copySample("landscape.jpg", to: folder.appendingPathComponent("src/a.jpg"))
        let built = try CLI.run(["build", "-q"], in: folder)
        #expect(built.status == 0, "\(said(built))")
        let copy = folder.appendingPathComponent("_site/derive.lock")
        try FileManager.default.copyItem(at: folder.appendingPathComponent("derive.lock"), to: copy)

        let validate = try CLI.run(["validate"], in: folder)
        #expect(validate.status == 0, "\(said(validate))")
        #expect(!said(validate).contains("another project") && !said(validate).contains("no longer there"), "\(said(validate))")
        #expect(said(validate).contains("_site/derive.lock is a copy of this manifest's own lock (derive.lock)"), "\(said(validate))")
        #expect(said(validate).contains("remove the copy"), "\(said(validate))")
        let again = try CLI.run(["build"], in: folder)
        #expect(again.status == 0 && said(again).contains("Nothing to do"), "\(said(again))")

        // serve keeps the copy from anonymous readers, and answers the outputs.
        let (service, _) = try ProjectsAroundServeRound46Tests.service(folder.appendingPathComponent("derive.yaml"))
        #expect(ServeRound3Tests.request(service, "GET", "/site/a.jpg").status == 200)
        #expect(ServeRound3Tests.request(service, "GET", "/site/derive.lock").status != 200)

        // A copy that lists a line the lock does not is no copy of it: still refused as before,
        // named as an older copy of the own lock (attack 52b's L1), not another manifest's.
        let text = try String(contentsOf: copy, encoding: .utf8)
        try Data((text + "{\"path\":\"site/other.jpg\",\"digest\":\"00\"}\n").utf8).write(to: copy)
        let foreign = try CLI.run(["validate"], in: folder)
        #expect(foreign.status == 1 && said(foreign).contains("an older copy of this manifest's lock"), "\(said(foreign))")
    }
}
