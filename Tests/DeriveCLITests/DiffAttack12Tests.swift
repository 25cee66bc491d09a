import Foundation
import Testing
import TestSupport

/// Attack 12 on `derive diff` (review): each test replays one finding of the attacker's report.
@Suite(.ownThreads, .serialized, .enabled(if: DiffRepository.gitFound, "git is not installed (/usr/bin/git)"))
struct DiffAttack12Tests {
    static func object(_ result: CLI.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
    }

    static func entries(_ object: [String: Any]) -> [[String: Any]] {
        (object["groups"] as? [[String: Any]] ?? []).flatMap { $0["entries"] as? [[String: Any]] ?? [] }
    }

    /// H1: `--junit FILE` replaced any regular file (the manifest under review, a source, the
    /// lock, a built output). It writes only a new file or over a JUnit report of its own, never
    /// inside a bucket or the state folder.
    @Test func junitNeverReplacesAUserFile() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        try repository.change(commit: false)
        let victims = ["derive.yaml", "styles.yaml", "derive.lock", "src/landscape.jpg", "out/landscape.thumb.jpg", "notes.txt"]
        try repository.write("notes.txt", "mine\n")
        var before: [String: Data] = [:]
        for victim in victims { before[victim] = try Data(contentsOf: repository.folder.appendingPathComponent(victim)) }
        for victim in victims {
            let result = try repository.run(["diff", "--junit", victim])
            #expect(result.status == 1, "\(victim)")
            #expect(try Data(contentsOf: repository.folder.appendingPathComponent(victim)) == before[victim], "\(victim) was replaced")
        }
        let existing = try repository.run(["diff", "--junit", "notes.txt"])
        #expect(existing.stderr.contains("already exists and is not a JUnit report derive wrote"), "\(existing.stderr)")
        #expect(!existing.stderr.contains("-o -"))
        // A new file inside a bucket or the state folder is refused too.
        let inBucket = try repository.run(["diff", "--junit", "out/junit.xml"])
        #expect(inBucket.status == 1 && inBucket.stderr.contains("is inside bucket 'site'"), "\(inBucket.stderr)")
        #expect(!FileManager.default.fileExists(atPath: repository.folder.appendingPathComponent("out/junit.xml").path))
        let state = try FileManager.default.contentsOfDirectory(atPath: repository.folder.appendingPathComponent(".derive").path).first ?? "derive"
        let inState = try repository.run(["diff", "--junit", ".derive/\(state)/junit.xml"])
        #expect(inState.status == 1 && inState.stderr.contains("is inside the state folder"), "\(inState.stderr)")
        // L4: a report folder in the state folder is refused as well.
        let reportInState = try repository.run(["diff", "--html", ".derive/\(state)/report"])
        #expect(reportInState.status == 1 && reportInState.stderr.contains("is inside the state folder"), "\(reportInState.stderr)")
        // A new file, then the same file again (a report of its own): both written.
        for _ in 0..<2 {
            let fresh = try repository.run(["diff", "--junit", "junit.xml"])
            #expect(fresh.status == 0, "\(fresh.stderr)")
            let xml = try String(contentsOfFile: repository.folder.appendingPathComponent("junit.xml").path, encoding: .utf8)
            #expect(xml.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"derive diff\""))
        }
    }

    /// M1: after building the new recipe (to look at it), bytes before came from the file on
    /// disk, which the new recipe made: +0.0%, and `bytes>+N%` never fired.
    @Test func bytesBeforeIsTheOldRecipesAfterBuildingTheNewOne() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        let oldSize = repository.size("out/landscape.thumb.jpg")
        try repository.change(commit: false)   // thumb q_80 → q_95: larger files
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        let newSize = repository.size("out/landscape.thumb.jpg")
        #expect(newSize > oldSize * 11 / 10)
        let plain = try Self.object(repository.run(["diff", "--json"]))
        let thumb = Self.entries(plain).first { $0["output"] as? String == "site/landscape.thumb.jpg" }
        // Without renders the old bytes are unknown (the state's record is the new recipe's).
        #expect(thumb?["bytesBefore"] == nil)
        let gated = try repository.run(["diff", "--fail-on", "bytes>+10%", "--json"])
        #expect(gated.status == 1, "\(gated.stderr)")
        let rendered = Self.entries(try Self.object(gated)).first { $0["output"] as? String == "site/landscape.thumb.jpg" }
        #expect((rendered?["bytesBefore"] as? NSNumber)?.intValue == oldSize)
        #expect((rendered?["bytesAfter"] as? NSNumber)?.intValue == newSize)
    }

    /// M2: an output the new recipe cannot make (a missing watermark, a render over the limits)
    /// was reported as deleted, or as a note, and passed every gate and the JUnit report.
    @Test func outputsTheChangeBreaksFailTheGates() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(
            of: "quality,q_80", with: "quality,q_80/watermark,image_bm9wZS5wbmc"))   // nope.png is not in the bucket
        let junit = repository.folder.appendingPathComponent("junit.xml").path
        let result = try repository.run(["diff", "--fail-on", "ssim<0.5", "--junit", junit, "--json"])
        #expect(result.status == 1, "\(result.stderr)")
        let object = try Self.object(result)
        let failed = Self.entries(object).filter { $0["kind"] as? String == "failed" }
        #expect(failed.compactMap { $0["output"] as? String }.sorted() == ["site/landscape.thumb.jpg", "site/portrait.thumb.jpg"])
        #expect(failed.allSatisfy { ($0["failure"] as? String)?.contains("the watermark object 'nope.png' does not exist") == true })
        #expect(!Self.entries(object).contains { $0["kind"] as? String == "deleted" })
        let totals = object["totals"] as? [String: Any]
        #expect(totals?["failed"] as? Int == 2 && totals?["deleted"] as? Int == 0)
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("failures=\"2\""), "\(xml)")
        let text = String(decoding: try repository.run(["diff"]).stdout, as: UTF8.self)
        #expect(text.contains("rule 'gallery', style 'thumb': 2 failed"), "\(text)")
        #expect(text.contains("Total: 0 created, 0 rebuilt, 0 deleted, 2 failing;"), "\(text)")

        // A render the limits refuse: the output fails, not a note.
        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(of: "hero: image/resize,w_200", with: "hero: image/resize,w_16000,limit_0"))
        let tooLarge = try repository.run(["diff", "--fail-on", "ssim<0.5", "--json"])
        #expect(tooLarge.status == 1, "\(tooLarge.stderr)")
        let heroes = Self.entries(try Self.object(tooLarge)).filter { ($0["output"] as? String)?.contains(".hero.") == true }
        #expect(heroes.count == 2)
        #expect(heroes.allSatisfy { ($0["failure"] as? String)?.hasPrefix("the new render failed") == true && ($0["gateFailures"] as? [String])?.isEmpty == false })
        // N3: such an output is failed, not rebuilt, and counted so.
        #expect(heroes.allSatisfy { $0["kind"] as? String == "failed" }, "\(heroes)")
        let tooLargeTotals = try Self.object(tooLarge)["totals"] as? [String: Any]
        #expect(tooLargeTotals?["failed"] as? Int == 2, "\(String(describing: tooLargeTotals))")
    }

    /// N2: with `{hash}` in `to:`, an output the new recipe cannot build was listed apart
    /// (`failures of no known rule`) and its old file as deleted; the build keeps it.
    @Test func hashedOutputsThatFailArePairedWithTheirOldFiles() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.write("derive.yaml", DiffRepository.manifestOne.replacingOccurrences(of: "to: site/{name}.{style}.{ext}", with: "to: site/{name}.{style}.{hash}.{ext}"))
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "hashed")
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(
            of: "quality,q_80", with: "quality,q_80/watermark,image_bm9wZS5wbmc"))
        let result = try repository.run(["diff", "--fail-on", "ssim<0.5", "--json"])
        #expect(result.status == 1, "\(result.stderr)")
        let object = try Self.object(result)
        let entries = Self.entries(object)
        #expect(!entries.contains { $0["kind"] as? String == "deleted" }, "\(entries)")
        let failed = entries.filter { $0["kind"] as? String == "failed" }
        #expect(failed.count == 2, "\(entries)")
        for entry in failed {
            #expect((entry["output"] as? String)?.range(of: #"^site/\w+\.thumb\.[0-9a-f]+\.jpg$"#, options: .regularExpression) != nil, "\(entry)")
            #expect((entry["before"] as? String)?.contains("q_80") == true, "\(entry)")
        }
        let totals = object["totals"] as? [String: Any]
        #expect(totals?["failed"] as? Int == 2 && totals?["deleted"] as? Int == 0, "\(String(describing: totals))")
        let text = String(decoding: try repository.run(["diff"]).stdout, as: UTF8.self)
        #expect(!text.contains("failures of no known rule"), "\(text)")
    }

    /// M3: with `{hash}` in output names (as `derive init` writes), a style change showed as
    /// created plus deleted: no SSIM, no bytes, and the gates passed a q_80 → q_20 change.
    @Test func hashedNamesArePairedByRuleSourceAndStyle() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.write("derive.yaml", DiffRepository.manifestOne.replacingOccurrences(of: "to: site/{name}.{style}.{ext}", with: "to: site/{name}.{style}.{hash}.{ext}"))
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "hashed")
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(of: "q_80", with: "q_20"))
        let result = try repository.run(["diff", "--fail-on", "ssim<0.99", "--json"])
        #expect(result.status == 1, "\(result.stderr)")
        let object = try Self.object(result)
        let totals = object["totals"] as? [String: Any]
        #expect(totals?["rebuilt"] as? Int == 2 && totals?["created"] as? Int == 0 && totals?["deleted"] as? Int == 0)
        let thumbs = Self.entries(object).filter { $0["kind"] as? String == "rebuilt" }
        #expect(thumbs.count == 2)
        for entry in thumbs {
            let ssim = try #require(entry["ssim"] as? Double)
            #expect(ssim < 0.99)
            #expect((entry["outputBefore"] as? String)?.range(of: #"^site/\w+\.thumb\.[0-9a-f]+\.jpg$"#, options: .regularExpression) != nil, "\(entry)")
            #expect((entry["output"] as? String)?.hasSuffix(".thumb.{hash}.jpg") == true)
            #expect((entry["gateFailures"] as? [String])?.first?.hasPrefix("ssim ") == true)
        }
    }

    /// M4: a change that only adds outputs grew the total from 0, which no percentage caught.
    @Test func totalGrowthFromNothingFails() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.write("derive.yaml", DiffRepository.manifestOne + """
          - name: added
            from: photos/*.png
            process: image/resize,w_30/format,png
            to: site/added/{name}.png

        """)
        let result = try repository.run(["diff", "--fail-on", "total>+5%"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(String(decoding: result.stdout, as: UTF8.self).contains("FAIL total bytes 0 → "))
    }

    /// M4: with `--sample`, the total was taken over the sampled outputs only, each created
    /// output counted in full: a gate on it fired or passed by the sample's luck. Each group's
    /// unrendered outputs now count at the mean of its rendered ones (labelled estimated).
    @Test func sampledTotalsAreEstimatesOverEveryOutput() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        try repository.change(commit: false)
        let report = repository.folder.appendingPathComponent("report").path
        let whole = try Self.object(repository.run(["diff", "--renders", report, "--json"]))
        let sampled = try repository.run(["diff", "--renders", report, "--sample", "1", "--json"])
        let object = try Self.object(sampled)
        let totals = try #require(object["totals"] as? [String: Any])
        let wholeTotals = try #require(whole["totals"] as? [String: Any])
        #expect(totals["estimated"] as? Bool == true)
        #expect(totals["sampledOutputs"] as? Int == 3)
        // Every old size is known from the state: the estimate's "before" is exact.
        #expect((totals["bytesBefore"] as? NSNumber)?.intValue == (wholeTotals["bytesBefore"] as? NSNumber)?.intValue)
        // Two thumbnails of one style, one rendered: the other counted at its size, within 30%.
        let estimate = (totals["bytesAfter"] as? NSNumber)?.doubleValue ?? 0, exact = (wholeTotals["bytesAfter"] as? NSNumber)?.doubleValue ?? 1
        #expect(abs(estimate - exact) / exact < 0.3, "\(estimate) vs \(exact)")
        let text = String(decoding: try repository.run(["diff", "--renders", report, "--sample", "1"]).stdout, as: UTF8.self)
        #expect(text.contains("bytes (estimated from the 3 rendered, --sample) "), "\(text)")
    }

    /// M5: a bucket moved to another folder (every output written elsewhere) gave "No changes".
    @Test func bucketChangesAreListed() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.write("derive.yaml", DiffRepository.manifestOne.replacingOccurrences(of: "site: {path: out, acl: public-read}", with: "site: {path: out2, acl: private}"))
        let result = try repository.run(["diff"])
        #expect(result.status == 0, "\(result.stderr)")
        let text = String(decoding: result.stdout, as: UTF8.self)
        #expect(!text.contains("No changes"))
        #expect(text.contains("Buckets:\n  ~ bucket 'site' changed\n      acl: public-read → private\n      path: \(repository.folder.standardizedFileURL.path)/out → \(repository.folder.standardizedFileURL.path)/out2\n")
                || text.contains("      acl: public-read → private\n"), "\(text)")
        #expect(text.contains("/out2\n"), "\(text)")
        let object = try Self.object(repository.run(["diff", "--json"]))
        #expect((object["buckets"] as? [[String: Any]])?.first?["name"] as? String == "site")
    }

    /// `--junit` naming a symbolic link (to a user's file) is refused: neither the link nor its
    /// target is replaced.
    @Test func junitRefusesALink() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)
        try repository.write("notes.txt", "mine\n")
        let link = repository.folder.appendingPathComponent("junit.xml").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "notes.txt")
        let result = try repository.run(["diff", "--junit", "junit.xml"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("is not a regular file (a folder, link or device)"), "\(result.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "notes.txt")
        #expect(try String(contentsOf: repository.folder.appendingPathComponent("notes.txt"), encoding: .utf8) == "mine\n")
    }

    /// A bucket added lists all its settings, one removed lists what it had.
    @Test func bucketsAddedAndRemovedAreListed() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        let extra = DiffRepository.manifestOne.replacingOccurrences(of: "site: {path: out, acl: public-read}",
                                                                    with: "site: {path: out, acl: public-read}\n  spare: {path: spare, acl: private}")
        #expect(extra != DiffRepository.manifestOne)
        try repository.write("derive.yaml", extra)
        let added = String(decoding: try repository.run(["diff"]).stdout, as: UTF8.self)
        #expect(added.contains("Buckets:\n  + bucket 'spare' added\n      acl: private\n      path: "), "\(added)")
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "spare")
        try repository.write("derive.yaml", DiffRepository.manifestOne)
        let removed = String(decoding: try repository.run(["diff"]).stdout, as: UTF8.self)
        #expect(removed.contains("Buckets:\n  - bucket 'spare' removed\n      acl: private\n      path: "), "\(removed)")
    }

    /// L1: a source named with terminal escapes (a window title, a colour) was printed raw.
    @Test func controlCharactersInNamesAreShownEscaped() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        let hostile = "a\u{1B}]0;PWNED\u{07}\u{1B}[31mRED.png"
        try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent("logo-alpha.png"), to: repository.folder.appendingPathComponent("src/" + hostile))
        try repository.change(commit: false)
        let result = try repository.run(["diff"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.contains(0x1B) && !result.stdout.contains(0x07))
        #expect(String(decoding: result.stdout, as: UTF8.self).contains("a\\u{1B}]0;PWNED\\u{7}\\u{1B}[31mRED"))
    }
}
