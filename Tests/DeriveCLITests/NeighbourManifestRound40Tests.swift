import Foundation
import Testing
import TestSupport

/// Attack 40a's A3 and A6: two manifests in one folder never touch each other's files.
/// A3: `cp derive.yaml site.yaml`, then `derive build --verify site.yaml` took derive.yaml's
/// outputs over (its own refusal suggested `--verify`), and a renamed rule or `clean site.yaml`
/// then deleted them. The outputs a neighbour manifest's state records are that manifest's: a
/// plan error naming it, with or without `--verify`. A6: an output path that is another
/// project's lock (`to: top/{name}.lock` in a bucket holding `sub/derive.yaml`) validated.
@Suite(.ownThreads, .serialized) struct NeighbourManifestRound40Tests {
    typealias Site = SiteRound11Tests.Site

    /// One rule writing out/t/{name}.jpg, as FolderRecreatedRound40Tests builds it.
    static let manifest = FolderRecreatedRound40Tests.manifest()

    @Test func aCopiedManifestBesideItNeverTakesOverItsOutputs() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Self.manifest)
        defer { site.remove() }
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        try Data(Self.manifest.utf8).write(to: site.url("site.yaml"))
        let before = try ["out/t/a1.jpg", "out/t/a2.jpg"].map { try Data(contentsOf: site.url($0)) }
        let owner = "is an output of " + (site.root.resolvingSymlinksInPath().path) + "/derive.yaml"
        for arguments in [["plan", "site.yaml"], ["build", "site.yaml"], ["build", "--verify", "site.yaml"]] {
            let refused = try site.run(arguments)
            #expect(refused.status == 1, "\(arguments): \(said(refused))")
            #expect(said(refused).contains("out/t/a1.jpg " + owner) && said(refused).contains("out/t/a2.jpg " + owner), "\(arguments): names the owner: \(said(refused))")
            #expect(!said(refused).contains("--verify renders") && !said(refused).contains("was not written by Derive"), "\(arguments): \(said(refused))")
        }
        #expect(!site.exists("site.lock"), "site.yaml recorded derive.yaml's outputs")
        // site.yaml's rule renamed: nothing of derive.yaml's is deleted.
        try Data(Self.manifest.replacingOccurrences(of: "name: t", with: "name: u").replacingOccurrences(of: "out/t/", with: "out/u/").utf8)
            .write(to: site.url("site.yaml"))
        _ = try site.run(["build", "-q", "site.yaml"])
        _ = try site.run(["clean", "site.yaml"])
        #expect(try ["out/t/a1.jpg", "out/t/a2.jpg"].map { try Data(contentsOf: site.url($0)) } == before)
        let check = try site.run(["check"])
        #expect(check.status == 0, "derive.yaml: \(said(check))")
    }

    @Test func anOutputAtAnotherProjectsLockIsAPlanError() throws {
        // sub/derive.yaml, a project of its own, inside site.yaml's bucket `top`.
        let (site, _, _) = try ForeignProjectRound41Tests.nested(to: "top/{name}.lock")
        defer { site.remove() }
        let validate = try site.run(["plan", "site.yaml"])
        #expect(validate.status != 0, "\(said(validate))")
        #expect(said(validate).contains("the lock of") && said(validate).contains("sub/derive.yaml"), "\(said(validate))")
        _ = try site.run(["build", "site.yaml"])
        #expect(!site.exists("sub/derive.lock"), "site.yaml wrote sub's lock")
    }
}
