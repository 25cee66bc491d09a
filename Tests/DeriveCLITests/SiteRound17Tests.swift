import Foundation
import Testing
import TestSupport

/// Issue #13 after attack 17 (static): a public index listed a private bucket's sources, their
/// colours and blurred placeholders (N4); invisible characters in rule names and the unquoted
/// name lists of `derive html` (L1); `objects:` rules silently overridden by a rule's `acl:` (L2).
@Suite(.ownThreads, .serialized) struct SiteRound17Tests {
    /// Attack 17's N4 layout: pub (public-read), priv (private: a passport scan), site
    /// (public-read) holding the index; rule `internal` keeps its outputs private.
    final class Layout {
        let root: URL
        init(internalACL: String = "acl: private", site: String = "{path: site, acl: public-read, url: /site}") throws {
            root = try CLI.temporaryFolder()
            for folder in ["pub", "priv", "site"] {
                try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
            }
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: root.appendingPathComponent("pub/lake.jpg"))
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: root.appendingPathComponent("priv/ceo-passport-scan.jpg"))
            try write(internalACL: internalACL, site: site)
        }
        deinit { try? FileManager.default.removeItem(at: root) }

        func write(internalACL: String, site: String) throws {
            try Data("""
            version: 1
            buckets:
              pub: {path: pub, acl: public-read}
              priv: {path: priv, acl: private}
              site: \(site)
            derivatives:
              - name: gallery
                from: pub/*.jpg
                process: image/resize,w_40/format,webp
                to: site/g/{name}.{hash}.webp
                placeholder: true
              - name: internal
                from: priv/*.jpg
                process: image/resize,w_40/format,webp
                to: site/internal/{name}.{hash}.webp
                \(internalACL)
                placeholder: true
            index: site/index.json

            """.utf8).write(to: root.appendingPathComponent("derive.yaml"))
        }
        func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: root) }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path) }
        func read(_ path: String) -> String? { (try? Data(contentsOf: root.appendingPathComponent(path))).map { String(decoding: $0, as: UTF8.self) } }
    }

    // MARK: N4: a public index lists only public outputs

    /// The attack's manifest validated and built, and the public index carried the private
    /// scan's key, colour and a blurred WebP of it. validate, plan and build now refuse it at the
    /// rule (file:line:column, the index and its ACL, how to fix), and nothing is written.
    @Test func aPublicIndexListingAPrivateRuleIsRefused() throws {
        let layout = try Layout()
        let validate = try layout.run(["validate"])
        #expect(validate.status != 0)
        #expect(validate.stderr.contains("derive.yaml:12:5: error: rule 'internal' writes private outputs (its acl: private), and the index site/index.json, which lists every output, is public-read (bucket 'site')"),
                "\(validate.stderr)")
        #expect(validate.stderr.contains("placeholder images"), "\(validate.stderr)")
        #expect(try layout.run(["plan"]).status != 0)
        let build = try layout.run(["build", "-q"])
        #expect(build.status != 0)
        #expect(build.stderr.contains("rule 'internal' writes private outputs"), "\(build.stderr)")
        #expect(!layout.exists("site/index.json"))
        #expect(!layout.exists("site/internal"))
    }

    /// Either fix from the hint builds: the index made private by an `objects:` rule (it lists
    /// the private scan, and stays private), or the rule's outputs published (`acl: public-read`).
    @Test(arguments: [("acl: private", "{path: site, acl: public-read, url: /site, objects: [{match: index.json, acl: private}]}"),
                      ("acl: public-read", "{path: site, acl: public-read, url: /site}")])
    func eitherFixBuilds(internalACL: String, site: String) throws {
        let layout = try Layout(internalACL: internalACL, site: site)
        let build = try layout.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
        let index = try #require(layout.read("site/index.json"))
        #expect(index.contains("priv/ceo-passport-scan.jpg"))
        #expect(try layout.run(["check"]).status == 0)
    }

    // MARK: L2

    /// Attack 17's L2 as written: validate is valid but warns at the objects rule.
    @Test func anObjectsRuleOverriddenByTheRulesACLIsNamedByValidate() throws {
        let layout = try Layout(internalACL: "acl: public-read",
                                site: "{path: site, acl: public-read, objects: [{match: \"internal/*.webp\", acl: private}, {match: notes.txt, acl: private}]}")
        let validate = try layout.run(["validate"])
        #expect(validate.status == 0, "\(validate.stderr)")
        #expect(validate.stderr.contains("derive.yaml:5:50: warning: objects rule 'internal/*.webp' (private) of bucket 'site' matches outputs of rule 'internal', whose acl: public-read wins"),
                "\(validate.stderr)")
        #expect(validate.stderr.contains("set the rule's acl: instead"), "\(validate.stderr)")
        #expect(!validate.stderr.contains("notes.txt"), "\(validate.stderr)")
    }

    // MARK: L1

    /// Attack 17's L1: `derive html` listed names unquoted (`has several pictures ( sp , e2, xy,
    /// x​y, é)`), where `, ` could be part of a name. They are quoted and escaped as validate
    /// quotes them.
    @Test func htmlQuotesTheNamesItLists() throws {
        let project = try BuildSafetyAttackTests.Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out}
        derivatives:
          - name: "a, b"
            from: src/landscape.jpg
            process: image/resize,w_40/format,webp
            to: out/a/{name}.webp
          - name: "hero image"
            from: src/landscape.jpg
            process: image/resize,w_40/format,webp
            to: out/h/{name}.webp
        index: out/index.json

        """)
        #expect(try project.run(["build", "-q"]).status == 0)
        let several = try project.run(["html", "src/landscape.jpg"])
        #expect(several.status != 0)
        #expect(several.stderr.contains("has several pictures ('a, b', 'hero image'); choose one with --rule"), "\(several.stderr)")
        let unknown = try project.run(["html", "src/landscape.jpg", "--rule", "x\u{200B}y"])
        #expect(unknown.stderr.contains("has no picture for rule 'x\\u{200B}y'; it has: 'a, b', 'hero image'"), "\(unknown.stderr)")
    }

    /// The rule names L1 refuses, and the ones that stay, agree between validate and the JSON
    /// Schema (Python's jsonschema, as `SiteRound16Tests.theSchemaAndValidateAgree`).
    @Test func theSchemaAndValidateAgreeOnRuleNames() throws {
        let probe = try CLI.run(["python3", "-c", "import jsonschema, yaml"], executable: "/usr/bin/env")
        guard probe.status == 0 else { return }   // no Python jsonschema here: CI's interop job runs schema_check.py
        let project = try BuildSafetyAttackTests.Project(index: false)
        defer { project.remove() }
        try CLI.run(["schema"]).stdout.write(to: project.url("schema.json"))
        let names: [(String, Bool)] = [
            ("x\\u200By", false), ("x\\u200Dy", false), ("x\\u2060y", false), ("\\uFEFFxy", false), ("x\\u00ADy", false),
            ("x\\u00A0y", false), ("x\\u3000y", false), (" sp", false), ("sp ", false), ("x\\U000E0041y", false), ("x\\U0001D173y", false),
            ("hero image", true), ("héro", true), ("a, b", true), ("x\\U0001F600y", true), ("Photos (large) · 2×", true), ("a  b", true),
            ("\\U0001F469\\u200D\\U0001F4BB desk", true), ("\\U0001F469\\U0001F3FD\\u200D\\U0001F4BB", true), ("\\U0001F3F3\\uFE0F\\u200D\\U0001F308", true),
            ("\\U0001F468\\u200D\\U0001F469\\u200D\\U0001F467", true), ("x\\u200D\\U0001F4BB", false), ("\\U0001F469\\u200Dy", false),
            ("\\U0001F469\\u200D", false), ("\\U0001F469\\u200D\\u200D\\U0001F4BB", false), ("x\\uFE0F\\u200D\\U0001F4BB", false), ("xy\\n", false),
            // Round 19's V5: variation selectors only where they present an emoji.
            ("x\\uFE0Fy", false), ("x\\uFE0Ey", false), ("xy\\uFE0F", false), ("x\\uFE00y", false), ("\\u845B\\U000E0100", false), ("\\u1820\\u180B", false),
            ("\\u2764\\uFE0F\\uFE0F", false), ("1\\uFE0F", false), ("#\\uFE0E\\u20E3", false), ("\\U0001F469\\U0001F3FD\\uFE0F\\u200D\\U0001F4BB", false),
            ("\\u2764\\uFE0F love", true), ("\\u2764\\uFE0E", true), ("#\\uFE0F\\u20E3 tag", true), ("1\\uFE0F\\u20E30\\uFE0F\\u20E3", true),
            ("\\U0001F3F3\\uFE0F\\u200D\\u26A7\\uFE0F", true), ("\\U0001F469\\uFE0F\\U0001F3FD\\u200D\\U0001F4BB", true),
        ]
        var disagreements: [String] = []
        for (name, valid) in names {
            try project.write("derive.yaml", SiteRound16Tests.manifest(to: "out/{name}.webp", name: "\"\(name)\""))
            let validate = try project.run(["validate"])
            let checked = try CLI.run(["python3", "-c", """
                import json, sys, yaml, jsonschema
                schema = json.load(open(sys.argv[1]))
                document = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
                sys.exit(1 if list(jsonschema.Draft202012Validator(schema).iter_errors(document)) else 0)
                """, project.url("schema.json").path, project.url("derive.yaml").path], executable: "/usr/bin/env")
            if (validate.status == 0) != valid || (checked.status == 0) != valid {
                disagreements.append("\(name): expected \(valid ? "valid" : "refused"); derive \(validate.status == 0 ? "accepts" : "refuses"), the schema \(checked.status == 0 ? "accepts" : "refuses") \(validate.stderr)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
    }
}
