import Foundation
import Testing
import TestSupport

/// Attack 36a's lows L5-L7: README and `--version` disagree on the release; the schema accepts a
/// `to:` validate refuses; init's help and its empty DIR; a watermark key validate let through;
/// a source folder named like the index, which put outputs below the index's path.
@Suite(.ownThreads) struct LowsRound37Tests {
    static let readme = CLI.samples.deletingLastPathComponent().appendingPathComponent("README.md")

    /// L5: every "Derive X.Y" README names is older than the version derive prints, and README's
    /// sample of `derive --version` is what it prints.
    @Test func readmeNamesOnlyOlderReleasesAndShowsTheVersionPrinted() throws {
        let printed = try #require(text(try CLI.run(["--version"]).stdout).split(separator: "\n").first.map(String.init))
        let numbers = printed.dropFirst("derive ".count).split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        try #require(numbers.count == 2, "\(printed)")
        let readme = try String(contentsOf: Self.readme, encoding: .utf8)
        #expect(readme.contains("    $ derive --version\n    \(printed)\n"), "README shows another version than \(printed)")
        let regex = try NSRegularExpression(pattern: #"Derive (\d+)\.(\d+)"#)
        var newer: [String] = []
        for match in regex.matches(in: readme, range: NSRange(readme.startIndex..., in: readme)) {
            let major = Int((readme as NSString).substring(with: match.range(at: 1)))!, minor = Int((readme as NSString).substring(with: match.range(at: 2)))!
            if (major, minor) >= (numbers[0], numbers[1]) { newer.append((readme as NSString).substring(with: match.range)) }
        }
        #expect(newer.isEmpty, "README names \(newer) as older releases, but derive prints \(printed)")
    }

    /// L6: `to:` values the schema and validate judge alike (a `{HASH}` or a `{w}` without matrix).
    /// A matrix variable `HASH` is refused as well since attack 39b's L2: no case of a built-in
    /// is a variable, so the schema can refuse `{HASH}` in any `to:`.
    @Test func theSchemaRefusesVariablesARuleWithoutMatrixCannotHave() throws {
        let probe = try CLI.run(["python3", "-c", "import jsonschema, yaml"], executable: "/usr/bin/env")
        guard probe.status == 0 else { return }   // no Python jsonschema here: CI's interop job runs schema_check.py
        let project = try BuildSafetyAttackTests.Project(index: false)
        defer { project.remove() }
        try CLI.run(["schema"]).stdout.write(to: project.url("schema.json"))
        let cases: [(to: String, matrix: String, valid: Bool)] = [
            ("out/{name}.{HASH}.webp", "", false), ("out/{name}.{w}.webp", "", false), ("out/{Name}.webp", "", false),
            ("out/{name}.webp", "", true), ("out/{dir}/{name}.{hash:8}.webp", "", true), ("out/{name}.{ext}", "", true),
            ("out/{name}-{w}.webp", "    matrix: {w: [40]}\n", true), ("out/{name}-{HASH}.webp", "    matrix: {HASH: [40]}\n", false),
        ]
        var disagreements: [String] = []
        for (to, matrix, valid) in cases {
            try project.write("derive.yaml", SiteRound16Tests.manifest(to: to, matrix: matrix))
            let validate = try project.run(["validate"])
            let checked = try CLI.run(["python3", "-c", """
                import json, sys, yaml, jsonschema
                schema = json.load(open(sys.argv[1]))
                document = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
                sys.exit(1 if list(jsonschema.Draft202012Validator(schema).iter_errors(document)) else 0)
                """, project.url("schema.json").path, project.url("derive.yaml").path], executable: "/usr/bin/env")
            if (validate.status == 0) != valid || (checked.status == 0) != valid {
                disagreements.append("\(to) \(matrix): expected \(valid ? "valid" : "refused"); derive \(validate.status == 0 ? "accepts" : "refuses"), the schema \(checked.status == 0 ? "accepts" : "refuses") \(validate.stderr)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
    }

    /// L7: init's help says its default once and "below or beside"; an empty DIR is named as such.
    @Test func initsHelpAndAnEmptyFolderName() throws {
        // Words as read, whatever the terminal's width wrapped.
        let help = text(try CLI.run(["init", "--help"]).stdout).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.components(separatedBy: "(default: images)").count == 2, "\(help)")
        #expect(help.contains("below or beside the current folder"), "\(help)")
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = try CLI.run(["init", ""], in: folder)
        #expect(empty.status == 1)
        #expect(empty.stderr.contains("DIR is empty") && !empty.stderr.contains("Error:  is"), "\(empty.stderr)")
    }

    /// L7: a watermark image that is no key of the bucket is refused by validate, as by the build.
    @Test func aWatermarkImageOutsideTheBucketIsRefusedByValidate() throws {
        let project = try BuildSafetyAttackTests.Project(index: false)
        defer { project.remove() }
        try project.write("derive.yaml", """
        version: 1
        buckets: {src: {path: src}, out: {path: out}}
        styles:
          s:
            - watermark: {image: "../x.png"}
        derivatives:
          - from: src/*.jpg
            styles: [s]
            to: out/{name}.{style}.jpg
        """)
        let validate = try project.run(["validate"])
        #expect(validate.status == 1)
        #expect(validate.stderr.contains("'../x.png'") && validate.stderr.contains("not a key inside the bucket"), "\(validate.stderr)")
    }

    /// L7: a source folder named like the index would put outputs below the index's path: the
    /// plan refuses it, and the build writes nothing there.
    @Test func outputsBelowTheIndexPathAreAPlanError() throws {
        let project = try BuildSafetyAttackTests.Project(index: false)
        defer { project.remove() }
        try FileManager.default.createDirectory(at: project.url("src/idx.json"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: project.url("src/idx.json/b.jpg"))
        try project.write("derive.yaml", """
        version: 1
        buckets: {src: {path: src}, out: {path: out}}
        derivatives:
          - from: src/**/*.jpg
            process: image/resize,w_40/format,webp
            to: out/{dir}/{name}.webp
        index: out/idx.json
        """)
        let plan = try project.run(["plan"])
        #expect(plan.status == 1)
        #expect(plan.stderr.contains("out/idx.json/b.webp lies under out/idx.json"), "\(plan.stderr)")
        #expect(try project.run(["build"]).status == 1)
        #expect(!FileManager.default.fileExists(atPath: project.url("out/idx.json").path))
    }

    /// L7 and M1: init leaves out images whose outputs would land below its index or page, saying
    /// why, so its first build exits 0.
    @Test func initLeavesOutFoldersNamedLikeItsIndexOrPage() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = folder.appendingPathComponent("photos")
        for sub in ["derive-index.json", "index.html"] {
            try FileManager.default.createDirectory(at: photos.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: photos.appendingPathComponent("a.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("portrait.jpg"), to: photos.appendingPathComponent("derive-index.json/b.jpg"))
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("orientation-1.jpg"), to: photos.appendingPathComponent("index.html/c.jpg"))
        let result = try CLI.run(["init", "photos"], in: folder)
        #expect(text(result.stdout).contains("for 1 image in photos"), "\(text(result.stdout)) \(result.stderr)")
        #expect(result.stderr.contains("photos/derive-index.json/b.jpg is not counted") && result.stderr.contains("below _site/derive-index.json"), "\(result.stderr)")
        #expect(result.stderr.contains("photos/index.html/c.jpg is not counted") && result.stderr.contains("below _site/index.html"), "\(result.stderr)")
        let build = try CLI.run(["build"], in: folder)
        #expect(build.status == 0, "\(build.stderr)")
    }
}
