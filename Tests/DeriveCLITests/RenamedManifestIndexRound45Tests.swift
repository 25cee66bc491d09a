import Foundation
import Testing
import TestSupport

/// Attack 45c's M1: `mv derive.yaml site.yaml` in a project with an index, then `derive build
/// site.yaml`: each output was named as derive.yaml's (renamed? set 'lock:' and 'state:'), but
/// the index alone was "not written by Derive …; move it or pass --overwrite", and following that
/// advice left two locks owning one set of files. The index is named as its outputs are.
@Suite(.ownThreads) struct RenamedManifestIndexRound45Tests {
    @Test func theIndexOfARenamedManifestIsNamedWithTheSettingsThatCarryOn() throws {
        let site = try SiteRound11Tests.Site(["images/a.jpg": "landscape.jpg"], manifest: UnbuiltCopyIndexRound45Tests.manifest(quality: 80))
        defer { try? FileManager.default.removeItem(at: site.root) }
        let first = try CLI.run(["build"], in: site.root)
        #expect(first.status == 0, "\(said(first))")
        let index = try Data(contentsOf: site.url("_site/derive-index.json"))
        #expect(rename(site.url("derive.yaml").path, site.url("site.yaml").path) == 0)

        let renamed = try CLI.run(["build", "site.yaml"], in: site.root)
        #expect(renamed.status != 0, "\(said(renamed))")
        #expect(said(renamed).contains("_site/derive-index.json is the index of") && said(renamed).contains("which is no longer there"), "\(said(renamed))")
        #expect(said(renamed).contains("set 'lock: derive.lock' and 'state: .derive/derive'"), "\(said(renamed))")
        #expect(!said(renamed).contains("was not written by Derive as the index"), "\(said(renamed))")
        #expect(try Data(contentsOf: site.url("_site/derive-index.json")) == index)

        // Taking that advice carries on from the records: nothing to do.
        let text = try String(contentsOf: site.url("site.yaml"), encoding: .utf8)
        try Data(("lock: derive.lock\nstate: .derive/derive\n" + text).utf8).write(to: site.url("site.yaml"))
        let carried = try CLI.run(["build", "site.yaml"], in: site.root)
        #expect(carried.status == 0 && !said(carried).contains("built 1"), "\(said(carried))")
        #expect(try Data(contentsOf: site.url("_site/derive-index.json")) == index)
    }

    /// Attack 47b's F1: n.yaml wrote `pub/n/b.jpg` through its bucket `nout` (`path: pub/n`) and
    /// was removed; site.yaml beside it writes `pub/n/{name}.jpg` through its bucket `pub`. n.lock's
    /// line names the key in n's bucket (`nout/b.jpg`), so the file was "not written by Derive …
    /// pass --overwrite". It is named as the removed manifest's, with its lock and bytes.
    @Test func aRemovedManifestsOutputInAFolderBelowThisBucketIsNamed() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        for folder in ["src", "nsrc", "pub"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: root.appendingPathComponent("src/b.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: root.appendingPathComponent("nsrc/b.jpg"))
        try Data("""
            version: 1
            buckets:
              nsrc: {path: nsrc, acl: private}
              nout: {path: pub/n, acl: private}
            derivatives:
              - {name: nt, from: nsrc/*.jpg, process: "image/resize,w_32", to: "nout/{name}.jpg"}

            """.utf8).write(to: root.appendingPathComponent("n.yaml"))
        let first = try CLI.run(["build", "n.yaml"], in: root)
        #expect(first.status == 0, "\(said(first))")
        let theirs = try Data(contentsOf: root.appendingPathComponent("pub/n/b.jpg"))
        try FileManager.default.removeItem(at: root.appendingPathComponent("n.yaml"))
        try Data("""
            version: 1
            buckets:
              src: {path: src, acl: private}
              pub: {path: pub, acl: private}
            derivatives:
              - {name: t, from: src/*.jpg, process: "image/resize,w_64", to: "pub/n/{name}.jpg"}

            """.utf8).write(to: root.appendingPathComponent("site.yaml"))
        let build = try CLI.run(["build", "site.yaml"], in: root)
        #expect(build.status != 0, "\(said(build))")
        #expect(said(build).contains("pub/n/b.jpg is an output of") && said(build).contains("n.yaml, which is no longer there, but its lock")
                    && !said(build).contains("not written by Derive"), "\(said(build))")
        #expect(try Data(contentsOf: root.appendingPathComponent("pub/n/b.jpg")) == theirs)
        // Other bytes at that path are a user's file, as before.
        try Data("mine".utf8).write(to: root.appendingPathComponent("pub/n/b.jpg"))
        let user = try CLI.run(["build", "site.yaml"], in: root)
        #expect(user.status != 0 && said(user).contains("not written by Derive"), "\(said(user))")
    }
}
