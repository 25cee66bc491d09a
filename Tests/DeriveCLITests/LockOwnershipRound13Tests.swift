import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13, attack 12's N1, then attack 16's H2 (issue #9's lock-line rule): in a fresh clone
/// the lock proves nothing about files the manifest does not write today. Round 13 let a lock
/// line whose file still had its digest, at a path one rule's `to:` could give, be Derive's old
/// output, deleted by build and clean; attack 16 showed that one hostile line then deleted a
/// user's image. Now an old output of an edit built in a fresh clone is left, named once, and its
/// line dropped from the lock; clean removes only today's outputs. With a state, the records decide.
@Suite(.ownThreads, .serialized) struct LockOwnershipRound13Tests {
    typealias Site = SiteRound11Tests.Site

    /// One rule `r` from `images/*.jpg` into bucket `site` (`_site/`), with an index.
    static func manifest(process: String? = nil, styles: [String]? = nil, matrix: String? = nil, to: String) -> String {
        var rule = "  - name: r\n    from: images/*.jpg\n"
        if let process { rule += "    process: \(process)\n" }
        if let styles { rule += "    styles: [\(styles.joined(separator: ", "))]\n" }
        if let matrix { rule += "    matrix: {\(matrix)}\n" }
        rule += "    to: \(to)\n    acl: public-read\n"
        return """
            version: 1
            buckets:
              images: {path: images}
              site: {path: _site, acl: public-read}
            styles:
              thumb: image/resize,w_40
              large: image/resize,w_80/format,webp
            index: site/derive-index.json
            derivatives:

            """ + rule
    }

    /// A manifest edit built in a fresh clone: `before`, `after`, and the files of `_site/` after it.
    struct Edit: CustomTestStringConvertible, Sendable {
        var name: String
        var before: String
        var after: String
        var gone: [String]
        var left: [String]
        var testDescription: String { name }
    }

    static let edits: [Edit] = [
        Edit(name: "a matrix value dropped",
             before: manifest(process: "image/resize,w_{w}/format,webp", matrix: "w: [40, 60]", to: "site/{name}-{w}.webp"),
             after: manifest(process: "image/resize,w_{w}/format,webp", matrix: "w: [40]", to: "site/{name}-{w}.webp"),
             gone: ["a-60.webp", "b-60.webp"], left: ["a-40.webp", "b-40.webp"]),
        Edit(name: "a format dropped from the matrix",
             before: manifest(process: "image/resize,w_40/format,{f}", matrix: "f: [webp, png]", to: "site/{name}.{f}"),
             after: manifest(process: "image/resize,w_40/format,{f}", matrix: "f: [webp]", to: "site/{name}.{f}"),
             gone: ["a.png", "b.png"], left: ["a.webp", "b.webp"]),
        Edit(name: "a style dropped",
             before: manifest(styles: ["thumb", "large"], to: "site/{name}.{style}.{ext}"),
             after: manifest(styles: ["thumb"], to: "site/{name}.{style}.{ext}"),
             gone: ["a.large.webp", "b.large.webp"], left: ["a.thumb.jpg", "b.thumb.jpg"]),
        // The samples are 300 px wide: w 480 wrote them at their own width, `a-300.webp`.
        Edit(name: "a {w} list narrowed",
             before: manifest(process: "image/resize,w_{w}/format,webp", matrix: "w: [100, 480]", to: "site/{name}-{w}.webp"),
             after: manifest(process: "image/resize,w_{w}/format,webp", matrix: "w: [100]", to: "site/{name}-{w}.webp"),
             gone: ["a-300.webp", "b-300.webp"], left: ["a-100.webp", "b-100.webp"]),
        Edit(name: "the to: shape changed",
             before: manifest(process: "image/resize,w_40/format,webp", to: "site/{name}-w40.webp"),
             after: manifest(process: "image/resize,w_{size}/format,webp", matrix: "size: [60]", to: "site/{name}-w{size}.webp"),
             gone: ["a-w40.webp", "b-w40.webp"], left: ["a-w60.webp", "b-w60.webp"]),
    ]

    static func site(_ manifest: String) throws -> Site {
        let site = try Site(["images/a.jpg": "orientation-1.jpg", "images/b.jpg": "orientation-2.jpg"], manifest: manifest)
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        return site
    }

    /// The tree is clean and only `left` (and the index) is in `_site/`.
    static func expectClean(_ site: Site, left: [String], _ comment: String) throws {
        #expect(site.files("_site") == (left + ["derive-index.json"]).sorted(), "\(comment): \(site.files("_site"))")
        let plan = try site.run(["plan", "--detailed-exitcode"])
        #expect(plan.status == 0, "\(comment): \(text(plan.stdout)) \(plan.stderr)")
        let check = try site.run(["check"])
        #expect(check.status == 0, "\(comment): \(text(check.stdout)) \(check.stderr)")
        let again = try site.run(["build"])
        #expect(again.status == 0 && text(again.stdout).contains("Nothing to do"), "\(comment): \(text(again.stdout)) \(again.stderr)")
    }

    // MARK: the old outputs of an edit built in a fresh clone are left and named, plain names as {hash} ones

    @Test(arguments: edits) func aFreshCloneBuildLeavesTheOldOutputsOfAnEdit(_ edit: Edit) throws {
        let site = try Self.site(edit.before)
        defer { site.remove() }
        #expect(site.files("_site") == (edit.gone + edit.left + ["derive-index.json"]).sorted() || edit.name.contains("shape"), "\(site.files("_site"))")
        try site.freshClone()
        try site.write(edit.after)
        let plan = try site.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        #expect(plan.status == 0, "\(planText)")
        for name in edit.gone {
            #expect(planText.contains("= site/\(name)  left: known only from derive.lock (no build state)"), "\(name): \(planText)")
        }
        #expect(!planText.contains("  delete:"), "\(planText)")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(!text(build.stdout).contains("deleted"), "\(text(build.stdout)) \(build.stderr)")
        #expect(text(build.stdout).contains("left \(edit.gone.count) in place (known only from derive.lock)"), "\(text(build.stdout))")
        // Not output lines any more: `left` lines keep the files' ACL while they are there (round 19's V1).
        for name in edit.gone {
            #expect(!site.lock().contains("{\"path\":\"site/\(name)\"") && site.lock().contains("{\"left\":\"site/\(name)\""), "\(name): \(site.lock())")
        }
        try Self.expectClean(site, left: edit.left + edit.gone, edit.name)
    }

    @Test(arguments: edits) func cleanInAFreshCloneRemovesOnlyTodaysOutputs(_ edit: Edit) throws {
        let site = try Self.site(edit.before)
        defer { site.remove() }
        try site.freshClone()
        try site.write(edit.after)
        let clean = try site.run(["clean"])
        let cleanText = text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "\(cleanText)")
        for name in edit.left { #expect(!site.exists("_site/\(name)"), "clean left \(name): \(cleanText)") }
        for name in edit.gone {
            #expect(site.exists("_site/\(name)"), "clean removed \(name) on the lock's word: \(cleanText)")
            #expect(cleanText.contains("site/\(name)  left: known only from derive.lock"), "\(name) not named: \(cleanText)")
        }
        // The lock stays, holding only the `left` lines of the files left there: no more public
        // after clean than before it (round 21's N1); its output lines are gone.
        let lock = site.lock()
        #expect(lock.hasPrefix(#"{"format":"derive.lock/3""#) && !lock.contains(#"{"path":"#), "\(lock)")
        for name in edit.gone {
            // The line names the file's place too: bucket `site` is the folder `_site`.
            #expect(lock.contains("{\"left\":\"site/\(name)\",\"acl\":\"private\",\"why\":\"known only from the lock\",\"file\":\"_site/\(name)\"}"), "\(name): \(lock)")
            #expect(text(clean.stdout).contains("= site/\(name)  left in place (known only from the lock): kept in derive.lock as a file left private"), "\(cleanText)")
        }
    }

    // MARK: the hostile side: what is not the lock's own output is kept

    /// A lock line whose file was edited (not its digest), one whose file still has its digest, a
    /// user's file at a name the template gives but not in the lock, lines in a source bucket,
    /// outside every template, or whose extension does not name their format: all kept, each line
    /// named once as left, exit 0.
    @Test func whatIsNotDerivesOldOutputIsKept() throws {
        let edit = Self.edits[0]
        let site = try Self.site(edit.before)
        defer { site.remove() }
        try site.freshClone()
        let b60 = try Data(contentsOf: site.url("_site/b-60.webp"))
        try Data("edited by hand\n".utf8).write(to: site.url("_site/a-60.webp"))
        try Data("a user's file\n".utf8).write(to: site.url("_site/user-60.webp"))
        try FileManager.default.createDirectory(at: site.url("_site/notes"), withIntermediateDirectories: true)
        // (lock path, format, file): a source bucket, outside every template, an extension not the format's.
        let hostile = [("images/mine.webp", "webp", "images/mine.webp"), ("site/notes/plan.webp", "webp", "_site/notes/plan.webp"),
                       ("site/c-60.webp", "jpg", "_site/c-60.webp")]
        for (_, _, file) in hostile { try Data("user's \(file)\n".utf8).write(to: site.url(file)) }
        try Self.addLockLines(site, hostile)
        try site.write(edit.after)
        let plan = try site.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        #expect(plan.status == 0, "\(planText)")
        for path in ["site/a-60.webp", "site/b-60.webp"] + hostile.map(\.0) {
            #expect(planText.components(separatedBy: "= \(path)  left: known only from derive.lock").count == 2, "\(path): \(planText)")
        }
        #expect(!planText.contains("  delete:") && !planText.contains("failure"), "\(planText)")
        let build = try site.run(["build"])
        let buildText = text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(buildText)")
        #expect(try Data(contentsOf: site.url("_site/b-60.webp")) == b60, "\(buildText)")
        #expect(try String(contentsOf: site.url("_site/a-60.webp"), encoding: .utf8) == "edited by hand\n")
        #expect(try String(contentsOf: site.url("_site/user-60.webp"), encoding: .utf8) == "a user's file\n")
        for (_, _, file) in hostile { #expect(try String(contentsOf: site.url(file), encoding: .utf8) == "user's \(file)\n", "\(file) deleted: \(buildText)") }
        // Not output lines (`left` lines keep the files' ACL while they are there: round 19's V1).
        for path in ["site/a-60.webp", "site/b-60.webp"] + hostile.map(\.0) { #expect(!site.lock().contains("{\"path\":\"\(path)\""), "\(path) still in the lock") }
    }

    /// `clean` agrees: today's outputs are removed; the edited file, the old output and the lines no
    /// template gives are left, and named.
    @Test func cleanKeepsWhatIsNotDerivesOldOutput() throws {
        let edit = Self.edits[0]
        let site = try Self.site(edit.before)
        defer { site.remove() }
        try site.freshClone()
        try Data("edited by hand\n".utf8).write(to: site.url("_site/a-60.webp"))
        try Data("a user's file\n".utf8).write(to: site.url("_site/user-60.webp"))
        try FileManager.default.createDirectory(at: site.url("_site/notes"), withIntermediateDirectories: true)
        try Data("user's plan\n".utf8).write(to: site.url("_site/notes/plan.webp"))
        try Self.addLockLines(site, [("site/notes/plan.webp", "webp", "_site/notes/plan.webp")])
        try site.write(edit.after)
        let clean = try site.run(["clean"])
        let cleanText = text(clean.stdout) + clean.stderr
        #expect(clean.status == 0, "\(cleanText)")
        #expect(!site.exists("_site/a-40.webp") && !site.exists("_site/b-40.webp"), "\(cleanText)")
        #expect(site.exists("_site/b-60.webp"), "\(cleanText)")
        for path in ["site/a-60.webp", "site/b-60.webp", "site/notes/plan.webp"] {
            #expect(cleanText.contains("\(path)  left: known only from derive.lock"), "\(path): \(cleanText)")
        }
        #expect(try String(contentsOf: site.url("_site/a-60.webp"), encoding: .utf8) == "edited by hand\n")
        #expect(try String(contentsOf: site.url("_site/user-60.webp"), encoding: .utf8) == "a user's file\n")
        #expect(try String(contentsOf: site.url("_site/notes/plan.webp"), encoding: .utf8) == "user's plan\n")
    }

    /// A symbolic link or a hard link at an old output's name, known only from the lock: both are
    /// left (nothing is followed or deleted) and their lines dropped. Plain names as `{hash}` ones.
    @Test(arguments: ["site/{name}-{w}.webp", "site/{name}-{w}.{hash:8}.webp"])
    func linksAtAnOldOutputsNameAreLeftAsForHashedNames(_ to: String) throws {
        let process = "image/resize,w_{w}/format,webp"
        let site = try Self.site(Self.manifest(process: process, matrix: "w: [40, 60]", to: to))
        defer { site.remove() }
        let a = try #require(site.files("_site").first { $0.hasPrefix("a-60") })
        let b = try #require(site.files("_site").first { $0.hasPrefix("b-60") })
        let aBytes = try Data(contentsOf: site.url("_site/" + a)), bBytes = try Data(contentsOf: site.url("_site/" + b))
        try aBytes.write(to: site.url("mine-a.webp"))
        try FileManager.default.removeItem(at: site.url("_site/" + a))
        try FileManager.default.createSymbolicLink(atPath: site.url("_site/" + a).path, withDestinationPath: "../mine-a.webp")
        try FileManager.default.linkItem(at: site.url("_site/" + b), to: site.url("keep-b.webp"))
        try site.freshClone()
        try site.write(Self.manifest(process: process, matrix: "w: [40]", to: to))
        let plan = try site.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        // Known only from the lock: left, the link as the hard link (nothing is followed or deleted).
        #expect(planText.contains("= site/\(a)  left: known only from derive.lock"), "\(planText)")
        #expect(planText.contains("= site/\(b)  left: known only from derive.lock"), "\(planText)")
        let build = try site.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(!text(build.stdout).contains("deleted"), "\(text(build.stdout))")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: site.url("_site/" + a).path)) == "../mine-a.webp")
        #expect(try Data(contentsOf: site.url("mine-a.webp")) == aBytes)
        #expect(try Data(contentsOf: site.url("_site/" + b)) == bBytes)
        #expect(try Data(contentsOf: site.url("keep-b.webp")) == bBytes)
        #expect(!site.lock().contains("{\"path\":\"site/\(a)\"") && !site.lock().contains("{\"path\":\"site/\(b)\""), "\(site.lock())")
        #expect(try site.run(["check"]).status == 0)
    }

    /// Appends a lock line for each (bucket path, format, file) with the file's true digest.
    static func addLockLines(_ site: Site, _ entries: [(path: String, format: String, file: String)]) throws {
        var lines = site.lock().split(separator: "\n").map(String.init)
        for (path, format, file) in entries {
            let data = try Data(contentsOf: site.url(file))
            lines.append(#"{"path":"\#(path)","actionKey":"00","digest":"\#(SHA256Hex.of(data))","width":1,"height":1,"bytes":\#(data.count),"format":"\#(format)"}"#)
        }
        try Data(([lines[0]] + lines.dropFirst().sorted()).joined(separator: "\n").appending("\n").utf8).write(to: site.url("derive.lock"))
    }
}

/// Issue #9, attack 12's L1 (messages): a lock header whose `index` names an output the build
/// lists, or a folder, is not an old index: nothing advises deleting it by hand.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound13MessagesTests {
    typealias Project = BuildSafetyAttackTests.Project

    @Test(arguments: ["out/landscape.jpg", "out/sub"]) func aLockHeaderNamingAnOutputOrAFolderAdvisesNoRemoval(_ named: String) throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try FileManager.default.createDirectory(at: project.url("out/sub"), withIntermediateDirectories: true)
        try Data("mine\n".utf8).write(to: project.url("out/sub/notes.txt"))
        try FileManager.default.removeItem(at: project.url(".derive"))   // a fresh clone
        let digest = named == "out/sub" ? String(repeating: "0", count: 64) : SHA256Hex.of(try Data(contentsOf: project.url(named)))
        try pointLockHeader(project, at: named, digest: digest)
        let plan = try project.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        #expect(!planText.contains("rm \(named)") && !planText.contains("! \(named)  keep"), "\(planText)")
        let build = try project.run(["build"])
        let buildText = text(build.stdout) + build.stderr
        #expect(build.status == 0, "\(buildText)")
        #expect(!buildText.contains("rm \(named)") && !buildText.contains("delete it by hand"), "\(buildText)")
        #expect(project.exists(named) && project.exists("out/sub/notes.txt"))
        #expect(try project.run(["check"]).status == 0)
    }
}

