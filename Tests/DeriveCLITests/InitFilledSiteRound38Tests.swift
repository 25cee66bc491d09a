import Foundation
import Testing
import TestSupport

/// Attack 38a's M2: `derive init` made an existing `_site/` that already held files (an earlier
/// generator's output, drafts, `_site/private/payroll.csv`) a public-read, listable bucket without
/// a word: `derive serve` then gave those files to anyone. init now refuses such a folder, names
/// what is in it (a few, then how many more) and how to go on, and writes nothing.
@Suite(.ownThreads) struct InitFilledSiteRound38Tests {
    typealias Site = SiteRound11Tests.Site

    @Test func initRefusesASiteFolderThatAlreadyHoldsFiles() throws {
        let site = try Site(["images/a.jpg": "orientation-1.jpg"], manifest: nil)
        defer { site.remove() }
        try FileManager.default.createDirectory(at: site.url("_site/private"), withIntermediateDirectories: true)
        let payroll = Data("salary data\n".utf8)
        try payroll.write(to: site.url("_site/private/payroll.csv"))
        for n in 1...6 { try Data("draft \(n)\n".utf8).write(to: site.url("_site/z-draft-\(n).md")) }

        let refused = try site.run(["init", "images"])
        #expect(refused.status == 1, "\(String(decoding: refused.stdout, as: UTF8.self))")
        #expect(refused.stderr.contains("_site/private/payroll.csv"), "the file made public is not named: \(refused.stderr)")
        #expect(refused.stderr.contains("public"), "\(refused.stderr)")
        #expect(refused.stderr.contains("and 2 more"), "\(refused.stderr)")
        #expect(!site.exists("derive.yaml"), "a manifest publishing _site was written")
        #expect(try Data(contentsOf: site.url("_site/private/payroll.csv")) == payroll)

        // Emptied (folders left), init goes ahead and the first build works.
        try FileManager.default.removeItem(at: site.url("_site/private/payroll.csv"))
        for n in 1...6 { try FileManager.default.removeItem(at: site.url("_site/z-draft-\(n).md")) }
        let made = try site.run(["init", "images"])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(try site.run(["build"]).status == 0)
    }
}
