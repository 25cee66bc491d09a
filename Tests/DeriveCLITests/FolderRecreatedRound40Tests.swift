import Foundation
import Testing
import TestSupport

/// Attack 40a's A9 and A8: the folder Derive made (`out/t`) re-created around the very same files
/// (`mv out/t out/t.old; mkdir out/t; mv out/t.old/* out/t/`), or two output buckets' folders
/// swapped on disk. `clean` said "out/t is not the folder Derive created there … left in place"
/// for every output, removed nothing, exited 0 and deleted the lock (their only record), so the
/// next build refused them all; a rule moved elsewhere left them as "not the file Derive wrote
/// there". The folder's identity decides only whether that folder is removed: a file in it is
/// Derive's while it is the very file Derive installed (device, inode, birth) with its bytes.
@Suite(.ownThreads, .serialized) struct FolderRecreatedRound40Tests {
    typealias Site = SiteRound11Tests.Site

    static func manifest(to: String = "out/t") -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: t
            from: src/*.jpg
            process: image/resize,w_32
            to: \(to)/{name}.jpg

        """
    }

    static let swapped = BuildSafetyRound40Tests.swapped(false, index: false)

    func move(_ site: Site, _ from: String, _ to: String) throws {
        try FileManager.default.moveItem(at: site.url(from), to: site.url(to))
    }

    /// Built, then `out/t` re-created around the same two files.
    func recreated() throws -> Site {
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: Self.manifest())
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(said(build))")
        try move(site, "out/t", "out/t.old")
        try FileManager.default.createDirectory(at: site.url("out/t"), withIntermediateDirectories: false)
        for name in ["a1.jpg", "a2.jpg"] { try move(site, "out/t.old/" + name, "out/t/" + name) }
        try FileManager.default.removeItem(at: site.url("out/t.old"))
        return site
    }

    @Test func cleanRemovesDerivesFilesFromAFolderRecreatedAroundThem() throws {
        let site = try recreated()
        defer { site.remove() }
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(site.files("out/t") == [], "\(said(clean))")
        #expect(!site.exists("derive.lock"), "\(said(clean))")
        // The folder is the user's now: it stays, and a build writes into it again.
        #expect(site.exists("out/t"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(site.files("out/t") == ["a1.jpg", "a2.jpg"])
    }

    @Test func aRuleMovedAwayDeletesItsOldOutputsFromAFolderRecreatedAroundThem() throws {
        let site = try recreated()
        defer { site.remove() }
        try site.write(Self.manifest(to: "out/v"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        #expect(site.files("out/t") == [], "\(said(build))")
        #expect(site.files("out/v") == ["a1.jpg", "a2.jpg"])
        #expect(!site.lock().contains("\"left\""), "\(site.lock())")
    }

    /// `identicalRenders`: both buckets' rules render the same bytes (attack 41a's B12: then the
    /// build found nothing to do, and clean disowned all 4 and dropped the lock).
    @Test(arguments: [false, true])
    func cleanAfterTwoBucketFoldersSwappedOnDiskRemovesEveryOutput(identicalRenders: Bool) throws {
        let manifest = identicalRenders ? Self.swapped.replacingOccurrences(of: "w_16", with: "w_32") : Self.swapped
        let site = try Site(["src/a1.jpg": "landscape.jpg", "src/a2.jpg": "portrait.jpg"], manifest: manifest)
        defer { site.remove() }
        let first = try site.run(["build", "-q"])
        #expect(first.status == 0, "\(said(first))")
        try move(site, "AAA", "TTT"); try move(site, "BBB", "AAA"); try move(site, "TTT", "BBB")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(said(build))")
        let clean = try site.run(["clean"])
        #expect(clean.status == 0, "\(said(clean))")
        #expect(site.files("AAA/t") == [] && site.files("BBB/t") == [], "\(said(clean))")
        let again = try site.run(["build"])
        #expect(again.status == 0, "\(said(again))")
    }
}
