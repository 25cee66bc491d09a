import Confinement
import ArgumentParser
import Builder
import Foundation
import ImagingCore
import Manifest
import NIOConcurrencyHelpers
import Planner
import RenderWorkers
import ProcessLanguage
import Synchronization

/// A loaded manifest and its build session; prints diagnostics and exits 1 on errors.
struct Workspace {
    let manifestPath: String
    let manifest: Manifest
    let session: BuildSession

    /// The engine as the render worker describes it (from the on-disk cache when neither the
    /// worker nor a library it maps changed): derive never loads libvips itself.
    /// Looked up once per command; watch mode looks it up again (`lookEngineUpAgain`) before
    /// each no-op check and each build, as a fresh `derive build` would (round 22's V2).
    static var engineLookup: Result<EngineIdentityCache.Found, any Error> {
        engineState.withLock { state in
            if let state { return state }
            let found = Result { try EngineIdentityCache.lookup() }
            state = found
            return found
        }
    }

    private static let engineState = Mutex<Result<EngineIdentityCache.Found, any Error>?>(nil)

    /// Looks the engine up again (the on-disk cache answers while nothing it depends on changed:
    /// the stat of each file). Returns the new engine when it differs from the one used so far
    /// (another worker or library, or a fontconfig configuration file changed), nil otherwise or
    /// when it cannot be learnt (the next workspace reports that).
    static func lookEngineUpAgain() -> EngineIdentityCache.Found? {
        let fresh = Result { try EngineIdentityCache.lookup() }
        return engineState.withLock { state in
            let old = state.flatMap { try? $0.get() }
            state = fresh
            guard let found = try? fresh.get() else { return nil }
            guard let old else { return found }
            return found.differs(from: old) ? found : nil
        }
    }

    private static let engineErrorsSaid = Mutex<Set<String>>([])

    static func engine() throws -> EngineIdentityCache.Found {
        do { return try engineLookup.get() } catch {
            // Every workspace of one command asks: said once (attack 39b's M1 saw it three times).
            let message = "cannot learn the render engine's identity: \(error)"
            if engineErrorsSaid.withLock({ $0.insert(message).inserted }) { Output.printError(message) }
            throw ExitCode.failure
        }
    }

    /// The engine this workspace plans with; renders must come from a worker reporting the same.
    let engine: EngineIdentityCache.Found

    /// The no-op fast path: when the manifest parses and the witness of the last clean build
    /// still holds, the number of outputs; nil means "do the full load and plan". Whole-manifest
    /// validation is skipped here because the witness covers every input it would look at.
    /// `refresh` (build only): a witness that held by rehashing just-written files is saved again.
    /// `check`: the answer with its stat pass, which the workspace that plans takes over
    /// (`init(witness:)`) instead of stat'ing every input again.
    /// The check kept by `keep` is taken over (once) instead of checking again.
    static func unchanged(_ argument: ManifestArgument, refresh: Bool = false) -> NoOpCheck {
        if let kept = takeKept(argument, refresh: refresh) { return kept }
        guard let workspace = try? Workspace(argument, crossChecks: false, quiet: true) else { return (nil, nil, false) }
        let count = workspace.session.unchanged()
        if refresh, count != nil, let warning = workspace.session.refreshWitness() { Output.printWarning(warning) }
        // A no-op build of a project renamed or moved since registers it where it is now.
        if refresh, count != nil { workspace.session.registerIfMissing() }
        return (count, workspace.session.witnessCheck(), workspace.manifest.rules.contains { $0.budget != nil })
    }

    /// A no-op check: the output count when nothing is to do, the check with its stat pass, and
    /// whether a rule has a budget (check judges budgets even on a no-op): from the one load
    /// the check made (attack 50c's M5: check loaded the manifest, and searched its
    /// neighbourhood, a second time to learn it).
    typealias NoOpCheck = (count: Int?, check: WitnessCheck?, hasBudgets: Bool)

    /// How a build or `clean` names a `left` line it keeps in the lock (present, gone now, or
    /// holding other bytes than the file left there), with how the user publishes it.
    /// `doubt`: why the file may be another manifest's (`NeighbourDoubt`), said instead of how
    /// to publish it (attack 49b's F8: the neighbour's output was offered for release).
    static func leftLineText(_ line: LockFile.Left, lockName: String, doubt: String? = nil) -> String {
        // A line left in doubt of a project beyond this folder (its `why` says so) is never offered for release either.
        let prefix = LockFile.Left.inDoubt("")
        if let doubt = doubt ?? (line.why.hasPrefix(prefix) ? String(line.why.dropFirst(prefix.count)) : nil), !line.isGone {
            // Said once when the line's own reason is that doubt.
            let said = line.why == LockFile.Left.inDoubt(doubt) ? "" : ", in doubt: \(doubt)"
            return "= \(line.path)  left in place (\(line.why)): kept in \(lockName) as a file left \(line.acl); serve answers it no more publicly\(said)"
        }
        if line.isGone {
            return "~ \(line.path)  left in place (\(line.why)), gone now: kept in \(lockName) as gone (\(line.acl)) for \(Planner.goneKeptSeconds / 86400) days; "
                + "a file put back there is answered no more publicly, whatever its bytes" + CheckCommand.releaseHint(line)
        }
        if line.otherBytes {
            return "= \(line.path)  left in place (\(line.why)): the file there now holds other bytes than the file left there (put back as another rendition, or changed); "
                + "kept in \(lockName) as a file left \(line.acl): serve answers it no more publicly" + CheckCommand.releaseHint(line)
        }
        return "= \(line.path)  left in place (\(line.why)): kept in \(lockName) as a file left \(line.acl); serve answers it no more publicly until it is gone" + CheckCommand.releaseHint(line)
    }

    /// `check`'s lines for the lock's `left` lines when the witness covers some (the lock is
    /// read only then): a no-op names them as the full check does.
    static func leftLines(_ noOp: NoOpCheck) -> [String] {
        guard let check = noOp.check, check.leftFiles > 0, let data = FileManager.default.contents(atPath: check.lockPath),
              let lock = LockFile.parse(String(decoding: data, as: UTF8.self)) else { return [] }
        let lockName = (check.lockPath as NSString).lastPathComponent
        return lock.left.sortedByKey().map { CheckCommand.leftLine($0.value, lock: lockName) }
    }

    /// The lines a no-op `build` or `check` answer starts with: the old outputs kept behind a
    /// symbolic link (`WitnessCheck.keptBehindLinks`), as the full build and check name them.
    static func keptLines(_ noOp: NoOpCheck) -> String {
        (noOp.check?.keptBehindLinks ?? []).map { TerminalText.escaped($0.line) + "\n" }.joined()
    }

    /// The line a no-op answer adds when the state marks outputs as adopted from the lock
    /// unverified (the witness keeps their number), as the full plan says it; nil when none is.
    static func unverifiedLine(_ noOp: NoOpCheck) -> String? {
        guard let check = noOp.check, check.adoptedUnverified > 0 else { return nil }
        return BuildCommand.unverified(check.adoptedUnverified, lock: check.lockPath, earlier: true)
    }

    /// The check `NoOpShortcut` made and did not answer from, for the command ArgumentParser
    /// runs next with the same manifest (its own no-op step takes it over).
    private static let kept = NIOLockedValueBox<(manifest: String, refresh: Bool, noOp: NoOpCheck)?>(nil)

    static func keep(_ noOp: NoOpCheck, for argument: ManifestArgument, refresh: Bool) {
        guard noOp.check != nil else { return }
        kept.withLockedValue { $0 = (argument.manifest, refresh, noOp) }
    }

    /// The check `NoOpShortcut` answered from, held until the process exits, which it does right
    /// after printing the answer: freeing its paths and stats one by one first (3 000 strings at
    /// 2 000 outputs) was about 4 % of a no-op's instructions, for memory the exit returns anyway
    /// (issue 15). Nothing reads it.
    private static let answered = NIOLockedValueBox<NoOpCheck?>(nil)

    static func holdUntilExit(_ noOp: NoOpCheck) {
        answered.withLockedValue { $0 = noOp }
    }

    private static func takeKept(_ argument: ManifestArgument, refresh: Bool) -> NoOpCheck? {
        kept.withLockedValue { value in
            defer { value = nil }
            guard let held = value, held.refresh == refresh, PathKey.same(held.manifest, argument.manifest) else { return nil }
            return held.noOp
        }
    }

