import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13, attack round 11 (what was left) and round 12: `{hash}` names that coincide with
/// another output's name at build time (F2), `html` in a fresh clone (L4), placeholders of
/// animated sources (L3), the default JPEG quality of JPEG sources (L2), `init` on a link (L6).
@Suite(.serialized) struct SiteRound12Tests {
    typealias Site = SiteRound11Tests.Site
    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

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
        #expect(plan.status == 2, "the plan cannot know the hashed name yet: \(Self.text(plan.stdout)) \(plan.stderr)")
        let build = try site.run(["build"])
        #expect(build.status != 0, "\(Self.text(build.stdout))")
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
            #expect(build.status != 0, "\(Self.text(build.stdout))")
            #expect(build.stderr.contains("would be written twice") && build.stderr.contains(name), "\(build.stderr)")
            #expect(try Data(contentsOf: site.url("out/" + name)) == before)
            #expect(site.lock() == lock, "the lock changed: \(site.lock())")
        }
        let check = try site.run(["check"])
        #expect(check.status != 0, "\(Self.text(check.stdout))")
        let plan = try site.run(["plan", "-v", "--detailed-exitcode"])
        #expect(plan.status == 1 && plan.stderr.contains("would be written twice"), "\(Self.text(plan.stdout)) \(plan.stderr)")
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
        #expect(build.status != 0, "\(Self.text(build.stdout))")
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
        #expect(built.status == 0 && Self.text(built.stdout).contains("<picture>"), "\(built.stderr)")
        try site.freshClone()
        let plan = try site.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 0, "\(Self.text(plan.stdout))")
        let fresh = try site.run(["html", "photos/sample.jpg"])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(Self.text(fresh.stdout) == Self.text(built.stdout))
        // Still nothing written by html: the next build adopts, as before.
        #expect(try site.run(["build", "-q"]).status == 0)
        #expect(try site.run(["html", "photos/sample.jpg"]).stdout == built.stdout)
    }
}
