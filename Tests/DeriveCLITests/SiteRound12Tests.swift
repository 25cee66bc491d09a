import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13, attack round 11 (what was left) and round 12: `{hash}` names that coincide with
/// another output's name at build time (F2), `html` in a fresh clone (L4), placeholders of
/// animated sources (L3), the default JPEG quality of JPEG sources (L2), `init` on a link (L6).
@Suite(.ownThreads, .serialized) struct SiteRound12Tests {
    typealias Site = SiteRound11Tests.Site

    /// Rule `a` names its WebP after its bytes; `b` (when given) writes `literal` by name.
    static func hashedAnd(literal: String?) -> String {
        var text = """
            version: 1
            buckets:
              photos: {path: photos}
              img: {path: out, acl: public-read}
            derivatives:
              - {name: a, from: "photos/*.jpg", process: "image/format,webp", to: "img/{name}.{hash}.webp", acl: public-read}

            """
        if let literal {
            text += "  - {name: b, from: \"photos/*.jpg\", process: \"image/resize,w_20/format,webp\", to: \"img/\(literal)\", acl: public-read}\n"
        }
        return text + "index: img/index.json\n"
    }

    /// The name rule `a` gives sample.jpg (learnt by building it alone, then forgotten).
    static func hashedName(_ site: Site) throws -> String {
        try site.write(hashedAnd(literal: nil))
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let name = site.files("out").first { $0.hasSuffix(".webp") } ?? ""
        #expect(name.hasPrefix("sample.") && name.count == "sample.0123456789.webp".count, "\(site.files("out"))")
        return name
    }

    // MARK: F2: a resolved {hash} name equal to another output's name