/// Attack 14's D1: a lock line vouched for by `{dir}` only for folders `from:` can match.
@Suite(.ownThreads, .serialized) struct LockOwnershipDirTests {
    typealias Site = SiteRound11Tests.Site
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    static func manifest(from: String) -> String {
        """
        version: 1
        buckets:
          images: {path: images}
          site: {path: _site}
        derivatives:
          - name: t
            from: "\(from)"
            process: image/resize,w_20
            to: site/{dir}/{name}.{ext}

        """
    }

    /// (from:, a user's file the rule cannot write, with a lock line stating its digest)
    @Test(arguments: [("images/*/*.jpg", "_site/u.jpg"), ("images/*/*/*.jpg", "_site/p/u.jpg"), ("images/*/x/*.jpg", "_site/x/u.jpg"),
                      ("images/[pq]*/*.jpg", "_site/x/u.jpg"),
                      // Attack 15 F5: the empty alternative gives `images//*.jpg`, which matches no key.
                      ("images/{,photos}/*.jpg", "_site/u.jpg"),
                      // Attack 15 F5b: the folders before a `**` stay in `{dir}`.
                      ("images/photos/**/*.jpg", "_site/u.jpg"), ("images/photos/**/*.jpg", "_site/etc/u.jpg"),
                      ("images/p*/**/*.jpg", "_site/q/r/u.jpg")])
    func aLockLineForAFolderFromCannotMatchIsKept(_ from: String, _ victim: String) throws {
        let site = try Site(["images/photos/x/a.jpg": "orientation-1.jpg", "images/photos/a.jpg": "orientation-2.jpg"], manifest: Self.manifest(from: from))
        defer { site.remove() }
        let build = try site.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        try site.freshClone()
        try FileManager.default.createDirectory(at: site.url(victim).deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-3.jpg"), to: site.url(victim))
        let bytes = try Data(contentsOf: site.url(victim))
        try LockOwnershipRound13Tests.addLockLines(site, [("site" + victim.dropFirst("_site".count), "jpg", victim)])
        let plan = try site.run(["plan"])
        let planText = text(plan.stdout) + plan.stderr
        #expect(planText.contains("= \(victim.replacingOccurrences(of: "_site", with: "site"))  left: known only from derive.lock"), "\(planText)")
        #expect(plan.status == 0, "\(planText)")
        _ = try site.run(["build"])
        #expect(try Data(contentsOf: site.url(victim)) == bytes, "build deleted \(victim)")
        try LockOwnershipRound13Tests.addLockLines(site, [("site" + victim.dropFirst("_site".count), "jpg", victim)])
        try? site.freshClone()
        _ = try site.run(["clean"])
        #expect(try Data(contentsOf: site.url(victim)) == bytes, "clean deleted \(victim)")
    }
}

/// Attack 14 (static) H1 and attack 15 (static) H1: in a fresh clone, a lock line whose name holds
/// its own file's SHA-256 vouches for it only through a template today's manifest gives. Round 14
/// let any name holding 8+ hex digits of its own digest, anywhere in a bucket a rule writes, be
/// Derive's old `{hash}` output, so that a moved `to:` deleted its old outputs; round 15 showed that
/// every content-addressed file any tool makes (Hugo's fingerprint, a deploy script) has such a name,
/// so one hostile lock line deleted a user's file. A moved `{hash}` template now leaves the old
/// outputs in place and names each once, as for plain names.
@Suite(.ownThreads, .serialized) struct LockOwnershipHashedMovesTests {
    typealias Site = SiteRound11Tests.Site
    static let before = LockOwnershipRound13Tests.manifest(process: "image/resize,w_40/format,webp", to: "site/{name}.{hash}.webp")