    /// `bucket/key` for a command-line argument that is either a file path inside a bucket's
    /// folder or already `bucket/key` (explain and html take both).
    func key(ofPathOrKey argument: String) -> String {
        let absolute = URL(literalFilePath: argument).standardizedFileURL.path
        for bucket in manifest.buckets.reversed() where absolute.hasPrefix(bucket.path + "/") {
            return bucket.name + "/" + absolute.dropFirst(bucket.path.count + 1)
        }
        // Named through a link to a bucket's folder (`pics/a.jpg`, pics → photos): the file
        // system says where its folder really is (the file itself is not followed), and that is
        // compared with each bucket's real folder (attack 36a's L2).
        let name = (absolute as NSString).lastPathComponent
        if let folder = Self.realPath((absolute as NSString).deletingLastPathComponent), !name.isEmpty {
            let real = folder == "/" ? "/" + name : folder + "/" + name
            for bucket in manifest.buckets.reversed() {
                guard let root = Self.realPath(bucket.path), real.hasPrefix(root + "/") else { continue }
                return bucket.name + "/" + real.dropFirst(root.count + 1)
            }
        }
        return argument
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Why no workspace or plan could be made, for `plan --json` (the same words are on standard error).
    final class FailureReasons {
        struct Reason: Encodable { var file: String; var line: Int?; var column: Int?; var message: String }
        var items: [Reason] = []
    }

    /// Whether this process said the neighbour bound was reached (a command may load twice).
    private static let saidBoundReached = Mutex(false)

    /// Says, once per process, validate's warning that projects beyond the bound on the ones
    /// looked at are not checked (attack 51c's 2: 64 trivial manifests hid one writing private
    /// outputs into a public bucket, and check, build and serve said nothing).
    static func sayBoundReached(_ diagnostics: Diagnostics) {
        guard let bound = diagnostics.warnings.first(where: { $0.message.contains(NeighbourProjects.boundReached) }) else { return }
        guard saidBoundReached.withLock({ said in defer { said = true }; return !said }) else { return }
        Output.printDiagnostics([bound])
    }

    init(_ argument: ManifestArgument, crossChecks: Bool = true, quiet: Bool = false, overwrite: Bool = false,
         reasons: FailureReasons? = nil, witness: WitnessCheck? = nil) throws {
        let result = argument.load(crossChecks: crossChecks)
        Self.sayBoundReached(result.diagnostics)
        if quiet {
            guard result.manifest != nil, !result.diagnostics.hasErrors else { throw ExitCode.failure }
        }
        if result.diagnostics.hasErrors { Output.printDiagnostics(result.diagnostics.sorted) }
        guard let manifest = result.manifest, !result.diagnostics.hasErrors else {
            let errors = result.diagnostics.sorted.filter { $0.severity == .error }
            reasons?.items += errors.map {
                FailureReasons.Reason(file: $0.file, line: $0.line, column: $0.column, message: $0.message + ($0.hint.map { " (\($0))" } ?? ""))
            }
            if errors.isEmpty { reasons?.items.append(.init(file: argument.manifest, message: "the manifest is not valid")) }
            Output.printError(ManifestArgument.notLoaded(argument.manifest))
            throw ExitCode.failure
        }
        manifestPath = argument.manifest
        self.manifest = manifest
        engine = try Self.engine()
        let identity = engine.identity
        var drawn: [TextToDraw] = []
        for rule in manifest.rules {
            for variant in (try? rule.variants(catalogue: manifest.catalogue)) ?? [] {
                for case .font(let name, let text, let size) in variant.pipeline.dependencies { drawn.append(TextToDraw(type: name, text: text, size: size)) }
            }
        }
        // One worker start answers every font and text the plan asks for.
        engine.fonts.prefetch(types: drawn.map(\.type), drawn: drawn)
        var fonts: Set<String> = [], rendering: Set<String> = []
        for text in drawn {
            if let file = identity.fontFile(text.type) { fonts.insert(file) }
            if let drawn = identity.fontRendering(text.type) { rendering.insert(text.type + " " + drawn) }
            // Every face as drawn too: the no-op witness must see another face picked, or drawn otherwise.
            let drawing = identity.textDrawing(text)
            rendering.insert(text.type + " environment " + drawing.environment + " " + (drawing.undrawable ?? ""))
            for face in drawing.faces {
                if !face.file.isEmpty { fonts.insert(face.file) }
                rendering.insert(text.type + " face " + face.family + " " + face.file + " " + face.rendering)
            }
        }
        // The file a link beside it leads to owns the state and lock; `manifestPath` keeps the
        // name given, so watch mode follows the link too.
        session = BuildSession(manifestPath: ManifestLink.projectManifest(argument.manifest), manifest: manifest, manifestFiles: result.files,
                               identity: identity, fontFiles: fonts.sorted(), fontRendering: rendering.sorted(), overwrite: overwrite)
        // The no-op check's stat pass, when it was made from these same inputs.
        if let witness { session.adopt(witness) }
    }

    /// Runs `body` on the session, turning a state or planning failure into one message and exit 1.
    func run<T>(_ what: String, reasons: FailureReasons? = nil, _ body: (BuildSession) throws -> T) throws -> T {
        do {
            let value = try body(session)
            reportRecovery()
            return value
        } catch let held as BuildLock.Held {
            Output.printError(held.description)
            reasons?.items.append(.init(file: manifestPath, message: held.description))
            throw ExitCode(BuildLock.busyExitCode)
        } catch {
            reportRecovery()
            Output.printError("\(what) failed: \(error)")
            reasons?.items.append(.init(file: manifestPath, message: "\(what) failed: \(error)"))
            throw ExitCode.failure
        }
    }

    /// Says once that a corrupt state database was moved aside.
    func reportRecovery() {
        if let aside = session.movedAside {
            let why = session.movedAsideReason.map { reason in
                reason == "corrupt" ? "was corrupt" : reason.hasPrefix("owned by") ? "is " + reason + ", not this manifest" : "is " + reason
            } ?? "was corrupt"
            // Recovered, not failed: a warning (the command's own status says whether it worked).
            Output.printWarning("the build state \(why); moved it to \(aside) and rebuilt it from \(session.lockPath) and the outputs")
        }
    }

    func plan() throws -> Plan { try run("planning") { try $0.plan() } }
}

enum PlanPrinter {
    static var colour: Bool { isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }
    static func paint(_ text: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }

    /// `= out/t/a.jpg  kept: …`: an old output kept behind a symbolic link, as plan prints it
    /// (and its no-op answer from the witness).
    static func keptLine(_ kept: OrphanBehindLink) -> String {
        paint("=", "36") + " " + TerminalText.escaped("\(kept.output)  \(kept.message)")
    }

