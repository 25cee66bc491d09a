import Foundation
import Testing
import TestSupport

/// Attack 41a's B8, B12, B5, B9 and B1: a file at an output's recorded path holding exactly the
/// recorded bytes, but not the very file Derive installed (restored with `cp -a` or `git checkout`,
/// a dedupe tool's hard link, two buckets' folders of identical renders swapped on disk). check
/// said "Up to date", `clean` said "not the file Derive wrote there", removed nothing, exited 0 and
/// deleted the lock (their last record), and the next build refused them all. Now one rule: such
/// a file no other manifest claims is Derive's output restored; the build records it again (its
/// device and inode), `clean` removes it after that, and before that keeps the lock and exits 1.
@Suite(.ownThreads, .serialized) struct RestoredOutputsRound41Tests {
    typealias Site = SiteRound11Tests.Site
    static let manifest = FolderRecreatedRound40Tests.manifest()

    func move(_ site: Site, _ from: String, _ to: String) throws {
        try FileManager.default.moveItem(at: site.url(from), to: site.url(to))
    }

    /// Built, then `out` restored from a copy (same bytes, new inodes: `cp -a`), or only its
    /// files (`files`: each copied and renamed over itself, the folders kept).
    func restored(files: Bool = false) throws -> Site {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Self.manifest)
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        if files {
            for name in ["out/t/a1.jpg", "out/t/a2.jpg"] {
                try FileManager.default.copyItem(at: site.url(name), to: site.url(name + ".copy"))
                try FileManager.default.removeItem(at: site.url(name))
                try move(site, name + ".copy", name)
            }
        } else {
            try FileManager.default.copyItem(at: site.url("out"), to: site.url("out.bak"))
            try FileManager.default.removeItem(at: site.url("out"))
            try move(site, "out.bak", "out")
        }
        return site
    }

    @Test func cleanKeepsTheLockAndExits1ForRestoredCopiesNotYetRecorded() throws {
        let site = try restored(files: true)
        defer { site.remove() }
        let clean = try site.run(["clean"])
        #expect(clean.status == 1, "\(said(clean))")
        #expect(site.exists("derive.lock"), "\(said(clean))")
        #expect(said(clean).contains("out/t/a1.jpg") && said(clean).contains("derive.lock is kept"), "\(said(clean))")
        // The lock is their record: the next build takes them as Derive's, the next clean removes them.
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let again = try site.run(["clean"])
        #expect(again.status == 0, "\(said(again))")
        #expect(site.files("out/t") == [], "\(said(again))")
    }

    @Test func theBuildRecordsRestoredCopiesAndCleanThenRemovesThem() throws {
        let site = try restored()
        defer { site.remove() }
        let check = try site.run(["check"])
        #expect(check.status == 1, "check vouched for files it did not record: \(said(check))")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(said(build).contains("restored"), "\(said(build))")
        #expect(site.files("out/t") == ["a1.jpg", "a2.jpg"])
        let after = try site.run(["check"])
        #expect(after.status == 0, "\(said(after))")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(site.files("out/t") == [], "\(said(clean))")
        #expect(!site.exists("derive.lock"))
    }

    // B12 (identical renders in two swapped bucket folders): FolderRecreatedRound40Tests'
    // `cleanAfterTwoBucketFoldersSwappedOnDiskRemovesEveryOutput(identicalRenders: true)`.

    @Test func filesAnotherManifestTookOverAreNotVouchedFor() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg"], manifest: Self.manifest)
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try Data(Self.manifest.utf8).write(to: site.url("site.yaml"))
        let over = try site.run(["build", "--overwrite", "site.yaml"])
        #expect(over.status == 0, "\(said(over))")
        for arguments in [["check"], ["plan", "--detailed-exitcode"], ["build"]] {
            let result = try site.run(arguments)
            #expect(result.status != 0 && said(result).contains("site.yaml"), "\(arguments): \(said(result))")
        }
        // The file site.yaml took over stays and only derive.yaml's record goes (attack 46c's t32:
        // the plan above names site.yaml); clean does not name it again.
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(site.files("out/t") == ["a1.jpg"], "\(said(clean))")
        let theirs = try site.run(["check", "site.yaml"])
        #expect(theirs.status == 0, "\(said(theirs))")
    }

    @Test func aRenamedOutputFolderWithABuildInBetweenIsNotCalledAUsersFiles() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg"], manifest: FolderRecreatedRound40Tests.manifest(to: "out/t").replacingOccurrences(of: "{path: out}", with: "{path: outA}"))
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try move(site, "outA", "userB")
        let between = try site.run(["build", "-q"])
        #expect(between.status == 0, "\(said(between))")
        try site.write(Self.manifest.replacingOccurrences(of: "{path: out}", with: "{path: userB}"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(!said(build).contains("not written by Derive"), "\(said(build))")
        #expect(site.files("userB/t") == ["a1.jpg"] && site.files("outA/t") == [], "\(said(build))")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(site.files("userB/t") == [], "\(said(clean))")
    }

    @Test func cleanNamesOutputsInABucketFolderRenamedAsideAndKeepsTheLock() throws {
        let site = try Site(["src/a1.jpg": "landscape.jpg"], manifest: Self.manifest)
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try move(site, "out", "out.bak")
        let clean = try site.run(["clean"])
        #expect(clean.status == 1 && said(clean).contains("out.bak"), "\(said(clean))")
        #expect(site.exists("derive.lock"), "\(said(clean))")
        try move(site, "out.bak", "out")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let again = try site.run(["clean"])
        #expect(again.status == 0, "\(said(again))")
        #expect(site.files("out/t") == [], "\(said(again))")
    }
}
