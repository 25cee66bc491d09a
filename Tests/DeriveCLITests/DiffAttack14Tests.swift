import Foundation
import Testing
import TestSupport

/// Attack 14 on `derive diff` (review): each test replays one finding of the attacker's report.
@Suite(.ownThreads, .serialized, .enabled(if: DiffRepository.gitFound, "git is not installed (/usr/bin/git)"))
struct DiffAttack14Tests {
    /// The first manifest with `budget` on the gallery rule, committed and built.
    static func built(budget: String) throws -> DiffRepository {
        let repository = try DiffRepository()
        try repository.write("derive.yaml", DiffAttack13Tests.manifest(budget: budget))
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "budget")
        let build = try repository.run(["build", "--quiet"])
        #expect(build.status == 0, "\(build.stderr)")
        return repository
    }

    static func gallerySize(_ repository: DiffRepository) -> Int {
        DiffAttack13Tests.gallery.map { repository.size("out/" + $0.dropFirst("site/".count)) }.reduce(0, +)
    }

    /// F1: an output whose file was edited by hand (the plan flags it) dropped out of the
    /// review: a q_80 → q_5 change passed `ssim<0.99`. It is reviewed (the old image rendered
    /// from the old recipe), and the reason the build will refuse to start is noted.
    @Test func anOutputEditedByHandIsStillReviewed() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        let edited = repository.folder.appendingPathComponent("out/landscape.thumb.jpg")
        try FileManager.default.removeItem(at: edited)
        try FileManager.default.copyItem(at: repository.folder.appendingPathComponent("out/portrait.hero.jpg"), to: edited)
        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(of: "q_80", with: "q_5"))
        let result = try repository.run(["diff", "--fail-on", "ssim<0.99", "--json"])
        #expect(result.status == 1, "\(result.stderr)")
        let entries = DiffAttack12Tests.entries(try DiffAttack12Tests.object(result))
        let entry = try #require(entries.first { $0["output"] as? String == "site/landscape.thumb.jpg" }, "\(entries)")
        #expect(entry["kind"] as? String == "rebuilt")
        #expect((entry["ssim"] as? Double).map { $0 < 0.99 } == true, "\(entry)")
        #expect((entry["note"] as? String)?.contains("was changed since Derive wrote it") == true, "\(entry)")
    }

    /// F2: with `--sample`, `max_total_bytes` counted an unrendered rebuilt output at 0 bytes
    /// and never failed. It counts at its estimate, as the total does, and says so.
    @Test func maxTotalBytesHoldsUnderSample() throws {
        let repository = try Self.built(budget: "{max_total_bytes: 100000000}")
        defer { repository.remove() }
        let total = Self.gallerySize(repository)
        try repository.write("derive.yaml", DiffAttack13Tests.manifest(budget: "{max_total_bytes: \(total + 500)}"))
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "budget")
        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(of: "q_80", with: "q_100"))
        let whole = try repository.run(["diff", "--fail-on", "ssim<0.01"])
        #expect(whole.status == 1, "\(whole.stderr)")
        #expect(String(decoding: whole.stdout, as: UTF8.self).contains("over max_total_bytes \(total + 500)"))
        let sampled = try repository.run(["diff", "--fail-on", "ssim<0.01", "--sample", "1"])
        let text = String(decoding: sampled.stdout, as: UTF8.self)
        #expect(sampled.status == 1, "\(text)\(sampled.stderr)")
        #expect(text.contains("over max_total_bytes \(total + 500) (estimated from a sample)"), "\(text)")
    }

    /// F3: the HTML summary never said that the total gate or a `max_total_bytes` budget failed.
    @Test func htmlSummaryNamesTotalFailures() throws {
        let repository = try Self.built(budget: "{max_total_bytes: 100000000}")
        defer { repository.remove() }
        let total = Self.gallerySize(repository)
        try repository.write("derive.yaml", DiffAttack13Tests.manifest(budget: "{max_total_bytes: \(total + 500)}"))
        try repository.git("add", "-A")
        try repository.git("commit", "-qm", "budget")
        try repository.write("styles.yaml", DiffRepository.stylesOne.replacingOccurrences(of: "q_80", with: "q_100"))
        let result = try repository.run(["diff", "--fail-on", "total>+5%", "--html", "rep"])
        #expect(result.status == 1, "\(result.stderr)")
        let page = try String(contentsOfFile: repository.folder.appendingPathComponent("rep/index.html").path, encoding: .utf8)
        #expect(page.contains("FAIL total bytes +"), "\(page)")
        #expect(page.contains("over max_total_bytes \(total + 500)"), "\(page)")
    }

    /// F4: in a fresh clone (the lock committed, no state), removing a rule listed its output as
    /// failing (the lock entry no rule explains) and failed every gate. The new revision does not
    /// try to make it: it is deleted, as the same diff says where the state exists.
    @Test func aRemovedRuleInAFreshCloneIsADeletion() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        #expect(try repository.run(["build", "--quiet"]).status == 0)
        // A fresh clone: the lock, no state folder, no outputs.
        try FileManager.default.removeItem(at: repository.folder.appendingPathComponent(".derive"))
        try FileManager.default.removeItem(at: repository.folder.appendingPathComponent("out"))
        let withoutOld = DiffRepository.manifestOne.replacingOccurrences(of: """
          - name: old
            from: photos/*.png
            process: image/resize,w_50
            to: site/old/{name}.png

        """, with: "")
        #expect(withoutOld != DiffRepository.manifestOne)
        try repository.write("derive.yaml", withoutOld)
        let result = try repository.run(["diff", "--fail-on", "ssim<0.5", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try DiffAttack12Tests.object(result)
        let entries = DiffAttack12Tests.entries(object)
        #expect(entries.map { $0["kind"] as? String } == ["deleted"], "\(entries)")
        #expect(entries.first?["output"] as? String == "site/old/logo-alpha.png")
        #expect((object["totals"] as? [String: Any])?["failed"] as? Int == 0)
    }
}