    /// `lock`: the lock's path, named in the line about outputs only it vouches for.
    static func print(_ plan: Plan, verbose: Bool, lock: String) {
        func paint(_ text: String, _ code: String) -> String { Self.paint(text, code) }
        // The sign is painted; what names files is escaped (`TerminalText`).
        func line(_ sign: String, _ text: String) { Swift.print(sign + " " + TerminalText.escaped(text)) }
        for item in plan.items {
            switch item.kind {
            case .create:
                let why = item.reasons + (item.supersedes.map { ["replaces \($0.path)"] } ?? [])
                let note = why.isEmpty ? "" : " (\(why.joined(separator: "; ")))"
                line(paint("+", "32"), "\(item.output)  create: \(item.derivative?.recipe ?? "")\(note)")
            case .rebuild:
                line(paint("~", "33"), "\(item.output)  rebuild: \(item.reasons.joined(separator: "; "))")
            case .update:
                line(paint("~", "36"), "\(item.output)  update record: \(item.reasons.joined(separator: "; "))")
            case .delete where plan.kept.contains(item.output):
                // Not a deletion: the file stays (the build says "kept N in place" too).
                line(paint("=", "36"), "\(item.output)  kept: \(item.reasons.joined(separator: "; "))")
            case .delete where plan.leftInPlace.contains(item.output):
                // Not a deletion either: the build leaves the file (the reasons say why, in the build's
                // words) and keeps a `left` line for it, or, when it cannot reach it, its record.
                let kept = plan.unreachable.contains(item.output) || plan.uncommitted[item.output] != nil
                    ? "" : "; \((lock as NSString).lastPathComponent) keeps a left line for it"
                line(paint("=", "36"), "\(item.output)  left: \(item.reasons.joined(separator: "; "))\(kept)")
            case .delete where plan.deleteIfRenderMatches.contains(item.output):
                // Adopted unverified: deleted only if a render of its recipe matches, else left (the reasons say so).
                line(paint("-", "31"), "\(item.output)  delete only if a render matches: \(item.reasons.joined(separator: "; "))")
            case .delete:
                let only = plan.dropsRecordOnly(item.output) ? Plan.recordOnlyNote : ""
                line(paint("-", "31"), "\(item.output)  delete: \(item.reasons.joined(separator: "; "))\(only)")
            case .upToDate:
                // Adopted by this plan, or by an earlier build and still marked: the lock's word.
                if verbose { line(" ", "\(item.output)  up to date\(item.isUnverifiedAdoption ? " (from derive.lock)" : "")") }
            }
        }
        // Lock lines no state records, for outputs the manifest does not produce: never deleted.
        for left in plan.lockLeft { line(paint("=", "36"), "\(left.output)  \(left.message)") }
        // Files the lock places where a re-pointed bucket's folder used to be (no state records them).
        for copy in plan.oldFolderCopies {
            if copy.deletes { line(paint("-", "31"), "\(copy.displayed)  \(copy.isIndex ? "remove" : "delete"): \(copy.reason)") }
            else { line(paint("=", "36"), "\(copy.displayed)  left: \(copy.reason)") }
        }
        // Old outputs behind a symbolic link: kept, their records too; nothing to do.
        for kept in plan.orphansBehindLinks { Swift.print(keptLine(kept)) }
        for change in plan.controlFiles {
            switch change.action {
            case .write: line(paint("~", "33"), "\(change.file)  rewrite: \(change.reason)")
            case .remove: line(paint("-", "31"), "\(change.file)  remove: \(change.reason)")
            case .keep: line(paint("!", "33"), "\(change.file)  keep: \(change.reason)")
            case .blocked: break   // printed as an error
            }
        }
        // With errors or failures, never "No changes": the words agree with the exit code (1).
        // Errors stop the whole build; a failure (one bad input) fails only its own outputs.
        let errors = plan.errors.count + plan.blockedControlFiles.count
        // State records the plan ignores are failures for the exit status (once: the build drops
        // them), but nothing of theirs fails to build: counted as what they are.
        let ignored = plan.ignoredRecords.count + plan.ignoredControlFiles.count
        let failures = plan.failures.count - ignored
        let summary = plan.summary.prefix(1).lowercased() + plan.summary.dropFirst()
        let ignoredText = "\(ignored) build-state record\(ignored == 1 ? "" : "s") ignored"
        // Files only the lock lists while a state exists: a plain build starts, renders them again
        // and adopts each holding exactly what its rule renders (attack 30's F5: the plan said the
        // build refuses to start, and the build then adopted the file).
        let toProve = plan.errors.filter { $0.message.contains(Planner.lockLineProvesNothing) }.count
        if errors > 0, errors == toProve {
            var also = failures > 0 ? "; \(failures) failure\(failures == 1 ? "" : "s") (above): \(failures == 1 ? "its" : "their") outputs fail (exit 1)" : ""
            if ignored > 0 { also += "; \(ignoredText) (above): the build drops \(ignored == 1 ? "it" : "them") (exit 1)" }
            // Files the state records other bytes of (an older state restored) are not "only" the lock's.
            let restored = plan.errors.contains { $0.message.contains(Planner.stateRecordsOtherBytes) }
            let listed = restored ? "holding what \((lock as NSString).lastPathComponent) lists, not what the build state records"
                : "only \((lock as NSString).lastPathComponent) lists"
            Swift.print("\(toProve) file\(toProve == 1 ? "" : "s") \(listed) (above): a build renders \(toProve == 1 ? "it" : "each") again first and adopts \(toProve == 1 ? "the file if it holds" : "each file holding") exactly what its rule renders; if \(toProve == 1 ? "it does" : "one does") not, the build refuses to start and builds nothing\(also); \(summary)")
        } else if errors > 0 {
            var also = failures > 0 ? " and \(failures) failure\(failures == 1 ? "" : "s")" : ""
            if ignored > 0 { also += (failures > 0 ? ", " : " and ") + ignoredText }
            Swift.print("\(errors) error\(errors == 1 ? "" : "s")\(also) (above) to fix: a build refuses to start and builds nothing; \(summary)")
        } else if failures > 0 {
            let also = ignored > 0 ? "; \(ignoredText) (above): the build drops \(ignored == 1 ? "it" : "them")" : ""
            Swift.print("\(failures) failure\(failures == 1 ? "" : "s") (above): \(failures == 1 ? "its" : "their") outputs fail, a build builds everything else (exit 1)\(also); \(summary)")
        } else if ignored > 0 {
            Swift.print("\(ignoredText) (above): nothing is read or deleted there, and the build drops \(ignored == 1 ? "it" : "them") (exit 1 until then); \(summary)")
        } else {
            Swift.print(plan.hasChanges ? plan.summary : PlanCommand.noChanges(plan.count(.upToDate)))
        }
        // Outputs only a lock line vouches for (adopted by this plan's build, or by an earlier one).
        if plan.adoptedUnverified > 0 { Swift.print(BuildCommand.unverified(plan.adoptedUnverified, lock: lock, ownLock: plan.adoptsFromOwnLock)) }
    }

