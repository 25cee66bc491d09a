import Foundation
import Testing
import TestSupport

/// Attack 46c's t24/t25: the build state went (`rm -rf .derive`) while the source was narrower,
/// so the build that folded `a-960.webp` away (into `a-800.webp`) left it in place as known only
/// from the lock. Made wider again, the source wants `a-960.webp` back, and every build refused
/// it: "exists and was not written by Derive", though the lock's own `left` line names the file's
/// bytes as the output line it replaced did. That line vouches for the file as the output line
/// did, digest-checked: with a state, a build renders first and takes the file holding exactly
/// the rendered bytes; with the state lost once more too (`t25`), the lock this user's Derive
/// last wrote vouches by itself.
@Suite(.ownThreads) struct LeftLineVouchesRound47Tests {
    typealias Site = SiteRound11Tests.Site

    @Test(arguments: [false, true]) func aFileLeftAsKnownOnlyFromTheLockIsDerivesWhenItsOutputComesBack(stateLostAgain: Bool) throws {
        let site = try Site(["images/a.jpg": "landscape.jpg"],
                            manifest: NarrowedNameTakenRound46Tests.manifest("""
                              - name: A
                                from: images/*.jpg
                                process: image/resize,w_{w}/format,webp
                                matrix: {w: [480, 960]}
                                to: site/{name}-{w}.webp

                            """, index: false))
        defer { site.remove() }
        #expect(try site.run(["build"]).status == 0)
        try NarrowedNameTakenRound46Tests.put("portrait.jpg", at: "images/a.jpg", in: site)
        try site.freshClone()
        let narrow = try site.run(["build"])
        #expect(narrow.status == 0 && said(narrow).contains("left: known only from derive.lock"), "\(said(narrow))")
        #expect(try NarrowedNameTakenRound46Tests.widths(site) == ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 960])
        #expect(site.lock().contains(#"{"left":"site/a-960.webp","acl":"private","why":"known only from the lock","digest":"#), "\(site.lock())")
        if stateLostAgain { try site.freshClone() }
        try NarrowedNameTakenRound46Tests.put("landscape.jpg", at: "images/a.jpg", in: site)
        let wide = try site.run(["build"])
        #expect(wide.status == 0, "\(said(wide))")
        // Without a state, a-800.webp is known only from the lock in turn: left in place.
        #expect(try NarrowedNameTakenRound46Tests.widths(site)
                == (stateLostAgain ? ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 960] : ["a-480.webp": 480, "a-960.webp": 960]))
        #expect(!site.lock().contains(#"{"left":"site/a-960.webp""#), "\(site.lock())")
        let again = try site.run(["build"])
        #expect(again.status == 0 && said(again).contains("Nothing to do"), "\(said(again))")
    }

    /// Other bytes there than the left line records: still not Derive's.
    @Test func aFileWithOtherBytesThanItsLeftLineIsStillRefused() throws {
        let site = try Site(["images/a.jpg": "landscape.jpg"],
                            manifest: NarrowedNameTakenRound46Tests.manifest("""
                              - name: A
                                from: images/*.jpg
                                process: image/resize,w_{w}/format,webp
                                matrix: {w: [480, 960]}
                                to: site/{name}-{w}.webp

                            """, index: false))
        defer { site.remove() }
        #expect(try site.run(["build"]).status == 0)
        try NarrowedNameTakenRound46Tests.put("portrait.jpg", at: "images/a.jpg", in: site)
        try site.freshClone()
        #expect(try site.run(["build"]).status == 0)
        try Data("not Derive's".utf8).write(to: site.url("site/a-960.webp"))
        try NarrowedNameTakenRound46Tests.put("landscape.jpg", at: "images/a.jpg", in: site)
        let wide = try site.run(["build"])
        #expect(wide.status != 0 && said(wide).contains("site/a-960.webp exists and was not written by Derive"), "\(said(wide))")
        #expect(try Data(contentsOf: site.url("site/a-960.webp")) == Data("not Derive's".utf8))
    }
}
