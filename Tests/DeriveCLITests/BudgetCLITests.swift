import Foundation
import Testing
import TestSupport
import Imaging

/// A rule's `budget:` in a project of two photos: build refuses (does not write) a render over
/// its budget, check lists breaches of what was built, diff --fail-on counts budgets as gates.
struct BudgetProject {
    let folder: URL

    init(_ budget: String?, process: String = "image/resize,m_fill,w_120,h_80/quality,q_90") throws {
        folder = try CLI.temporaryFolder()
        let src = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: src, withIntermediateDirectories: true)
        for name in ["landscape.jpg", "portrait.jpg"] {
            try FileManager.default.copyItem(at: CLI.samples.appendingPathComponent(name), to: src.appendingPathComponent(name))
        }
        try write(budget, process: process)
    }

    func write(_ budget: String?, process: String = "image/resize,m_fill,w_120,h_80/quality,q_90") throws {
        let text = """
        version: 1
        buckets:
          photos: {path: src}
          site: {path: out}
        derivatives:
          - name: thumbs
            from: photos/*.jpg
            process: \(process)
            to: site/{name}.jpg
        \(budget.map { "    budget: \($0)" } ?? "")

        """
        try Data(text.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
    }

    func output(_ name: String) -> String { folder.appendingPathComponent("out/\(name)").path }
    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: output(name)) }
    func size(_ name: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: output(name)))?[.size] as? NSNumber)?.intValue ?? -1 }
    func run(_ arguments: [String]) throws -> CLI.Result { try CLI.run(arguments, in: folder) }
    func remove() { try? FileManager.default.removeItem(at: folder) }
}

@Suite(.ownThreads, .serialized) struct BudgetCLITests {
    /// Over max_bytes: the output fails with rule, output, bytes and budget named, and is not
    /// written (nor recorded in the lock); at exactly its size it passes.
    @Test func buildRefusesAnOutputOverMaxBytes() throws {
        // Its size first, built without a budget in another project.
        let measure = try BudgetProject(nil)
        defer { measure.remove() }
        #expect(try measure.run(["build", "--quiet"]).status == 0)
        let landscape = measure.size("landscape.jpg"), portrait = measure.size("portrait.jpg")
        #expect(landscape > 1000 && portrait > 1000)

        let project = try BudgetProject("{max_bytes: \(landscape - 1)}")
        defer { project.remove() }
        let over = try project.run(["build", "--quiet", "--verbose"])
        #expect(over.status == 1)
        #expect(over.stderr.contains("rule 'thumbs': site/landscape.jpg is \(landscape) bytes, over its budget max_bytes \(landscape - 1); it was not written"), "\(over.stderr)")
        #expect(!project.exists("landscape.jpg"))
        let lock = (try? String(contentsOfFile: project.folder.appendingPathComponent("derive.lock").path, encoding: .utf8)) ?? ""
        #expect(!lock.contains("landscape.jpg"))
        // The other output fits (or fails on its own bytes): each is judged alone.
        #expect(project.exists("portrait.jpg") == (portrait <= landscape - 1))

        try project.write("{max_bytes: \(max(landscape, portrait))}")
        let fits = try project.run(["build", "--quiet"])
        #expect(fits.status == 0, "\(fits.stderr)")
        #expect(project.size("landscape.jpg") == landscape)
    }

    /// min_ssim: a q_5 JPEG is far from its lossless reference and is refused; q_95 passes.
    @Test func buildRefusesAnOutputBelowMinSSIM() throws {
        let project = try BudgetProject("{min_ssim: 0.97}", process: "image/resize,m_fill,w_120,h_80/quality,q_5")
        defer { project.remove() }
        let low = try project.run(["build", "--quiet", "--verbose"])
        #expect(low.status == 1)
        #expect(low.stderr.contains("rule 'thumbs': site/landscape.jpg has SSIM 0."), "\(low.stderr)")
        #expect(low.stderr.contains("against a lossless reference, below its budget min_ssim 0.97; it was not written"))
        #expect(!project.exists("landscape.jpg") && !project.exists("portrait.jpg"))

        try project.write("{min_ssim: 0.97}", process: "image/resize,m_fill,w_120,h_80/quality,q_95")
        let high = try project.run(["build", "--quiet"])
        #expect(high.status == 0, "\(high.stderr)")
        let raster = try Raster.decode(Data(contentsOf: URL(fileURLWithPath: project.output("landscape.jpg"))))
        #expect(raster.width == 120 && raster.height == 80)
    }