    @Test func aHashedNameEqualToAnotherRulesLiteralNameIsRefusedBeforeAnythingIsWritten() throws {
        let site = try Site(["photos/sample.jpg": "orientation-1.jpg"], manifest: nil)
        defer { site.remove() }
        let name = try Self.hashedName(site)
        for path in ["out", ".derive", "derive.lock"] { try FileManager.default.removeItem(at: site.url(path)) }
        try site.write(Self.hashedAnd(literal: name))
        let plan = try site.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 2, "the plan cannot know the hashed name yet: \(text(plan.stdout)) \(plan.stderr)")
        let build = try site.run(["build"])
        #expect(build.status != 0, "\(text(build.stdout))")
        #expect(build.stderr.contains("would be written twice") && build.stderr.contains(name), "\(build.stderr)")
        #expect(build.stderr.contains("nothing was built"), "\(build.stderr)")
        #expect(site.files("out").isEmpty, "written before the refusal: \(site.files("out"))")
        #expect(!site.exists("derive.lock") || !site.lock().contains(name))
        // Never a tree called clean afterwards.
        #expect(try site.run(["build"]).status != 0)
        #expect(try site.run(["check"]).status != 0)
        #expect(try site.run(["plan", "--detailed-exitcode"]).status != 0)
    }

    @Test func aLiteralNameEqualToABuiltHashedNameIsRefusedAndTheHashedFileKept() throws {
        let site = try Site(["photos/sample.jpg": "orientation-1.jpg"], manifest: nil)
        defer { site.remove() }
        let name = try Self.hashedName(site)
        let before = try Data(contentsOf: site.url("out/" + name))
        let lock = site.lock()
        try site.write(Self.hashedAnd(literal: name))
        for _ in 0..<2 {
            let build = try site.run(["build"])
            #expect(build.status != 0, "\(text(build.stdout))")
            #expect(build.stderr.contains("would be written twice") && build.stderr.contains(name), "\(build.stderr)")
            #expect(try Data(contentsOf: site.url("out/" + name)) == before)
            #expect(site.lock() == lock, "the lock changed: \(site.lock())")
        }
        let check = try site.run(["check"])
        #expect(check.status != 0, "\(text(check.stdout))")
        let plan = try site.run(["plan", "-v", "--detailed-exitcode"])
        #expect(plan.status == 1 && plan.stderr.contains("would be written twice"), "\(text(plan.stdout)) \(plan.stderr)")
    }

    @Test func aHashedNameEqualToAUsersFileKeepsTheFileAndSaysSo() throws {
        let site = try Site(["photos/sample.jpg": "orientation-1.jpg"], manifest: nil)
        defer { site.remove() }
        let name = try Self.hashedName(site)
        for path in ["out", ".derive", "derive.lock"] { try FileManager.default.removeItem(at: site.url(path)) }
        try FileManager.default.createDirectory(at: site.url("out"), withIntermediateDirectories: true)
        let mine = Data("the user's own file\n".utf8)
        try mine.write(to: site.url("out/" + name))
        let build = try site.run(["build"])
        #expect(build.status != 0, "\(text(build.stdout))")
        #expect(build.stderr.contains(name) && build.stderr.contains("not written by Derive"), "\(build.stderr)")
        #expect(try Data(contentsOf: site.url("out/" + name)) == mine)
        #expect(try site.run(["check"]).status != 0)
        #expect(try site.run(["build"]).status != 0, "a second build called the tree clean")
        #expect(try Data(contentsOf: site.url("out/" + name)) == mine)
    }

    // MARK: L4: html in a fresh clone

    @Test func htmlInAFreshCloneAnswersAsAfterANoOpBuild() throws {
        let manifest = """
            version: 1
            buckets:
              photos: {path: photos}
              img: {path: out, acl: public-read}
            derivatives:
              - name: hero
                from: "photos/*.jpg"
                process: "image/resize,w_{w}/format,{f}"
                matrix: {w: [100, 200], f: [webp, jpg]}
                to: "img/{name}-{w}.{hash}.{f}"
                acl: public-read
            index: img/index.json
            """
        let site = try Site(["photos/sample.jpg": "orientation-1.jpg"], manifest: manifest)
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let built = try site.run(["html", "photos/sample.jpg"])
        #expect(built.status == 0 && text(built.stdout).contains("<picture>"), "\(built.stderr)")
        try site.freshClone()
        let plan = try site.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 0, "\(text(plan.stdout))")
        let fresh = try site.run(["html", "photos/sample.jpg"])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(text(fresh.stdout) == text(built.stdout))
        // Still nothing written by html: the next build adopts, as before.
        #expect(try site.run(["build", "-q"]).status == 0)
        #expect(try site.run(["html", "photos/sample.jpg"]).stdout == built.stdout)
    }

    // MARK: L3: an animation's placeholder is a still of its first frame

    @Test func theAnimatedSourcesPlaceholderIsAStillOfItsFirstFrame() throws {
        let manifest = """
            version: 1
            buckets:
              photos: {path: photos}
              img: {path: out, acl: public-read}
            derivatives:
              - {name: a, from: "photos/*", process: "image/resize,w_20/format,webp", to: "img/{name}.webp", placeholder: true, acl: public-read}
            index: img/index.json
            """
        let site = try Site(["photos/spinner.gif": "spinner.gif", "photos/still.jpg": "orientation-1.jpg"], manifest: manifest)
        defer { site.remove() }
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: site.url("out/index.json"))) as? [String: Any]
        let sources = index?["sources"] as? [String: Any] ?? [:]
        for source in ["photos/spinner.gif", "photos/still.jpg"] {
            let placeholder = (sources[source] as? [String: Any])?["placeholder"] as? [String: Any]
            let uri = placeholder?["src"] as? String ?? ""
            #expect(uri.hasPrefix("data:image/webp;base64,"), "\(source): \(uri)")
            let bytes = Data(base64Encoded: String(uri.dropFirst("data:image/webp;base64,".count))) ?? Data()
            #expect(!bytes.isEmpty && bytes.count <= 400, "\(source): \(bytes.count) bytes")
            #expect(bytes.range(of: Data("ANMF".utf8)) == nil && bytes.range(of: Data("ANIM".utf8)) == nil, "\(source): an animated placeholder")
            #expect((placeholder?["thumbhash"] as? String ?? "").count == 28 || source.hasSuffix(".gif"), "\(source)")
        }
        // The still is the first frame drawn small: a 32 px wide WebP of the 160x120 spinner.
        let gif = ((sources["photos/spinner.gif"] as? [String: Any])?["placeholder"] as? [String: Any])?["src"] as? String ?? ""
        let webp = Data(base64Encoded: String(gif.dropFirst("data:image/webp;base64,".count))) ?? Data()
        let out = site.url("p.webp")
        try webp.write(to: out)
        let info = try site.run(["info", out.path])
        #expect(text(info.stdout).contains("\"ImageWidth\": {\"value\": \"32\"}") && text(info.stdout).contains("\"ImageHeight\": {\"value\": \"24\"}"), "\(text(info.stdout))")
    }

    // MARK: L6: init on a link to a folder

    @Test func initFollowsALinkToAFolderAndTheManifestBuilds() throws {
        let site = try Site(["realpics/a.jpg": "orientation-1.jpg"], manifest: nil)
        defer { site.remove() }
        try FileManager.default.createSymbolicLink(atPath: site.url("linkpics").path, withDestinationPath: "realpics")
        let made = try site.run(["init", "linkpics"])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(text(made.stdout).contains("symbolic link"), "\(text(made.stdout))")
        let text = (try? String(contentsOf: site.url("derive.yaml"), encoding: .utf8)) ?? ""
        #expect(text.contains("path: \"linkpics\"") && text.contains("1 jpg"), "\(text)")
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(site.files("_site").contains { $0.hasPrefix("a-") && $0.hasSuffix(".webp") }, "\(site.files("_site"))")
        // An empty folder behind the link says the link was followed.
        let empty = try Site([:], manifest: nil)
        defer { empty.remove() }
        try FileManager.default.createDirectory(at: empty.url("nothing"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: empty.url("link").path, withDestinationPath: "nothing")
        let none = try empty.run(["init", "link"])
        #expect(none.status != 0 && none.stderr.contains("symbolic link"), "\(none.stderr)")
    }

    // MARK: attack 12 N1: a fresh clone builds an edited manifest: the old {hash} outputs are
    // known only from the lock, so they are left and named once (attack 16's H2: the lock alone
    // deletes nothing), their lines dropped; removed by hand, the tree is clean.

    /// Each of `old` is still there and named as left by `build`; then removed by hand.
    static func expectLeftAndRemove(_ site: Site, _ old: [String], _ build: CLI.Result) throws {
        for file in old {
            #expect(site.exists("_site/" + file), "\(file) deleted on the lock's word")
            #expect(text(build.stdout).contains("= site/\(file)  left: known only from derive.lock"), "\(file) not named: \(text(build.stdout))")
            // Not an output line: a `left` line keeps its ACL while it is there (round 19's V1).
            #expect(!site.lock().contains(#"{"path":"site/\#(file)""#) && site.lock().contains(#"{"left":"site/\#(file)""#), "\(file): \(site.lock())")
            try FileManager.default.removeItem(at: site.url("_site/" + file))
        }
        // Gone: the next build drops the lines of those left public and says so; those left
        // private it keeps, marked gone (round 21's N4: a file put back is answered privately).
        let dropped = try site.run(["build"])
        for file in old {
            if text(dropped.stdout).contains("~ site/\(file)  left in place") {
                #expect(site.lock().contains(#"{"left":"site/\#(file)","acl":"private""#) && site.lock().contains(#""gone":true"#), "\(file): \(site.lock())")
            } else {
                #expect(text(dropped.stdout).contains("- site/\(file)  no longer left in place: the file is gone"), "\(file): \(text(dropped.stdout))")
                #expect(!site.lock().contains("site/" + file), "\(file) still in the lock")
            }
        }
    }

    static func shaped(widths: String, styles: String = "[thumb, large]", hash: String = "{hash}") -> String {
        """
        version: 1
        buckets:
          photos: {path: photos}
          site: {path: _site, acl: public-read}
        styles:
          thumb: image/resize,w_40/format,webp
          large: image/resize,w_80/format,webp
        derivatives:
          - name: hero
            from: "photos/*.jpg"
            process: "image/resize,w_{w}/format,{f}"
            matrix: {w: [\(widths)], f: [webp, jpg]}
            to: "site/{name}-{w}.\(hash).{f}"
            acl: public-read
          - name: thumbs
            from: "photos/*.jpg"
            styles: \(styles)
            to: "site/{name}.{style}.\(hash).webp"
            acl: public-read
        index: site/index.json
        """
    }

    static func expectClean(_ site: Site, _ context: String) throws {
        let again = try site.run(["build"])
        #expect(again.status == 0 && text(again.stdout).contains("Nothing to do"), "\(context): \(text(again.stdout)) \(again.stderr)")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(context): \(text(check.stdout))")
        // Every file in the published folder is in the lock (no unrecorded leftovers).
        let lock = site.lock()
        for file in site.files("_site") where file != "index.json" {
            #expect(lock.contains("site/" + file), "\(context): \(file) is left with no record")
        }
    }

    @Test func aFreshCloneLeavesTheHashedOutputsOfADroppedWidth() throws {
        let site = try Site(["photos/p.jpg": "landscape.jpg"], manifest: Self.shaped(widths: "100, 200"))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let old = site.files("_site").filter { $0.hasPrefix("p-200.") }
        #expect(old.count == 2, "\(site.files("_site"))")
        try site.freshClone()
        try site.write(Self.shaped(widths: "100"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        try Self.expectLeftAndRemove(site, old, build)
        try Self.expectClean(site, "dropped width")
    }

    @Test func aFreshCloneLeavesTheHashedOutputsOfADroppedStyle() throws {
        let site = try Site(["photos/p.jpg": "landscape.jpg"], manifest: Self.shaped(widths: "100"))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let old = site.files("_site").filter { $0.hasPrefix("p.large.") }
        #expect(old.count == 1, "\(site.files("_site"))")
        try site.freshClone()
        try site.write(Self.shaped(widths: "100", styles: "[thumb]"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        try Self.expectLeftAndRemove(site, old, build)
        try Self.expectClean(site, "dropped style")
    }

    @Test func aFreshCloneLeavesTheOldOutputsWhenTheHashLengthChanges() throws {
        let site = try Site(["photos/p.jpg": "landscape.jpg"], manifest: Self.shaped(widths: "100"))
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let old = site.files("_site").filter { $0 != "index.json" }
        #expect(old.count == 4, "\(old)")
        try site.freshClone()
        try site.write(Self.shaped(widths: "100", hash: "{hash:8}"))
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        try Self.expectLeftAndRemove(site, old, build)
        #expect(site.files("_site").filter { $0 != "index.json" }.count == 4, "\(site.files("_site"))")
        try Self.expectClean(site, "hash length")
    }

    // MARK: attack 12 N5: messages

    @Test func aBadSourceSaysHowManyDerivativesItCostOnce() throws {
        let manifest = """
            version: 1
            buckets:
              photos: {path: photos}
              site: {path: _site, acl: public-read}
            derivatives:
              - {name: r, from: "photos/*.jpg", process: "image/resize,w_{w}/format,webp", matrix: {w: [10, 20]}, to: "site/{name}-{w}.webp", acl: public-read}
            """
        let site = try Site(["photos/good.jpg": "orientation-1.jpg"], manifest: manifest)
        defer { site.remove() }
        try Data().write(to: site.url("photos/empty.jpg"))
        let build = try site.run(["build"])
        #expect(build.status != 0)
        let line = build.stderr.split(separator: "\n").first { $0.contains("photos/empty.jpg") }.map(String.init) ?? ""
        #expect(line.components(separatedBy: "derivatives not built").count == 2, "\(build.stderr)")
    }

    @Test func initsHintNamesTheFolderThatHoldsTheImages() throws {
        let site = try Site(["I6/proj/a.jpg": "orientation-1.jpg"], manifest: nil)
        defer { site.remove() }
        let refused = try CLI.run(["init", ".."], in: site.url("I6/proj"))
        #expect(refused.status != 0)
        let holder = site.url("I6").resolvingSymlinksInPath().deletingLastPathComponent().path
        #expect(refused.stderr.contains("cd \(holder) && derive init I6"), "\(refused.stderr)")
    }

    /// A link where the page goes is something init did not write: refused, never followed
    /// (an _site that holds anything is not made public: attack 38a's M2).
    @Test func initRefusesALinkWhereThePageGoes() throws {
        let site = try Site(["images/a.jpg": "orientation-1.jpg"], manifest: nil)
        defer { site.remove() }
        try FileManager.default.createDirectory(at: site.url("_site"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: site.url("_site/index.html").path, withDestinationPath: "/nonexistent/page.html")
        let made = try site.run(["init"])
        #expect(made.status == 1, "\(text(made.stdout))")
        #expect(made.stderr.contains("_site/index.html"), "\(made.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "/nonexistent/page.html"))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: site.url("_site/index.html").path)) == "/nonexistent/page.html")
    }

    @Test func initLeavesAUsersOwnPageByteForByte() throws {
        let site = try Site(["images/a.jpg": "orientation-1.jpg"], manifest: nil)
        defer { site.remove() }
        try FileManager.default.createDirectory(at: site.url("_site"), withIntermediateDirectories: true)
        let own = Data("<!doctype html><p>my own page</p>\n".utf8)
        try own.write(to: site.url("_site/index.html"))
        let made = try site.run(["init"])
        // Refused (it would be published with whatever else is there), naming the page.
        #expect(made.status == 1, "\(text(made.stdout))")
        #expect(made.stderr.contains("_site/index.html") && made.stderr.contains("public"), "\(made.stderr)")
        #expect(try Data(contentsOf: site.url("_site/index.html")) == own, "init wrote over the user's page")
        #expect(!site.exists("derive.yaml"))
    }
}
