import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import Planner
import ProcessLanguage

/// One command's work on one manifest, in the order ninja taught: snapshot the inputs, plan,
/// build, reconcile the lock and the index with the state, save the witness. `plan`, `build`,
/// `check` and `clean` all run here; the CLI only parses arguments and prints what comes back.
public final class BuildSession: @unchecked Sendable {
    public let manifestPath: String
    public let manifest: Manifest
    public let manifestFiles: [String]
    public let identity: EngineIdentity
    public let fontFiles: [String]
    /// Replace files Derive did not write (`--overwrite`).
    public let overwrite: Bool
    private let givenDisk: (any Disk)?
    private var openedStore: StateStore?
    private var openedPlanner: Planner?
    private var openedDisk: (any Disk)?
    /// What the last plan compared the lock and index with.
    private var plannedTargets: ControlFileTargets?

    public init(manifestPath: String, manifest: Manifest, manifestFiles: [String], identity: EngineIdentity,
                fontFiles: [String] = [], overwrite: Bool = false, disk: (any Disk)? = nil) {
        self.manifestPath = manifestPath
        self.manifest = manifest
        self.manifestFiles = manifestFiles
        self.identity = identity
        self.fontFiles = fontFiles
        self.overwrite = overwrite
        self.givenDisk = disk
    }

    /// The lock file this manifest owns (`<manifest stem>.lock` beside it, or `lock:`).
    public var lockPath: String { manifest.lockFile }

    public var witnessInputs: NoOpWitness.Inputs {
        NoOpWitness.Inputs(manifestFiles: manifestFiles, manifest: manifest, manifestPath: manifestPath, identity: identity,
                           fontFiles: fontFiles, lockPath: lockPath)
    }

    /// The disk before the state is read: confined to the buckets' folders.
    private var bucketDisk: any Disk { givenDisk ?? RealDisk(confiningTo: manifest.buckets.map(\.path)) }

    /// The number of outputs when nothing can have changed since the last clean build (the
    /// witness holds, including the lock's digest); nil means "plan".
    public func unchanged() -> Int? { NoOpWitness.holds(witnessInputs, disk: bucketDisk) }

    /// The build state, opened on first use. A corrupt database is moved aside (see `movedAside`).
    public func store() throws -> StateStore {
        if let openedStore { return openedStore }
        try StateOwnership.check(folder: manifest.stateFolder)   // a user's database is never migrated
        let store = try StateStore(folder: manifest.stateFolder, owner: Self.ownerName(manifestPath))
        openedStore = store
        return store
    }

    /// Where a corrupt state database (or one another manifest owns) was moved, when it was.
    public var movedAside: String? { openedStore?.movedAside }
    /// Why it was moved: `corrupt` or `owned by <manifest>`.
    public var movedAsideReason: String? { openedStore?.movedAsideReason }