    static func json(_ plan: Plan) throws -> Data {
        /// `replaces`: the old `{hash}` copy a create replaces; `replacedBy`: the new one (its logical name) that replaces a deleted copy.
        struct Item: Encodable { var kind: String; var output: String; var reasons: [String]; var source: String?; var recipe: String?; var actionKey: String?
                                 var replaces: String?; var replacedBy: String? }
        struct Summary: Encodable { var create: Int; var rebuild: Int; var update: Int; var delete: Int; var deleteIfRenderMatches: Int; var dropRecord: Int; var keep: Int; var left: Int; var upToDate: Int; var adoptedUnverified: Int }
        struct Control: Encodable { var file: String; var action: String; var reason: String }
        struct Failure: Encodable { var subject: String; var message: String }
        /// An output of a source that failed before rendering (attack 53c's F4).
        struct FailedOutput: Encodable { var output: String; var source: String; var recipe: String }
        struct Left: Encodable { var kind: String; var output: String; var message: String }
        struct Report: Encodable { var items: [Item]; var left: [Left]; var controlFiles: [Control]; var errors: [String]; var failures: [Failure]
                                   var failedOutputs: [FailedOutput]; var summary: Summary }
        // What the build does with each deletion, as the text plan says it: one word per item, counted alike.
        func kind(_ item: PlanItem) -> String {
            guard item.kind == .delete else { return item.kind.rawValue }
            if plan.kept.contains(item.output) { return "keep" }
            if plan.leftInPlace.contains(item.output) { return "left" }
            if plan.deleteIfRenderMatches.contains(item.output) { return "deleteIfRenderMatches" }
            return plan.recordsOnly.contains(item.output) ? "dropRecord" : "delete"
        }
        // Files named apart from the items: left in place (a lock-only line's file, an old output
        // behind a link), or a lock-only line dropped (no file there, or not a place): counted by kind too.
        let left = plan.lockLeft.map { Left(kind: $0.present ? "left" : "dropRecord", output: $0.output, message: $0.message) }
            + plan.orphansBehindLinks.map { Left(kind: "left", output: $0.output, message: $0.message) }
            + plan.oldFolderCopies.map { Left(kind: $0.deletes ? "deleteOldCopy" : "left", output: $0.displayed, message: $0.reason) }
        let kinds = plan.items.filter { $0.kind == .delete }.map(kind) + left.map(\.kind)
        let report = Report(
            items: plan.items.map { Item(kind: kind($0), output: $0.output, reasons: $0.reasons, source: $0.derivative?.source ?? $0.recorded?.source,
                                         recipe: $0.derivative?.recipe, actionKey: $0.derivative?.actionKey,
                                         replaces: $0.supersedes?.path, replacedBy: $0.kind == .delete ? plan.replacedBy[$0.output] : nil) },
            left: left,
            controlFiles: plan.controlFiles.map { Control(file: $0.file, action: $0.action.rawValue, reason: $0.reason) },
            // errors: the build refuses and writes nothing; failures: only those outputs fail.
            errors: plan.errors.map(\.message) + plan.blockedControlFiles.map { "\($0.file) \($0.reason)" },
            failures: plan.failures.map { Failure(subject: $0.subject, message: $0.message) },
            failedOutputs: plan.failures.flatMap { failure in failure.outputs.map { FailedOutput(output: $0.output, source: failure.subject, recipe: $0.recipe) } },
            summary: Summary(create: plan.count(.create), rebuild: plan.count(.rebuild), update: plan.count(.update), delete: kinds.count { $0 == "delete" },
                             deleteIfRenderMatches: kinds.count { $0 == "deleteIfRenderMatches" },
                             dropRecord: kinds.count { $0 == "dropRecord" }, keep: kinds.count { $0 == "keep" },
                             left: kinds.count { $0 == "left" }, upToDate: plan.count(.upToDate), adoptedUnverified: plan.adoptedUnverified))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(report)
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

    @Flag(name: .long, help: "Plan to replace files at output paths that Derive did not write.")
    var overwrite = false

    func run() throws {
        var wrotePlan = false
        let reasons = Workspace.FailureReasons()
        guard json else {
            do { return try plan(wrotePlan: &wrotePlan, reasons: reasons) } catch let running as BuildRunning {
                Output.printError(running.description)
                throw ExitCode(BuildLock.busyExitCode)
            }
        }
        do {
            try plan(wrotePlan: &wrotePlan, reasons: reasons)
        } catch let running as BuildRunning {
            // No plan: a build is writing. JSON says so with the status it exits with (75).
            reasons.items.append(.init(file: manifest.manifest, message: running.description))
            struct Failure: Encodable { var error: String; var exitCode: Int32; var reasons: [Workspace.FailureReasons.Reason] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try Output.writeStandardOutput(try encoder.encode(Failure(error: running.description, exitCode: BuildLock.busyExitCode, reasons: reasons.items)))
            Swift.print()
            Output.printError(running.description)
            throw ExitCode(BuildLock.busyExitCode)
        } catch {
            // A plan with errors was written as JSON already (its exit code stands).
            if wrotePlan { throw error }
            // JSON mode answers with JSON on standard output even when no plan could be made
            // (the human message is on standard error too); exit 1, as without --json. The
            // reasons carry where each problem is, as `derive validate --json` does.
            let message = (error as? ExitCode) != nil
                ? "no plan could be made for \(manifest.manifest)"
                : String(describing: error)
            if (error as? ExitCode) == nil { reasons.items.append(.init(file: manifest.manifest, message: message)) }
            struct Failure: Encodable { var error: String; var exitCode: Int32; var reasons: [Workspace.FailureReasons.Reason] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try Output.writeStandardOutput(try encoder.encode(Failure(error: message, exitCode: 1, reasons: reasons.items)))
            Swift.print()
            if (error as? ExitCode) == nil { Output.printError(message) }
            throw ExitCode.failure
        }
    }

    /// The no-op step (`NoOpShortcut`'s too): the words when nothing is to do, and the check made.
    static func noOp(_ manifest: ManifestArgument) -> (answer: String?, check: Workspace.NoOpCheck) {
        let noOp = Workspace.unchanged(manifest)
        let note = Workspace.unverifiedLine(noOp).map { "\n" + $0 } ?? ""
        // As the full plan prints them: the old outputs kept behind a link, then the verdict.
        let kept = (noOp.check?.keptBehindLinks ?? []).map { PlanPrinter.keptLine($0) + "\n" }.joined()
        return (noOp.count.map { kept + noChanges($0) + note }, noOp)
    }

    static func noChanges(_ count: Int) -> String { "No changes: \(count) output\(count == 1 ? "" : "s") up to date." }

    private func plan(wrotePlan: inout Bool, reasons: Workspace.FailureReasons) throws {
        var noOp: (answer: String?, check: Workspace.NoOpCheck) = (nil, (nil, nil, false))
        if !json && !verbose && !overwrite { noOp = Self.noOp(manifest) }
        if let answer = noOp.answer {
            print(answer)
            return
        }
        let workspace = try Workspace(manifest, overwrite: overwrite, reasons: reasons, witness: noOp.check.check)
        let mark = try BuildRunning.watch(workspace, "plan")
        // In a fresh clone the plan renders the sources' colours and placeholders (small renders)
        // to know whether the index changes, as the build will: it lists exactly what the build writes.
        let summaries = SummaryWorkers(jobs: nil, engineVersion: workspace.engine.report.version, limits: workspace.manifest.limits)
        defer { summaries.shutdown() }
        let plan = try workspace.run("planning", reasons: reasons) { try $0.readOnlyPlan(summaries: summaries.renderer) }
        try BuildRunning.refuse(workspace, "plan", since: mark)   // one that started (or ran) meanwhile: its files are not recorded yet
        if let note = workspace.session.stateNote { Output.printWarning(note) }
        if json {
            try Output.writeStandardOutput(try PlanPrinter.json(plan))
            Swift.print()
            wrotePlan = true
        } else {
            for error in plan.errors { Output.printError(error.message) }
            for failure in plan.failures {
                // A failed source's outputs, as build names them (attack 53c's F4).
                let outputs = failure.outputs.map(\.output)
                Output.printFailure("\(failure.subject): \(failure.message)"
                                    + (outputs.isEmpty || verbose ? "" : ": " + FailureGroups.named(outputs, seeEach: "derive plan --verbose")))
                if verbose {
                    for output in outputs { Output.writeStandardError(TerminalText.escaped("  \(output): \(FailureGroups.reason(failure.message))") + "\n") }
                }
            }
            for blocked in plan.blockedControlFiles { Output.printError("\(blocked.file) \(blocked.reason)") }
            PlanPrinter.print(plan, verbose: verbose, lock: workspace.session.lockPath)
        }
        if !plan.errors.isEmpty || !plan.failures.isEmpty || !plan.blockedControlFiles.isEmpty { throw ExitCode.failure }
        if detailedExitcode, plan.hasChanges { throw ExitCode(2) }
    }
}

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Render what is stale, delete what the manifest no longer produces, write the lock and the index."
    )

    @OptionGroup var manifest: ManifestArgument

    // Unconditional, as the limit flags: `--jobs -1` is a value (then a range error), not a flag.
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Parallel jobs, 1 to 1024 (default: the CPUs this process may use).")
    var jobs: LimitValue?

    @Option(name: .long, parsing: .unconditional, help: "Memory budget for concurrent renders, in MiB, 1 to 1048576 (default: half the machine, at most 8 GiB).")
    var memory: LimitValue?

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    @Flag(name: .long, help: "Replace files at output paths that Derive did not write (they are lost).")
    var overwrite = false

    @Flag(name: .shortAndLong, help: "List every output that failed, not only one line per source.")
    var verbose = false

    /// The most parallel jobs and the largest memory budget accepted (MiB: 1 TiB).
    static let maxJobs = 1_024
    static let maxMemoryMiB = 1 << 20

    func validate() throws {
        if let jobs, !(1...Self.maxJobs).contains(jobs.value) {
            throw ValidationError("--jobs must be from 1 to \(Self.maxJobs), not \(jobs.text)")
        }
        if let memory, !(1...Self.maxMemoryMiB).contains(memory.value) {
            throw ValidationError("--memory must be from 1 to \(Self.maxMemoryMiB) (MiB), not \(memory.text)")
        }
    }

    @Flag(name: .long, help: "Before building, render the outputs adopted from the lock again (a fresh clone's) and treat one whose file differs as not Derive's.")
    var verify = false

    @Flag(name: .long, help: "As --verify, for every up-to-date output.")
    var verifyAll = false

    @Flag(name: .long, help: "After the build, watch the manifest and the source folders and rebuild on every change (Ctrl-C stops).")
    var watch = false

    func run() throws {
        if watch {
            try WatchMode(command: self).run()
            return
        }
        var noOp: (answer: String?, check: Workspace.NoOpCheck) = (nil, (nil, nil, false))
        if !(overwrite || verify || verifyAll) { noOp = Self.noOp(manifest) }
        if let answer = noOp.answer {
            print(answer)
            return
        }
        // The manifest is loaded and validated before the engine is looked up: a refused build
        // writes nothing (attack 52b's L6: with HOME inside a public bucket, the engine cache
        // was written there before the refusal).
        let started = Date()
        let workspace = try Workspace(manifest, overwrite: overwrite, witness: noOp.check.check)
        // Workers must report the engine the plan fingerprints with (the worker's description).
        let workers = try Workers.pool(size: BuildOptions(jobs: jobs?.value).jobs, expectedEngineVersion: Workspace.engine().report.version)
        defer { workers.shutdown() }
        let result = try buildOnce(workers: workers, fastPath: false, loaded: (workspace, started))
        print(result.summary)
        if !result.succeeded { throw ExitCode.failure }
    }

    /// The no-op step (`NoOpShortcut`'s too): the words when nothing is to do, and the check
    /// made. A witness that held by rehashing just-written files is saved again.
    static func noOp(_ manifest: ManifestArgument) -> (answer: String?, check: Workspace.NoOpCheck) {
        let noOp = Workspace.unchanged(manifest, refresh: true)
        let note = Workspace.unverifiedLine(noOp).map { "\n" + $0 } ?? ""
        return (noOp.count.map { Workspace.keptLines(noOp) + nothingToDo($0) + note }, noOp)
    }

    static func nothingToDo(_ count: Int) -> String { "Nothing to do: \(count) output\(count == 1 ? "" : "s") up to date." }

    /// What one build did: the summary line, whether it succeeded, and the files its outputs,
    /// lock and index are at (nil when it did not get that far, or took the no-op fast path).
    struct Result {
        var summary: String
        var succeeded: Bool
        var writtenFiles: [String]?
        var workspace: Workspace?
    }

    /// One line per source whose derivatives failed (each output below it with --verbose), as plan
    /// prints them: a bad input fails its own outputs and refuses nothing else.
    func printFailures(_ failed: [(output: String, message: String)], sources: PathDictionary<String>, plan: Plan) {
        let outputs = FailureGroups.outputs(of: plan.failures)
        for line in FailureGroups.lines(FailureGroups.group(failed, sourceOf: { sources[$0] }), verbose: verbose, outputsOf: { outputs[$0] ?? [] }) {
            if line.hasPrefix("  ") { Output.writeStandardError(TerminalText.escaped(line) + "\n") } else { Output.printFailure(line) }
        }
    }

    /// Plans and builds once with `workers`; errors are printed and thrown as exit codes, as `build` always did.
    /// `witness`: the no-op check this command already made (its stat pass is not repeated).
    /// `watching`: a build of `derive build --watch`, which builds again at once a source saved while it ran.
    /// `loaded`: the workspace already loaded (and when the load started), else it is loaded here.
    func buildOnce(workers: RenderWorkerPool, fastPath: Bool, witness: WitnessCheck? = nil, watching: Bool = false,
                   loaded: (workspace: Workspace, started: Date)? = nil) throws -> Result {
        var witness = witness
        if fastPath, loaded == nil {
            let noOp = Self.noOp(manifest)
            if let answer = noOp.answer { return Result(summary: answer, succeeded: true) }
            witness = noOp.check.check
        }
        // The summary's time is the whole build's, planning (hashing the sources) included.
        let started = loaded?.started ?? Date()
        let workspace = try loaded?.workspace ?? Workspace(manifest, overwrite: overwrite, witness: witness)
        let options = BuildOptions(jobs: jobs?.value, memoryBudget: memory.map { $0.value << 20 }, quiet: quiet, watching: watching)
        let limits = workspace.manifest.limits
        let outcome = try workspace.run("build") { session in
            try session.build(options: options, verify: verify, verifyAll: verifyAll) { EngineRenderer(limits: limits, renderer: workers) }
        }
        let plan = outcome.plan
        let verification = outcome.verification
        // Each file found other than what its rule renders: not Derive's (the plan says what became of it).
        let leftByLock = PathSet(plan.lockLeft.map(\.output))
        // A file the lock lists under another recipe may be Derive's output of that recipe: --verify
        // renders only the current one, so it is not called "not Derive's" (attack 59a's F1).
        let otherRecipe = PathSet(plan.errored.filter { $0.error.message.contains(Planner.staleLineRefusal) }.map(\.derivative.output))
        for mismatch in verification?.mismatches ?? [] {
            let fate = leftByLock.contains(mismatch.output) || plan.kept.contains(mismatch.output) ? "left in place (the true output is written under the {hash} name of its own bytes)"
                : overwrite ? "rendered over (--overwrite)" : "not overwritten without --overwrite"
            let verdict = otherRecipe.contains(mismatch.output)
                ? "not what the current recipe renders (the lock lists it under another recipe, which --verify cannot prove)" : "not Derive's output"
            Output.printWarning("\(mismatch.line) (rendered again by --verify): \(verdict); \(fate)")
        }
        for failure in verification?.failures ?? [] { Output.printFailure("\(failure.output): \(failure.message)") }
        guard let report = outcome.report else {
            for error in plan.errors { Output.printError(error.message) }
            for blocked in plan.blockedControlFiles { Output.printError("\(blocked.file) \(blocked.reason)") }
            // The outputs that fail besides, grouped by source as a build's failures (attack 52c's 2:
            // only the error was named, and each next problem showed one run later).
            var sources: PathDictionary<String> = [:]
            for failure in plan.failures { if let source = failure.source { sources[failure.subject] = source } }
            printFailures(plan.failures.map { (output: $0.subject, message: $0.message) }, sources: sources, plan: plan)
            let waiting = plan.count(.create) + plan.count(.rebuild)
            let waits = waiting == 1 ? "1 output to create or rebuild waits; " : waiting > 1 ? "\(waiting) outputs to create or rebuild wait; " : ""
            Output.printError("nothing was built: a plan with errors builds nothing (\(waits)see derive plan)")
            // Not for a file adopted unverified that was just rendered again and found not Derive's: `--verify` refuses it too.
            let unproven = workspace.session.unprovenAdoptions
            if !verify, !verifyAll, !overwrite,
               plan.errored.contains(where: { $0.error.message.contains("was not written by Derive") && !unproven.contains($0.derivative.output)
                   // --verify renders the current recipe: it cannot prove a file of the lock's other recipe (attack 59a's F1).
                   && !$0.error.message.contains(Planner.staleLineRefusal) }) {
                // Derive's own outputs whose record was lost look exactly like a user's files (attack 18's N5b, S11).
                Output.printWarning("if such a file is an output Derive wrote whose record was lost (the project was moved while it built, or a build ran under another HOME or user), derive build --verify renders it again and replaces it when it holds exactly what its rule renders; any other file is still refused")
            }
            throw ExitCode.failure
        }
        if !report.refusals.isEmpty {
            for refusal in report.refusals { Output.printError(refusal) }
            Output.printError("nothing was built: a {hash} name is known only once its output is rendered, and one came out as another output's name; no output, lock or index was written")
            throw ExitCode.failure
        }
        // Nothing needed building, but the stat cache's refresh could not be saved (named once).
        if let unsaved = report.stateNotSaved { Output.printWarning(unsaved.noOpWarning) }
        var written = report.outputFiles
        if written != nil {
            written?.append(workspace.session.lockPath)
            if let index = workspace.manifest.index, let bucket = workspace.manifest.bucket(named: index.bucket) {
                written?.append(bucket.path + "/" + index.path)
            }
        }
        // One line per bad source (with how many derivatives it cost); each output with --verbose.
        var sources: PathDictionary<String> = [:]
        for item in plan.items { if let source = item.derivative?.source ?? item.recorded?.source { sources[item.output] = source } }
        // An output's own failure (a missing watermark object) is grouped under its source too.
        for failure in plan.failures { if let source = failure.source { sources[failure.subject] = source } }
        // Ignored state records are named by their own path, not grouped under the source an
        // output of that name has today (which was built: nothing of theirs failed).
        let ignoredRecords = PathSet(plan.ignoredRecords + plan.ignoredControlFiles)
        // Renders cancelled by a stop the user asked for (Ctrl-C, SIGTERM during a watch) are not
        // failures: one line says how many derivatives wait for the next build (attack 39b's L6).
        let stopped = report.failed.filter { BuildStop.cancelledByStop($0.message) }
        let built = Self.changedWhileBuilding(report.failed.filter { !ignoredRecords.contains($0.output) && !BuildStop.cancelledByStop($0.message) },
                                              watching: watching)
        let failed = built.failed
        for change in built.again { Output.printLine("\(change) while building; building again") }
        for source in built.removed { Output.printLine(source + SourceChanged.removedSuffix) }
        let ignored = report.failed.filter { ignoredRecords.contains($0.output) }
        if !stopped.isEmpty { Output.printLine(BuildStop.line(notBuilt: stopped.count)) }
        printFailures(failed, sources: sources, plan: plan)
        for record in ignored { Output.printFailure("\(record.output): \(record.message)") }
        for error in report.controlErrors { Output.printError(error) }
        for left in report.left { Output.printWarning(left.message) }
        for undone in report.notDeleted { Output.printError(undone.message) }
        // Named once: files only the lock (no state) names, left in place; their lines are dropped.
        for left in plan.lockLeft { Output.printLine(left.line) }
        // Old outputs behind a symbolic link: named whenever a build plans (a no-op does not).
        for kept in plan.orphansBehindLinks { Output.printLine(kept.line) }
        // Files replaced or deleted on git's proof alone (`GitProof`): named with --verbose.
        if verbose {
            for item in plan.items where item.kind != .upToDate {
                if let reason = item.reasons.first(where: { $0.contains("proven Derive's by git") }) { Output.printLine("  \(item.output)  \(reason)") }
            }
        }
        // Files left in place stay known, with their ACL, in the lock until they are gone (V1, V2).
        let lockName = (workspace.session.lockPath as NSString).lastPathComponent
        let doubt = (try? workspace.session.planner())?.neighbourDoubt
        for line in report.leftKept {
            let file = LockFile.bucket(holding: line.place, in: workspace.manifest).map { $0.bucket.path + "/" + $0.key }
            print(Workspace.leftLineText(line, lockName: lockName, doubt: file.flatMap { doubt?($0) }))
        }
        for dropped in report.droppedLeft { print("- \(dropped.path)  no longer left in place: \(dropped.why); its line in \(lockName) is dropped") }
        // Budgets of what was built before (a lowered max_bytes) and of rules' totals.
        let breaches = BudgetAudit.afterBuild(workspace, renderer: EngineRenderer(limits: limits, renderer: workers), built: report.built)
        for breach in breaches { Output.printError("budget: \(breach)") }
        // Not clean: the next build plans and reports the breach again (no "nothing to do").
        if !breaches.isEmpty { workspace.session.forgetWitness() }
        let verifyFailed = !(verification?.failures.isEmpty ?? true)
        // Outputs the state still marks as adopted from the lock unverified (now or by an earlier build).
        let unverified = report.adoptedUnverified > 0
            ? "\n" + Self.unverified(report.adoptedUnverified, lock: workspace.session.lockPath, ownLock: plan.adoptsFromOwnLock, earlier: report.adopted.isEmpty) : ""
        if !plan.hasChanges, report.succeeded, report.adopted.isEmpty, breaches.isEmpty, verification == nil {
            return Result(summary: Self.nothingToDo(plan.count(.upToDate)) + unverified, succeeded: true, writtenFiles: written, workspace: workspace)
        }
        var parts = ["built \(report.built.count)" + (report.resumed > 0 ? " (\(report.resumed) rendered by an earlier build, kept in the state folder)" : "")]
        if !report.updated.isEmpty { parts.append("updated \(report.updated.count) records") }
        if !report.restored.isEmpty {
            parts.append("adopted \(report.restored.count) restored cop\(report.restored.count == 1 ? "y" : "ies") (same bytes, new inode: recorded as Derive's)")
        }
        if !report.deleted.isEmpty { parts.append("deleted \(report.deleted.count)") }
        if !report.notDeleted.isEmpty { parts.append("\(report.notDeleted.count) deletion\(report.notDeleted.count == 1 ? "" : "s") not done (above)") }
        if !report.forgotten.isEmpty { parts.append("forgot \(report.forgotten.count) (already gone)") }
        if !report.kept.isEmpty { parts.append("kept \(report.kept.count) in place (only the output record is dropped)") }
        if !report.leftUnproven.isEmpty { parts.append("left \(report.leftUnproven.count) in place (not proven Derive's: only the output record is dropped)") }
        let leftInPlace = plan.lockLeft.filter(\.present).count
        if leftInPlace > 0 { parts.append("left \(leftInPlace) in place (known only from \((workspace.session.lockPath as NSString).lastPathComponent))") }
        if !report.deletedOldCopies.isEmpty {
            parts.append("deleted \(report.deletedOldCopies.count) old cop\(report.deletedOldCopies.count == 1 ? "y" : "ies") where the bucket folder used to be")
        }
        if !report.rewritten.isEmpty { parts.append("rewrote \(report.rewritten.joined(separator: ", "))") }
        if !report.removed.isEmpty { parts.append("removed \(report.removed.joined(separator: ", "))") }
        if !report.sweptTemporaries.isEmpty {
            parts.append("removed \(report.sweptTemporaries.count) temporary file\(report.sweptTemporaries.count == 1 ? "" : "s") a killed command left (\(report.sweptTemporaries.joined(separator: ", ")))")
        }
        if !report.adopted.isEmpty { parts.append("adopted \(report.adopted.count) from \((workspace.session.lockPath as NSString).lastPathComponent)") }
        // In one unit, as the progress line: derivatives not built (a bad source costs all of its own).
        let costs = PathDictionary(plan.failures.map { ($0.subject, $0.notBuilt) }, uniquingKeysWith: +)
        let notBuilt = failed.reduce(0) { $0 + (costs[$1.output] ?? 1) }
        if notBuilt > 0 { parts.append("\(notBuilt) failed") }
        if built.removedCount > 0 { parts.append("\(built.removedCount) \(SourceChanged.removedWords)") }
        let costless = failed.count { costs[$0.output] == 0 }
        if costless > 0 { parts.append("\(costless) other failure\(costless == 1 ? "" : "s") (above)") }
        if !ignored.isEmpty { parts.append("\(ignored.count) build-state record\(ignored.count == 1 ? "" : "s") ignored (dropped)") }
        let held = plan.heldBySource.count + plan.heldLockLines.count
        if held > 0 { parts.append("kept \(held) as built (\(held == 1 ? "its source" : "their sources") could not be read)") }
        if !report.controlErrors.isEmpty { parts.append("lock or index not written") }
        if !breaches.isEmpty { parts.append("\(breaches.count) budget breach\(breaches.count == 1 ? "" : "es")") }
        if let verification {
            parts.append("verified \(verification.verified.count)" + (verification.mismatches.isEmpty ? "" : " (\(verification.mismatches.count) differed)")
                         + (verifyFailed ? " (\(verification.failures.count) could not be rendered)" : ""))
        }
        parts.append("\(plan.count(.upToDate) - report.adopted.count) up to date")
        // A fresh clone: the lock's word for those files' bytes was taken (README, "Fresh clones").
        let summary = parts.joined(separator: ", ") + String(format: " in %.2f s.", Date().timeIntervalSince(started)) + unverified
        return Result(summary: summary,
                      succeeded: (report.succeeded || built.again.count > 0 && report.failed.count == built.changed
                                  && report.controlErrors.isEmpty && report.refusals.isEmpty && report.notDeleted.isEmpty) && breaches.isEmpty && !verifyFailed,
                      writtenFiles: written, workspace: workspace)
    }
}

extension BuildCommand {
    /// A watch's build splits off the outputs whose source was saved while it ran (attack 41b's
    /// L5): the watch builds them again right after (it saw the save, or its no-op check finds
    /// it), so they are no failure; `again` names each such change once (`photos/a.jpg changed`),
    /// `changed` counts the outputs. A one-shot build keeps them as failures ("… run the build
    /// again"). A source removed while building is a change too, never a failure (attack 53c's
    /// F5): in a watch among `again` (`photos/b.jpg was removed`), in a one-shot build named in
    /// `removed` and counted apart in `removedCount`.
    static func changedWhileBuilding(_ failed: [(output: String, message: String)], watching: Bool)
        -> (failed: [(output: String, message: String)], again: [String], changed: Int, removed: [String], removedCount: Int) {
        var kept: [(output: String, message: String)] = []
        var again: [String] = [], removed: [String] = []
        var changed = 0, removedCount = 0
        for failure in failed {
            if failure.message.hasSuffix(SourceChanged.removedSuffix) {
                let source = String(failure.message.dropLast(SourceChanged.removedSuffix.count))
                if watching {
                    changed += 1
                    if !again.contains(source + " was removed") { again.append(source + " was removed") }
                } else {
                    removedCount += 1
                    if !removed.contains(source) { removed.append(source) }
                }
                continue
            }
            guard watching, failure.message.hasSuffix(SourceChanged.suffix) else { kept.append(failure); continue }
            changed += 1
            let source = String(failure.message.dropLast(SourceChanged.suffix.count))
            if !again.contains(source + " changed") { again.append(source + " changed") }
        }
        return (kept, again, changed, removed, removedCount)
    }

