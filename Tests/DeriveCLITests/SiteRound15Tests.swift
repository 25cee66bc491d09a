import Foundation
import Planner
import Testing
import TestSupport

/// The fifteenth round on static sites (issue 13, attack 15's static M1/M3/M5/L4/L6 and build F3),
/// end to end through the binary.
@Suite(.ownThreads, .serialized) struct SiteRound15Tests {
    typealias Project = BuildSafetyAttackTests.Project

    // MARK: M1 / F3: a colour or placeholder adopted from an index is only one of Derive's shape

    static let placeholderManifest = """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        index: out/index.json
        derivatives:
          - name: thumbs
            from: src/*.jpg
            process: image/resize,w_32
            to: out/{name}.{ext}
            placeholder: true

        """

    /// Attack 15's static M1 and build F3: a pull request edits a source's `color`, placeholder
    /// `src` or `thumbhash` in the index and sets the lock's `indexDigest` to the edited file's
    /// SHA-256 (both come from the clone, so the digest proves nothing). A fresh clone adopted the
    /// value, re-emitted it as Derive's (a site template prints `color | safeCSS`, `src | safeURL`)
    /// and kept it in the state for good; `check` said up to date. Now a value not exactly of the
    /// shape Derive writes is rendered again and the index rewritten with Derive's value.
    @Test(arguments: [
        (##""color": "#[0-9a-f]{6}""##, ##""color": "red;background:url(https://evil.example/track)""##),
        (##""color": "#[0-9a-f]{6}""##, ##""color": "#63\"><script>alert(1)</script>""##),
        (##""color": "#[0-9a-f]{6}""##, ##""color": "#ABCDEF""##),
        (##""src": "data:image/webp;base64,[^"]*""##, ##""src": "data:image/svg+xml,<svg onload=alert(1)/>""##),
        (##""src": "data:image/webp;base64,[^"]*""##, ##""src": "data:image/webp;base64,AAAA""##),
        (##""src": "data:image/webp;base64,[^"]*""##, ##""src": "data:image/webp;base64,UklGRg==\"><script>x</script>""##),
        (##""thumbhash": "[^"]*""##, ##""thumbhash": "\"><script>alert(1)</script>""##),
        (##""thumbhash": "[^"]*""##, ##""thumbhash": "\##(String(repeating: "A", count: 56))""##),
    ])
    func aFreshCloneDoesNotAdoptASummaryDeriveDoesNotWrite(edit: (pattern: String, replacement: String)) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.placeholderManifest)
        #expect(try project.run(["build", "-q"]).status == 0)
        let original = try Data(contentsOf: project.url("out/index.json"))
        #expect(text(original).contains("\"thumbhash\""), "\(text(original))")
        try FileManager.default.removeItem(at: project.url(".derive"))
        // The pull request: the index edited, and the lock's first line naming the edited bytes.
        let index = text(original)
        let range = try #require(index.range(of: edit.pattern, options: .regularExpression), "no \(edit.pattern)")
        let edited = Data(index.replacingCharacters(in: range, with: edit.replacement).utf8)
        #expect(try JSONSerialization.jsonObject(with: edited) is [String: Any])
        try edited.write(to: project.url("out/index.json"))
        var lock = try String(contentsOf: project.url("derive.lock"), encoding: .utf8)
        let digest = try #require(lock.range(of: #""indexDigest":"[0-9a-f]{64}""#, options: .regularExpression))
        lock.replaceSubrange(digest, with: #""indexDigest":"\#(ContentDigests.digest(edited))""#)
        try lock.write(to: project.url("derive.lock"), atomically: true, encoding: .utf8)

        let check = try project.run(["check"])
        #expect(check.status != 0, "an index with a value Derive never writes is not up to date: \(text(check.stdout))")
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let rebuilt = try Data(contentsOf: project.url("out/index.json"))
        #expect(!text(rebuilt).contains(edit.replacement), "the planted value was kept: \(text(rebuilt))")
        #expect(rebuilt == original, "the index is not Derive's again: \(text(rebuilt))")
        let after = try project.run(["check"])
        #expect(after.status == 0, "\(text(after.stdout)) \(after.stderr)")
    }

    /// The values Derive renders itself are still adopted as they are: a fresh clone of an
    /// untouched project renders nothing and its index stays byte for byte.
    @Test func aFreshCloneStillAdoptsDerivesOwnSummaries() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.placeholderManifest)
        #expect(try project.run(["build", "-q"]).status == 0)
        let original = try Data(contentsOf: project.url("out/index.json"))
        try FileManager.default.removeItem(at: project.url(".derive"))
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(text(build.stdout).hasPrefix("built 0,"), "\(text(build.stdout))")
        #expect(try Data(contentsOf: project.url("out/index.json")) == original)
    }

    /// Found with M1's state test: `index:` added to a built tree (a no-op build but for the
    /// colours) wrote an index without them, and `check` then called the lock and the index
    /// stale until a second build. One build now leaves the tree clean.
    @Test func addingAnIndexToABuiltTreeTakesOneBuild() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        try project.write("derive.yaml", Project.manifest(outPath: "out", index: true))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let index = try String(contentsOf: project.url("out/index.json"), encoding: .utf8)
        #expect(index.contains("\"color\": \"#"), "\(index)")
        let check = try project.run(["check"])
        #expect(check.status == 0, "\(text(check.stdout)) \(check.stderr)")
    }

    // MARK: M3: `derive init DIR` escapes DIR for YAML

    /// A folder of one sample image named `name`, below a fresh temporary folder.
    func imagesFolder(_ name: String, files: [String] = ["landscape.jpg"]) throws -> URL {
        let root = try CLI.temporaryFolder()
        let folder = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in files {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent(file))
        }
        return root
    }

    /// Attack 15's static M3: a folder name with a line break (LF, CR, and the line breaks
    /// libyaml knows beside them: U+0085, U+2028, U+2029) was written raw into a comment (cut
    /// there: the rest became YAML, `region: injected` a top-level key) and folded into a space
    /// in the `path:` scalar. Now the manifest validates and its bucket is that very folder.
    @Test(arguments: ["nl\nname", "cr\rname", "nel\u{85}name", "ls\u{2028}name", "ps\u{2029}name",
                      "p\nregion: injected\n#", "tab\tand \"quote\" \\ back", "bell\u{7}\u{1B}[31m"])
    func initEscapesTheFolderNameForYAML(name: String) throws {
        let root = try imagesFolder(name)
        defer { try? FileManager.default.removeItem(at: root) }
        let initialised = try CLI.run(["init", name], in: root)
        #expect(initialised.status == 0, "\(initialised.stderr)")
        let manifest = try String(contentsOf: root.appendingPathComponent("derive.yaml"), encoding: .utf8)
        #expect(!manifest.contains("region: injected\n"), "\(manifest)")
        let validate = try CLI.run(["validate"], in: root)
        #expect(validate.status == 0, "\(text(validate.stdout)) \(validate.stderr)\n\(manifest)")
        #expect(!validate.stderr.contains("warning"), "\(validate.stderr)")
        // The bucket is the folder: the plan finds its image (a folded name matches nothing).
        let plan = try CLI.run(["plan"], in: root)
        #expect(plan.status == 0 || plan.status == 2, "\(plan.stderr)")
        #expect(text(plan.stdout).contains("landscape"), "\(text(plan.stdout)) \(plan.stderr)")
    }

    /// The injecting name builds as written (README: "It builds as written").
    @Test func initWithALineBreakInTheFolderNameBuilds() throws {
        let name = "p\nregion: injected\n#"
        let root = try imagesFolder(name)
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(try CLI.run(["init", name], in: root).status == 0)
        let build = try CLI.run(["build", "-q"], in: root)
        #expect(build.status == 0, "\(build.stderr)")
        #expect(try CLI.run(["check"], in: root).status == 0)
    }

    /// The note for two images sharing a stem sits with the other comments of the rule list (it
    /// was indented ten spaces, under the previous comment's text).
    @Test func initsNoteOnSharedNamesIsIndentedLikeItsNeighbours() throws {
        let root = try imagesFolder("photos", files: ["a.jpg", "a.png"])
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(try CLI.run(["init", "photos"], in: root).status == 0)
        let manifest = try String(contentsOf: root.appendingPathComponent("derive.yaml"), encoding: .utf8)
        let line = try #require(manifest.split(separator: "\n").first { $0.contains("Two images share a name") })
        #expect(line.hasPrefix("  # Two images"), "\(line)")
        #expect(try CLI.run(["validate"], in: root).status == 0)
    }

    // MARK: M5: rule names are names, not free text

    static func twoRules(secondName: String) -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        styles:
          thumb: image/resize,w_50/format,webp
        index: out/index.json
        derivatives:
          - name: g
            from: src/*.jpg
            styles: [thumb]
            to: out/a/{name}.{style}.{ext}
          - name: \(secondName)
            from: src/*.jpg
            process: image/resize,w_{w}/format,jpg
            matrix: {w: [80, 120]}
            to: out/b/{name}-{w}.jpg

        """
    }

    /// Attack 15's static M5: a rule named `g/thumb` and rule `g`'s style `thumb` shared the
    /// index's picture key `g/thumb`: one `<picture>` whose sources were two rules' images.
    /// A `/`, an empty name, a control or bidirectional character, more than 128 characters, or
    /// the unnamed rules' `rule at …` is refused with an error at the name (attack 16's V8 kept
    /// spaces and accents valid: `ruleNamesWithSpacesAndAccentsStayValid`).
    @Test(arguments: ["\"g/thumb\"", "\"\"", "\"x\\u0000y\"", "\"x\\u202Ey\"", "\"x\\u2066y\"", "\"x\\u0085y\"",
                      String(repeating: "r", count: 129), "\"rule at derive.yaml:9\""])
    func aRuleNameOutsideTheStyleNameCharactersIsRefused(name: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.twoRules(secondName: name))
        let validate = try project.run(["validate"])
        #expect(validate.status != 0, "\(name) validated: \(text(validate.stdout))")
        #expect(validate.stderr.contains("derive.yaml:13:") && validate.stderr.contains("rule name"), "\(validate.stderr)")
        #expect(!validate.stderr.unicodeScalars.contains { $0.value == 0 || $0.value == 0x202E }, "\(validate.stderr)")
        #expect(try project.run(["build", "-q"]).status != 0)
        #expect(!project.exists("out/index.json"))
    }

    /// The names that stay valid: the style-name characters, up to 63 of them.
    @Test func ruleNamesOfStyleNameCharactersStayValid() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.twoRules(secondName: "g_thumb-2.x" + String(repeating: "r", count: 52)))
        let validate = try project.run(["validate"])
        #expect(validate.status == 0, "\(validate.stderr)")
    }

    /// Attack 16's V8: the M5 limit refused names that had been valid (`hero image`, `héro`).
    /// Any printable name without `/` is a name again; it keys its picture in the index and
    /// `derive html --rule` finds it.
    @Test(arguments: ["hero image", "héro", "\"<b>2026 & co\"", "Photos (large) · 2×", String(repeating: "é", count: 128)])
    func ruleNamesWithSpacesAndAccentsStayValid(name: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.twoRules(secondName: name))
        let validate = try project.run(["validate"])
        #expect(validate.status == 0, "\(name): \(validate.stderr)")
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let key = name.hasPrefix("\"") ? String(name.dropFirst().dropLast()) : name
        let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: project.url("out/index.json"))) as? [String: Any])
        let json = String(decoding: try JSONSerialization.data(withJSONObject: index), as: UTF8.self)
        #expect(json.contains(key), "the index keys the picture by the rule's name: \(json.prefix(400))")
        let html = try project.run(["html", "src/landscape.jpg", "--rule", key])
        #expect(html.status == 0 && text(html.stdout).contains("<picture"), "\(html.stderr)")
    }

    // MARK: L4: a numeric matrix value is written as its number

    /// Attack 15's static L4: `0800` beside `800` built two files of the same bytes (and `0800`
    /// was not narrowed to a narrower source's width). Such a value is refused at its place.
    @Test(arguments: ["[320, 800, 0800]", "[0800]", "[\"0320\"]", "[00]"])
    func aNumericMatrixValueWithALeadingZeroIsRefused(values: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", """
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
            derivatives:
              - name: r
                from: src/*.jpg
                process: image/resize,w_{w}
                matrix:
                  w: \(values)
                to: out/{name}-{w}.{ext}

            """)
        let validate = try project.run(["validate"])
        #expect(validate.status != 0, "\(values) validated")
        #expect(validate.stderr.contains("derive.yaml:10:") && validate.stderr.contains("leading zero"), "\(validate.stderr)")
        #expect(try project.run(["build", "-q"]).status != 0)
    }

    /// `0` itself, and values that are not numbers (`007x`), stay valid.
    @Test func zeroAndNonNumericValuesStayValid() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", """
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
            derivatives:
              - name: r
                from: src/*.jpg
                process: image/resize,w_{w}/rotate,{r}
                matrix:
                  w: [320]
                  r: [0, 90]
                to: out/{name}-{w}-{r}.{ext}
              - name: s
                from: src/*.jpg
                process: image/resize,w_32
                matrix: {tag: [007x, a0]}
                to: out/{name}-{tag}.{ext}

            """)
        let validate = try project.run(["validate"])
        #expect(validate.status == 0, "\(validate.stderr)")
    }

    // MARK: L6: the committed demo locks are what the demo writes

    /// Attack 15's static L6: README's demo rewrote `Manifests/site.lock` and `page.lock` (they
    /// were from an older render version), dirtying the tree, and a fresh clone's `check` found
    /// 37 problems. Now a copy of `Samples/` and `Manifests/` (locks included) built as README's
    /// demo builds it plans no deletion, checks clean, and leaves both locks byte for byte as
    /// committed. When a render version changes, `.ci/demo-locks` writes them again.
    @Test func theDemoLeavesTheCommittedLocksAsTheyAre() throws {
        let root = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let project = CLI.samples.deletingLastPathComponent()
        for folder in ["Samples", "Manifests"] {
            try FileManager.default.copyItem(at: project.appendingPathComponent(folder), to: root.appendingPathComponent(folder))
        }
        // As a fresh clone: without the pictures a demo built in this tree left beside the page.
        try? FileManager.default.removeItem(at: root.appendingPathComponent("Samples/site/pictures"))
        for manifest in ["site", "page"] {
            let path = "Manifests/\(manifest).yaml"
            let plan = try CLI.run(["plan", path], in: root)
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(text(plan.stdout).contains(" 0 to delete,") && !text(plan.stdout).contains("\n- "),
                    "the committed \(manifest).lock names outputs the demo no longer writes: \(text(plan.stdout))")
            let build = try CLI.run(["build", path], in: root)
            #expect(build.status == 0, "\(build.stderr)")
            #expect(!text(build.stdout).contains("forgot"), "the committed \(manifest).lock is stale: \(text(build.stdout))")
        }
        for manifest in ["site", "page"] {
            let check = try CLI.run(["check", "Manifests/\(manifest).yaml"], in: root)
            #expect(check.status == 0, "\(manifest): \(text(check.stdout)) \(check.stderr)")
            let committed = try Data(contentsOf: project.appendingPathComponent("Manifests/\(manifest).lock"))
            let written = try Data(contentsOf: root.appendingPathComponent("Manifests/\(manifest).lock"))
            #expect(written == committed, "Manifests/\(manifest).lock differs from what the demo writes: run .ci/demo-locks")
        }
    }

    // MARK: L7: smaller items

    /// Attack 15's static L7: `--alt` took U+202E (RIGHT-TO-LEFT OVERRIDE), which makes the page
    /// show other text than the attribute holds; only C0/C1 controls were refused.
    @Test(arguments: ["a\u{202E}gpj.exe", "x\u{2066}y", "line\u{2028}break", "mark\u{200F}"])
    func htmlRefusesBidirectionalControlsInAlt(alt: String) throws {
        let project = try Project(index: true)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let html = try project.run(["html", "src/landscape.jpg", "--alt", alt])
        #expect(html.status == 1, "\(text(html.stdout))")
        #expect(html.stderr.contains("--alt") && html.stderr.contains("bidirectional"), "\(html.stderr)")
        // Plain text, emoji with joiners included, is still a picture's alt.
        let plain = try project.run(["html", "src/landscape.jpg", "--alt", "A family 👨\u{200D}👩\u{200D}👧 on a hill"])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(text(plain.stdout).contains("alt=\"A family 👨\u{200D}👩\u{200D}👧 on a hill\""), "\(text(plain.stdout))")
    }

    /// A list style's `watermark: {text: ""}` said "parameter 'text' is not base64url-encoded UTF-8
    /// text", though the user wrote plain text: now it says the text is empty, at the value.
    @Test func anEmptyWatermarkTextInAListStyleSaysItIsEmpty() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", """
            version: 1
            buckets:
              src: {path: src}
              out: {path: out}
            styles:
              stamped:
                - watermark: {text: ""}
            derivatives:
              - from: src/*.jpg
                styles: [stamped]
                to: out/{name}.{ext}

            """)
        let validate = try project.run(["validate"])
        #expect(validate.status != 0)
        #expect(validate.stderr.contains("derive.yaml:7:") && validate.stderr.contains("'text' of 'watermark'")
                && validate.stderr.contains("is empty") && !validate.stderr.contains("base64url"), "\(validate.stderr)")
    }
}