    // (`site/{name}.webp` still gives `a.725e80319c.webp`, `{name}` being any listed name: that
    // one is deleted as any template-shaped old output is.)
    @Test(arguments: ["site/img/{name}.{hash}.webp", "site/{name}_{hash}.webp"])
    func aMovedHashedTemplateLeavesTheOldOutputsAndNamesThem(_ moved: String) throws {
        let site = try LockOwnershipRound13Tests.site(Self.before)
        defer { site.remove() }
        let old = site.files("_site").filter { $0.hasSuffix(".webp") }
        #expect(old.count == 2, "\(old)")
        let bytes = try old.map { try Data(contentsOf: site.url("_site/\($0)")) }
        try site.freshClone()
        try site.write(LockOwnershipRound13Tests.manifest(process: "image/resize,w_40/format,webp", to: moved))
        let build = try site.run(["build"])
        let buildText = text(build.stdout) + build.stderr
        #expect(!buildText.contains("deleted 2"), "\(moved): \(buildText)")
        for (name, data) in zip(old, bytes) {
            #expect(try Data(contentsOf: site.url("_site/\(name)")) == data, "\(moved): \(name) was touched")
            #expect(buildText.contains("site/\(name)  left: known only from derive.lock"), "\(moved): \(name) not named: \(buildText)")
        }
    }

