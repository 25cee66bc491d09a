import Foundation
import Testing
import TestSupport

/// Issue #13 (attack 16 static: H2, H2b, V1, V3, V7, V9) and issue #9's lock-line class: the
/// strict fresh-clone rule. Without a build state, derive.lock is the only witness that Derive
/// wrote a file, and anyone who can edit a pull request can edit it: a line stating a user's file's
/// digest at a path a rule's `to:` could give made `build` and `clean` delete that file. Without a
/// state, Derive deletes nothing on the lock's word: a lock line for a path today's manifest does
/// not write is named once as left in place and dropped from the rewritten lock, and the command
/// exits 0; lines for paths the manifest does write are adopted as before (digest-checked).
@Suite(.ownThreads, .serialized) struct FreshCloneLockTests {
    typealias Site = SiteRound11Tests.Site
    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
    static let left = "left: known only from derive.lock (no build state); Derive deletes nothing on the lock's word"

    /// A photo bucket and an output bucket (`static/img`), one rule writing `to` with matrix `matrix`.
    static func manifest(process: String = "image/resize,w_{w}/format,{f}", matrix: String? = "w: [80], f: [webp]",
                         from: String = "photos/*.jpg", to: String) -> String {
        """
        version: 1
        buckets:
          photos: {path: photos}
          images: {path: static/img, url: /img}
        derivatives:
          - name: hero
            from: \(from)
            process: \(process)
        \(matrix.map { "    matrix: {\($0)}\n" } ?? "")    to: \(to)
        index: images/index.json

        """
    }

    /// A built site with `photos/lake.jpg`, then `victims` (path in the folder → sample) dropped in as
    /// the user's own files, each listed by a hostile lock line stating its digest, then a fresh clone.
    static func attacked(_ manifest: String, victims: [String: String], photos: [String: String] = ["photos/lake.jpg": "orientation-1.jpg"],
                         lockPath: (String) -> String = { "images/" + $0.dropFirst("static/img/".count) },
                         format: (String) -> String = { ($0 as NSString).pathExtension }) throws -> (Site, [String: Data]) {
        let site = try Site(photos, manifest: manifest)
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        var bytes: [String: Data] = [:]
        for (path, sample) in victims {
            try FileManager.default.createDirectory(at: site.url(path).deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(sample), to: site.url(path))
            bytes[path] = try Data(contentsOf: site.url(path))
        }
        try LockOwnershipRound13Tests.addLockLines(site, victims.keys.sorted().map { (lockPath($0), format($0), $0) })
        try site.freshClone()
        return (site, bytes)
    }

