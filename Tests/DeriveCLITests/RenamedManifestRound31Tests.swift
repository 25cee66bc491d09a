import Foundation
import Testing
import TestSupport

/// Attack round 31's F8: `derive.yaml` renamed `site.yaml` when it sets `lock:` or `state:`
/// blocked every command for good: the lock said it was derive.yaml's ("name another file with
/// 'lock:'"), the state was moved aside as another manifest's and the outputs then "not written
/// by Derive". When the recorded owner is gone from this manifest's folder, the renamed manifest
/// takes the lock and the state over, saying so once; while it is still there, both are refused
/// as before, with a fix that works.
@Suite(.ownThreads, .serialized) struct RenamedManifestRound31Tests {
    typealias Site = SiteRound11Tests.Site
    typealias Gaps28 = StateSharedAcrossFoldersGaps28Tests

    static let settings = ["state: st\n", "lock: my.lock\n", "state: st\nlock: my.lock\n"]

    func built(_ extra: String) throws -> Site {
        let site = try Site(["src/a.jpg": "landscape.jpg"], manifest: Gaps28.manifest(out: "out", state: nil) + extra)
        #expect(try site.run(["build", "-q"]).status == 0)
        return site
    }

    @Test(arguments: settings)
    func aRenamedManifestTakesItsStateAndLockOver(_ extra: String) throws {
        let site = try built(extra)
        defer { site.remove() }
        let output = try #require(FileManager.default.contents(atPath: site.url("out/a.jpg").path))
        try FileManager.default.moveItem(at: site.url("derive.yaml"), to: site.url("site.yaml"))
        let build = try site.run(["build", "site.yaml"])
        #expect(build.status == 0, "\(extra): \(said(build))")
        #expect(build.stderr.contains("derive.yaml") && build.stderr.contains("site.yaml") && build.stderr.contains("takes"), "\(extra): says so: \(build.stderr)")
        #expect(!said(build).contains("moved it to") && !said(build).contains("not written by Derive"), "\(extra): \(said(build))")
        #expect(FileManager.default.contents(atPath: site.url("out/a.jpg").path) == output, "\(extra): rebuilt for nothing")
        for command in ["plan", "check", "build"] {
            let result = try site.run([command, "site.yaml"])
            #expect(result.status == 0, "\(extra): \(command): \(said(result))")
            #expect(!result.stderr.contains("takes"), "\(extra): \(command): said once: \(result.stderr)")
        }
        if extra.contains("state:") {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: site.url("st").path)) ?? []
            #expect(!names.contains { $0.contains("foreign") }, "\(names)")
        }
    }

    /// Still there (a copy, not a rename): refused as before, with a fix that works.
    @Test(arguments: settings)
    func aCopyBesideTheOwnerIsStillRefused(_ extra: String) throws {
        let site = try built(extra)
        defer { site.remove() }
        try FileManager.default.copyItem(at: site.url("derive.yaml"), to: site.url("site.yaml"))
        let build = try site.run(["build", "site.yaml"])
        #expect(build.status != 0, "\(extra): \(said(build))")
        #expect(build.stderr.contains("derive.yaml"), "\(extra): \(build.stderr)")
        // The fix it names: a lock and a state of its own.
        let own = Gaps28.manifest(out: "out2", state: ".derive/site-own") + "lock: site-own.lock\n"
        try Data(own.utf8).write(to: site.url("site.yaml"))
        let fixed = try site.run(["build", "site.yaml"])
        #expect(fixed.status == 0, "\(extra): \(said(fixed))")
        let theirs = try site.run(["build"])
        #expect(theirs.status == 0 && String(decoding: theirs.stdout, as: UTF8.self).contains("up to date"), "\(extra): \(said(theirs))")
    }
}
