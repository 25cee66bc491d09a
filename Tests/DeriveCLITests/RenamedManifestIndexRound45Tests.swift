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
}