    static func expectKept(_ site: Site, _ bytes: [String: Data], _ what: String) {
        for (path, data) in bytes { #expect((try? Data(contentsOf: site.url(path))) == data, "\(what) deleted or changed \(path)") }
    }

    /// plan and check name every victim once as left; plan exits 0, check exits 1 for the lock
    /// the build rewrites without those lines (attack 39a's F1: check agrees with the plan); build
    /// keeps them, exits 0 and drops their lines from the lock; the tree is then clean.
    static func expectLeftByPlanCheckBuild(_ site: Site, _ bytes: [String: Data], lockPath: (String) -> String = { "images/" + $0.dropFirst("static/img/".count) }) throws {
        let plan = try site.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        #expect(plan.status == 0, "\(planText)")
        #expect(!planText.contains("  delete:"), "\(planText)")
        for path in bytes.keys {
            let line = "= \(lockPath(path))  \(left)"
            #expect(planText.components(separatedBy: line).count == 2, "\(path) not named once: \(planText)")
        }
        let check = try site.run(["check"])
        let checkText = text(check.stdout) + check.stderr
        #expect(check.status == 1 && checkText.contains("derive.lock: lists \(bytes.count) output"), "\(checkText)")
        #expect(!checkText.contains(": delete"), "\(checkText)")
        for path in bytes.keys { #expect(checkText.contains("\(lockPath(path))  \(left)"), "\(path) not named by check: \(checkText)") }
        expectKept(site, bytes, "check")
        let build = try site.run(["build"])
        let buildText = text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(buildText)")
        #expect(!buildText.contains("deleted"), "\(buildText)")
        for path in bytes.keys {
            #expect(buildText.components(separatedBy: "\(lockPath(path))  \(left)").count == 2, "\(path) not named once by build: \(buildText)")
            // Not an output line any more; a `left` line keeps the ACL serve gave it (round 19's V1).
            #expect(!site.lock().contains("{\"path\":\"\(lockPath(path))\""), "\(path) still an output of the lock")
        }
        expectKept(site, bytes, "build")
        let again = try site.run(["build"])
        #expect(again.status == 0 && text(again.stdout).contains("Nothing to do"), "\(text(again.stdout)) \(again.stderr)")
        #expect(try site.run(["check"]).status == 0)
        expectKept(site, bytes, "a second build")
    }

    /// `clean` without a state removes Derive's own (adopted) outputs, names the victims as left,
    /// keeps them and exits 0.
    static func expectCleanKeeps(_ site: Site, _ bytes: [String: Data], own: [String], lockPath: (String) -> String = { "images/" + $0.dropFirst("static/img/".count) }) throws {
        let clean = try site.run(["clean"])
        let cleanText = text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "\(cleanText)")
        for path in bytes.keys { #expect(cleanText.contains("\(lockPath(path))  \(left)"), "\(path) not named by clean: \(cleanText)") }
        expectKept(site, bytes, "clean")
        for path in own { #expect(!site.exists(path), "clean left Derive's own \(path): \(cleanText)") }
        let outputs = own.filter { !$0.hasSuffix("/index.json") }.count   // the index is not counted as an output
        #expect(cleanText.contains("Removed \(outputs) output\(outputs == 1 ? "" : "s") (there was no usable build state)"), "\(cleanText)")
    }

    // MARK: H2, H2b: plain templates

    @Test func h2AUsersImageAHostileLineNamesIsKeptByPlanCheckAndBuild() throws {
        let (site, bytes) = try Self.attacked(Self.manifest(to: "images/{name}-{w}.{f}"), victims: ["static/img/team-photo.jpg": "portrait.jpg"])
        defer { site.remove() }
        try Self.expectLeftByPlanCheckBuild(site, bytes)
        #expect(site.exists("static/img/lake-80.webp"))
    }

    @Test func h2bAPlainNameTemplateKeepsEveryUsersImage() throws {
        let (site, bytes) = try Self.attacked(Self.manifest(process: "image/resize,w_80", matrix: nil, to: "images/{name}.{ext}"),
                                              victims: ["static/img/logo.jpg": "portrait.jpg", "static/img/team.jpg": "orientation-3.jpg"])
        defer { site.remove() }
        try Self.expectLeftByPlanCheckBuild(site, bytes)
        #expect(site.exists("static/img/lake.jpg"))
    }

    // MARK: V7: clean

    @Test func v7CleanInAFreshCloneKeepsTheUsersImage() throws {
        let (site, bytes) = try Self.attacked(Self.manifest(to: "images/{name}-{w}.{f}"), victims: ["static/img/team-photo.jpg": "portrait.jpg"])
        defer { site.remove() }
        try Self.expectCleanKeeps(site, bytes, own: ["static/img/lake-80.webp", "static/img/index.json"])
    }

    // MARK: V1: a {hash}-named file of its own digest

    @Test func v1AHugoFingerprintedFileInAHashedRulesFolderIsKept() throws {
        let logo = try Data(contentsOf: CLI.samples.appendingPathComponent("logo-alpha.png"))
        let victim = "static/img/logo.\(SHA256Hex.of(logo)).png"
        let manifest = Self.manifest(to: "images/{name}.{hash}.{ext}")
        let (site, bytes) = try Self.attacked(manifest, victims: [victim: "logo-alpha.png"])
        defer { site.remove() }
        try Self.expectLeftByPlanCheckBuild(site, bytes)
        try LockOwnershipRound13Tests.addLockLines(site, [("images/" + victim.dropFirst("static/img/".count), "png", victim)])
        try site.freshClone()
        let own = site.files("static/img").filter { $0.hasPrefix("lake.") }.map { "static/img/" + $0 }
        #expect(own.count == 1, "\(site.files("static/img"))")
        try Self.expectCleanKeeps(site, bytes, own: own + ["static/img/index.json"])
    }

    // MARK: V9: a {key} mirror

    @Test func v9AKeyMirrorRuleVouchesForNoUsersImage() throws {
        let manifest = Self.manifest(process: "image/resize,w_60", matrix: nil, from: "photos/**/*.jpg", to: "images/{key}")
        let victims = ["static/img/a/user.jpg": "portrait.jpg", "static/img/deep.jpg": "orientation-3.jpg", "static/img/private/user.jpg": "orientation-4.jpg"]
        let (site, bytes) = try Self.attacked(manifest, victims: victims, photos: ["photos/a/x.jpg": "orientation-1.jpg"])
        defer { site.remove() }
        try Self.expectLeftByPlanCheckBuild(site, bytes)
        for (path, _) in victims { try LockOwnershipRound13Tests.addLockLines(site, [("images/" + path.dropFirst("static/img/".count), "jpg", path)]) }
        try site.freshClone()
        try Self.expectCleanKeeps(site, bytes, own: ["static/img/a/x.jpg", "static/img/index.json"])
    }

    // MARK: V6-like: an image the manifest does not read (an old watermark) in the output bucket

    @Test func anOldWatermarkInTheOutputBucketIsKept() throws {
        let manifest = """
            version: 1
            buckets:
              site: {path: site}
            derivatives:
              - name: hero
                from: site/photos/*.jpg
                process: image/resize,w_60/format,{f}
                matrix: {v: [w60], f: [webp]}
                to: site/{name}-{v}.{f}

            """
        // The watermark the old design drew: no rule reads it any more, so nothing protects it as an input.
        let (site, bytes) = try Self.attacked(manifest, victims: ["site/wm-old.png": "logo-alpha.png"], photos: ["site/photos/lake.jpg": "orientation-1.jpg"],
                                              lockPath: { $0 })
        defer { site.remove() }
        try Self.expectLeftByPlanCheckBuild(site, bytes, lockPath: { $0 })
    }

    // MARK: V3: one ignored line exits 0

    /// A line outside every template (refused before) and one a template gives: neither fails a
    /// fresh clone's plan, check or build; both are named, neither file is touched.
    @Test func v3IgnoredLinesExitZero() throws {
        let (site, bytes) = try Self.attacked(Self.manifest(to: "images/{name}-{w}.{f}"),
                                              victims: ["static/img/assets/logo-b1dd28a9.png": "logo-alpha.png", "static/img/team-photo.jpg": "portrait.jpg"])
        defer { site.remove() }
        let build = try site.run(["build"])
        let buildText = Self.text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(buildText)")
        #expect(!buildText.contains("failure"), "\(buildText)")
        Self.expectKept(site, bytes, "build")
        #expect(try site.run(["check"]).status == 0)
    }

    // MARK: what stays: adoption in a fresh clone, and the state's word with a state

    /// Lines for paths the manifest writes are adopted (nothing re-rendered); a manifest edit in a
    /// fresh clone leaves the old outputs, named; with a state, the records delete them as before.
    @Test func adoptionStaysAndTheStateStillDecidesOrphans() throws {
        let before = Self.manifest(matrix: "w: [80, 60], f: [webp]", to: "images/{name}-{w}.{f}")
        let site = try Site(["photos/lake.jpg": "orientation-1.jpg"], manifest: before)
        defer { site.remove() }
        #expect(try site.run(["build", "-q"]).status == 0)
        let lock = site.lock()
        try site.freshClone()
        let adopt = try site.run(["build"])
        #expect(adopt.status == 0 && Self.text(adopt.stdout).contains("built 0") && Self.text(adopt.stdout).contains("adopted 2"), "\(Self.text(adopt.stdout)) \(adopt.stderr)")
        #expect(site.lock() == lock)
        // A fresh clone of an edit: the old output stays and is named.
        try site.freshClone()
        try site.write(Self.manifest(to: "images/{name}-{w}.{f}"))
        let fresh = try site.run(["build"])
        let freshText = Self.text(fresh.stdout) + fresh.stderr
        #expect(fresh.status == 0, "\(freshText)")
        #expect(freshText.contains("images/lake-60.webp  \(Self.left)"), "\(freshText)")
        // Not an output line (a `left` line keeps its ACL while it is there: round 19's V1).
        #expect(site.exists("static/img/lake-60.webp") && !site.lock().contains("{\"path\":\"images/lake-60"), "\(site.lock())")
        // With a state: an output it recorded and the manifest drops is deleted. (The file left
        // above is removed by hand first, as the message says: it is no longer Derive's.)
        try FileManager.default.removeItem(at: site.url("static/img/lake-60.webp"))
        try site.write(before)
        #expect(try site.run(["build", "-q"]).status == 0)
        try site.write(Self.manifest(to: "images/{name}-{w}.{f}"))
        let edit = try site.run(["build"])
        #expect(edit.status == 0 && Self.text(edit.stdout).contains("deleted 1"), "\(Self.text(edit.stdout)) \(edit.stderr)")
        #expect(!site.exists("static/img/lake-60.webp"))
    }
}
