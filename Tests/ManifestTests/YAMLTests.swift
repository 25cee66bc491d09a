import Foundation
import Testing
import TestSupport
@testable import Manifest

@Suite(.ownThreads) struct YAMLTests {
    func load(_ text: String, budget: YAMLBudget = YAMLBudget()) throws -> YAMLNode? {
        try YAMLLoader.load(Data(text.utf8), file: "t.yaml", budget: budget)
    }

    @Test func positionsAreOneBased() throws {
        let root = try #require(try load("a: 1\nb:\n  - x\n  - 'y'\n"))
        guard case .mapping(let pairs) = root.kind else { Issue.record("not a mapping"); return }
        #expect(pairs[0].key.location.line == 1 && pairs[0].key.location.column == 1)
        guard case .sequence(let items) = pairs[1].value.kind else { Issue.record("not a list"); return }
        #expect(items[1].location.line == 4 && items[1].location.column == 5)
        #expect(items[1].scalar == "y" && !items[1].isNull)
    }

    @Test func anchorsAliasesAndMergeKeys() throws {
        let root = try #require(try load("""
        base: &base {acl: private, path: p}
        extra: &extra {acl: public-read, objects: []}
        one:
          <<: *base
          path: q
        two:
          <<: [*extra, *base]
        list: [*base, *base]
        """))
        guard case .mapping(let pairs) = root.kind else { return }
        func fields(_ name: String) -> [String: String] {
            guard let node = pairs.first(where: { $0.key.scalar == name })?.value, case .mapping(let entries) = node.kind else { return [:] }
            return Dictionary(entries.compactMap { entry in entry.value.scalar.map { (entry.key.scalar!, $0) } }, uniquingKeysWith: { a, _ in a })
        }
        #expect(fields("one") == ["acl": "private", "path": "q"])       // own keys win
        #expect(fields("two") == ["acl": "public-read", "path": "p"])   // earlier merge sources win
        guard case .sequence(let list)? = pairs.first(where: { $0.key.scalar == "list" })?.value.kind else { Issue.record("no list"); return }
        #expect(list.count == 2)
    }

    @Test func syntaxErrorsHaveAPosition() {
        #expect { try load("a: [1, 2\nb: c\n") } throws: { error in
            guard let error = error as? YAMLError else { return false }
            return error.location.line == 2 && error.message.contains("YAML syntax error")
        }
        #expect { try load("a: *missing\n") } throws: { ($0 as? YAMLError)?.message.contains("undefined alias") == true }
    }

    /// "Billion laughs": nine levels of ten aliases would expand to a billion nodes.
    /// (How long the refusal takes is measured in Tests/Benchmarks/bench-limits, not here.)
    @Test func aliasBombsAreRefused() {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            text += "a\(level): &a\(level) [\(refs)]\n"
        }
        #expect { try load(text) } throws: { ($0 as? YAMLError)?.message.contains("expands to more than") == true }
    }

    @Test func deepNestingIsRefused() {
        let text = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        #expect { try load(text) } throws: { ($0 as? YAMLError)?.message.contains("nesting deeper than") == true }
        let mappings = (0..<200).map { String(repeating: "  ", count: $0) + "k\($0):" }.joined(separator: "\n") + " x\n"
        #expect { try load(mappings) } throws: { ($0 as? YAMLError)?.message.contains("nesting deeper than") == true }
    }

    @Test func hugeInputsAreRefused() {
        let scalar = "a: " + String(repeating: "x", count: 100_000) + "\n"
        #expect { try load(scalar) } throws: { ($0 as? YAMLError)?.message.contains("a scalar of 100000 bytes") == true }
        let file = String(repeating: "# padding\n", count: 500_000)
        #expect { try load(file) } throws: { ($0 as? YAMLError)?.message.contains("manifests may be at most") == true }
    }

    @Test func nonUTF8IsAnError() {
        var bytes = Data("a: b\nc: ".utf8)
        bytes.append(contentsOf: [0xFF, 0xFE, 0x41, 0x0A])
        #expect { try YAMLLoader.load(bytes, file: "t.yaml") } throws: { error in
            guard let error = error as? YAMLError else { return false }
            return error.message.contains("UTF-8") && error.location.line >= 1
        }
    }

    @Test func duplicateKeysAreErrors() throws {
        let result = try Workspace().load(yaml: "version: 1\nstyles:\n  a: image/resize,w_1\n  a: image/resize,w_2\n")
        #expect(result.has(4, 3, "duplicate key 'a' (first at line 3)"), "\(result.lines)")
    }

    @Test func hostileManifestsGiveDiagnostics() throws {
        let workspace = try Workspace()
        var bomb = "version: 1\nx0: &x0 [a, a, a, a, a, a, a, a, a, a]\n"
        for level in 1...8 { bomb += "x\(level): &x\(level) [" + Array(repeating: "*x\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let result = try workspace.load(yaml: bomb)
        #expect(result.manifest == nil)
        #expect(result.diagnostics.errors.first?.message.contains("expands to more than") == true)
    }
}

@Suite(.ownThreads) struct GlobTests {
    @Test(arguments: [
        ("*.jpg", "a.jpg", true), ("*.jpg", "d/a.jpg", false), ("**/*.jpg", "a.jpg", true),
        ("**/*.jpg", "d/e/a.jpg", true), ("press/**", "press/a/b.png", true), ("press/**", "pressa/b", false),
        ("a?.png", "ab.png", true), ("a?.png", "a/.png", false), ("*.{jpg,png}", "x.png", true),
        ("*.{jpg,png}", "x.gif", false), ("{a,b}/**/*.jpg", "b/c/d.jpg", true), ("[a-c]*.jpg", "b1.jpg", true),
        ("[!a-c]*.jpg", "b1.jpg", false), ("photo-??.jpg", "photo-01.jpg", true), ("**", "a/b/c", true),
        ("d/**/x.jpg", "d/x.jpg", true),
    ])
    func matching(_ pattern: String, _ key: String, _ expected: Bool) throws {
        #expect(try Glob(pattern).matches(key) == expected)
    }

    @Test func overlap() throws {
        #expect(try Glob("press/*.jpg").mayOverlap(Glob("**/*.jpg")))
        #expect(try !Glob("x/*.gif").mayOverlap(Glob("y/*.gif")))
        #expect(try !Glob("*.png").mayOverlap(Glob("*.jpg")))
    }

    @Test func badPatterns() {
        #expect(throws: GlobError.self) { try Glob("a{b,c") }
        #expect(throws: GlobError.self) { try Glob("a[bc") }
    }

    @Test func templates() throws {
        let template = try PathTemplate("img/{dir}/{name}.{style}.{ext}")
        #expect(template.variables == ["dir", "name", "style", "ext"])
        #expect(template.render(["dir": "", "name": "a", "style": "thumb", "ext": "jpg"]) == "img/a.thumb.jpg")
        #expect(template.render(["dir": "x/y", "name": "a", "style": "thumb", "ext": "webp"]) == "img/x/y/a.thumb.webp")
        #expect(try PathTemplate("../a").escapeProblem != nil)
        #expect(try PathTemplate("/a").escapeProblem != nil)
        #expect(try PathTemplate("a..b/{name}").escapeProblem == nil)
    }
}

@Suite(.ownThreads) struct IncludeTests {
    @Test func includedStylesJoinTheCatalogue() throws {
        let workspace = try Workspace()
        try workspace.write("shared/styles.yaml", "version: 1\nstyles:\n  thumb: image/resize,w_100\n")
        try workspace.write("derive.yaml", "version: 1\ninclude: [shared/styles.yaml]\nstyles:\n  big: image/resize,w_1000\n")
        let result = workspace.load()
        #expect(result.lines == [])
        #expect(result.manifest?.styles.map(\.name) == ["big", "thumb"])
    }

    @Test func errorsInIncludedFilesNameThatFile() throws {
        let workspace = try Workspace()
        try workspace.write("styles.yaml", "version: 1\nstyles:\n  thumb: image/resize,w_0\nregion: x\n")
        try workspace.write("derive.yaml", "version: 1\ninclude: styles.yaml\n")
        let result = workspace.load()
        let errors = result.diagnostics.errors
        #expect(errors.contains { $0.file.hasSuffix("styles.yaml") && $0.line == 3 && $0.message.contains("'w' must be in") })
        #expect(errors.contains { $0.file.hasSuffix("styles.yaml") && $0.line == 4 && $0.message.contains("unknown key 'region' in an included file") })
    }

    @Test func cyclesAreDetected() throws {
        let workspace = try Workspace()
        try workspace.write("a.yaml", "version: 1\ninclude: [b.yaml]\n")
        try workspace.write("b.yaml", "version: 1\ninclude: [a.yaml]\n")
        let result = workspace.load("a.yaml")
        #expect(result.diagnostics.errors.contains { $0.message.contains("include cycle: a.yaml → b.yaml → a.yaml") && $0.line == 2 })
    }

    @Test func missingInclude() throws {
        let result = try Workspace().load(yaml: "version: 1\ninclude: [nope.yaml]\n")
        #expect(result.has(2, 11, "nope.yaml: no such file"), "\(result.lines)")
        #expect(result.diagnostics.errors.first?.message.hasPrefix("cannot read manifest /") == true)
    }

    @Test func duplicateStyleAcrossFiles() throws {
        let workspace = try Workspace()
        try workspace.write("styles.yaml", "version: 1\nstyles:\n  thumb: image/resize,w_100\n")
        try workspace.write("derive.yaml", "version: 1\ninclude: [styles.yaml]\nstyles:\n  thumb: image/resize,w_200\n")
        #expect(workspace.load().has(4, 3, "style 'thumb' is already defined"))
    }
}

@Suite(.ownThreads) struct DemoManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The demo in Manifests/ loads cleanly against the real Samples/ and means what it says.
    @Test func demoManifestRoundTrips() throws {
        let result = ManifestLoader().load(Self.root.appendingPathComponent("Manifests/site.yaml").path)
        #expect(result.diagnostics.all.isEmpty, "\(result.diagnostics.sorted)")
        let manifest = try #require(result.manifest)
        #expect(manifest.buckets.map(\.name) == ["samples", "site", "previews"])
        #expect(manifest.styles.map(\.name) == ["avatar", "hero", "preview", "square", "stamped", "thumb"])
        let samples = try #require(manifest.bucket(named: "samples"))
        #expect(samples.effectiveACL(of: "landscape.jpg") == .publicRead)
        #expect(samples.effectiveACL(of: "portrait.jpg") == .private)
        let srcset = try #require(manifest.rules.first { $0.name == "srcset" })
        let variants = try srcset.variants(catalogue: manifest.catalogue)
        #expect(variants.map(\.pipeline.canonical) == [320, 640, 960].map { "image/resize,m_lfit,w_\($0),limit_1,color_FFFFFF/quality,q_80/format,webp" })
        #expect(srcset.to.render(["name": "landscape", "w": "640"]) == "srcset/landscape-640.webp")
        #expect(manifest.index?.path == "derive-index.json")
        #expect(manifest.stateFolder.hasSuffix(".build/demo/state"))
        #expect(manifest.lockFile == Self.root.appendingPathComponent("Manifests/site.lock").standardizedFileURL.path)
    }

    /// The demo stamps a private logo on a public photo; its rule says so with `acl:`.
    @Test func removingTheStampedACLTripsTheWatermarkLeakGuard() throws {
        let workspace = try Workspace()
        let original = try String(contentsOf: Self.root.appendingPathComponent("Manifests/site.yaml"), encoding: .utf8)
        let edited = original.replacingOccurrences(of: "    acl: public-read              # logo-alpha.png", with: "    # logo-alpha.png")
            .replacingOccurrences(of: "path: ../Samples", with: "path: \(Self.root.appendingPathComponent("Samples").path)")
        #expect(edited != original)
        try workspace.write("site.yaml", edited)
        try workspace.write("styles.yaml", try String(contentsOf: Self.root.appendingPathComponent("Manifests/styles.yaml"), encoding: .utf8))
        let result = ManifestLoader().load(workspace.path("site.yaml"))
        #expect(result.diagnostics.errors.map(\.message) == [
            "rule 'stamped' stamps private watermark objects of bucket 'samples' (logo-alpha.png) into public bucket 'site'"])
    }

    @Test func removingTheExplicitACLTripsTheLeakGuard() throws {
        let workspace = try Workspace()
        let original = try String(contentsOf: Self.root.appendingPathComponent("Manifests/site.yaml"), encoding: .utf8)
        let edited = original.replacingOccurrences(of: "    acl: public-read              # portrait.jpg", with: "    # portrait.jpg")
            .replacingOccurrences(of: "path: ../Samples", with: "path: \(Self.root.appendingPathComponent("Samples").path)")
        try workspace.write("site.yaml", edited)
        // Includes are read only below the manifest's folder: the catalogue comes along.
        try workspace.write("styles.yaml", try String(contentsOf: Self.root.appendingPathComponent("Manifests/styles.yaml"), encoding: .utf8))
        let result = ManifestLoader().load(workspace.path("site.yaml"))
        #expect(result.diagnostics.errors.count == 1)
        #expect(result.diagnostics.errors.first?.message.contains("rule 'srcset' writes derivatives of private objects of bucket 'samples' (portrait.jpg)") == true)
    }
}
