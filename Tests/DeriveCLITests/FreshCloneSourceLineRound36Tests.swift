import Foundation
import Testing
import TestSupport

/// Attack 36's F5: in a fresh clone (no build state), one hostile derive.lock line naming a source
/// (`photos/lake.jpg`) or a control file (the index) made `check` exit 1 ("in derive.lock but not
/// produced by the manifest"), although one stale or hostile line never makes a fresh clone's check
/// exit 1. Such a line is named as ignored, like any other line the manifest does not produce, and
/// build and clean leave its file alone. (Since attack 39a's F1, check exits 1 for such a line, as
/// `plan --detailed-exitcode` exits 2: not for the file, for the lock the build rewrites without it.)
@Suite(.ownThreads, .serialized) struct FreshCloneSourceLineRound36Tests {
    typealias Site = SiteRound11Tests.Site

    @Test(arguments: ["photos/lake.jpg", "static/img/index.json"]) func aLockLineNamingTheManifestsOwnFileIsIgnored(_ file: String) throws {
        let site = try Site(["photos/lake.jpg": "orientation-1.jpg", "photos/hill.jpg": "landscape.jpg"],
                            manifest: FreshCloneLockTests.manifest(to: "images/{name}-{w}.{f}"))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let key = file.hasPrefix("photos/") ? file : "images/" + file.dropFirst("static/img/".count)
        try LockOwnershipRound13Tests.addLockLines(site, [(key, (file as NSString).pathExtension, file)])
        try site.freshClone()
        let bytes = try Data(contentsOf: site.url(file))

        let check = try site.run(["check"])
        // Not as "not produced by the manifest" (a file to delete): as the lock the build rewrites
        // without that line (attack 39a's F1: check agrees with `plan --detailed-exitcode`).
        #expect(check.status == 1 && text(check.stdout).contains("derive.lock: lists 1 output the manifest does not produce"),
                "\(text(check.stdout)) \(check.stderr)")
        #expect(!text(check.stdout).contains("\(key): in derive.lock but not produced by the manifest"), "\(text(check.stdout))")
        #expect(text(check.stdout).contains("\(key)  ignored: in derive.lock, but it is a source or control file"), "\(text(check.stdout))")
        let plan = try site.run(["plan"])
        #expect(plan.status == 0, "\(text(plan.stdout)) \(plan.stderr)")
        #expect(text(plan.stdout).contains("= \(key)  ignored:"), "\(text(plan.stdout))")

        let build = try site.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: site.url(file)) == bytes, "build touched \(file)")
        #expect(!site.lock().contains("\"path\":\"\(key)\",\"actionKey\":\"00\""), "the hostile line was kept: \(site.lock())")
        #expect(try site.run(["check"]).status == 0)
        if file.hasPrefix("photos/") {
            let clean = try site.run(["clean"])
            #expect(clean.status == 0, "\(clean.stderr)")
            #expect(try Data(contentsOf: site.url(file)) == bytes, "clean touched \(file)")
        }
    }
}
