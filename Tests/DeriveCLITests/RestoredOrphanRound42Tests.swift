import Foundation
import Testing
import TestSupport

/// Attack 41c's C6 and C7. C6: outputs restored (`cp -a out out.bak; rm -rf out; cp -a out.bak
/// out`, or each file `cp -p f x; rm f; mv x f`) while their rule is removed in the same edit were
/// never deleted: "not the file Derive wrote there … left in place", then a `left` line for ever,
/// and `clean` never removed them. A restored copy is one thing whether its output is wanted
/// (adopted) or not (deleted as the original would be, its bytes checked on the open file).
/// C7: a user's backup copy of the bucket folder (`cp -a outA userB`) named as the bucket while
/// outA, with the very files Derive installed, is still there was taken as the folder renamed:
/// rendered over, and `clean` deleted it.
@Suite(.ownThreads, .serialized) struct RestoredOrphanRound42Tests {
    typealias Site = SiteRound11Tests.Site

    /// Rule t (three outputs), and rule k unless `keepOnly` drops t.
    static func manifest(folder: String = "out", keepOnly: Bool = false, width: Int = 32) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: \(folder)}
        derivatives:
        \(keepOnly ? "" : "  - name: t\n    from: src/*.jpg\n    process: image/resize,w_\(width)\n    to: out/t/{name}.jpg\n")  - name: k
            from: src/a1.jpg
            process: image/resize,w_20
            to: out/k/{name}.jpg

        """
    }

    static let images = ["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg", "src/a3.jpg": "cmyk.jpg"]

    func copy(_ site: Site, _ from: String, _ to: String) throws {
        try FileManager.default.copyItem(at: site.url(from), to: site.url(to))
    }

    /// Built, then the outputs restored as `wholeFolder` says, and rule t removed.
    func restoredThenRuleRemoved(wholeFolder: Bool) throws -> Site {
        let site = try Site(Self.images, manifest: Self.manifest())
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        if wholeFolder {
            try copy(site, "out", "out.bak")
            try FileManager.default.removeItem(at: site.url("out"))
            try FileManager.default.moveItem(at: site.url("out.bak"), to: site.url("out"))
        } else {
            for name in site.files("out/t") {
                try copy(site, "out/t/" + name, "x.tmp")
                try FileManager.default.removeItem(at: site.url("out/t/" + name))
                try FileManager.default.moveItem(at: site.url("x.tmp"), to: site.url("out/t/" + name))
            }
        }
        try site.write(Self.manifest(keepOnly: true))
        return site
    }

    @Test(arguments: [true, false])
    func restoredCopiesOfARemovedRuleAreDeleted(wholeFolder: Bool) throws {
        let site = try restoredThenRuleRemoved(wholeFolder: wholeFolder)
        defer { site.remove() }
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(!said(build).contains("left in place"), "\(said(build))")
        #expect(site.files("out/t") == [], "\(said(build))")
        #expect(!site.lock().contains(#""left""#), "\(site.lock())")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(said(check))")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0 && !site.exists("derive.lock"), "\(said(clean))")
        #expect(site.files("out/k") == [], "\(said(clean))")
    }

    /// `clean` right after the restore (nothing built since) removes the restored copies too.
    @Test func cleanRemovesRestoredCopies() throws {
        let site = try restoredThenRuleRemoved(wholeFolder: true)
        defer { site.remove() }
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(site.files("out/t") == [] && site.files("out/k") == [] && !site.exists("derive.lock"), "\(said(clean))")
    }

    /// A restored copy whose bytes changed since is the user's: left and named, never deleted.
    @Test func aRestoredCopyWithOtherBytesIsLeft() throws {
        let site = try restoredThenRuleRemoved(wholeFolder: false)
        defer { site.remove() }
        let handle = try FileHandle(forWritingTo: site.url("out/t/a2.jpg"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("mine".utf8))
        try handle.close()
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(site.files("out/t") == ["a2.jpg"], "\(said(build))")
        #expect(said(build).contains("out/t/a2.jpg"), "\(said(build))")
    }

    /// A copy another manifest took over (`build --overwrite site.yaml`: its state records those
    /// files now) is that manifest's, whatever its bytes: the orphan is never deleted.
    @Test func aCopyAnotherManifestClaimsIsNotDeleted() throws {
        let site = try Site(Self.images, manifest: Self.manifest())
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        try Data(Self.manifest().utf8).write(to: site.url("site.yaml"))
        let over = try site.run(["build", "--overwrite", "site.yaml"])
        #expect(over.status == 0, "\(said(over))")
        try site.write(Self.manifest(keepOnly: true))
        let build = try site.run(["build"])
        #expect(said(build).contains("site.yaml"), "\(said(build))")
        let clean = try site.run(["clean"])
        #expect(site.files("out/t") == ["a1.jpg", "a2.jpg", "a3.jpg"], "\(said(build)) \(said(clean))")
        let theirs = try site.run(["check", "site.yaml"])
        #expect(theirs.status == 0, "\(said(theirs))")
    }

    /// C7: `cp -a outA userB` (a user's backup, with a note of theirs), then `path: userB` while
    /// outA still holds the very files Derive installed.
    @Test func aBackupCopyOfTheBucketFolderIsNotTakenForItRenamed() throws {
        let site = try Site(Self.images, manifest: Self.manifest(folder: "outA"))
        defer { site.remove() }
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        // A copy is made after the files it copies (their birth, or status change, is later).
        usleep(20_000)
        try copy(site, "outA", "userB")
        try Data("mine\n".utf8).write(to: site.url("userB/notes.txt"))
        try site.write(Self.manifest(folder: "userB"))
        let backup = try site.files("userB/t").map { try Data(contentsOf: site.url("userB/t/" + $0)) }
        for arguments in [["plan", "--detailed-exitcode"], ["check"], ["build"]] {
            let result = try site.run(arguments)
            #expect(result.status == 1, "\(arguments): \(said(result))")
            #expect(said(result).contains("userB/t/a1.jpg exists and was not written by Derive"), "\(arguments): \(said(result))")
            #expect(!said(result).contains("renamed since"), "\(arguments): \(said(result))")
        }
        #expect(try site.files("userB/t").map { try Data(contentsOf: site.url("userB/t/" + $0)) } == backup)
        #expect(site.files("outA/t") == ["a1.jpg", "a2.jpg", "a3.jpg"])
        let clean = try site.run(["clean"])
        #expect(site.files("userB/t") == ["a1.jpg", "a2.jpg", "a3.jpg"] && site.exists("userB/notes.txt"), "\(said(clean))")
    }
}

/// Attack 41a's B2: bucket `out` re-pointed (`path: outA` → `path: userB`) where userB is a bind
/// mount of outA, restyled and built (the renders went into outA through the mount), then
/// unmounted: the state recorded them in userB, and outA's renders were never named again by
/// build, check or clean. The state recorded the folder Derive wrote into (device and inode):
/// found beside userB, its very files are old copies, named by plan and check, deleted by the build.
@Suite(.ownThreads, .serialized, .enabled(if: BindMounts.isPossible, "bind mounts need root and CAP_SYS_ADMIN (unshare -m)"))
struct MountedFolderRound42Tests {
    typealias Site = SiteRound11Tests.Site

    @Test func rendersWrittenThroughABindMountSinceTakenAwayAreOldCopies() throws {
        let site = try Site(RestoredOrphanRound42Tests.images, manifest: RestoredOrphanRound42Tests.manifest(folder: "outA"))
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try FileManager.default.createDirectory(at: site.url("userB"), withIntermediateDirectories: false)
        try site.write(RestoredOrphanRound42Tests.manifest(folder: "userB", width: 30))
        let mounted = try BindMounts.run(["build"], in: site.root, mounting: "outA", at: "userB")
        #expect(mounted.status == 0, "\(said(mounted))")
        let written = site.files("outA/t")
        #expect(written == ["a1.jpg", "a2.jpg", "a3.jpg"] && site.files("userB") == [], "\(said(mounted))")
        // Unmounted (the namespace went with that run): userB is the empty folder under it again.
        let plan = try site.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 2 && said(plan).contains("outA/t/a1.jpg"), "\(said(plan))")
        let check = try site.run(["check"])
        #expect(check.status == 1 && said(check).contains("outA/t/a1.jpg"), "\(said(check))")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(site.files("outA/t") == [] && site.files("outA/k") == [], "\(said(build))")
        #expect(site.files("userB/t") == written, "\(said(build))")
        let after = try site.run(["check"])
        #expect(after.status == 0, "\(said(after))")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0 && site.files("userB/t") == [], "\(said(clean))")
    }
}
