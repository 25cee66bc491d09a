import Foundation
import Testing
import TestSupport

/// Issue #13 after attack 15/16 (static): `{hash}` alone in `to:` (L5), and the JSON Schema
/// `derive schema` prints agreeing with `derive validate` (attack 15's L7 list).
@Suite(.ownThreads, .serialized) struct SiteRound16Tests {
    typealias Project = BuildSafetyAttackTests.Project

    static func manifest(to: String, from: String = "src/*.jpg", bucket: String = "", name: String = "r", top: String = "", matrix: String = "") -> String {
        """
        version: 1
        buckets:
          src: {path: src}
          out: {path: out\(bucket)}
        derivatives:
          - name: \(name)
            from: \(from)
            process: image/resize,w_40/format,webp
            to: \(to)
        \(matrix)\(top)
        """
    }

    // MARK: L5: {hash} alone

    /// Attack 15/16's L5: `to: out/h/{hash:4}.webp` with several sources said "would be written
    /// twice" once per pair of sources although the bytes differ. It is now one error at load
    /// time, at `{hash}` (file:line:column), saying to add {name} or {key}; nothing is built.
    @Test(arguments: ["out/h/{hash:4}.webp", "out/{hash}.{ext}", "out/{dir}/{hash}.webp"])
    func hashAloneWithAGlobIsRefusedAtLoadTime(to: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(to: to))
        let validate = try project.run(["validate"])
        #expect(validate.status != 0, "\(text(validate.stdout))")
        let column = 9 + to.distance(from: to.startIndex, to: to.range(of: "{hash")!.lowerBound)
        #expect(validate.stderr.contains("derive.yaml:9:\(column): error: {hash} alone"), "\(validate.stderr)")
        #expect(validate.stderr.contains("{name} or {key}"), "\(validate.stderr)")
        let plan = try project.run(["plan"])
        #expect(!plan.stderr.contains("would be written twice"), "\(plan.stderr)")
        #expect(plan.stderr.components(separatedBy: "{hash} alone").count == 2, "one error, not one per source: \(plan.stderr)")
        #expect(try project.run(["build", "-q"]).status != 0)
        #expect(!project.exists("out"))
    }

    /// With {name} or {key} beside it, or a `from` naming one file, `{hash}` is unique and builds.
    @Test(arguments: [("out/{name}.{hash:4}.webp", "src/*.jpg"), ("out/{key}.{hash}.webp", "src/*.jpg"), ("out/{hash}.webp", "src/landscape.jpg")])
    func hashWithANameOrOneSourceBuilds(to: String, from: String) throws {
        let project = try Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", Self.manifest(to: to, from: from))
        let build = try project.run(["build", "-q"])
        #expect(build.status == 0, "\(build.stderr)")
    }

    // MARK: The schema agrees with validate

    /// Attack 15's L7: manifests the schema rejected while derive accepted them (`version: "1"`,
    /// matrix values 1.5 and true, rule names with spaces), and the reverse (bucket URLs derive
    /// refuses, `{hash:3}`, `{hash:65}`, two `{hash}`, rule names with `/` or bidi controls).
    /// Each case is checked by `derive validate` and by Python's jsonschema against
    /// `derive schema`; they must agree. Skipped without python3, PyYAML and jsonschema.
    @Test func theSchemaAndValidateAgree() throws {
        let probe = try CLI.run(["python3", "-c", "import jsonschema, yaml"], executable: "/usr/bin/env")
        guard probe.status == 0 else { return }   // no Python jsonschema here: CI's interop job runs schema_check.py
        let project = try Project(index: false)
        defer { project.remove() }
        let schema = try CLI.run(["schema"])
        try schema.stdout.write(to: project.url("schema.json"))
        let matrix = "    matrix: {w: [%@]}\n"
        let cases: [(String, String)] = [
            ("baseline", Self.manifest(to: "out/{name}.webp")),
            ("version \"1\"", Self.manifest(to: "out/{name}.webp").replacingOccurrences(of: "version: 1", with: "version: \"1\"")),
            ("matrix 1.5", Self.manifest(to: "out/{name}-{w}.webp", matrix: matrix.replacingOccurrences(of: "%@", with: "1.5"))),
            ("matrix true", Self.manifest(to: "out/{name}-{w}.webp", matrix: matrix.replacingOccurrences(of: "%@", with: "true"))),
            ("name hero image", Self.manifest(to: "out/{name}.webp", name: "hero image")),
            ("name héro", Self.manifest(to: "out/{name}.webp", name: "héro")),
            ("name a/b", Self.manifest(to: "out/{name}.webp", name: "\"a/b\"")),
            ("name bidi", Self.manifest(to: "out/{name}.webp", name: "\"a\\u202Eb\"")),
            ("name empty", Self.manifest(to: "out/{name}.webp", name: "\"\"")),
            ("url https", Self.manifest(to: "out/{name}.webp", bucket: ", url: \"https://cdn.example.com/img\"")),
            ("url path", Self.manifest(to: "out/{name}.webp", bucket: ", url: /img/")),
            ("url ../", Self.manifest(to: "out/{name}.webp", bucket: ", url: ../img")),
            ("url //host", Self.manifest(to: "out/{name}.webp", bucket: ", url: \"//evil.com\"")),
            ("url /a//b", Self.manifest(to: "out/{name}.webp", bucket: ", url: \"/a//b\"")),
            ("url javascript", Self.manifest(to: "out/{name}.webp", bucket: ", url: \"javascript:x\"")),
            ("url port 0", Self.manifest(to: "out/{name}.webp", bucket: ", url: \"https://h:0/x\"")),
            ("url space", Self.manifest(to: "out/{name}.webp", bucket: ", url: \"/a b\"")),
            ("url empty", Self.manifest(to: "out/{name}.webp", bucket: ", url: \"\"")),
            ("url user", Self.manifest(to: "out/{name}.webp", bucket: ", url: \"https://u@h/x\"")),
            ("hash:8", Self.manifest(to: "out/{name}.{hash:8}.webp")),
            ("hash:3", Self.manifest(to: "out/{name}.{hash:3}.webp")),
            ("hash:65", Self.manifest(to: "out/{name}.{hash:65}.webp")),
            ("hash twice", Self.manifest(to: "out/{name}.{hash}.{hash:8}.webp")),
        ]
        var disagreements: [String] = []
        for (what, text) in cases {
            try project.write("derive.yaml", text)
            let validate = try project.run(["validate"])
            let checked = try CLI.run(["python3", "-c", """
                import json, sys, yaml, jsonschema
                schema = json.load(open(sys.argv[1]))
                document = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
                sys.exit(1 if list(jsonschema.Draft202012Validator(schema).iter_errors(document)) else 0)
                """, project.url("schema.json").path, project.url("derive.yaml").path], executable: "/usr/bin/env")
            if (validate.status == 0) != (checked.status == 0) {
                disagreements.append("\(what): derive \(validate.status == 0 ? "accepts" : "refuses"), the schema \(checked.status == 0 ? "accepts" : "refuses") \(validate.stderr)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
    }
}
