import ArgumentParser
import Builder
import Confinement
import Foundation
import Manifest
import Planner
import Review

/// `derive diff [REV] [MANIFEST]`: what a manifest change does to the outputs, for review.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Review a manifest change against a git revision: outputs created, rebuilt and deleted, with renders, SSIM and gates."
    )

    @Argument(help: "The revision to compare with (default HEAD, against the working tree), or REV1..REV2.")
    var revision: String = "HEAD"

    @Argument(help: "The manifest file (default: derive.yaml in the current folder).")
    var manifest: String = "derive.yaml"

    @Flag(name: .long, help: "Print the review as JSON.")
    var json = false

    @Flag(name: .customLong("color"), help: "Colour the text even when standard output is not a terminal.")
    var colour = false

    @Option(name: .long, help: "Render old and new into DIR/images, compare them, and write DIR/index.html.")
    var html: String?

    @Option(name: .long, help: "Render old and new into DIR/images and compare them (without an HTML page).")
    var renders: String?

    @Option(name: .long, help: "Render at most N outputs per rule and style (a deterministic sample).")
    var sample: Int?

    @Option(name: .long, help: "Fail (exit 1) when a change crosses these, e.g. 'ssim<0.98,bytes>+10%'.")
    var failOn: String?

    @Option(name: .long, help: "Write the result as JUnit XML to FILE.")
    var junit: String?

    @Option(name: .shortAndLong, help: "Render workers (default: the CPUs this process may use).")
    var jobs: Int?

    func validate() throws {
        if let sample, sample < 1 || sample > 1_000_000 { throw ValidationError("--sample must be from 1 to 1000000, not \(sample)") }
        if let jobs, jobs < 1 || jobs > 1024 { throw ValidationError("--jobs must be from 1 to 1024, not \(jobs)") }
        if let failOn { do { _ = try Gates(failOn) } catch { throw ValidationError("\(error)") } }
        for (option, value) in [("--junit", junit), ("--html", html), ("--renders", renders)] where value?.isEmpty == true {
            throw ValidationError("\(option) needs a path, for example \(option == "--junit" ? "report/junit.xml" : "report")")
        }
        if html != nil, renders != nil, html != renders { throw ValidationError("--html and --renders name two folders; give one") }
    }

    func run() throws {
        // Each path resolved once by the file system: the same path is checked and written (OptionPath).
        let htmlFolder = try Output.resolvedOption(html, "--html"), rendersFolder = try Output.resolvedOption(renders, "--renders")
        let junitFile = try Output.resolvedOption(junit, "--junit")
        let folder = URL(literalFilePath: manifest).standardizedFileURL.deletingLastPathComponent().path
        let (beforeName, afterName): (String, String?)
        if let range = revision.range(of: "..") {
            beforeName = String(revision[..<range.lowerBound])
            afterName = String(revision[range.upperBound...])
        } else {
            beforeName = revision
            afterName = nil
        }
        let engine = try Workspace.engine()
        let beforeSide = try side(revision: beforeName, folder: folder, engine: engine)
        let afterSide = try side(revision: afterName, folder: folder, engine: engine)
        var review = ReviewDiff.review(before: beforeSide, after: afterSide, beforeName: beforeName,
                                       afterName: afterName ?? "working tree", manifest: manifest)
        let gates = try failOn.map { try Gates($0) }
        if let junitFile {
            // Before any render: a refused path fails fast.
            do { try JUnitFile.check(junitFile, manifests: [beforeSide.manifest, afterSide.manifest], reportFolder: htmlFolder ?? rendersFolder) } catch {
                Output.printError("\(error)")
                throw ExitCode.failure
            }
        }
        var temporary: String?
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        // A budget the change lowers is judged over the outputs it leaves alone: renders are made for them too.
        let worthRendering = !review.groups.isEmpty || !UnchangedBudgets.candidates(before: beforeSide, after: afterSide).isEmpty
        if worthRendering, let reportFolder = htmlFolder ?? rendersFolder ?? (gates != nil ? makeTemporary(&temporary) : nil) {
            let workers = try Workers.pool(size: BuildOptions(jobs: jobs).jobs, expectedEngineVersion: engine.report.version)
            defer { workers.shutdown() }
            do {
                review = try ReviewRenderer(renderer: workers, folder: reportFolder, sample: sample)
                    .render(review, before: beforeSide, after: afterSide, kept: { Output.printWarning($0) })
            } catch {
                Output.printError("\(error)")
                throw ExitCode.failure
            }
        }
        var outcome = Gates.Outcome()
        if let gates {
            // The rules' budgets gate a change too (README, "Budgets").
            outcome = gates.apply(to: &review) + BudgetGates.apply(to: &review, after: afterSide)
        } else if junit != nil {
            // Without conditions the JUnit report still fails what the build would fail.
            _ = Gates.buildFailures(in: &review)
        }
        let totalFailures = outcome.total + outcome.budgetTotal
        if let html, let htmlFolder {
            do { try ReviewHTML.write(review, folder: htmlFolder, manifests: [beforeSide.manifest, afterSide.manifest], totalFailures: totalFailures) } catch {
                Output.printError("cannot write the report in \(html): \(error)")
                throw ExitCode.failure
            }
        }
        if let junitFile {
            do { try JUnitFile.write(JUnitReport.xml(review, totalFailures: totalFailures), to: junitFile, manifests: [beforeSide.manifest, afterSide.manifest]) } catch {
                Output.printError("\(error)")
                throw ExitCode.failure
            }
        }
        if json {
            try Output.writeStandardOutput(try ReviewText.json(review) + Data("\n".utf8))
        } else {
            let paint = colour || (isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil)
            var text = ReviewText.text(review, colour: paint)
            for failure in totalFailures { text += "FAIL \(failure)\n" }
            if let html { text += "Report: \(html)/index.html\n" }
            try Output.writeStandardOutput(Data(text.utf8))
        }
        if let gates, outcome.outputs > 0 || !totalFailures.isEmpty {
            Output.writeStandardError("derive: \(gates.summary(outcome))\n")
            throw ExitCode.failure
        }
    }

    func makeTemporary(_ slot: inout String?) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("derive-diff-\(UUID().uuidString)").path
        slot = path
        return path
    }

    /// The manifest at `revision` (nil: the working tree), planned read-only.
    func side(revision: String?, folder: String, engine: EngineIdentityCache.Found) throws -> ReviewSide {
        var loader = ManifestLoader()
        loader.fontInstalled = { family in engine.fonts.file(family) != nil }
        loader.fontSubstitute = { family in engine.fonts.substitute(family) }
        let label = revision.map { "\(manifest) at \($0)" } ?? manifest
        if let revision {
            do { loader.fileReader = try GitRevision(revision, folder: folder).fileReader } catch {
                Output.printError("\(error)")
                throw ExitCode.failure
            }
        }
        let result = loader.load(manifest)
        guard let loaded = result.manifest, !result.diagnostics.hasErrors else {
            Output.printDiagnostics(result.diagnostics.sorted)
            Output.printError("\(label) is not valid; fix it (or, for the working tree, run 'derive validate')")
            throw ExitCode.failure
        }
        do {
            return try ReviewSide(manifest: loaded, manifestPath: manifest, files: result.files, identity: engine.identity)
        } catch {
            Output.printError("planning \(label) failed: \(error)")
            throw ExitCode.failure
        }
    }
}
