import ArgumentParser
import Confinement
import Foundation
import Manifest
import Planner

/// Loads a manifest and prints its diagnostics; shared by the manifest commands.
struct ManifestArgument: ParsableArguments {
    @Argument(help: "The manifest file (default: derive.yaml in the current folder).")
    var manifest: String = "derive.yaml"

    /// `drawable`: watermark texts are checked against their fonts too (`derive validate`), which
    /// starts a render worker per text.
    func load(crossChecks: Bool = true, drawable: Bool = false) -> ManifestLoader.Result {
        var loader = ManifestLoader()
        loader.crossChecks = crossChecks
        // Watermark fonts beyond the seven OSS names must be installed fontconfig families, as
        // the render worker finds them (derive links no fontconfig).
        loader.fontInstalled = { family in (try? Workspace.engineLookup.get())?.fonts.file(family) != nil }
        loader.fontSubstitute = { family in (try? Workspace.engineLookup.get())?.fonts.substitute(family) }
        // Characters no font can draw, as the build would refuse them (the worker is asked).
        if drawable { loader.textDrawable = { text, type in (try? Workspace.engineLookup.get())?.fonts.undrawable(text, type: type) } }
        var result = loader.load(manifest)
        // The projects the registry of built projects names, checked as the nearby ones are
        // (attack 51a's 3b, 51b's H1): validate, build and serve read it alike.
        if crossChecks, let loaded = result.manifest { RegisteredProjects.validate(loaded, into: &result.diagnostics) }
        return result
    }

    /// The `derive: error:` line that ends a command whose manifest did not load (its
    /// diagnostics above it): a missing file says so and how to go on (attack 41b's L3: `derive
    /// styles nosuch` ended with the diagnostic alone), an invalid one points at `derive validate`.
    static func notLoaded(_ path: String) -> String {
        var info = stat()
        if lstat(path, &info) != 0, errno == ENOENT {
            // In another project's bucket or state (its `_site`), where init refuses to write one
            // (attack 50c's M7): that project is named, not init.
            // Split by hand: Foundation's `deletingLastPathComponent` traps on a one-character
            // path (`derive plan x` crashed: attack 52a's F4).
            let folder = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? ""
            if let outer = EnclosingProject.of(folder: folder.isEmpty ? "." : folder) {
                return "\(path): no such file, so no manifest to read; this folder is in \(outer.what) of \(outer.manifest), another project: "
                    + "run derive in \(outer.folder), or name that manifest's path"
            }
            return "\(path): no such file, so no manifest to read; run derive in the folder that holds your derive.yaml, name your manifest's path, or write one with derive init"
        }
        return "\(path) is not valid; run 'derive validate' for details"
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a manifest and report every problem with its file:line:column."
    )

    @OptionGroup var manifest: ManifestArgument

    @Flag(name: .long, help: "Print the diagnostics as JSON (for editors and CI).")
    var json = false

    func run() throws {
        var result = manifest.load(drawable: true)
        // A walk of each public bucket: validate's alone (builds and serve do not pay for it).
        if let loaded = result.manifest { StateHomeRecord.validate(loaded, into: &result.diagnostics) }
        let diagnostics = result.diagnostics.sorted
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            struct Report: Encodable { var valid: Bool; var errors: Int; var warnings: Int; var diagnostics: [Diagnostic] }
            let report = Report(valid: !result.diagnostics.hasErrors && result.manifest != nil,
                                errors: result.diagnostics.errors.count, warnings: result.diagnostics.warnings.count,
                                diagnostics: diagnostics)
            try Output.writeStandardOutput(try encoder.encode(report))
            print()
        } else {
            Output.printDiagnostics(diagnostics)
            let errors = result.diagnostics.errors.count, warnings = result.diagnostics.warnings.count
            if errors == 0, let loaded = result.manifest {
                Output.printLine("\(manifest.manifest): valid: \(loaded.buckets.count) buckets, \(loaded.styles.count) styles, \(loaded.rules.count) rules\(warnings > 0 ? ", \(warnings) warning\(warnings == 1 ? "" : "s")" : "")")
            } else {
                Output.writeStandardError(TerminalText.escaped("\(manifest.manifest): \(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")") + "\n")
                var info = stat()
                if lstat(manifest.manifest, &info) != 0, errno == ENOENT { Output.printError(ManifestArgument.notLoaded(manifest.manifest)) }
            }
        }
        if result.diagnostics.hasErrors || result.manifest == nil { throw ExitCode.failure }
    }
}

struct StylesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "styles",
        abstract: "List the manifest's style catalogue with each style's canonical form."
    )

    @OptionGroup var manifest: ManifestArgument

    func run() throws {
        let result = manifest.load()
        guard let loaded = result.manifest, !result.diagnostics.hasErrors else {
            Output.printDiagnostics(result.diagnostics.sorted)
            Output.printError(ManifestArgument.notLoaded(manifest.manifest))
            throw ExitCode.failure
        }
        let width = loaded.styles.map(\.name.count).max() ?? 0
        for style in loaded.styles {
            let padding = String(repeating: " ", count: width - style.name.count)
            Output.printLine("\(style.name)\(padding)  \(style.pipeline.canonical)  (\(style.location.file):\(style.location.line))")
        }
    }
}