    /// Budgets lowered after a build: nothing is stale, yet check (and build) list each breach
    /// and exit 1; check writes nothing.
    @Test func checkListsBudgetBreachesOfWhatWasBuilt() throws {
        let project = try BudgetProject(nil, process: "image/resize,m_fill,w_120,h_80/quality,q_20")
        defer { project.remove() }
        #expect(try project.run(["build", "--quiet"]).status == 0)
        #expect(try project.run(["check"]).status == 0)
        let total = project.size("landscape.jpg") + project.size("portrait.jpg")

        try project.write("{max_bytes: 100, max_total_bytes: \(total - 1), min_ssim: 0.999}", process: "image/resize,m_fill,w_120,h_80/quality,q_20")
        let before = try treeContents(project.folder)
        let check = try project.run(["check"])
        #expect(check.status == 1)
        let text = String(decoding: check.stdout, as: UTF8.self)
        #expect(text.contains("budget: site/landscape.jpg: \(project.size("landscape.jpg")) bytes, over the budget max_bytes 100 of rule 'thumbs'"), "\(text)")
        #expect(text.contains("budget: site/portrait.jpg: SSIM 0."), "\(text)")
        #expect(text.contains("below the budget min_ssim 0.999 of rule 'thumbs'"))
        #expect(text.contains("budget: rule 'thumbs': its outputs take \(total) bytes together, over the budget max_total_bytes \(total - 1)"))
        #expect(try treeContents(project.folder) == before)

        let build = try project.run(["build", "--quiet"])
        #expect(build.status == 1)
        #expect(build.stderr.contains("max_total_bytes \(total - 1)"), "\(build.stderr)")

        // At the measured total the rule fits.
        try project.write("{max_total_bytes: \(total)}", process: "image/resize,m_fill,w_120,h_80/quality,q_20")
        #expect(try project.run(["check"]).status == 0)
    }

    /// A budget tightened with nothing else changed: the first build plans (the manifest's bytes
    /// changed) and reports the breach; the next one must not answer "nothing to do" from the
    /// witness the first left behind (it did: exit 0). Raising min_ssim fails build too, not
    /// only check. With the budgets met again, the fast path answers as before.
    @Test func budgetsHoldOnTheNoOpFastPath() throws {
        let process = "image/resize,m_fill,w_120,h_80/quality,q_20"
        let project = try BudgetProject("{max_bytes: 10_000_000}", process: process)
        defer { project.remove() }
        #expect(try project.run(["build", "--quiet"]).status == 0)
        let size = max(project.size("landscape.jpg"), project.size("portrait.jpg"))
        // Past the racy margin, so builds leave a witness the next run may use.
        func settle() { Thread.sleep(forTimeInterval: 1.2) }
        settle()
        let idle = try project.run(["build"])
        #expect(idle.status == 0 && String(decoding: idle.stdout, as: UTF8.self).hasPrefix("Nothing to do"))

        for budget in ["{max_bytes: \(size - 1)}", "{min_ssim: 0.999}"] {
            try project.write(budget, process: process)
            settle()
            for run in ["slow path (the manifest changed)", "fast path (nothing changed since)"] {
                let build = try project.run(["build"])
                #expect(build.status == 1, "\(budget), \(run): \(String(decoding: build.stdout, as: UTF8.self))")
                #expect(build.stderr.contains("budget: site/"), "\(budget), \(run): \(build.stderr)")
                #expect(try project.run(["check"]).status == 1, "\(budget), \(run)")
                settle()
            }
        }
        try project.write("{max_bytes: 10_000_000, min_ssim: 0.1}", process: process)
        settle()
        #expect(try project.run(["build"]).status == 0)
        settle()
        let again = try project.run(["build"])
        #expect(again.status == 0 && String(decoding: again.stdout, as: UTF8.self).hasPrefix("Nothing to do"))
        #expect(try project.run(["check"]).status == 0)
    }
}

