import ArgumentParser
import Builder
import Foundation
import Imaging
import Manifest
import Planner
import ProcessLanguage

/// A loaded manifest with its state, ready to plan; prints diagnostics and exits 1 on errors.
struct Workspace {
    let manifestPath: String
    let manifest: Manifest
    let manifestFiles: [String]
    let store: StateStore
    private let lazyPlanner: LazyPlanner

    /// Opened on first use: the no-op fast path never reads the state tables.
    var planner: Planner {
        get throws { try lazyPlanner.get() }
    }

    static var identity: EngineIdentity {
        EngineIdentity(renderVersion: Engine.renderVersion, libvips: Engine.libvipsVersion, encoder: Engine.encoderSettings,
                       fontFile: { try? FontCatalog.file(for: $0) })
    }

    /// The no-op fast path: when the manifest parses and the witness of the last clean build
    /// still holds, the number of outputs; nil means "do the full load and plan". Whole-manifest
    /// validation is skipped here because the witness covers every input it would look at.
    static func unchanged(_ argument: ManifestArgument) -> Int? {
        guard let workspace = try? Workspace(argument, crossChecks: false, quiet: true) else { return nil }
        return workspace.unchangedSinceLastBuild()
    }

    init(_ argument: ManifestArgument, crossChecks: Bool = true, quiet: Bool = false) throws {
        let result = argument.load(crossChecks: crossChecks)
        if quiet {
            guard result.manifest != nil, !result.diagnostics.hasErrors else { throw ExitCode.failure }
        }
        if result.diagnostics.hasErrors { Output.printDiagnostics(result.diagnostics.sorted) }
        guard let manifest = result.manifest, !result.diagnostics.hasErrors else {
            FileHandle.standardError.write(Data("derive: error: \(argument.manifest) is not valid; run 'derive validate' for details\n".utf8))
            throw ExitCode.failure
        }
        manifestPath = argument.manifest
        self.manifest = manifest
        manifestFiles = result.files
        do {
            store = try StateStore(folder: manifest.stateFolder)
        } catch {
            Output.printError("cannot open the build state in \(manifest.stateFolder): \(error)")
            throw ExitCode.failure
        }
        let (store, path) = (store, argument.manifest)
        lazyPlanner = LazyPlanner {
            try Planner(manifest: manifest, manifestPath: path, disk: RealDisk(), store: store, identity: Self.identity)
        }
    }

    /// What the no-op witness covers for this manifest.
    var witnessInputs: NoOpWitness.Inputs {
        var fonts: Set<String> = []
        for rule in manifest.rules {
            for variant in (try? rule.variants(catalogue: manifest.catalogue)) ?? [] {
                for case .font(let name) in variant.pipeline.dependencies {
                    if let file = try? FontCatalog.file(for: name) { fonts.insert(file) }
                }
            }
        }
        return NoOpWitness.Inputs(manifestFiles: manifestFiles, manifest: manifest, manifestPath: manifestPath,
                                  identity: Self.identity, fontFiles: fonts.sorted())
    }

    /// Number of outputs when nothing can have changed since the last clean build.
    func unchangedSinceLastBuild() -> Int? { NoOpWitness.holds(witnessInputs, disk: RealDisk()) }

    /// Remembers (or forgets) that the state and outputs match the manifest.
    func saveWitness(clean: Bool) {
        let outputs = ((try? store.allOutputs()) ?? [:]).keys.compactMap { Builder.absolutePath(of: $0, in: manifest) }
        NoOpWitness.save(witnessInputs, outputs: outputs, disk: RealDisk(), valid: clean)
    }

    func plan() throws -> Plan {
        do {
            return try planner.plan()
        } catch {
            Output.printError("planning failed: \(error)")
            throw ExitCode.failure
        }
    }

    /// Prints plan errors and exits 1 if there are any.
    func requireNoErrors(_ plan: Plan) throws {
        guard !plan.errors.isEmpty else { return }
        for error in plan.errors { Output.printError(error.message) }
        throw ExitCode.failure
    }

    func lock() throws -> BuildLock {
        do {
            return try BuildLock(folder: manifest.stateFolder)
        } catch let held as BuildLock.Held {
            Output.printError(held.description)
            throw ExitCode.failure
        }
    }
}

