import Foundation
import Testing
import TestSupport

/// Attack 13 on `derive diff` (review): each test replays one finding of the attacker's report.
@Suite(.ownThreads, .serialized, .enabled(if: DiffRepository.gitFound, "git is not installed (/usr/bin/git)"))
struct DiffAttack13Tests {
    static let gallery = ["site/landscape.hero.jpg", "site/landscape.thumb.jpg", "site/portrait.hero.jpg", "site/portrait.thumb.jpg"]

    /// The first manifest with `budget` on the gallery rule.
    static func manifest(budget: String) -> String {
        DiffRepository.manifestOne.replacingOccurrences(of: "    to: site/{name}.{style}.{ext}\n",
                                                        with: "    to: site/{name}.{style}.{ext}\n    budget: \(budget)\n")
    }

    /// A repository whose committed manifest has `budget`, built.
    static func built(budget: String) throws -> DiffRepository {
        let repository = try DiffRepository()
        try repository.write("derive.yaml", manifest(budget: budget))
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "budget")
        let build = try repository.run(["build", "--quiet"])
        #expect(build.status == 0, "\(build.stderr)")
        return repository
    }

    /// The gallery outputs a diff fails (any gate failure), from its JSON.
    static func failing(_ result: CLI.Result) throws -> Set<String> {
        Set(DiffAttack12Tests.entries(try DiffAttack12Tests.object(result))
            .filter { !($0["gateFailures"] as? [String] ?? []).isEmpty }.compactMap { $0["output"] as? String })
    }

    /// The gallery outputs a build names in its errors (a breach of an output built before, or
    /// a render refused by its budget).
    static func failing(build: CLI.Result) -> Set<String> {
        Set(gallery.filter { build.stderr.contains($0) })
    }

    /// N4: a change that only lowers `max_bytes` passed `diff --fail-on`, and the next build
    /// failed. The outputs it leaves unchanged are judged against the new budget (the built
    /// file, digest-checked, or a render when the file is gone), listed as `budget`, and fail
    /// the gates and the JUnit report: diff and build agree, output by output.
    @Test func loweredMaxBytesFailsDiffAsItFailsTheBuild() throws {
        let repository = try Self.built(budget: "{max_bytes: 500000}")
        defer { repository.remove() }
        let thumbs = max(repository.size("out/landscape.thumb.jpg"), repository.size("out/portrait.thumb.jpg"))
        let heroes = min(repository.size("out/landscape.hero.jpg"), repository.size("out/portrait.hero.jpg"))
        try #require(thumbs > 0 && heroes > thumbs)
        let limit = thumbs + 1
        try repository.write("derive.yaml", Self.manifest(budget: "{max_bytes: \(limit)}"))
        // One file is gone: its unchanged recipe is rendered to learn its bytes.
        try FileManager.default.removeItem(at: repository.folder.appendingPathComponent("out/portrait.hero.jpg"))
        let junit = repository.folder.appendingPathComponent("junit.xml").path
        let diff = try repository.run(["diff", "--fail-on", "ssim<0.01", "--json", "--junit", junit])
        #expect(diff.status == 1, "\(diff.stderr)")
        let object = try DiffAttack12Tests.object(diff)
        let budget = DiffAttack12Tests.entries(object).filter { $0["kind"] as? String == "budget" }
        #expect(budget.compactMap { $0["output"] as? String }.sorted() == ["site/landscape.hero.jpg", "site/portrait.hero.jpg"], "\(budget)")
        for entry in budget {
            let bytes = try #require((entry["bytesAfter"] as? NSNumber)?.intValue)
            #expect(bytes > limit)
            #expect((entry["gateFailures"] as? [String])?.contains("budget lowered: \(bytes) B > max_bytes \(limit) (was 500000)") == true, "\(entry)")
        }
        #expect(repository.size("out/landscape.hero.jpg") == (budget.first { $0["output"] as? String == "site/landscape.hero.jpg" }?["bytesAfter"] as? NSNumber)?.intValue)
        let totals = object["totals"] as? [String: Any]
        #expect(totals?["budget"] as? Int == 2, "\(String(describing: totals))")
        // Unchanged outputs are not changed bytes: the totals do not count them.
        #expect((totals?["bytesBefore"] as? NSNumber)?.intValue == 0)
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("failures=\"2\""), "\(xml)")
        #expect(xml.contains("budget lowered: "), "\(xml)")
        let text = String(decoding: try repository.run(["diff", "--fail-on", "ssim<0.01"]).stdout, as: UTF8.self)
        #expect(text.contains("rule 'gallery', style 'hero': 2 over budget"), "\(text)")
        #expect(text.contains("Total: 0 created, 0 rebuilt, 0 deleted, 2 over budget;"), "\(text)")
        // Nothing was written into the bucket by the review.
        #expect(!FileManager.default.fileExists(atPath: repository.folder.appendingPathComponent("out/portrait.hero.jpg").path))

        let build = try repository.run(["build", "--quiet"])
        #expect(build.status == 1, "\(build.stderr)")
        #expect(Self.failing(build: build) == (try Self.failing(diff)), "\(build.stderr)")

        // A budget every output meets: both pass.
        try repository.write("derive.yaml", Self.manifest(budget: "{max_bytes: \(heroes * 4)}"))
        let pass = try repository.run(["diff", "--fail-on", "ssim<0.01", "--json"])
        #expect(pass.status == 0, "\(pass.stderr)")
        #expect(try Self.failing(pass).isEmpty)
        #expect(try repository.run(["build", "--quiet"]).status == 0)
    }

    /// N4: a raised `min_ssim` is judged as the build judges it: the SSIM of the built file
    /// against its lossless reference, the same number on both sides.
    @Test func raisedMinSSIMFailsDiffAsItFailsTheBuild() throws {
        let repository = try Self.built(budget: "{min_ssim: 0.5}")
        defer { repository.remove() }
        try repository.write("derive.yaml", Self.manifest(budget: "{min_ssim: 0.9999}"))
        let diff = try repository.run(["diff", "--fail-on", "ssim<0.01", "--json"])
        #expect(diff.status == 1, "\(diff.stderr)")
        let budget = DiffAttack12Tests.entries(try DiffAttack12Tests.object(diff)).filter { $0["kind"] as? String == "budget" }
        #expect(!budget.isEmpty)
        let build = try repository.run(["build", "--quiet"])
        #expect(build.status == 1, "\(build.stderr)")
        #expect(Self.failing(build: build) == (try Self.failing(diff)), "\(build.stderr)")
        for entry in budget {
            let output = try #require(entry["output"] as? String)
            let ssim = try #require(entry["referenceSSIM"] as? Double)
            #expect((entry["gateFailures"] as? [String])?.first?.hasPrefix("budget raised: SSIM ") == true, "\(entry)")
            #expect(build.stderr.contains("\(output): SSIM \(String(format: "%.4f", ssim)) against a lossless reference"), "\(output) \(ssim): \(build.stderr)")
        }
    }

    /// Item 2 of the brief (N3, N5): the stderr summary named `--fail-on`'s conditions for an
    /// output that failed its budget, or `total>+5%` for an output the change cannot build.
    @Test func summaryNamesWhatEachOutputFailed() throws {
        let repository = try Self.built(budget: "{max_bytes: 500000}")
        defer { repository.remove() }
        try repository.write("derive.yaml", Self.manifest(budget: "{max_bytes: 100}"))
        let budget = try repository.run(["diff", "--fail-on", "ssim<0.01"])
        #expect(budget.status == 1)
        #expect(budget.stderr.contains("4 outputs over their rule's budget"), "\(budget.stderr)")
        #expect(!budget.stderr.contains("crossed --fail-on"), "\(budget.stderr)")

        try repository.write("derive.yaml", Self.manifest(budget: "{max_bytes: 500000}"))
        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(
            of: "quality,q_80", with: "quality,q_80/watermark,image_bm9wZS5wbmc"))   // nope.png is not in the bucket
        let broken = try repository.run(["diff", "--fail-on", "total>+5%"])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("2 outputs fail to build"), "\(broken.stderr)")
        #expect(!broken.stderr.contains("crossed --fail-on"), "\(broken.stderr)")

        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(of: "q_80", with: "q_5"))
        let crossed = try repository.run(["diff", "--fail-on", "ssim<0.999"])
        #expect(crossed.status == 1)
        #expect(crossed.stderr.contains("2 outputs crossed --fail-on 'ssim<0.999'"), "\(crossed.stderr)")
        #expect(!crossed.stderr.contains("fail to build") && !crossed.stderr.contains("budget"), "\(crossed.stderr)")
    }

    /// N5: `--junit` naming one of the report's own files (`--html rep --junit rep/index.html`)
    /// was caught only after the report was written, blaming a file derive had just made. It is
    /// refused before anything is written; `rep/junit.xml` (the README's CI line) is fine.
    @Test func junitCollidingWithTheReportIsRefusedFirst() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)
        for junit in ["rep/index.html", "rep/images/0001-old.jpg", "rep/.derive-report", "rep/images"] {
            let result = try repository.run(["diff", "--html", "rep", "--junit", junit, "--fail-on", "ssim<0.01"])
            #expect(result.status == 1, "\(junit): \(result.stderr)")
            #expect(result.stderr.contains("is one of the report's own files"), "\(junit): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: repository.folder.appendingPathComponent("rep").path), "\(junit)")
        }
        let fine = try repository.run(["diff", "--html", "rep", "--junit", "rep/junit.xml", "--fail-on", "ssim<0.01"])
        #expect(fine.status == 0, "\(fine.stderr)")
        #expect(FileManager.default.fileExists(atPath: repository.folder.appendingPathComponent("rep/junit.xml").path))
    }

    /// N5: `--junit ''` was an I/O error (exit 1); it is a usage error (64).
    @Test func emptyJUnitPathIsAUsageError() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        let result = try repository.run(["diff", "--junit", ""])
        #expect(result.status == 64, "\(result.status) \(result.stderr)")
        #expect(result.stderr.contains("--junit"), "\(result.stderr)")
    }

    /// N5: without `--fail-on`, an output the change cannot build was a passing JUnit test case.
    /// It fails there (the build would fail it); the exit status stays 0 without `--fail-on`.
    /// The `!` line shows the new recipe too, not only the old one.
    @Test func junitWithoutFailOnFailsWhatTheBuildWouldFail() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(
            of: "quality,q_80", with: "quality,q_80/watermark,image_bm9wZS5wbmc"))   // nope.png is not in the bucket
        let junit = repository.folder.appendingPathComponent("junit.xml").path
        let result = try repository.run(["diff", "--junit", junit])
        #expect(result.status == 0, "\(result.stderr)")
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("failures=\"2\""), "\(xml)")
        #expect(xml.contains("<failure message=\"fails to build: the watermark object"), "\(xml)")
        let text = String(decoding: result.stdout, as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.contains("! site/landscape.thumb.jpg") }.map(String.init) ?? ""
        #expect(line.contains("/quality,q_80 → ") && line.contains("/watermark,") && line.contains("image_bm9wZS5wbmc"), "\(text)")
    }

    /// N5: without renders the totals said `bytesBefore: 0` while every entry's was unknown.
    @Test func unknownBytesBeforeIsUnknownInTheTotals() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)   // never built: no old bytes are known
        let object = try DiffAttack12Tests.object(repository.run(["diff", "--json"]))
        let totals = try #require(object["totals"] as? [String: Any])
        #expect(totals["bytesBefore"] is NSNull || totals["bytesBefore"] == nil, "\(totals)")
        let text = String(decoding: try repository.run(["diff"]).stdout, as: UTF8.self)
        #expect(text.contains("; bytes unknown → not rendered."), "\(text)")
        // Built at the first commit: every old size is on record, and the total is a number again.
        try repository.write("derive.yaml", DiffRepository.manifestOne)
        try repository.write("styles.yaml", DiffRepository.stylesOne)
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        try repository.change(commit: false)
        let built = try DiffAttack12Tests.object(repository.run(["diff", "--json"]))
        #expect(((built["totals"] as? [String: Any])?["bytesBefore"] as? NSNumber)?.intValue ?? 0 > 0)
    }

    /// N5: a right-to-left override (U+202E) in a name was printed raw: it reorders what the
    /// reviewer reads. Bidi controls are escaped like C0 controls.
    @Test func bidiControlsInNamesAreShownEscaped() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        let hostile = "a\u{202E}gnp.exe\u{2066}.png"
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("logo-alpha.png"), to: repository.folder.appendingPathComponent("src/" + hostile))
        try repository.change(commit: false)
        let result = try repository.run(["diff"])
        #expect(result.status == 0, "\(result.stderr)")
        let text = String(decoding: result.stdout, as: UTF8.self)
        #expect(!text.unicodeScalars.contains { $0.value == 0x202E || $0.value == 0x2066 }, "\(text)")
        #expect(text.contains("a\\u{202E}gnp.exe\\u{2066}"), "\(text)")
    }
}