    /// Attack 15 H1: a user's own content-hashed file (`assets/logo-<8 hex of its SHA-256>.png`, as
    /// Hugo's fingerprint names files) that a hostile lock line lists is kept by build and clean.
    @Test func aUsersContentHashedFileThatAHostileLockLineListsIsKept() throws {
        let site = try LockOwnershipRound13Tests.site(LockOwnershipRound13Tests.manifest(process: "image/resize,w_40/format,webp", to: "site/{name}.{hash}.webp"))
        defer { site.remove() }
        try FileManager.default.createDirectory(at: site.url("_site/assets"), withIntermediateDirectories: true)
        let logo = try Data(contentsOf: CLI.samples.appendingPathComponent("logo-alpha.png"))
        let victim = "_site/assets/logo-\(SHA256Hex.of(logo).prefix(8)).png"
        try logo.write(to: site.url(victim))
        try site.freshClone()
        try LockOwnershipRound13Tests.addLockLines(site, [("site/assets/logo-\(SHA256Hex.of(logo).prefix(8)).png", "png", victim)])
        let plan = try site.run(["plan"])
        #expect(!(text(plan.stdout) + plan.stderr).contains("delete: no longer produced"), "\(text(plan.stdout)) \(plan.stderr)")
        _ = try site.run(["build"])
        #expect(try Data(contentsOf: site.url(victim)) == logo, "build deleted \(victim)")
        try LockOwnershipRound13Tests.addLockLines(site, [("site/assets/logo-\(SHA256Hex.of(logo).prefix(8)).png", "png", victim)])
        try? site.freshClone()
        _ = try site.run(["clean"])
        #expect(try Data(contentsOf: site.url(victim)) == logo, "clean deleted \(victim)")
    }

    /// A 4-digit hash (one chance in 65 536 of naming any file) vouches only through today's template.
    @Test func aMovedShortHashedNameIsKept() throws {
        let short = try LockOwnershipRound13Tests.site(LockOwnershipRound13Tests.manifest(process: "image/resize,w_40/format,webp", to: "site/{name}.{hash:4}.webp"))
        defer { short.remove() }
        let shortOld = short.files("_site").filter { $0.hasSuffix(".webp") }
        try short.freshClone()
        try short.write(LockOwnershipRound13Tests.manifest(process: "image/resize,w_40/format,webp", to: "site/img/{name}.{hash:4}.webp"))
        _ = try short.run(["build"])
        for name in shortOld { #expect(short.exists("_site/\(name)"), "a 4-digit hash vouched for \(name) outside its template") }
    }
}