enum PlanPrinter {
    static func print(_ plan: Plan, verbose: Bool) {
        let colour = isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        func paint(_ text: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
        for item in plan.items {
            switch item.kind {
            case .create:
                let note = item.reasons.isEmpty ? "" : " (\(item.reasons.joined(separator: "; ")))"
                Swift.print("\(paint("+", "32")) \(item.output)  create: \(item.derivative?.recipe ?? "")\(note)")
            case .rebuild:
                Swift.print("\(paint("~", "33")) \(item.output)  rebuild: \(item.reasons.joined(separator: "; "))")
            case .delete:
                Swift.print("\(paint("-", "31")) \(item.output)  delete: \(item.reasons.joined(separator: "; "))")
            case .upToDate:
                if verbose { Swift.print("  \(item.output)  up to date\(item.adopted != nil ? " (from derive.lock)" : "")") }
            }
        }
        Swift.print(plan.hasChanges ? plan.summary : "No changes: \(plan.count(.upToDate)) outputs up to date.")
    }

    static func json(_ plan: Plan) throws -> Data {
        struct Item: Encodable { var kind: String; var output: String; var reasons: [String]; var source: String?; var recipe: String?; var actionKey: String? }
        struct Summary: Encodable { var create: Int; var rebuild: Int; var delete: Int; var upToDate: Int }
        struct Report: Encodable { var items: [Item]; var errors: [String]; var summary: Summary }
        let report = Report(
            items: plan.items.map { Item(kind: $0.kind.rawValue, output: $0.output, reasons: $0.reasons, source: $0.derivative?.source ?? $0.recorded?.source,
                                         recipe: $0.derivative?.recipe, actionKey: $0.derivative?.actionKey) },
            errors: plan.errors.map(\.message),
            summary: Summary(create: plan.count(.create), rebuild: plan.count(.rebuild), delete: plan.count(.delete), upToDate: plan.count(.upToDate)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(report)
    }
}

/// Builds the planner once, on first use.
final class LazyPlanner: @unchecked Sendable {
    private let make: () throws -> Planner
    private var made: Planner?
    init(_ make: @escaping () throws -> Planner) { self.make = make }
    func get() throws -> Planner {
        if let made { return made }
        do {
            let planner = try make()
            made = planner
            return planner
        } catch {
            Output.printError("cannot read the build state: \(error)")
            throw ExitCode.failure
        }
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what a build would create, rebuild (and why) and delete."
    )

    @OptionGroup var manifest: ManifestArgument

    @Flag(name: .long, help: "Print the plan as JSON.")
    var json = false

    @Flag(name: .long, help: "Exit 0 when nothing is to do, 2 when changes are pending, 1 on error.")
    var detailedExitcode = false

    @Flag(name: .shortAndLong, help: "Also list up-to-date outputs.")
    var verbose = false

    func run() throws {
        if !json, !verbose, let count = Workspace.unchanged(manifest) {
            print("No changes: \(count) outputs up to date.")
            return
        }
        let workspace = try Workspace(manifest)
        let plan = try workspace.plan()
        if json {
            FileHandle.standardOutput.write(try PlanPrinter.json(plan))
            Swift.print()
        } else {
            for error in plan.errors { Output.printError(error.message) }
            PlanPrinter.print(plan, verbose: verbose)
        }
        if !plan.errors.isEmpty { throw ExitCode.failure }
        if detailedExitcode, plan.hasChanges { throw ExitCode(2) }
    }
}

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Render what is stale, delete what the manifest no longer produces, write derive.lock and the index."
    )

    @OptionGroup var manifest: ManifestArgument

    @Option(name: .shortAndLong, help: "Parallel jobs (default: the CPUs this process may use).")
    var jobs: Int?

    @Option(name: .long, help: "Memory budget for concurrent renders, in MiB (default: half the machine, at most 8 GiB).")
    var memory: Int?

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    func run() throws {
        if let count = Workspace.unchanged(manifest) {
            print("Nothing to do: \(count) outputs up to date.")
            return
        }
        let workspace = try Workspace(manifest)
        let lock = try workspace.lock()
        defer { withExtendedLifetime(lock) {} }
        let plan = try workspace.plan()
        try workspace.requireNoErrors(plan)
        if !plan.hasChanges, plan.adoptions.isEmpty {
            // Nothing to render: libvips is never started.
            _ = try Builder(planner: workspace.planner, manifestPath: workspace.manifestPath, renderer: NoRenderer(),
                        options: BuildOptions(jobs: 1, quiet: true)).build(plan)
            workspace.saveWitness(clean: true)
            print("Nothing to do: \(plan.count(.upToDate)) outputs up to date.")
            return
        }
        let builder = Builder(planner: try workspace.planner, manifestPath: workspace.manifestPath,
                              renderer: EngineRenderer(limits: workspace.manifest.limits),
                              options: BuildOptions(jobs: jobs, memoryBudget: memory.map { $0 << 20 }, quiet: quiet))
        workspace.saveWitness(clean: false)   // outputs are about to change
        let report: BuildReport
        do {
            report = try builder.build(plan)
        } catch {
            Output.printError("build failed: \(error)")
            throw ExitCode.failure
        }
        workspace.saveWitness(clean: report.succeeded)
        for failure in report.failed { Output.printError("\(failure.output): \(failure.message)") }
        var parts = ["built \(report.built.count)"]
        if !report.deleted.isEmpty { parts.append("deleted \(report.deleted.count)") }
        if !report.adopted.isEmpty { parts.append("adopted \(report.adopted.count) from derive.lock") }
        if !report.failed.isEmpty { parts.append("\(report.failed.count) failed") }
        parts.append("\(plan.count(.upToDate) - report.adopted.count) up to date")
        print(parts.joined(separator: ", ") + String(format: " in %.2f s.", report.seconds))
        if !report.succeeded { throw ExitCode.failure }
    }
}

/// Stands in when there is nothing to render, so libvips is never loaded.
struct NoRenderer: DerivativeRenderer {
    func render(_ source: Data, _ pipeline: ProcessLanguage.Pipeline, bucketPath: String) throws -> Rendered {
        throw DiskError("nothing should be rendered")
    }
    func memoryEstimate(_ source: Data) -> Int { 0 }
}

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "For CI: exit 1 when anything is stale or derive.lock disagrees with the outputs. Writes nothing."
    )

    @OptionGroup var manifest: ManifestArgument

    func run() throws {
        if let count = Workspace.unchanged(manifest) {
            print("Up to date: \(count) outputs match the manifest and derive.lock.")
            return
        }
        let workspace = try Workspace(manifest)
        let plan = try workspace.plan()
        var problems = plan.errors.map(\.message)
        for item in plan.items where item.kind != .upToDate {
            problems.append("\(item.output): \(item.kind.rawValue)\(item.reasons.isEmpty ? "" : ": " + item.reasons.joined(separator: "; "))")
        }
        // The lock must list exactly the outputs, with the digests they have.
        let lockPath = LockFile.path(forManifest: workspace.manifestPath)
        let lock = (try? Data(contentsOf: URL(fileURLWithPath: lockPath))).map { LockFile.parse(String(decoding: $0, as: UTF8.self)) }
        let wanted = plan.items.filter { $0.kind != .delete }
        if let lock {
            for item in wanted {
                guard let derivative = item.derivative else { continue }
                guard let entry = lock.entries[item.output] else { problems.append("\(item.output): missing from derive.lock"); continue }
                if entry.actionKey != derivative.actionKey { problems.append("\(item.output): derive.lock has another action key") }
                else if let digest = try workspace.planner.digests.content(of: derivative.outputPath)?.digest, digest != entry.digest {
                    problems.append("\(item.output): the file differs from derive.lock")
                }
            }
            for path in lock.entries.keys.sorted() where !wanted.contains(where: { $0.output == path }) {
                problems.append("\(path): in derive.lock but not produced by the manifest")
            }
        } else {
            problems.append("derive.lock is missing (\(lockPath)); run derive build")
        }
        for problem in problems { print(problem) }
        if problems.isEmpty {
            print("Up to date: \(plan.count(.upToDate)) outputs match the manifest and derive.lock.")
        } else {
            FileHandle.standardError.write(Data("derive check: \(problems.count) problem\(problems.count == 1 ? "" : "s")\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show every fingerprint component of one output, as recorded and as wanted now."
    )

    @Argument(help: "The output: bucket/key, or its file path.")
    var output: String

    @Option(name: .long, help: "The manifest file.")
    var manifest: String = "derive.yaml"

    func run() throws {
        var argument = ManifestArgument()
        argument.manifest = manifest
        let workspace = try Workspace(argument)
        let plan = try workspace.plan()
        var key = output
        let absolute = URL(fileURLWithPath: output).standardizedFileURL.path
        for bucket in workspace.manifest.buckets where absolute.hasPrefix(bucket.path + "/") {
            key = bucket.name + "/" + absolute.dropFirst(bucket.path.count + 1)
        }
        guard let item = plan.items.first(where: { $0.output == key }) else {
            Output.printError("\(output) is not an output of \(manifest)")
            let close = plan.items.map(\.output).filter { $0.hasSuffix((key as NSString).lastPathComponent) }.prefix(3)
            if !close.isEmpty { FileHandle.standardError.write(Data("did you mean: \(close.joined(separator: ", "))?\n".utf8)) }
            throw ExitCode.failure
        }
        let status: String
        switch item.kind {
        case .upToDate: status = item.adopted != nil ? "up to date (vouched for by derive.lock)" : "up to date"
        case .create: status = "will be created" + (item.reasons.isEmpty ? "" : ": " + item.reasons.joined(separator: "; "))
        case .rebuild: status = "will be rebuilt: " + item.reasons.joined(separator: "; ")
        case .delete: status = "will be deleted: " + item.reasons.joined(separator: "; ")
        }
        print("\(item.output): \(status)")
        let old = item.recorded, new = item.derivative
        func row(_ name: String, _ recorded: String?, _ wanted: String?) {
            let label = name.padding(toLength: 13, withPad: " ", startingAt: 0)
            if recorded == wanted || recorded == nil || wanted == nil {
                print("  \(label)\(wanted ?? recorded ?? "-")")
            } else {
                print("  \(label)recorded: \(recorded!)\n  \(String(repeating: " ", count: 13))wanted:   \(wanted!)")
            }
        }
        row("rule", old?.rule, new?.rule)
        if let new { row("recipe", nil, new.recipe) }
        row("source", old?.source, new?.source)
        row("engine", old?.engine, new?.components.engine)
        row("pipeline", old?.pipeline, new?.components.pipeline)
        row("source sha", old?.sourceDigest, new?.components.sourceDigest)
        row("dependencies", old.map { $0.dependencies.isEmpty ? "none" : $0.dependencies }, new.map { $0.components.dependencies.isEmpty ? "none" : $0.components.dependencies })
        row("encoder", old?.encoder, new?.components.encoder)
        row("acl", old?.acl, new?.acl.rawValue)
        row("action key", old?.actionKey, new?.actionKey)
        if let old {
            let onDisk = new.flatMap { try? workspace.planner.digests.content(of: $0.outputPath)?.digest } ?? "missing"
            row("output sha", old.outputDigest, onDisk)
            print("  output       \(old.width)x\(old.height) \(old.format), \(old.size) bytes, built \(Date(timeIntervalSince1970: Double(old.builtAt) / 1e9))")
        }
    }
}

struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Remove the outputs, index, derive.lock and state the manifest's builds produced; nothing else."
    )

    @OptionGroup var manifest: ManifestArgument

    func run() throws {
        let workspace = try Workspace(manifest)
        let lock = try workspace.lock()
        let disk = RealDisk()
        var removed = 0
        for record in try workspace.store.allOutputs().values.sorted(by: { $0.path < $1.path }) {
            if let path = Builder.absolutePath(of: record.path, in: workspace.manifest), disk.stat(path) != nil {
                try disk.remove(path)
                removed += 1
            }
        }
        if let index = workspace.manifest.index, let bucket = workspace.manifest.bucket(named: index.bucket) {
            try disk.remove(bucket.path + "/" + index.path)
        }
        try disk.remove(LockFile.path(forManifest: workspace.manifestPath))
        withExtendedLifetime(lock) {}
        for name in ["state.sqlite", "state.sqlite-wal", "state.sqlite-shm", "build.lock", NoOpWitness.fileName] {
            try? FileManager.default.removeItem(atPath: workspace.manifest.stateFolder + "/" + name)
        }
        try? FileManager.default.removeItem(atPath: workspace.manifest.stateFolder)
        print("Removed \(removed) outputs and the build state.")
    }
}