/// N5: `derive catalog` printed matrix values raw (terminal escapes, bidi overrides) and said a
/// catalogue of rule recipes only was empty.
@Suite(.ownThreads, .serialized) struct CatalogAttack13Tests {
    /// Terminal escapes (control characters) in matrix values are refused by validation since
    /// round 24 (MatrixValueTests); a bidi override is no control character and must be escaped.
    @Test func rowLabelsAreEscaped() throws {
        let project = try CatalogProject("""
        version: 1
        buckets:
          photos: {path: src}
          site: {path: out}
        derivatives:
          - name: tagged
            from: photos/*.png
            matrix: {tag: ["plain", "b\\u202Ec"]}
            process: image/resize,w_{w}
            to: site/{tag}/{name}.png

        """.replacingOccurrences(of: "w_{w}", with: "w_40"))
        defer { project.remove() }
        let result = try project.run(["catalog"])
        let text = String(decoding: result.stdout, as: UTF8.self)
        #expect(result.status == 0, "\(result.stderr) \(text)")
        #expect(!result.stdout.contains(0x1B) && !result.stdout.contains(0x07), "\(text)")
        #expect(!text.unicodeScalars.contains { $0.value == 0x202E }, "\(text)")
        #expect(text.contains("b\\u{202E}c"), "\(text)")
        // Two rule recipes and no `styles:`: not an empty catalogue.
        #expect(!result.stderr.contains("the catalogue is empty"), "\(result.stderr)")
        #expect(text.hasPrefix("derive catalog derive.yaml: 0 styles and 2 rule recipes"), "\(text)")
    }
}
