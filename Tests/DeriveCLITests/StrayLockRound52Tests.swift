import Foundation
import Testing
import TestSupport

/// Files that look like a Derive lock but are no live project's (issue #13):
/// - attack 51b's M2: a backup copy of p's lock (`old/p.lock`, naming an `old/p.yaml` that never
///   existed) made p's public output private in q's serve, by key and bytes, while validate and
///   p's own serve said public. One rule now, the builds': a lock line matched by key and bytes
///   alone never outranks a project that records the very file where it lies.
/// - attack 51b's L1: a user's file in a bucket whose first line names this manifest in a lock
///   header was hidden by serve while validate said nothing (now a warning says serve answers it
///   as missing); one naming "/etc/passwd" drew the advice to "put /etc/passwd back".
@Suite(.ownThreads, .serialized) struct StrayLockRound52Tests {
    func environment(_ root: URL) -> [String: String] { ["XDG_STATE_HOME": root.appendingPathComponent("home").path] }

    @Test func aBackupCopyOfANeighboursLockNeverHidesItsPublicOutput() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("src/a.jpg"))
        try Data("""
            version: 1
            buckets:
              src: {path: src, acl: public-read}
              out: {path: shared, acl: public-read}
            derivatives:
              - {name: t, from: "src/*.jpg", process: "image/resize,w_8", to: "out/{name}.jpg"}

            """.utf8).write(to: root.appendingPathComponent("p.yaml"))
        try Data("version: 1\nbuckets:\n  www: {path: shared, acl: public-read}\n".utf8).write(to: root.appendingPathComponent("q.yaml"))
        let built = try CLI.run(["build", "-q", "p.yaml"], in: root, environment: environment(root))
        #expect(built.status == 0, "\(said(built))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("old"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: root.appendingPathComponent("p.lock"), to: root.appendingPathComponent("old/p.lock"))
        let validated = try CLI.run(["validate", "q.yaml"], in: root, environment: environment(root))
        #expect(validated.status == 0, "\(said(validated))")
        let serve = try ServeSession(in: root, manifest: "q.yaml", environment: environment(root))
        defer { serve.stop() }
        let served = try serve.get("/www/a.jpg")
        #expect(served.status == 200, "p's public output answered \(served.status) by q's serve because of a backup of p's lock")
    }

    @Test func aUsersFileWithALockHeaderNamingThisManifestIsSaidByValidate() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  pub: {path: pub, acl: public-read}\n".utf8).write(to: root.appendingPathComponent("q.yaml"))
        try Data(#"{"format":"derive.lock/2","manifest":"../q.yaml","note":"one output per line; written by derive build, do not edit"}\#nmy notes, not a lock line\#n"#.utf8)
            .write(to: root.appendingPathComponent("pub/notes.txt"))
        let run = try CLI.run(["validate", "q.yaml"], in: root, environment: environment(root))
        #expect(run.status == 0 && run.stderr.contains("pub/notes.txt") && run.stderr.contains("naming this manifest")
                && run.stderr.contains("answers this file as missing"), "\(said(run))")
    }

    @Test func aLockHeaderNamingAFileThatIsNoManifestIsNeverToldToBePutBack() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pub"), withIntermediateDirectories: true)
        try Data("version: 1\nbuckets:\n  pub: {path: pub, acl: public-read}\n".utf8).write(to: root.appendingPathComponent("q.yaml"))
        try Data(#"{"format":"derive.lock/2","manifest":"/etc/passwd","note":"one output per line; written by derive build, do not edit"}\#n"#.utf8)
            .write(to: root.appendingPathComponent("pub/notes.txt"))
        let run = try CLI.run(["validate", "q.yaml"], in: root, environment: environment(root))
        #expect(run.status == 1 && run.stderr.contains("names /etc/passwd as its manifest, which is no manifest")
                && !run.stderr.contains("put /etc/passwd back") && !run.stderr.contains("/etc/passwd, another project"), "\(said(run))")
    }
}
