import ArgumentParser
import Builder
import Confinement
import Foundation
import Manifest
import Review

/// `derive catalog [MANIFEST]`: every style applied to sample sources, as a contact sheet.
struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "A contact sheet of every style applied to sample sources: canonical strings, sizes and bytes (text, JSON or HTML)."
    )

    @OptionGroup var manifest: ManifestArgument

    @Flag(name: .long, help: "Print the catalogue as JSON.")
    var json = false

    @Option(name: .long, help: "Write the renders into DIR/images and the page DIR/index.html (never inside a bucket).")
    var html: String?

    @Option(name: .shortAndLong, help: "Render workers (default: the CPUs this process may use).")
    var jobs: Int?

    func validate() throws {
        if let jobs, jobs < 1 || jobs > 1024 { throw ValidationError("--jobs must be from 1 to 1024, not \(jobs)") }
    }

    func run() throws {
        // Resolved once by the file system: the folder checked is the folder written (OptionPath).
        let folder = try Output.resolvedOption(html, "--html")
        let workspace = try Workspace(manifest)
        let loaded = workspace.manifest
        var samples = (samples: loaded.catalogSamples, from: "catalog.samples")
        if samples.samples.isEmpty {
            let plan = try workspace.run("planning") { try $0.readOnlyPlan() }
            samples = Catalog.samples(loaded, derivatives: plan.items.compactMap(\.derivative))
        }
        // Rules with their own `process:` are the catalogue too: empty only without either.
        let recipes = loaded.rules.contains { if case .process = $0.recipe { return true } else { return false } }
        if loaded.styles.isEmpty, !recipes { Output.printWarning("\(manifest.manifest) has no styles and no rule recipes: the catalogue is empty") }
        if samples.samples.isEmpty { Output.printWarning("no sample sources: add catalog: {samples: [bucket/key]} or a rule with sources") }
        let workers = try Workers.pool(size: BuildOptions(jobs: jobs).jobs, expectedEngineVersion: workspace.engine.report.version)
        defer { workers.shutdown() }
        let catalog: Catalog
        do {
            catalog = try Catalog.make(loaded, manifestName: manifest.manifest, samples: samples.samples, from: samples.from,
                                       renderer: EngineRenderer(limits: loaded.limits, renderer: workers), folder: folder,
                                       kept: { Output.printWarning($0) })
        } catch {
            Output.printError("\(error)")
            throw ExitCode.failure
        }
        if json {
            try Output.writeStandardOutput(try catalog.json() + Data("\n".utf8))
        } else {
            var text = catalog.text()
            if let html { text += TerminalText.escaped("Catalogue: \(html)/index.html") + "\n" }
            try Output.writeStandardOutput(Data(text.utf8))
        }
        // A style that cannot render a sample is a broken catalogue entry: exit 1 after the report.
        let failed = catalog.failedRenders
        if failed > 0 {
            // An error as every command's: `derive: error:` (attack 41b's L3 asked for one prefix).
            Output.printError("\(failed) render\(failed == 1 ? "" : "s") of the catalogue failed (each named above with its reason); fix those styles or samples, then run derive catalog again")
            throw ExitCode.failure
        }
    }
}