    /// The one line `build`, `plan` and `check` print (without `--verify`) while outputs only the
    /// lock vouches for are recorded or to be adopted: a fresh clone's, until verified or rendered.
    /// `ownLock`: the lock is the one this user's Derive last wrote for this state (`LockProvenance`),
    /// said so (attack 37b's finding 12); they stay unverified until a render proves them.
    /// `earlier`: every one was adopted by an earlier build (a no-op answer, or a build that
    /// adopted none): said as what still is, not as what this run did (attack 52c's 5: each no-op
    /// after a clone's build repeated "100 outputs adopted …" as if it had adopted them again).
    static func unverified(_ count: Int, lock: String, ownLock: Bool = false, earlier: Bool = false) -> String {
        let name = (lock as NSString).lastPathComponent
        let them = count == 1 ? "it" : "them"
        let whose = ownLock ? "\(name) is the lock this user's Derive last wrote for this state, and vouches for" : "\(name) vouches for"
        let when = earlier ? " by an earlier build remain\(count == 1 ? "s" : "") so" : ""
        return "\(count) output\(count == 1 ? "" : "s") adopted from \(name) unverified\(when) (\(whose) \(count == 1 ? "its" : "their") bytes; "
            + "derive check --verify renders \(them) again, derive build --verify also records \(them) as verified)"
    }
}

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "For CI: exit 1 when anything is stale or the lock disagrees with the outputs. Writes nothing."
    )