    /// The name a state records for its owner: the manifest's absolute real path.
    public static func ownerName(_ manifestPath: String) -> String {
        let absolute = URL(fileURLWithPath: manifestPath).standardizedFileURL.path
        guard let resolved = realpath(absolute, nil) else { return absolute }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The disk confined to the buckets' folders and to every folder an output was written to.
    public func disk() throws -> any Disk {
        if let openedDisk { return openedDisk }
        let recorded = try store().recordedFolders()
        let disk = givenDisk ?? RealDisk(confiningTo: manifest.buckets.map(\.path) + recorded)
        openedDisk = disk
        return disk
    }

    public func planner() throws -> Planner {
        if let openedPlanner { return openedPlanner }
        let planner = try Planner(manifest: manifest, manifestPath: manifestPath, disk: try disk(), store: try store(),
                                  identity: identity, lockPath: lockPath, overwrite: overwrite)
        openedPlanner = planner
        return planner
    }

    /// The plan, with the lock and the index where they differ from the state.
    public func plan() throws -> Plan {
        let planner = try self.planner()
        var plan = try planner.plan()
        let targets = try ControlFileTargets(planner: planner, adopting: plan)
        plan.controlFiles = targets.changes(disk: planner.disk, display: planner.display)
        plannedTargets = targets
        return plan
    }

    /// What a build did: the plan it followed and, unless the plan had errors, the report.
    public struct BuildOutcome {
        public var plan: Plan
        public var report: BuildReport?
    }

    /// Plans and builds under the state's lock. `renderer` is called only when something is to
    /// be rendered (a no-op never starts libvips).
    public func build(options: BuildOptions, renderer: () -> any DerivativeRenderer) throws -> BuildOutcome {
        let held = try BuildLock(folder: manifest.stateFolder)
        defer { withExtendedLifetime(held) {} }
        let snapshot = NoOpWitness.snapshot(witnessInputs, disk: bucketDisk)
        let plan = try self.plan()
        guard plan.errors.isEmpty else { return BuildOutcome(plan: plan, report: nil) }
        let planner = try self.planner()
        let rendering: any DerivativeRenderer = plan.work.isEmpty ? NothingToRender() : renderer()
        if plan.hasChanges { saveWitness(snapshot: nil, valid: false) }   // outputs are about to change
        var builder = Builder(planner: planner, manifestPath: manifestPath, renderer: rendering, options: options)
        builder.plannedTargets = plan.adoptions.isEmpty ? plannedTargets : nil
        let report = try builder.build(plan)
        saveWitness(snapshot: snapshot, valid: report.succeeded && report.left.isEmpty, outputs: report.outputFiles)
        return BuildOutcome(plan: plan, report: report)
    }

    /// Remembers (or forgets) that the state and outputs match the manifest.
    func saveWitness(snapshot: NoOpWitness.Snapshot?, valid: Bool, outputs known: [String]? = nil) {
        guard valid else { NoOpWitness.save(witnessInputs, snapshot: nil, outputs: [], disk: bucketDisk, valid: false); return }
        let outputs = known ?? ((try? store().allOutputs()) ?? [:]).values.map(\.file)
        NoOpWitness.save(witnessInputs, snapshot: snapshot, outputs: outputs, disk: bucketDisk, valid: valid)
    }

    /// For CI: every way the outputs, the state and the lock disagree with the manifest.
    public struct CheckResult {
        public var problems: [String]
        public var upToDate: Int
    }

    public func check() throws -> CheckResult {
        if let count = unchanged() { return CheckResult(problems: [], upToDate: count) }
        let plan = try self.plan()
        let planner = try self.planner()
        var problems = plan.errors.map(\.message)
        problems += plan.failures.map { "\($0.subject): \($0.message)" }
        for item in plan.items where item.kind != .upToDate {
            problems.append("\(item.output): \(item.kind.rawValue)\(item.reasons.isEmpty ? "" : ": " + item.reasons.joined(separator: "; "))")
        }
        // The lock must list exactly the outputs, with the digests they have.
        let lockName = planner.display(lockPath)
        let lockData = try? planner.disk.read(lockPath)
        let lock = lockData.flatMap { LockFile.parse(String(decoding: $0, as: UTF8.self)) }
        let wanted = plan.items.filter { $0.kind != .delete }
        if let lock {
            let wantedOutputs = Set(wanted.map(\.output))
            // Every output the state records must have exactly the entry a build would write.
            for record in try store().allOutputs().values.sorted(by: { $0.path < $1.path }) where wantedOutputs.contains(record.path) {
                if let entry = lock.entries[record.path], entry != Builder.lockEntry(record) {
                    problems.append("\(record.path): its \(lockName) entry differs from the build state; run derive build")
                }
            }
            for item in wanted {
                guard let derivative = item.derivative else { continue }
                guard let entry = lock.entries[item.output] else { problems.append("\(item.output): missing from \(lockName)"); continue }
                if entry.actionKey != derivative.actionKey { problems.append("\(item.output): \(lockName) has another action key") }
                else if let digest = try planner.digests.content(of: derivative.outputPath)?.digest, digest != entry.digest {
                    problems.append("\(item.output): the file differs from \(lockName)")
                }
            }
            for path in lock.entries.keys.sorted() where !wantedOutputs.contains(path) && !plan.erroredOutputs.contains(path) {
                problems.append("\(path): in \(lockName) but not produced by the manifest")
            }
        } else if lockData != nil {
            problems.append("\(lockName) is not a valid lock (truncated or edited); run derive build")
        } else {
            problems.append("\(lockName) is missing; run derive build")
        }
        // Anything else that differs in the lock's bytes (order, the header), and the index.
        let lockReported = problems.contains { $0.hasPrefix(lockName + " ") || $0.contains(": its \(lockName) entry") || $0.contains(" \(lockName)") }
        for change in plan.controlFiles where !(change.path == lockPath && lockReported) {
            problems.append(change.problem)
        }
        return CheckResult(problems: problems, upToDate: plan.count(.upToDate))
    }

    /// What `clean` removed and what it left.
    public struct CleanReport {
        public var removed = 0
        public var left: [String] = []
    }

    /// Removes the outputs Derive wrote (only files still holding the recorded bytes, in the folder
    /// they were written to, and the folders it created once empty), the index it wrote, the lock,
    /// and its own state files by name; the state folder only when that leaves it empty.
    public func clean() throws -> CleanReport {
        let held = try BuildLock(folder: manifest.stateFolder)
        let store = try self.store()
        let planner = try self.planner()
        let removal = OutputRemoval(disk: try disk(), store: store)
        var report = CleanReport()
        for record in try store.allOutputs().values.sorted(by: { $0.path < $1.path }) {
            switch try removal.removal(record, keeping: [], display: planner.display) {
            case .removed: report.removed += 1
            case .forgotten: break
            case .left(_, let message): report.left.append(message)
            }
        }
        for (path, digest) in try store.controlFiles() {
            if try !planner.disk.remove(path, ifDigest: digest) {
                report.left.append("\(planner.display(path)) was changed since Derive wrote it as the index; left in place")
            }
        }
        if let current = try? planner.disk.read(lockPath), !LockFile.isDeriveLock(current) {
            report.left.append(LockFile.notOursMessage(planner.display(lockPath)))
        } else {
            try planner.disk.remove(lockPath)
        }
        withExtendedLifetime(held) {}
        for name in StateFiles.files {
            _ = unlink(manifest.stateFolder + "/" + name)
        }
        _ = rmdir(manifest.stateFolder)
        return report
    }
}

/// Stands in when there is nothing to render, so libvips is never loaded.
struct NothingToRender: DerivativeRenderer {
    func render(_ source: Data, _ pipeline: ProcessLanguage.Pipeline, bucketPath: String) throws -> Rendered {
        throw DiskError("nothing should be rendered")
    }
    func memoryEstimate(_ source: Data) -> Int { 0 }
}
