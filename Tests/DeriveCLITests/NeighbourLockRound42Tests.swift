import Foundation
import Testing
import TestSupport

/// Issue #9: attack 41c's C3 and C8, attack 41a's B7. C3: a fresh clone holding a copy of its own
/// lock under a neighbour's name (`cp derive.lock site.lock; cp derive.yaml site.yaml; rm -rf
/// .derive`) refused derive.yaml's own outputs as site.yaml's, and its clean left them. C8:
/// `index:` could land on a nested project's lock (or its declared index or state) before that
/// project had built, and its build then called site.yaml's index "another tool's file". B7: a
/// manifest renamed with default lock and state names called every output "not written by Derive".
@Suite(.ownThreads, .serialized) struct NeighbourLockRound42Tests {
    typealias Site = SiteRound11Tests.Site

    static let manifest = FolderRecreatedRound40Tests.manifest()
    static let outputs = NeighbourOwnershipRound41Tests.outputs

    func built() throws -> Site {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Self.manifest)
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        return site
    }

    // MARK: C3

    /// site.lock: derive.lock copied (its header names derive.yaml), the same copy with its header
    /// naming site.yaml (a true neighbour's lock recording the same bytes: this manifest's own lock
    /// wins the tie), or beside a site.yaml that does not parse.
    @Test(arguments: ["copy", "neighbour", "junk"])
    func aFreshCloneKeepsWhatItsOwnLockVouchesForBesideACopiedLock(_ variant: String) throws {
        let site = try built()
        defer { site.remove() }
        var lock = site.lock()
        if variant == "neighbour" { lock = lock.replacingOccurrences(of: #""manifest":"derive.yaml""#, with: #""manifest":"site.yaml""#) }
        try Data(lock.utf8).write(to: site.url("site.lock"))
        try Data((variant == "junk" ? "version: 1\nbuckets: [oops\n" : Self.manifest).utf8).write(to: site.url("site.yaml"))
        try site.freshClone()
        for arguments in [["plan"], ["check"], ["build"], ["build", "--verify"]] {
            let run = try site.run(arguments)
            #expect(run.status == 0, "\(arguments): \(said(run))")
            #expect(!said(run).contains("is an output of"), "\(arguments): \(said(run))")
        }
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(Self.outputs.allSatisfy { !site.exists($0) }, "clean left derive.yaml's outputs: \(said(clean))")
        #expect(!site.exists("derive.lock") && site.exists("site.lock"))
    }

    // MARK: C8

    /// site.yaml's `index:` on the lock, index or state folder that sub/derive.yaml (inside
    /// bucket `top`, never built) declares or defaults to: a validation error (so a plan error),
    /// nothing written there, and sub builds.
    @Test(arguments: [("top/derive.lock", ""), ("top/meta/d.lock", "lock: meta/d.lock\n"),
                      ("top/out/index.json", "index: out/index.json\n"), ("top/st/i.json", "state: st\n"),
                      ("top/.derive/derive/i.json", "")])
    func anIndexNeverLandsOnAnUnbuiltProjectsControlFiles(_ index: String, _ inner: String) throws {
        let (site, _, _) = try ForeignProjectRound41Tests.nested(to: "top/q/{name}.jpg", index: index)
        defer { site.remove() }
        try Data((NeighbourManifestRound40Tests.manifest + inner).utf8).write(to: site.url("sub/derive.yaml"))
        let path = "sub/" + index.dropFirst(4)
        let validate = try site.run(["validate", "site.yaml"])
        #expect(validate.status == 1, "\(said(validate))")
        // (The default state folder's refusal names it as another manifest's build state, as before.)
        #expect(said(validate).contains(path) && said(validate).contains("sub/derive.yaml") && said(validate).contains("another"), "\(said(validate))")
        let build = try site.run(["build", "site.yaml"])
        #expect(build.status != 0, "\(said(build))")
        #expect(!site.exists(path), "site.yaml wrote its index at \(path)")
        let sub = try site.run(["build", "-q", "sub/derive.yaml"])
        #expect(sub.status == 0, "the inner project still builds: \(said(sub))")
    }

    /// A lock path holding a Derive index is named as one, not "another tool's file".
    @Test func aLockPathHoldingAnIndexIsNamedAsOne() throws {
        let (site, _, _) = try ForeignProjectRound41Tests.nested(to: "top/q/{name}.jpg", index: "top/idx.json")
        defer { site.remove() }
        let build = try site.run(["build", "-q", "site.yaml"])
        #expect(build.status == 0, "\(said(build))")
        try FileManager.default.copyItem(at: site.url("sub/idx.json"), to: site.url("sub/derive.lock"))
        let sub = try site.run(["build", "sub/derive.yaml"])
        #expect(sub.status != 0, "\(said(sub))")
        #expect(said(sub).contains("derive.lock holds a Derive index") && !said(sub).contains("another tool's file"), "\(said(sub))")
    }

    // MARK: B7

    /// derive.yaml renamed site.yaml (default lock and state names): its outputs are named as
    /// derive.yaml's, with the way on; following it, site.yaml builds nothing again and clean
    /// removes the outputs, derive.lock and the old state.
    @Test func aRenamedManifestIsToldWhoseRecordsTheOutputsAre() throws {
        let site = try built()
        defer { site.remove() }
        try FileManager.default.moveItem(at: site.url("derive.yaml"), to: site.url("site.yaml"))
        for arguments in [["plan", "site.yaml"], ["build", "site.yaml"], ["build", "--verify", "site.yaml"]] {
            let refused = try site.run(arguments)
            #expect(refused.status == 1, "\(arguments): \(said(refused))")
            #expect(!said(refused).contains("was not written by Derive"), "\(arguments): \(said(refused))")
            #expect(said(refused).contains("derive.yaml, which is no longer there") && said(refused).contains("'lock: derive.lock'")
                    && said(refused).contains("'state: .derive/derive'"), "\(arguments): \(said(refused))")
        }
        let clean = try site.run(["clean", "site.yaml"])
        #expect(said(clean).contains("derive.lock"), "clean names derive.lock: \(said(clean))")
        #expect(Self.outputs.allSatisfy { site.exists($0) } && site.exists("derive.lock"))
        try Data((Self.manifest + "lock: derive.lock\nstate: .derive/derive\n").utf8).write(to: site.url("site.yaml"))
        let build = try site.run(["build", "site.yaml"])
        #expect(build.status == 0 && said(build).contains("built 0"), "\(said(build))")
        let cleaned = try site.run(["clean", "site.yaml"])
        #expect(cleaned.status == 0, "\(said(cleaned))")
        #expect(Self.outputs.allSatisfy { !site.exists($0) } && !site.exists("derive.lock") && !site.exists(".derive/derive"), "\(said(cleaned))")
    }
}