    @OptionGroup var manifest: ManifestArgument

    @Option(name: .shortAndLong, help: "Render workers for --verify and the min_ssim budgets (default: the CPUs this process may use).")
    var jobs: Int?

    @Flag(name: .long, help: "Render the outputs adopted from the lock (a fresh clone's) again and name each whose file differs.")
    var verify = false

    @Flag(name: .long, help: "As --verify, for every up-to-date output.")
    var verifyAll = false

    /// The no-op step (`NoOpShortcut`'s too): the words when nothing is to do, and the check
    /// made. With budgets, check judges them even on a no-op (an up-to-date output can breach a
    /// lowered budget).
    static func noOp(_ manifest: ManifestArgument) -> (answer: String?, check: Workspace.NoOpCheck) {
        let noOp = Workspace.unchanged(manifest)
        guard let count = noOp.count, !noOp.hasBudgets else { return (nil, noOp) }
        // As the full check prints them: the old outputs kept behind a link, the files left in
        // place, the unverified line, then the verdict.
        let left = Workspace.leftLines(noOp).map { $0 + "\n" }.joined()
        return (Workspace.keptLines(noOp) + left + (Workspace.unverifiedLine(noOp).map { $0 + "\n" } ?? "") + upToDate(count), noOp)
    }

    /// How `check` names a file left in place (the lock's `left` line): not an output, not stale.
    /// `doubt`: why the file may be another manifest's (`NeighbourDoubt`), said instead of the
    /// advice to release it (attack 49b's F8: the neighbour's output was offered for release).
    static func leftLine(_ line: LockFile.Left, lock: String, doubt: String? = nil) -> String {
        let hint = doubt.map { ", in doubt: \($0)" } ?? releaseHint(line)
        return line.isGone
            ? "~ \(line.path)  left in place (\(line.why)), gone: kept in \(lock) as gone (\(line.acl)), so a file put back there is answered no more publicly; not an output" + hint
            : "= \(line.path)  left in place (\(line.why)), kept in \(lock) as a file left \(line.acl); not an output" + hint
    }