@Suite(.ownThreads, .serialized, .enabled(if: DiffRepository.gitFound, "git is not installed (/usr/bin/git)"))
struct BudgetDiffTests {
    /// `diff --fail-on` counts the new revision's budgets: a change that makes the thumbnails
    /// cross max_bytes fails the review, named in the text and the JUnit XML.
    @Test func failOnConsidersBudgets() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)
        let manifest = DiffRepository.manifestTwo.replacingOccurrences(of: "    to: site/{name}.{style}.{ext}\n",
                                                                    with: "    to: site/{name}.{style}.{ext}\n    budget: {max_bytes: 100}\n")
        #expect(manifest != DiffRepository.manifestTwo)
        try repository.write("derive.yaml", manifest)
        // Without --fail-on a budget is not a gate of the review.
        #expect(try repository.run(["diff"]).status == 0)
        let junit = repository.folder.appendingPathComponent("junit.xml").path
        let fail = try repository.run(["diff", "--fail-on", "ssim<0.01", "--junit", junit])
        #expect(fail.status == 1, "\(fail.stderr)")
        // Two thumbnails rebuilt over it, and the two heroes the change leaves alone: a budget
        // added to the rule judges them too (the build would fail them), named as budgets.
        #expect(fail.stderr.contains("4 outputs over their rule's budget"), "\(fail.stderr)")
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("budget: bytes "))
        #expect(xml.contains("&gt; max_bytes 100"))
        // A generous budget passes.
        try repository.write("derive.yaml", manifest.replacingOccurrences(of: "max_bytes: 100", with: "max_bytes: 10_000_000"))
        let pass = try repository.run(["diff", "--fail-on", "ssim<0.01"])
        #expect(pass.status == 0, "\(pass.stderr)")
        // The budget's own change is listed under the rule.
        #expect(String(decoding: pass.stdout, as: UTF8.self).contains("budget: (none) → max_bytes 10000000"), "\(String(decoding: pass.stdout, as: UTF8.self))")
    }

    /// min_ssim gates a review as it gates the build: a change to a q_5 thumbnail is judged
    /// against its lossless reference (rendered from the source the review read) and fails.
    @Test func failOnConsidersMinSSIM() throws {
        let repository = try DiffRepository()
        defer { repository.remove() }
        try repository.change(commit: false)
        let manifest = DiffRepository.manifestTwo.replacingOccurrences(of: "    to: site/{name}.{style}.{ext}\n",
                                                                    with: "    to: site/{name}.{style}.{ext}\n    budget: {min_ssim: 0.97}\n")
        let styles = DiffRepository.stylesTwo.replacingOccurrences(of: "q_95", with: "q_5")
        #expect(manifest != DiffRepository.manifestTwo && styles != DiffRepository.stylesTwo)
        try repository.write("derive.yaml", manifest)
        try repository.write("styles.yaml", styles)
        let fail = try repository.run(["diff", "--fail-on", "ssim<0.01"])
        let text = String(decoding: fail.stdout, as: UTF8.self)
        #expect(fail.status == 1, "\(fail.stderr)")
        #expect(text.contains("FAIL budget: SSIM 0."), "\(text)")
        #expect(text.contains("against the lossless reference < min_ssim 0.97"), "\(text)")
        #expect(!text.contains("not compared with its reference"), "\(text)")
    }
}