    /// How the user says a file a private line keeps is theirs (round 22's V3); nothing for a
    /// line left public (its key answers it no more privately).
    static func releaseHint(_ line: LockFile.Left) -> String {
        line.aclValue.isPublic ? "" : " (if it is yours to publish: derive release \(line.path), and it takes its key's ACL)"
    }

    static func upToDate(_ count: Int) -> String {
        "Up to date: \(count == 1 ? "1 output matches" : "\(count) outputs match") the manifest and the lock."
    }

    /// No verdict while a build or clean holds the state's lock, or once one ran or the state
    /// folder changed since `check` began (`BuildRunning`): exit 75.
    private func refuseWhileBuilding<Seen>(_ look: () throws -> Seen) throws -> Seen {
        do { return try look() } catch let running as BuildRunning {
            Output.printError(running.description)
            throw ExitCode(BuildLock.busyExitCode)
        }
    }

    func run() throws {
        // --verify renders again whatever the witness says: no no-op answer.
        let verifying = verify || verifyAll
        var noOp: (answer: String?, check: Workspace.NoOpCheck) = (nil, (nil, nil, false))
        if !verifying { noOp = Self.noOp(manifest) }
        if let answer = noOp.answer {
            print(answer)
            return
        }
        let workspace = try Workspace(manifest, witness: noOp.check.check)
        let mark = try refuseWhileBuilding { try BuildRunning.watch(workspace, "check") }
        // Workers start only for sources whose colour or placeholder the state lacks (a fresh
        // clone): check renders them to compare the index with what a build writes.
        let summaries = SummaryWorkers(jobs: jobs, engineVersion: workspace.engine.report.version, limits: workspace.manifest.limits)
        defer { summaries.shutdown() }
        // The same workers, deadline and budgets as build's renders, `jobs` of them in parallel.
        let request = verifying ? BuildSession.VerifyRequest(all: verifyAll, options: BuildOptions(jobs: jobs), renderer: summaries.renderer) : nil
        var result = try workspace.run("check") { try $0.check(summaries: summaries.renderer, verify: request) }
        try refuseWhileBuilding { try BuildRunning.refuse(workspace, "check", since: mark) }   // one that started (or ran) meanwhile
        if let note = workspace.session.stateNote { Output.printWarning(note) }
        result.problems += try BudgetAudit.forCheck(workspace, jobs: jobs).map { "budget: \($0)" }
        for left in result.left { Output.printLine(left.line) }
        for kept in result.orphansBehindLinks { Output.printLine(kept.line) }
        // Files left in place are not outputs: named, never stale while they are there (V1, V2).
        let lockName = (workspace.session.lockPath as NSString).lastPathComponent
        let doubt = (try? workspace.session.planner())?.neighbourDoubt
        for line in result.leftInLock {
            let file = LockFile.bucket(holding: line.place, in: workspace.manifest).map { $0.bucket.path + "/" + $0.key }
            Output.printLine(Self.leftLine(line, lock: lockName, doubt: line.isGone ? nil : file.flatMap { doubt?($0) }))
        }
        for dropped in result.droppedLeft { Output.printLine("- \(dropped.path)  no longer left in place: \(dropped.why); derive build drops its line in \(lockName)") }
        for problem in result.problems { Output.printLine(problem) }
        if result.adoptedUnverified > 0 { print(BuildCommand.unverified(result.adoptedUnverified, lock: workspace.session.lockPath, ownLock: result.adoptsFromOwnLock)) }
        if let verification = result.verification {
            let count = verification.verified.count
            print("verified \(count) output\(count == 1 ? "" : "s") by rendering \(count == 1 ? "it" : "them") again in \(String(format: "%.2f", verification.seconds)) s")
        }
        if result.problems.isEmpty {
            print(Self.upToDate(result.upToDate))
        } else {
            Output.writeStandardError("derive check: \(result.problems.count) problem\(result.problems.count == 1 ? "" : "s")\n")
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
        let plan = try workspace.run("planning") { try $0.readOnlyPlan() }
        let key = workspace.key(ofPathOrKey: output)
        // Every line escaped as plan's are: a key may hold a C1 control (a source named
        // `p\u{9B}[31m.jpg`), which reached the terminal raw here (attack 43's M-a).
        func say(_ line: String) { print(TerminalText.escaped(line)) }
        // A `{hash}` output by its logical name (the index's `logical`: `site/a.{hash}.webp`) is
        // the output of that name, whatever its bytes name it now (attack 39b's L4).
        func logicalName(_ item: PlanItem) -> String? {
            guard item.kind != .delete, let derivative = item.derivative, let hashed = derivative.hashed else { return nil }
            return PathKey.bucket(of: derivative.output) + "/" + hashed.logicalKey
        }
        guard let item = plan.items.first(where: { PathKey.same($0.output, key) })
                ?? plan.items.first(where: { logicalName($0).map { PathKey.same($0, key) } ?? false }) else {
            // An output of a source that failed before rendering: whose it is and why it is not
            // built, not "not an output" (attack 53c's F4).
            for failure in plan.failures {
                guard let failed = failure.outputs.first(where: { PathKey.same($0.output, key) }) else { continue }
                Output.printError(TerminalText.escaped("\(output) is an output of rule \(failed.recipe) from \(failure.subject), which failed: \(failure.message)"))
                throw ExitCode.failure
            }
            // A width a narrower source folds away is named with the output built instead.
            if let why = try? workspace.session.planner().narrowedAway(key, plan: plan) {
                Output.printError(TerminalText.escaped("\(output) is not built (not an output of \(manifest)): \(why)"))
                throw ExitCode.failure
            }
            // A file only the lock names, or one a build left in place: what plan says of it, and
            // why it is in doubt while a neighbour cannot be read (attack 49b's F8: only "not an output").
            if let left = plan.lockLeft.first(where: { PathKey.same($0.output, key) }) {
                Output.printError(TerminalText.escaped("\(output) is not an output of \(manifest): \(left.message)"))
                throw ExitCode.failure
            }
            if let line = (try? workspace.session.planner())?.lockLeftLines()[key] {
                let doubt = LockFile.bucket(holding: line.place, in: workspace.manifest).flatMap { placed in
                    (try? workspace.session.planner())?.neighbourDoubt?(placed.bucket.path + "/" + placed.key)
                }
                Output.printError(TerminalText.escaped("\(output) is not an output of \(manifest): left in place (\(line.why)), kept in its lock as a file left \(line.acl)"
                    + (doubt.map { ", in doubt: \($0)" } ?? "")))
                throw ExitCode.failure
            }
            // An output refused as another project's (taken over with --overwrite): said as plan
            // says it, not "not an output" (attack 50a's F6).
            if plan.erroredOutputs.contains(key), let (bucket, name) = PathKey.split(key), let folder = workspace.manifest.bucket(named: bucket)?.path,
               let planner = try? workspace.session.planner() {
                let shown = planner.display(folder + "/" + name)
                if let refusal = plan.errors.first(where: { $0.message.hasPrefix(shown + " ") }) {
                    Output.printError(TerminalText.escaped("\(output): refused: \(refusal.message)"))
                    throw ExitCode.failure
                }
            }
            Output.printError("\(output) is not an output of \(manifest)")
            let close = plan.items.map(\.output).filter { $0.hasSuffix((key as NSString).lastPathComponent) }.prefix(3)
            if !close.isEmpty { Output.writeStandardError(TerminalText.escaped("did you mean: \(close.joined(separator: ", "))?") + "\n") }
            throw ExitCode.failure
        }
        let status: String
        switch item.kind {
        case .upToDate: status = item.isUnverifiedAdoption ? "up to date (vouched for by derive.lock)" : "up to date"
        case .create: status = "will be created" + (item.reasons.isEmpty ? "" : ": " + item.reasons.joined(separator: "; "))
        case .rebuild: status = "will be rebuilt: " + item.reasons.joined(separator: "; ")
        case .update: status = "up to date; its record will be updated: " + item.reasons.joined(separator: "; ")
        // Kept or left in place, the file stays: said as plan says it (attack 50b's L1: "will be deleted").
        case .delete where plan.kept.contains(item.output): status = "kept in place (only this manifest's record is dropped): " + item.reasons.joined(separator: "; ")
        case .delete where plan.leftInPlace.contains(item.output): status = "left in place: " + item.reasons.joined(separator: "; ")
        case .delete: status = "will be deleted: " + item.reasons.joined(separator: "; ") + (plan.dropsRecordOnly(item.output) ? Plan.recordOnlyNote : "")
        }
        say("\(item.output): \(status)")
        // An old `{hash}` copy replaced by a new one is compared with what is wanted now (the new
        // one's components); a new one, with the old copy it replaces: the "why" either way.
        let replacing = item.kind == .delete ? plan.replacedBy[item.output].flatMap { logical in
            plan.items.first { $0.kind != .delete && ($0.output == logical || logicalName($0) == logical) }?.derivative
        } : nil
        let old = item.recorded ?? item.supersedes, new = item.derivative ?? replacing
        if let supersedes = item.supersedes { say("  replaces     \(supersedes.path)") }
        func row(_ name: String, _ recorded: String?, _ wanted: String?) {
            let label = name.padding(toLength: 13, withPad: " ", startingAt: 0)
            if recorded == wanted || recorded == nil || wanted == nil {
                say("  \(label)\(wanted ?? recorded ?? "-")")
            } else {
                say("  \(label)recorded: \(recorded!)")
                say("  \(String(repeating: " ", count: 13))wanted:   \(wanted!)")
            }
        }
        row("rule", old?.rule, new?.rule)
        if let new { row("recipe", nil, new.recipe) }
        // A variant a narrower source draws at its own width, under its name as written (attack 46's M2).
        if let new, item.kind != .delete, let why = try? workspace.session.planner().keptAsWritten(new, plan: plan) { say("  narrowed     \(why)") }
        row("source", old?.source, new?.source)
        row("engine", old?.engine, new?.components.engine)
        row("pipeline", old?.pipeline, new?.components.pipeline)
        row("source sha", old?.sourceDigest, new?.components.sourceDigest)
        row("dependencies", old.map { $0.dependencies.isEmpty ? "none" : $0.dependencies }, new.map { $0.components.dependencies.isEmpty ? "none" : $0.components.dependencies })
        row("encoder", old?.encoder, new?.components.encoder)
        row("acl", old?.acl, new?.acl.rawValue)
        row("action key", old?.actionKey, new?.actionKey)
        if let old {
            // The file the record names (an old copy's own, not the new name's).
            let file = item.recorded != nil && item.derivative != nil ? new?.outputPath : old.file
            let onDisk = file.flatMap { try? workspace.session.planner().digests.content(of: $0)?.digest } ?? "missing"
            let built = "\(old.width)x\(old.height) \(old.format), \(old.size) bytes, built \(Date(timeIntervalSince1970: Double(old.builtAt) / 1e9))"
            if item.supersedes != nil {
                say("  old copy     \(built), sha \(old.outputDigest)")
            } else {
                row("output sha", old.outputDigest, onDisk)
                say("  output       \(built)")
            }
        }
    }
}

struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Remove the outputs, index, lock and state the manifest's builds produced; nothing else."
    )

    @OptionGroup var manifest: ManifestArgument

    func run() throws {
        let workspace = try Workspace(manifest)
        // Workers start only to prove files adopted from the lock unverified before removing them.
        let summaries = SummaryWorkers(jobs: nil, engineVersion: workspace.engine.report.version, limits: workspace.manifest.limits)
        defer { summaries.shutdown() }
        let report = try workspace.run("clean") { try $0.clean(renderer: summaries.renderer) }
        for left in report.left { Output.printWarning(left) }
        for problem in report.problems { Output.printError(problem) }
        // Files left in place keep the ACL serve gave them: named, as the build names them.
        let lockName = (workspace.session.lockPath as NSString).lastPathComponent
        // In doubt as the build says it, never offered for release (attack 50b's L3).
        let doubt = (try? workspace.session.planner())?.neighbourDoubt
        for line in report.leftLines {
            let file = LockFile.bucket(holding: line.place, in: workspace.manifest).map { $0.bucket.path + "/" + $0.key }
            print(Workspace.leftLineText(line, lockName: lockName, doubt: file.flatMap { doubt?($0) }))
        }
        for dropped in report.droppedLeft { print("- \(dropped.path)  no longer left in place: \(dropped.why); its line in \(lockName) is dropped") }
        let oldIndexes = report.removedControlFiles.isEmpty ? "" : ", the old index \(report.removedControlFiles.joined(separator: ", "))"
        let lock: String
        if report.keptLock {
            lock = " (\(lockName) kept)"
        } else if report.lockHoldsOnlyLeft {
            let count = report.leftLines.count, gone = report.leftLines.filter(\.isGone).count
            let goneText = gone == 0 ? "" : " (\(gone == count ? (count == 1 ? "gone now" : "all gone now") : "\(gone) of them gone now"))"
            lock = "; \(lockName) kept, holding only the \(count == 1 ? "file" : "\(count) files") left in place\(goneText)"
        } else {
            lock = ""
        }
        print("Removed \(report.removed) output\(report.removed == 1 ? "" : "s")\(oldIndexes)\(report.hadState ? " and the build state" : " (there was no usable build state)")\(lock).")
        if !report.problems.isEmpty { throw ExitCode.failure }
    }
}
