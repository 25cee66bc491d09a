import Confinement
import Foundation
import Synchronization
import ImagingCore
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import Planner
import ProcessLanguage

/// An encoded result, as the builder needs it.
public struct Rendered: Sendable {
    public var bytes: Data
    public var width: Int
    public var height: Int
    public var format: String

    public init(bytes: Data, width: Int, height: Int, format: String) {
        self.bytes = bytes; self.width = width; self.height = height; self.format = format
    }
}

/// Renders one derivative's source; the engine in production, a stand-in in tests.
public protocol DerivativeRenderer: Sendable {
    /// `bucketPath` is the source bucket's folder, where watermark images are read.
    func render(_ source: Data, _ pipeline: Pipeline, bucketPath: String) throws -> Rendered
    /// Bytes the render may hold at once, estimated from the header.
    func memoryEstimate(_ source: Data) -> Int
    /// The largest source read (the byte limit): a larger one is refused from its size, unread.
    var maxSourceBytes: Int { get }
    /// The refusal of a source of `size` bytes, over `maxSourceBytes`.
    func sourceTooLarge(_ size: Int) -> any Error
    /// The largest source `pipeline` reads: `maxSourceBytes`, less what its watermark images
    /// (sized from their files, unread) take of one render; throws for a mark refused from its size.
    func maxSourceBytes(_ pipeline: Pipeline, bucketPath: String) throws -> Int
    /// The refusal of the source `name` of `size` bytes, over `maxSourceBytes(pipeline, ...)`.
    func sourceTooLarge(_ size: Int, name: String, pipeline: Pipeline, bucketPath: String) -> any Error
}

extension DerivativeRenderer {
    public var maxSourceBytes: Int { Int.max }
    public func sourceTooLarge(_ size: Int) -> any Error { DiskError("the source is \(size) bytes, over the limit") }
    public func maxSourceBytes(_ pipeline: Pipeline, bucketPath: String) throws -> Int { maxSourceBytes }
    public func sourceTooLarge(_ size: Int, name: String, pipeline: Pipeline, bucketPath: String) -> any Error { sourceTooLarge(size) }
}

public struct BuildOptions: Sendable {
    public var jobs: Int
    public var memoryBudget: Int
    public var quiet: Bool
    /// A build of `derive build --watch`, which builds a source saved while it ran again at once:
    /// its outputs are not failures, and the progress lines do not count them as such (attack
    /// 42b's L-a: "built 47/191, 10 failed", then a summary with no failure).
    public var watching: Bool

    /// The CPUs this process may use. Test hook, inert unless set: `DERIVE_TEST_JOBS` (1…1 024)
    /// stands in for it, so a test suite running six builds at once on two cores starts one render
    /// worker per build, not two (a worker's start is most of a small build's process time);
    /// tests of parallel builds pass `--jobs`.
    public static let defaultJobs: Int = {
        guard let value = ProcessInfo.processInfo.environment["DERIVE_TEST_JOBS"].flatMap({ Int($0) }),
              (1...1_024).contains(value) else { return ProcessInfo.processInfo.activeProcessorCount }
        return value
    }()

    public init(jobs: Int? = nil, memoryBudget: Int? = nil, quiet: Bool = false, watching: Bool = false) {
        self.jobs = max(1, jobs ?? Self.defaultJobs)
        self.memoryBudget = memoryBudget ?? MemoryBudget.defaultCapacity
        self.quiet = quiet
        self.watching = watching
    }
}

public struct BuildReport: Sendable {
    public var built: [String] = []
    public var failed: [(output: String, message: String)] = []
    /// Orphans whose file was deleted (it still held the recorded bytes).
    public var deleted: [String] = []
    /// Orphans the system would not let Derive delete (an immutable file, a read-only mount…),
    /// with why: left in place, their records kept so the next build tries again (exit 1).
    public var notDeleted: [(output: String, message: String)] = []
    /// Orphans whose file was already gone: only their record was dropped.
    public var forgotten: [String] = []
    /// Old outputs whose file is now a source (or control file) of the manifest: kept, record dropped.
    public var kept: [String] = []
    /// Old outputs adopted from the lock unverified and not proven Derive's (a render did not
    /// match, or none could be made and git does not hold them): left in place, record dropped.
    public var leftUnproven: [String] = []
    /// Old copies deleted where a rebuilt output's bucket folder used to lead (a repointed link).
    public var deletedOldCopies: [String] = []
    /// Control files removed (an old index, no longer wanted), as displayed.
    public var removed: [String] = []
    /// Temporary files a killed command left, removed before anything was written, as displayed
    /// (the plan listed them: `- … remove: a temporary file a killed Derive command left …`).
    public var sweptTemporaries: [String] = []
    public var adopted: [String] = []
    /// Outputs the state still marks as adopted from the lock unverified after this build (adopted
    /// now without `--verify`, or by an earlier plain build and neither rendered nor verified since).
    public var adoptedUnverified = 0
    /// Records updated without rendering (an ACL or rule name changed).
    public var updated: [String] = []
    /// Outputs whose file was a restored copy (the recorded bytes, another inode: `cp -a`, `git
    /// checkout`, a hard link): recorded as the output's file now.
    public var restored: [String] = []
    /// Files Derive wrote once but that were changed since: left in place, no longer recorded.
    public var left: [(path: String, message: String)] = []
    /// The lock's `left` lines the build let go (`bucket/key`, why): the file is gone, or the
    /// path is an output again.
    public var droppedLeft: [(path: String, why: String)] = []
    /// The lock's `left` lines this build added (files it left in place now), sorted.
    public var leftKept: [LockFile.Left] = []
    /// The files of every `left` line the lock keeps (for the witness: one gone is a change).
    public var leftFiles: [String] = []
    /// The lock and index files written (or an old index removed) because they differed from the state.
    public var rewritten: [String] = []
    /// Every recorded output's file after the build (for the witness); nil when not known.
    public var outputFiles: [String]?
    /// The digests the build recorded for those files, the lock and the index (for the witness).
    public var writtenDigests: WrittenDigests?
    public var seconds: Double = 0
    /// The lock or the index could not be written (not derivatives: counted apart), full messages.
    public var controlErrors: [String] = []

    /// Why the build wrote nothing at all: a `{hash}` output's name, known from its bytes, is
    /// another output's (full messages). Nothing was written, deleted or recorded.
    public var refusals: [String] = []
    /// `{hash}` outputs whose render an earlier, interrupted build finished and kept in the
    /// state folder (`BuildRenderCache`): not rendered again.
    public var resumed: Int = 0
    /// Set when nothing needed building but the state could not be saved (only its stat cache's
    /// refresh was lost): the build still succeeded, with a warning.
    public var stateNotSaved: StateWriteFailure?

    public var succeeded: Bool { failed.isEmpty && controlErrors.isEmpty && refusals.isEmpty && notDeleted.isEmpty }
}

/// Applies a plan: renders stale derivatives on worker threads (outside Swift's cooperative
/// pool; one libvips thread each), writes each output to a temporary file beside its target,
/// fsyncs and renames it, records it in the state only after that, deletes orphans (only files
/// whose bytes are still the ones recorded, in the folder they were written to), then reconciles
/// the lock and the index with the state.
public struct Builder: Sendable {
    public let planner: Planner
    public let renderer: any DerivativeRenderer
    public let options: BuildOptions
    public let manifestPath: String
    /// The recorded outputs' files as the last reconcile saw them.
    let outputFiles = Box<[String]?>(nil)
    let writtenDigests = Box<WrittenDigests?>(nil)
    /// The lock and index the plan compared with (the session's), reused when the state did not change.
    var plannedTargets: ControlFileTargets?
    /// What the reconcile before the deletions did (attack 20's S3), carried into the one after
    /// them: the control files it wrote (a planned write is not forced again), the old indexes it
    /// left in place with their `left` lines (their records are gone once it ran), and the lock's
    /// `left` lines it let go.
    let early = Box<EarlyReconcile>(EarlyReconcile())
    /// The control files the plan listed to write: written even when their bytes come out the
    /// same (the plan could not know them before rendering), so the build does what it showed.
    var plannedWrites: PathSet = []
    /// The outputs the plan renders under an action key nothing vouches for yet
    /// (`ControlFileTargets.renderedAnew`), the reason for `plannedWrites`; nil: not known (every
    /// planned write is forced). When none of them is built (each render failed: a source over a
    /// limit, damaged inside its data), nothing the plan could not foresee changed: the lock and
    /// the index are written only where their bytes differ, so a build that fails the same
    /// outputs again leaves both files as they are (attack 13b's finding 4: each such build
    /// replaced them with the same bytes, and two `build --watch` rebuilt each other for ever).
    var plannedRenders: PathSet?
    /// Whether `plannedWrites` are still forced: false once the renders they wait for all failed.
    let forcesPlannedWrites = Box<Bool>(true)
    /// What renders sources' colours and placeholders when `renderer` is not to be used (nothing
    /// is stale); nil: `renderer`.
    var summaryRenderer: (any DerivativeRenderer)?
    /// What other manifests' states claim (`BuildSession.foreignClaims`): a `{hash}` name resolved
    /// only after rendering is refused when one of them records the file there.
    public var foreignClaims: ForeignClaimLookup?
    /// Outputs `--verify` rendered again before this build and found holding exactly those bytes:
    /// adopted (or marked adopted) ones among them are recorded as verified.
    public var verified: PathSet = []
    /// Outputs adopted from the lock unverified whose file was rendered again from its record's
    /// recipe and found holding those bytes (`BuildSession.proveAdoptedAtRisk`): only these of
    /// the adopted files this build replaces or deletes (`adoptedUnproven`).
    public var provenAdopted: PathSet = []

    public init(planner: Planner, manifestPath: String, renderer: any DerivativeRenderer, options: BuildOptions) {
        self.planner = planner
        self.manifestPath = manifestPath
        self.renderer = renderer
        self.options = options
    }

    var disk: any Disk { planner.disk }
    var store: StateStore { planner.store }

    public func build(_ plan: Plan) throws -> BuildReport {
        let started = Date()
        var report = BuildReport()
        let work = plan.work
        // Records naming a place outside their bucket were named by the plan: dropped, nothing walked.
        try store.removeOutputs(plan.ignoredRecords)
        for path in plan.ignoredControlFiles { try store.setControlFile(path, digest: nil) }

        // What a killed command left: the very list `plan` showed (`sweepTemporaries`), removed now.
        report.sweptTemporaries = try Self.sweepTemporaries(plan, planner: planner, store: store, listOnly: false).map { planner.display($0) }
        // Sources hashed while planning are remembered even if rendering fails.
        try store.saveFiles(planner.digests.takePending())

        // Wanted outputs by path and by device+inode: a bucket reached through a symbolic link
        // is the same folder, and nothing a plan wants is ever deleted as an orphan or old copy.
        // Outputs recorded but not in the plan (kept because their source could not be read) count too.
        let planned = PathSet(plan.items.map(\.output))
        let keptRecords = try store.allOutputs().values.filter { !planned.contains($0.path) && !$0.folder.isEmpty }
        let kept = keptRecords.map(\.file)
        // Sources and control files of the manifest too: never deleted, whatever record or lock names them.
        let wanted = WantedIdentities(plan.wantedFiles.union(kept).union(plan.protectedFiles))
        // Files a killed build moved into place and never recorded: settled before anything is
        // written, so one this build renders again under the same name is written again (the
        // plan said deleted, then created; the build agrees).
        if !plan.uncommitted.isEmpty { try settleUncommitted(plan.uncommitted, keeping: wanted, report: &report) }
        // Derive's files where a re-pointed bucket's folder used to be, known only from the lock
        // it last wrote (no state: attack 40a's A4): deleted before anything is written, so a
        // build killed later leaves none of them without that lock and the folders it remembers.
        let oldIndexesRemoved = removeOldFolderCopies(plan.oldFolderCopies, keeping: wanted, report: &report)
        // A file planned to be replaced that holds other bytes than its own output's record (the
        // very file Derive recorded for another output: two buckets' folders swapped) is Derive's
        // by that other record, which this build may replace before it gets here: noted now as the
        // file each such output displaces, so a build killed in between leaves it Derive's
        // (attack 40a's A5). A completed build drops the notes (`clearPendingWritesNotOnDisk`).
        if !planner.overwrite {
            for item in work {
                guard let path = item.derivative?.outputPath, let replaces = item.replaces, replaces != Self.nothing,
                      let old = item.recorded, replaces != old.outputDigest else { continue }
                try store.addPendingWrite(Self.displacedKey(path), digest: replaces)
            }
        }
        let progress = Progress(total: work.count, quiet: options.quiet, failedBefore: plan.failedDerivatives, watching: options.watching)
        // `{hash}` outputs are rendered first: their names come from their bytes, and a name that
        // is another output's refuses the whole build before anything is written.
        // Each finished one is kept in the state folder until written, so an interrupted build
        // does not lose it (attack 20's C1); what the plan no longer asks for goes.
        let hashedKeys = Set(work.compactMap { item in item.derivative.flatMap { $0.hashed != nil ? $0.actionKey : nil } })
        let cache = BuildRenderCache(stateFolder: store.folder, seals: store.seals, create: !hashedKeys.isEmpty)
        cache?.keepOnly(hashedKeys)
        let prerendered = prerender(work, progress: progress, cache: cache)
        report.resumed = prerendered.values.count { if case .success(let done) = $0 { done.resumed } else { false } }
        let refusals = coincidingNames(plan, prerendered: prerendered, kept: keptRecords.map(\.path))
        guard refusals.isEmpty else {
            report.refusals = refusals
            report.seconds = Date().timeIntervalSince(started)
            return report
        }
        let results = runJobs(work, wanted: wanted, recorded: plan.recorded, prerendered: prerendered, progress: progress, cache: cache)
        // Where each built output went: a `{hash}` output's name is known only after rendering.
        var written: PathDictionary<(output: String, path: String)> = [:]
        for (item, result) in zip(work, results) {
            switch result {
            case .success(let done):
                report.built.append(done.output)
                written[item.output] = (done.output, done.path)
                let old = done.old
                switch old?.outcome {
                case .removed: report.deletedOldCopies.append(old!.file)
                case .left(let path, let message), .unproven(let path, let message): report.left.append((path, message))
                case .deferred(let path, let message): report.left.append((path, OrphanFate.keptMessage(message)))
                case .forgotten, .kept, nil: break
                }
                if done.oldKept { report.leftUnproven.append(item.output) }
            case .failure(let error): report.failed.append((item.output, "\(error)"))
            }
        }
        for failure in plan.failures { report.failed.append((failure.subject, failure.message)) }
        // A `{hash}` output whose new render failed (a source damaged inside its data, a budget, a
        // deadline) is no orphan: its old file, record, lock line and index entry stay, as a
        // plain-named output's do, until a build writes its replacement (attack 25).
        let failedWork = PathSet(zip(work, results).compactMap { item, result in if case .failure = result { item.output } else { nil } })
        if let anew = plannedRenders, !anew.isEmpty, anew.allSatisfy({ failedWork.contains($0) }) { forcesPlannedWrites.set(false) }
        let keptFailed = plan.replacedBy.isEmpty || failedWork.isEmpty ? PathSet() : plan.replacedBy.filter { failedWork.contains($0.value) }.keys

        for item in plan.updates {
            guard var record = Self.updatedRecord(item) else { continue }
            // The adopted mark stays with the record (no render), unless `--verify` just proved the file.
            if verified.contains(item.output) { record.adopted = false }
            if item.isRestoredCopy, let derivative = item.derivative {
                // The file there now is the output's (its bytes checked on the open file): recorded
                // with the record, in one transaction. One that changed since the plan is not.
                guard let identity = FileIdentity.ofRegularFile(derivative.outputPath, holding: record.outputDigest) else { continue }
                try store.recordOutput(record, file: nil, identity: identity)
                report.restored.append(item.output)
                continue
            }
            try store.updateOutput(record)
            report.updated.append(item.output)
        }

        for item in plan.adoptions {
            guard let derivative = item.derivative, disk.stat(derivative.outputPath) != nil,
                  var record = Self.adoptedRecord(item, digests: planner.digests, time: disk.now()) else { continue }
            // Marked as adopted on the lock's word until a render or `--verify` proves its bytes.
            record.adopted = !verified.contains(item.output)
            // The file at the bucket's current folder the lock vouches for (what a build may
            // replace there anyway): its device and inode from now on.
            try store.recordOutput(record, file: nil, identity: FileIdentity.ofRegularFile(derivative.outputPath))
            report.adopted.append(item.output)
            if record.adopted { report.adoptedUnverified += 1 }
        }
        // Outputs an earlier plain build adopted: `--verify` proved some; the others stay marked.
        let marked = plan.items.filter { $0.adopted == nil && $0.isUnverifiedAdoption }
        try store.markVerified(marked.map(\.output).filter { verified.contains($0) })
        report.adoptedUnverified += marked.count { !verified.contains($0.output) }

        // A `{hash}` output written under a name an orphan of this plan had (the same bytes under a
        // new action key) replaced that orphan's file and record: it is no orphan any more.
        let renamed = PathSet(written.filter { !PathKey.same($0.key, $0.value.output) }.map(\.value.output))
        let wantedAfterWork = renamed.isEmpty ? wanted
            : WantedIdentities(plan.wantedFiles.union(kept).union(plan.protectedFiles).union(written.values.map(\.path)))
        // Files left in place instead of deleted: the lock keeps them with the ACL they had (V1).
        // (The lock's own, read before the build rewrites it: what this build adds is said.)
        let leftBefore = planner.lockLeftLines()
        var leftLines = plan.lockLeft.contains(where: \.present)
            ? planner.lockOnlyLeft(plan, acls: EffectiveACL(planner.manifest)) : []
        // The new outputs are in place: the index (without this build's orphans) and the lock are
        // written before the first orphan's file goes, so an index a reader fetches meanwhile (a
        // site served from the output folder while it builds) never names a file already deleted
        // (attack 20's S3). The lock keeps the orphans' own lines until they are gone (each file
        // is still there and still Derive's: never less protected than before the build), the
        // `left` lines of files still there, and those of old indexes this reconcile leaves (V2).
        // The reconcile after the deletions writes what changed, or reports what this could not.
        let orphans = PathSet(plan.deletions.filter { !renamed.contains($0.output) && !keptFailed.contains($0.output) && $0.recorded != nil
            && plan.uncommitted[$0.output] == nil }.map(\.output))
        // When that lock or index could not be written, the index a reader fetches still names the
        // orphans' files (a page's old `{hash}` pictures): they are kept, records and all, and the
        // next build that writes both deletes them (attack 42c's M1: the page showed broken images).
        var deletionsHeld = false
        if !orphans.isEmpty {
            if planner.manifest.index != nil {
                try recordSourceSummaries(records: try store.allOutputs().values.filter { !orphans.contains($0.path) })
            }
            do {
                try reconcile(held: plan.heldLockLines, left: leftLines, indexExcluding: orphans)
            } catch {
                // Said by the reconcile after the deletions, which tries again.
                deletionsHeld = true
            }
        }
        if !plan.deletions.isEmpty {
            BuildTestHooks.beforeDeletions(lock: planner.lockPath, index: planner.manifest.index.flatMap { index in
                planner.manifest.bucket(named: index.bucket).map { $0.path + "/" + index.path }
            })
        }
        // Each file's fate decided again now, by the function the plan used (`OrphanJudge`).
        let judge = Planner.OrphanJudge(planner, keeping: wantedAfterWork, many: plan.deletions.count > 1, unproven: unprovenReason)
        for item in plan.deletions where !renamed.contains(item.output) && !keptFailed.contains(item.output) && plan.uncommitted[item.output] == nil {
            guard let record = item.recorded else { continue }
            if deletionsHeld {
                let naming = planner.manifest.index == nil ? "the lock there names it still" : "the lock and the index there name it still"
                report.notDeleted.append((item.output, "\(planner.display(record.file)) was kept: the lock or the index could not be written, and \(naming); deleted by the next build that writes them"))
                continue
            }
            do {
                // Only files actually deleted count as deleted; the others are reported as what they are.
                var keepRecord = false
                // A file git proves has no recorded device and inode: the one there now is the one proven.
                let identity: FileIdentity?? = plan.provenByGit.contains(item.output) ? .some(FileIdentity.ofRegularFile(record.file)) : nil
                switch try OutputRemoval(planner: planner).removal(record, judge: judge, identity: identity) {
                case .removed: report.deleted.append(item.output)
                // Kept by the plan, or the file of a wanted output (through a link too): still there.
                case .kept: report.kept.append(item.output)
                case .forgotten where plan.kept.contains(item.output): report.kept.append(item.output)
                case .forgotten: report.forgotten.append(item.output)
                case .left(let path, let message):
                    report.left.append((path, message))
                    if let line = leftLine(record, file: path, message: message) { leftLines.append(line) }
                case .unproven(let path, let message):
                    // Adopted on a lock line's word and found (by `--verify` or the proof before
                    // this build) to hold other bytes, or not proven: never Derive's to delete; only
                    // the record goes. Named, as every file left in place is (round 27's finding 7),
                    // and kept in the lock with a `left` line and the ACL it was left under.
                    report.leftUnproven.append(item.output)
                    report.left.append((path, message))
                    if let line = leftLine(record, file: path, message: message) { leftLines.append(line) }
                case .deferred(let path, let message): report.left.append((path, OrphanFate.keptMessage(message))); keepRecord = true
                }
                if !keepRecord { try store.removeOutputs([item.output]) }
            } catch let error as DiskError where error.refusal != nil {
                // The system refused (an immutable file, a read-only mount…): a deletion not done,
                // not a derivative that failed; the record stays, so the next build tries again.
                report.notDeleted.append((item.output, "\(planner.display(record.file)) could not be deleted: \(error.refusal ?? ""); left in place, its record kept (tried again next build)"))
            } catch {
                report.failed.append((item.output, "\(error)"))
            }
        }
        try store.saveFiles(planner.digests.takePending())
        // The buckets' folders as Derive used them (device and inode): the only earlier folders a
        // record may lead to once a bucket moves.
        try store.noteBucketFolders()
        // Never report success with an output missing: whatever the deletions did, every output
        // built, kept or adopted must still be there.
        if !plan.deletions.isEmpty || plan.work.contains(where: { item in item.recorded.map { !PathKey.same($0.file, item.derivative?.outputPath ?? "") } ?? false }) {
            let failed = PathSet(report.failed.map(\.output))
            for item in plan.items where item.kind != .delete && !failed.contains(item.output) {
                if let path = written[item.output]?.path ?? item.derivative?.outputPath, disk.stat(path) == nil {
                    report.failed.append((item.output, "\(planner.display(path)) is missing after the build; run derive build again"))
                }
            }
        }
        if planner.manifest.index != nil { try recordSourceSummaries() }
        // This process is alive: what it did not record, it did not write, except a file renamed
        // into place whose record then failed (a full disk: attack 14's DF). A note whose file
        // holds exactly the noted bytes is kept, so the next build knows the file as Derive's.
        try clearPendingWritesNotOnDisk()
        do {
            // A plan that changed nothing in the state still holds its records: no second read.
            let unchanged = work.isEmpty && plan.updates.isEmpty && plan.adoptions.isEmpty && plan.deletions.isEmpty
            let reconciled = try reconcile(stateUnchangedSince: unchanged ? plan : nil, held: plan.heldLockLines, left: leftLines)
            report.left += reconciled.leftIndexes
            report.droppedLeft = reconciled.droppedLeft
            // Named when new, gone or back, and while its file holds other bytes than the file
            // left there (round 22's V3: kept private until the user releases it).
            report.leftKept = reconciled.leftLines.filter { leftBefore[$0.path] == nil || leftBefore[$0.path]?.isGone != $0.isGone || $0.otherBytes }
            report.leftFiles = reconciled.leftLines.compactMap { Builder.absolutePath(of: $0.path, in: planner.manifest) }
            report.rewritten = reconciled.rewritten
            report.removed = reconciled.removed
        } catch let error as IndexError {
            report.controlErrors.append(error.message)   // labelled with the index path, not a derivative
            report.rewritten = error.rewritten.sortedByBytes()   // what was done before it is still said
            report.removed = error.removed.sortedByBytes()
        } catch {
            report.controlErrors.append("\(planner.display(planner.lockPath)): \(error)")
        }
        // What the reconcile before the deletions did is said too (once).
        let before = early.value
        if before.ran {
            report.left = before.leftIndexes.filter { left in !report.left.contains { $0.path == left.path } } + report.left
            report.droppedLeft += before.droppedLeft.filter { dropped in !report.droppedLeft.contains { PathKey.same($0.path, dropped.path) } }
            report.rewritten = PathSet(before.rewritten + report.rewritten).sortedByBytes()
            report.removed = PathSet(before.removed + report.removed).sortedByBytes()
        }
        if !oldIndexesRemoved.isEmpty { report.removed = PathSet(report.removed + oldIndexesRemoved).sortedByBytes() }
        report.outputFiles = outputFiles.value
        report.writtenDigests = writtenDigests.value
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// Deletes each old copy the plan found Derive's (`Planner.oldFolderCopies`) while it still
    /// holds its lock line's bytes, checked on the open file as it goes (never a folder, never
    /// through a link); one that changed since is left and named, as are those the plan left.
    /// Returns the old indexes removed, as displayed.
    func removeOldFolderCopies(_ copies: [OldFolderCopy], keeping wanted: WantedIdentities, report: inout BuildReport) -> [String] {
        var indexes: [String] = []
        for copy in copies {
            guard copy.deletes else {
                if case .left(let message) = copy.fate { report.left.append((copy.file, message)) }
                continue
            }
            guard !wanted.contains(copy.file) else { continue }
            let there = FileIdentity.anythingAt(copy.file)
            do {
                if try disk.remove(copy.file, ifDigest: copy.digest) {
                    if there, copy.isIndex { indexes.append(planner.display(copy.file)) } else if there { report.deletedOldCopies.append(copy.file) }
                } else {
                    report.left.append((copy.file, "\(planner.display(copy.file)) was changed since Derive wrote it; left in place"))
                }
            } catch {
                report.left.append((copy.file, "\(planner.display(copy.file)) could not be removed (\(error)); left in place"))
            }
        }
        return indexes
    }

    /// The record an `update` item leaves in the state (ACL, rule, style, matrix, source): one
    /// definition for the build and for the plan's view of the lock and index it will write.
    static func updatedRecord(_ item: PlanItem) -> OutputRecord? {
        guard var record = item.recorded, let derivative = item.derivative else { return nil }
        record.rule = derivative.rule
        record.source = derivative.source
        record.style = derivative.style
        record.matrix = derivative.matrix
        record.acl = derivative.acl.rawValue
        // The same real folder named by another path (a symbolic link): the record keeps its real path.
        record.folder = RealFolder.of(derivative.outputFolder)
        return record
    }

    /// Deletes each file a killed build moved into place and never recorded while it is the file
    /// noted (device, inode and birth) with the noted bytes (checked on the open file as it goes),
    /// leaves and names one that is not, and drops the notes (one unreachable now keeps its note).
    func settleUncommitted(_ uncommitted: PathDictionary<Planner.Uncommitted>, keeping wanted: WantedIdentities, report: inout BuildReport) throws {
        let judge = Planner.OrphanJudge(planner, keeping: wanted, many: uncommitted.count > 1)
        var settled: [String] = []
        for (output, found) in uncommitted.sortedByKey() {
            let record = found.record
            do {
                switch try OutputRemoval(planner: planner).removal(record, judge: judge, identity: .some(found.identity)) {
                case .removed: report.deleted.append(output)
                case .forgotten, .kept: break
                case .left(let path, let message), .unproven(let path, let message): report.left.append((path, message))
                case .deferred(let path, let message):
                    report.left.append((path, message + ", its note kept (tried again next build)"))
                    continue
                }
            } catch {
                report.failed.append((output, "\(error)"))
                continue
            }
            // The note names the file as the bucket's path spelled it; the record, its real folder.
            settled.append(found.note)
            settled.append(record.file)
        }
        try store.clearPendingWrites(settled)
    }

    /// Drops the notes of writes whose file is not the file noted with the noted bytes (never
    /// renamed into place, or replaced since, even by a copy of those bytes); keeps the others
    /// (renamed, then not recorded).
    func clearPendingWritesNotOnDisk() throws {
        let pending = try store.pendingNotes()
        guard !pending.isEmpty else { return }
        let stale = pending.filter { path, note in
            disk.stat(path) == nil || !note.vouches(for: path, digest: try? disk.digestAndHead(path, headBytes: 0).digest)
        }
        if stale.count == pending.count { try store.clearAllPendingWrites() } else { try store.clearPendingWrites(stale.keys.sorted()) }
    }

    /// What the index says of each recorded source besides its outputs, rendered by the engine
    /// like any derivative, once per source content (by digest) and kept in the state:
    /// - its `color`: OSS's `average-hue` answer;
    /// - its dominant colour (`DominantColour`), from the picture drawn within 100x100 (`Placeholder.pixels`);
    /// - for sources of a rule with `placeholder: true`, a tiny blurred image
    ///   (`Placeholder.image`) and a ThumbHash of the source drawn within 100x100 (`Placeholder.pixels`).
    /// One that cannot be made is recorded as empty, so it is not tried again; a source that
    /// cannot be read now, or changed since it was planned, is left for the next build.
    ///
    /// With the state lost (a fresh clone), nothing is taken from the index on disk: it comes
    /// from the clone, with the lock's `indexDigest` (an edit of both proves nothing: verify 16's
    /// V4), so each source's summaries are rendered again, small (`AverageHueAnswer.sampling`,
    /// the placeholders' 32 and 100 px draws, shrink-on-load), and the index rewritten where they differ.
    /// `records`: the outputs whose sources are summarised (nil: the state's; `check` passes the
    /// plan's, adoptions included, into its in-memory state).
    func recordSourceSummaries(records: [OutputRecord]? = nil) throws {
        // A value not of Derive's shape (adopted by an older Derive from a planted index) is made again.
        let colours = SummaryShape.recorded(colours: try store.sourceColours())
        let dominants = SummaryShape.recorded(colours: try store.sourceDominants())
        // A placeholder an older Derive made of an animation (every frame, kilobytes inlined in
        // every page) is made again, as a still.
        let placeholders = SummaryShape.recorded(placeholders: try store.placeholders()).filter { !Placeholder.isAnimated($0.value.image) }
        let renderer = summaryRenderer ?? self.renderer
        let withPlaceholder = Set(planner.manifest.rules.filter(\.placeholder).map(\.planName))
        var wanted: [String: (path: String, bucketPath: String, colour: Bool, dominant: Bool, placeholder: Bool)] = [:]
        for record in try records ?? Array(store.allOutputs().values) where !record.sourceDigest.isEmpty {
            let colour = colours[record.sourceDigest] == nil
            let dominant = dominants[record.sourceDigest] == nil
            let placeholder = withPlaceholder.contains(record.rule) && placeholders[record.sourceDigest] == nil
            guard colour || dominant || placeholder, let bucket = planner.manifest.bucket(named: IndexWriter.bucket(record.source)) else { continue }
            let known = wanted[record.sourceDigest]
            wanted[record.sourceDigest] = (bucket.path + "/" + IndexWriter.key(record.source), bucket.path, colour, dominant,
                                           placeholder || (known?.placeholder ?? false))
        }
        guard !wanted.isEmpty, let averageHue = try? Pipeline.parse("image/average-hue"),
              let image = try? Pipeline.parse(Placeholder.image), let pixels = try? Pipeline.parse(Placeholder.pixels),
              let firstFrame = try? Pipeline.parse(Placeholder.firstFrame), let stillImage = try? Pipeline.parse(Placeholder.stillImage) else { return }
        let jobs = wanted.keys.sorted().map { (digest: $0, source: wanted[$0]!) }
        let made = Box<[String: (colour: String?, dominant: String?, placeholder: (image: String, thumbhash: String)?)]>([:])
        DispatchQueue.concurrentPerform(iterations: jobs.count) { index in
            let (digest, source) = jobs[index]
            guard let data = try? disk.read(source.path), ContentDigests.digest(data) == digest else { return }
            var colour: String?
            var placeholder: (image: String, thumbhash: String)?
            if source.colour {
                let answer = try? renderer.render(data, averageHue, bucketPath: source.bucketPath)
                colour = answer.flatMap { Self.colour(averageHue: $0.bytes) } ?? ""
            }
            // The picture within 100x100: what the dominant colour and the ThumbHash are computed from.
            let drawn = source.dominant || source.placeholder
                ? (try? renderer.render(data, pixels, bucketPath: source.bucketPath)).flatMap { BMPPixels.rgba($0.bytes) } : nil
            let dominant = source.dominant ? drawn.flatMap { DominantColour.hex(width: $0.width, height: $0.height, rgba: $0.rgba) } ?? "" : nil
            if source.placeholder {
                // An animation (GIF, WebP) is drawn from its first frame: a still PNG, then the placeholder.
                let small = (SourceHeader.read(data)?.frames ?? 1) > 1
                    ? (try? renderer.render(data, firstFrame, bucketPath: source.bucketPath)).flatMap { try? renderer.render($0.bytes, stillImage, bucketPath: source.bucketPath) }
                    : try? renderer.render(data, image, bucketPath: source.bucketPath)
                let hash = drawn.flatMap { ThumbHash.encode(width: $0.width, height: $0.height, rgba: $0.rgba) }
                placeholder = (small.map { "data:image/webp;base64," + $0.bytes.base64EncodedString() } ?? "",
                               hash.map { Data($0).base64EncodedString() } ?? "")
            }
            made.update { $0[digest] = (colour, dominant, placeholder) }
        }
        for (digest, result) in made.value {
            if let colour = result.colour { try store.saveSourceColour(digest: digest, colour: colour) }
            if let dominant = result.dominant { try store.saveSourceDominant(digest: digest, colour: dominant) }
            if let placeholder = result.placeholder {
                try store.savePlaceholder(digest: digest, image: placeholder.image, thumbhash: placeholder.thumbhash)
            }
        }
    }

    /// `#rrggbb` from an `average-hue` answer (`{"RGB": "0xRRGGBB"}`), or nil.
    static func colour(averageHue data: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let rgb = object["RGB"] as? String,
              rgb.hasPrefix("0x"), rgb.count == 8, rgb.dropFirst(2).allSatisfy(\.isHexDigit) else { return nil }
        return "#" + rgb.dropFirst(2).lowercased()
    }

    /// Runs `job` for each of `items` on `options.jobs` threads (outside Swift's cooperative
    /// pool); results come back in item order. `finished` says whether an item counts as done on
    /// the progress line now, and how (nil: not yet).
    func parallel<T: Sendable>(_ items: [PlanItem], progress: Progress, finished: @escaping @Sendable (Result<T, Error>) -> Progress.Outcome?,
                               _ job: @escaping @Sendable (PlanItem, MemoryBudget) throws -> T) -> [Result<T, Error>] {
        guard !items.isEmpty else { return [] }
        let budget = MemoryBudget(capacity: options.memoryBudget)
        let state = JobState<T>(count: items.count)
        let done = DispatchGroup()
        for _ in 0..<min(options.jobs, items.count) {
            done.enter()
            let thread = Thread {
                while let index = state.next() {
                    let result = Result { try job(items[index], budget) }
                    state.store(result, at: index)
                    if let outcome = finished(result) { progress.finished(items[index].output, outcome) }
                }
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        return state.results
    }

    /// The work's `{hash}` outputs rendered, by index in `work`, each named after its bytes. The
    /// bytes are held for writing up to a quarter of the memory budget (at most 1 GiB); past
    /// that only the digest is, and the output is rendered again when written (and must come
    /// out the same).
    /// `cache`: renders an interrupted build kept are taken from it, and each new one is kept there.
    func prerender(_ work: [PlanItem], progress: Progress, cache: BuildRenderCache? = nil) -> [Int: Result<Prerendered, Error>] {
        let indices = work.indices.filter { work[$0].derivative?.hashed != nil }
        guard !indices.isEmpty else { return [:] }
        let held = ByteAllowance(min(options.memoryBudget / 4, 1 << 30))
        // What earlier builds kept: a render this build stored and another of its outputs with the
        // same action key then loaded was not "rendered by an earlier build" (round 22's V4).
        let earlier = cache?.keys() ?? []
        let results = parallel(indices.map { work[$0] }, progress: progress, finished: { (result: Result<Prerendered, Error>) -> Progress.Outcome? in
            if case .failure(let error) = result { return .failed(error) } else { return nil }   // a success counts when written
        }) { item, budget in
            let cache = self.cacheable(item) ? cache : nil
            if let cache, let planned = item.derivative, let kept = cache.load(planned.actionKey) {
                return Prerendered(derivative: planned.named(digest: kept.digest), digest: kept.digest,
                                   rendered: held.take(kept.rendered.bytes.count) ? kept.rendered : nil,
                                   resumed: earlier.contains(planned.actionKey))
            }
            let (planned, rendered, digest) = try self.render(item, budget: budget)
            cache?.store(planned.actionKey, rendered: rendered, digest: digest)
            BuildTestHooks.afterRender(kept: cache != nil)
            return Prerendered(derivative: planned.named(digest: digest), digest: digest,
                               rendered: held.take(rendered.bytes.count) ? rendered : nil)
        }
        return Dictionary(uniqueKeysWithValues: zip(indices, results))
    }

    /// Whether the item's render may be kept across builds: not under a rule's budget, which is
    /// checked against the source when rendered (and may have changed since).
    func cacheable(_ item: PlanItem) -> Bool {
        guard let derivative = item.derivative, derivative.hashed != nil else { return false }
        return OutputBudget.budget(of: derivative, in: planner.manifest) == nil
    }

    /// The refusals of `{hash}` names that are another output's: another planned output (a
    /// literal `to:`, an up-to-date output, another `{hash}` name resolved now), or a recorded
    /// output kept as it is. The name of an orphan this plan deletes is free (the same bytes under
    /// a new action key take it over).
    func coincidingNames(_ plan: Plan, prerendered: [Int: Result<Prerendered, Error>], kept: [String]) -> [String] {
        guard !prerendered.isEmpty else { return [] }
        let work = plan.work
        let hashedWork = Set(prerendered.keys.map { ObjectIdentifier(work[$0]) })
        var owners: PathDictionary<String> = [:]
        func who(_ derivative: Derivative?, _ fallback: String) -> String {
            derivative.map { "\($0.recipe) from \($0.source)" } ?? fallback
        }
        for item in plan.items where item.kind != .delete && !hashedWork.contains(ObjectIdentifier(item)) {
            owners[item.output] = who(item.derivative, item.output)
        }
        for path in kept { owners[path] = owners[path] ?? "the recorded output \(path) (its source could not be read)" }
        var refusals: [String] = []
        for index in prerendered.keys.sorted() {
            guard case .success(let done) = prerendered[index]! else { continue }
            let name = done.derivative.output
            let mine = "\(who(done.derivative, name)) (its {hash} name, from the bytes it renders)"
            if let other = owners[name] {
                refusals.append("\(name) would be written twice: by \(other) and by \(mine); give them different 'to' paths")
            } else {
                owners[name] = mine
            }
        }
        return refusals
    }

    /// Renders and writes the work; results come back in work order. A prerendered `{hash}`
    /// output is written from its held bytes (or rendered again); one whose render failed is not run again.
    func runJobs(_ work: [PlanItem], wanted: WantedIdentities, recorded: PathDictionary<OutputRecord> = [:],
                 prerendered: [Int: Result<Prerendered, Error>] = [:], progress: Progress? = nil,
                 cache: BuildRenderCache? = nil) -> [Result<Done, Error>] {
        let progress = progress ?? Progress(total: work.count, quiet: options.quiet)
        var results = Array(repeating: Result<Done, Error>.failure(DiskError("not run")), count: work.count)
        var remaining: [Int] = []
        for index in work.indices {
            if case .failure(let error) = prerendered[index] { results[index] = .failure(error) } else { remaining.append(index) }
        }
        // By item identity: the job is given the item, not its index in `work`.
        var rendered: [ObjectIdentifier: Prerendered] = [:]
        for (index, result) in prerendered { if case .success(let done) = result { rendered[ObjectIdentifier(work[index])] = done } }
        let written = parallel(remaining.map { work[$0] }, progress: progress, finished: { (result: Result<Done, Error>) -> Progress.Outcome? in
            switch result {
            case .success: return .built
            case .failure(let error): return .failed(error)
            }
        }) { [rendered] item, budget in
            let cache = self.cacheable(item) ? cache : nil
            let done = try self.run(item, budget: budget, wanted: wanted, recorded: recorded, prerendered: rendered[ObjectIdentifier(item)],
                                    cache: cache)
            // Written and recorded: its kept render is not needed any more.
            if let key = item.derivative?.actionKey { cache?.remove(key) }
            return done
        }
        for (index, result) in zip(remaining, written) { results[index] = result }
        return results
    }

    /// An output's file where its bucket folder used to lead, and what became of it.
    typealias OldCopy = (file: String, outcome: OutputRemoval.Outcome)

    /// One output written: its name and file (a `{hash}` output's, named after its bytes) and what
    /// became of its old copy (the bucket's folder moved, or the old hashed name).
    struct Done: Sendable {
        var output: String
        var path: String
        var old: OldCopy?
        /// The old copy is an adopted file not proven Derive's: left in place, counted as left.
        var oldKept = false
    }

    /// Renders and writes one output. `recorded`: the plan's records, which say whether a file
    /// already at a `{hash}` output's name is one Derive wrote with those bytes.
    func run(_ item: PlanItem, budget: MemoryBudget, wanted: WantedIdentities, recorded: PathDictionary<OutputRecord> = [:],
             prerendered: Prerendered? = nil, cache: BuildRenderCache? = nil) throws -> Done {
        let planned: Derivative, rendered: Rendered, outputDigest: String
        if let prerendered, let held = prerendered.rendered {
            guard let derivative = item.derivative else { throw DiskError("\(item.output): nothing to build") }
            (planned, rendered, outputDigest) = (derivative, held, prerendered.digest)
        } else if let prerendered, let derivative = item.derivative, let kept = cache?.load(derivative.actionKey), kept.digest == prerendered.digest {
            // Not held in memory, but kept in the state folder: read, not rendered again.
            (planned, rendered, outputDigest) = (derivative, kept.rendered, kept.digest)
        } else {
            (planned, rendered, outputDigest) = try render(item, budget: budget)
            // Rendered again (its bytes were not held): the name the refusal check saw must hold.
            if let prerendered, prerendered.digest != outputDigest {
                throw DiskError("\(planned.output) came out with other bytes when rendered a second time (its {hash} name was checked with the first); nothing was written for it, run derive build again")
            }
        }
        return try write(item, planned: planned, rendered: rendered, outputDigest: outputDigest, wanted: wanted, recorded: recorded)
    }

    /// A `{hash}` output rendered before anything is written: its name (from its bytes), their
    /// digest, and the bytes when they were held.
    struct Prerendered: Sendable {
        var derivative: Derivative
        var digest: String
        var rendered: Rendered?
        /// Taken from the renders an interrupted build kept (`BuildRenderCache`).
        var resumed = false
    }

    /// Reads the item's source (it must still be the planned bytes) and renders it within its
    /// rule's output budget: the derivative as planned, the bytes and their digest.
    func render(_ item: PlanItem, budget: MemoryBudget) throws -> (Derivative, Rendered, String) {
        guard let planned = item.derivative else { throw DiskError("\(item.output): nothing to build") }
        let source: Data
        // Bounded by what fits one render beside the watermark images, all sized before any is read.
        let maxBytes = try renderer.maxSourceBytes(planned.pipeline, bucketPath: planned.bucketPath)
        do { source = try disk.read(planned.sourcePath, maxBytes: maxBytes) } catch let error as DiskError {
            if let size = error.tooLargeSize {
                throw renderer.sourceTooLarge(size, name: planned.source, pipeline: planned.pipeline, bucketPath: planned.bucketPath)
            }
            // The plan found it; gone now: removed or renamed while building (attack 53c's F5).
            if !disk.exists(planned.sourcePath) { throw SourceChanged(source: planned.source, removed: true) }
            throw error
        }
        // The source must still be what was planned: a file edited mid-build is not recorded under the old digest.
        let digest = ContentDigests.digest(source)
        guard digest == planned.components.sourceDigest else { throw SourceChanged(source: planned.source) }
        let cost = budget.acquire(renderer.memoryEstimate(source))
        defer { budget.release(cost) }
        let rendered = try renderer.render(source, planned.pipeline, bucketPath: planned.bucketPath)
        // A render over its rule's budget fails here, before anything is written.
        try OutputBudget.enforce(OutputBudget.budget(of: planned, in: planner.manifest), derivative: planned, rendered: rendered,
                                 source: source, renderer: renderer)
        return (planned, rendered, ContentDigests.digest(rendered.bytes))
    }

    /// Writes one rendered output under its name (a `{hash}` output's from its bytes), checking
    /// ownership at that moment, and records it.
    func write(_ item: PlanItem, planned: Derivative, rendered: Rendered, outputDigest: String, wanted: WantedIdentities,
               recorded: PathDictionary<OutputRecord>) throws -> Done {
        // `{hash}` named after the bytes. A name other than the planned one was not checked by the
        // plan: it must be free, or hold the bytes Derive recorded for that name (an orphan of this
        // plan with the same bytes, or the lock's entry in a fresh clone), or exactly the bytes just
        // rendered for it (the name is their digest: a build that wrote it and then could not
        // record it, attack 20's D2; nothing is lost by writing them again), digest-checked now.
        let derivative = planned.named(digest: outputDigest)
        var replaces = item.replaces
        if !PathKey.same(derivative.outputPath, planned.outputPath) {
            replaces = nil
            if disk.exists(derivative.outputPath) {
                let current = (try? disk.read(derivative.outputPath)).map(ContentDigests.digest)
                let vouched = recorded[derivative.output]?.outputDigest ?? planner.lock?.entries[derivative.output]?.digest
                guard let current, current == vouched || current == outputDigest || planner.overwrite else {
                    throw DiskError("\(planner.display(derivative.outputPath)) exists and was not written by Derive (or was changed since); \(planned.output) may not replace it: move it or pass --overwrite")
                }
                // The very bytes it renders, but another manifest's output (a copy of this manifest
                // beside it, a sibling writing the same folder): refused as the plan refuses a plain
                // name, whose owner it names (attack 43a's H1).
                if current != vouched, !planner.overwrite {
                    if let other = foreignClaims?.claimant(of: derivative.outputPath, output: derivative.output) {
                        throw DiskError(other.refusal(planner.display(derivative.outputPath)))
                    }
                    if let refusal = planner.foreignRefusal(unvouched: derivative.outputPath, digest: current) { throw DiskError(refusal) }
                }
                replaces = current
            }
        }
        // A file adopted on a lock line's word is replaced only once proven Derive's (issue 13's finding 1).
        if !planner.overwrite, let old = item.recorded, PathKey.same(old.file, derivative.outputPath), replaces == old.outputDigest, adoptedUnproven(old) {
            throw DiskError("\(planner.display(derivative.outputPath)) was adopted from derive.lock unverified and is not proven Derive's output; it was kept (run derive build again, which renders it first, or pass --overwrite)")
        }
        BuildTestHooks.beforeInstall(derivative.outputPath)
        // Ownership again at the moment of writing: the file there must still be the one planned for.
        if !planner.overwrite, disk.exists(derivative.outputPath) {
            let current = (try? disk.read(derivative.outputPath)).map(ContentDigests.digest)
            guard let current, current == replaces else {
                throw DiskError(appearedRefusal(derivative.outputPath, output: derivative.output, what: "appeared or changed"))
            }
        }
        // A build killed after the rename leaves a file Derive may replace, but only these bytes
        // in this very file (noted with its device, inode and birth just before it is moved into
        // place, below), written in this bucket folder: a copy put there after a kill is the user's.
        let note = { (identity: FileIdentity?) throws in
            try self.store.addPendingWrite(derivative.outputPath, digest: outputDigest, identity: identity,
                                           output: derivative.output, folder: RealFolder.of(derivative.outputFolder))
        }
        // Killed just after the exchange, the displaced file is left as `.<name>.<pid>.<n>.derive-tmp`:
        // the next build removes it only while it holds bytes the state vouches for. A record of
        // Derive's own vouches for them; a file adopted from the lock or proven by git (a fresh
        // clone: attack 29's finding 8) is vouched for by this note, as the lock's and index's are.
        if let replaces, replaces != Self.nothing, replaces != item.recorded?.outputDigest || item.recorded?.adopted == true {
            try store.addPendingWrite(Self.displacedKey(derivative.outputPath), digest: replaces)
        }
        // A create moves the file into place only if the path is still free at that instant
        // (link, never rename): a file someone made since the check above is kept, not replaced.
        // Only a rebuild over Derive's own digest-checked file replaces.
        let written: (created: [String], stat: FileStat?, identity: FileIdentity?)
        do {
            // A rebuild checks the file it displaces, in the move itself: one swapped in after
            // the check above is moved back, never replaced.
            written = try disk.writeOutput(rendered.bytes, to: derivative.outputPath, replacing: replaces != nil,
                                           replacingOnly: planner.overwrite ? nil : replaces, beforeInstall: note)
        } catch let error as DiskError where error.appeared {
            try? store.clearPendingWrites([derivative.outputPath])
            throw DiskError(appearedRefusal(derivative.outputPath, output: derivative.output, what: "appeared"))
        }
        BuildTestHooks.afterInstall()
        // The bucket's folder moved (same output, another file): the old copy goes before the new
        // record replaces its record, so a build killed in between (or while removing it) leaves
        // the old record, which the next build or `clean` deletes it by (and sweeps its folder's
        // temporary files by), digest- and identity-checked (attack 39c's N1, N2).
        var done = Done(output: derivative.output, path: derivative.outputPath, old: nil)
        if let old = item.recorded, PathKey.same(old.path, derivative.output) {
            try removeOldCopy(old, of: derivative, wanted: wanted, identity: .none, into: &done)
        }
        let oldIdentity: FileIdentity??
        do {
            oldIdentity = try recordWritten(item, derivative: derivative, rendered: rendered, outputDigest: outputDigest, written: written)
        } catch let error as DiskError where error.description.hasSuffix("vanished after writing") {
            throw error
        } catch {
            // Installed but not recorded (the state's disk is full: attack 20's D2). A file Derive
            // has no record of is one no later build may replace, so the file just written goes,
            // if it is still that very file with those bytes; then its note.
            let removed = (try? disk.remove(derivative.outputPath, ifDigest: outputDigest, identity: written.identity)) ?? false
            if removed { try? store.clearPendingWrites([derivative.outputPath]) }
            throw DiskError("\(planner.display(derivative.outputPath)) could not be recorded in the build state (\(error)); "
                            + (removed ? "the file just written was removed" : "the file was left in place (it is no longer the one written)")
                            + ": make room, then run derive build again")
        }
        // The bucket's folder moved: the old file goes (if it is still what Derive wrote).
        // Not when the old path reaches the file just written (the same folder through a link).
        // (A `{hash}` output renamed by its bytes keeps its old record under the old name until here.)
        if let old = item.recorded, !PathKey.same(old.path, derivative.output) {
            try removeOldCopy(old, of: derivative, wanted: wanted, identity: oldIdentity ?? nil, into: &done)
        }
        // A `{hash}` output renamed by its new bytes: the old name's record goes (its file went above).
        if let old = item.recorded, !PathKey.same(old.path, derivative.output) { try store.removeOutputs([old.path]) }
        return done
    }

    /// Deletes `old`'s file when it is not the file just written at `derivative`'s path (nor that
    /// file through a link), if it is still what Derive wrote; notes what became of it in `done`.
    /// `identity`: the device and inode recorded for it, when read already; `.none`: read from the state now.
    private func removeOldCopy(_ old: OutputRecord, of derivative: Derivative, wanted: WantedIdentities, identity: FileIdentity??,
                               into done: inout Done) throws {
        guard !PathKey.same(old.file, derivative.outputPath),
              FileIdentity.of(old.file) == nil || FileIdentity.of(old.file) != FileIdentity.of(derivative.outputPath) else { return }
        // Adopted on a lock line's word and not proven Derive's: never deleted (its record goes with the new one).
        let judge = Planner.OrphanJudge(planner, keeping: wanted, unproven: unprovenReason)
        let outcome = try OutputRemoval(planner: planner).removal(old, judge: judge, identity: identity)
        done.old = (old.file, outcome)
        // Kept for another output of this plan to replace (two buckets swapped folders): its
        // record is about to be replaced, so a note says its bytes are Derive's until that output
        // is written; a build killed in between leaves the file still Derive's (attack 40a's A5).
        // A completed build drops the note (`clearPendingWritesNotOnDisk`).
        if case .kept = outcome, !old.outputDigest.isEmpty, FileKind.isRegularFile(old.file) {
            try store.addPendingWrite(Self.displacedKey(old.file), digest: old.outputDigest)
        }
        if case .unproven = outcome { done.oldKept = true }
    }

    /// Records an output just moved into place (its folders, stat, digest and record); returns
    /// the device and inode the state had for its old record.
    private func recordWritten(_ item: PlanItem, derivative: Derivative, rendered: Rendered, outputDigest: String,
                               written: (created: [String], stat: FileStat?, identity: FileIdentity?)) throws -> FileIdentity?? {
        try store.addCreatedFolders(written.created)
        BuildTestHooks.afterOutputWrite(derivative.outputPath)
        // The stat of the file written, from its descriptor (attack 20's B3): a stat by path now
        // could be of a file changed or moved over the name since, recorded next to Derive's
        // digest. One whose size or mtime moved while it was installed gets a stat no file has,
        // so its bytes are read again (and found not Derive's) before anything trusts them.
        guard disk.exists(derivative.outputPath) else { throw DiskError("\(derivative.outputPath) vanished after writing") }
        planner.digests.remember(derivative.outputPath, stat: written.stat ?? FileStat(size: -1, mtime: 0, inode: 0, ctime: 0),
                                 content: .init(digest: outputDigest, format: ContentDigests.sniff(rendered.bytes)))
        let record = Self.record(derivative, digest: outputDigest, size: Int64(rendered.bytes.count), width: rendered.width,
                                 height: rendered.height, format: rendered.format, time: disk.now())
        let file = planner.digests.record(for: derivative.outputPath)
        // The old file's device and inode, read before the new record (same `bucket/key`) replaces them.
        let oldIdentity: FileIdentity?? = try item.recorded.map { try store.outputIdentity($0.path) }
        // With the file's own device and inode: a later deletion requires this very file, not a
        // copy of its bytes in a folder that took the old one's inode number (attack 17's N3).
        try BuildTestHooks.failRecord(derivative.outputPath)
        try store.recordOutput(record, file: file, identity: written.identity ?? FileIdentity.ofRegularFile(derivative.outputPath))
        return oldIdentity
    }

    /// Whether `record` was adopted from the lock unverified, its file still holds the line's
    /// bytes, and it was not proven Derive's before this build: then it is neither replaced nor deleted.
    func adoptedUnproven(_ record: OutputRecord) -> Bool {
        record.adopted && !provenAdopted.contains(record.path) && AdoptedProof.needsProof(record, digests: planner.digests)
    }

    /// Why `record`'s file is not Derive's to replace or delete (`OrphanJudge`'s `unproven`): what
    /// `--verify` or the proof before this build found, what a plan finds without rendering, or
    /// that it was adopted and not proven; nil when it is Derive's.
    func unprovenReason(_ record: OutputRecord) -> String? {
        if let distrust = planner.distrusted[record.path] { return distrust }
        guard adoptedUnproven(record) else { return nil }
        return planner.unprovenWithoutRender(record) ?? "it was adopted from derive.lock unverified and not proven Derive's output"
    }

    /// The record an adopted output gets: the lock's entry for the planned derivative, marked adopted.
    static func adoptedRecord(_ item: PlanItem, digests: ContentDigests, time: Int64) -> OutputRecord? {
        guard let derivative = item.derivative, let entry = item.adopted else { return nil }
        let format = entry.format.isEmpty ? (digests.record(for: derivative.outputPath)?.format ?? "") : entry.format
        var adopted = record(derivative, digest: entry.digest, size: entry.bytes, width: entry.width, height: entry.height, format: format, time: time)
        adopted.adopted = true
        return adopted
    }

    static func record(_ derivative: Derivative, digest: String, size: Int64, width: Int, height: Int, format: String, time: Int64) -> OutputRecord {
        OutputRecord(path: derivative.output, rule: derivative.rule, source: derivative.source, style: derivative.style,
                     matrix: derivative.matrix, engine: derivative.components.engine, pipeline: derivative.components.pipeline,
                     sourceDigest: derivative.components.sourceDigest, dependencies: derivative.components.dependencies,
                     encoder: derivative.components.encoder, actionKey: derivative.actionKey, acl: derivative.acl.rawValue,
                     outputDigest: digest, size: size, width: width, height: height, format: format, builtAt: time,
                     folder: RealFolder.of(derivative.outputFolder))
    }

    /// The file of a recorded `bucket/key` in the bucket's current folder, if the bucket still exists.
    public static func absolutePath(of output: String, in manifest: Manifest) -> String? {
        guard let (name, key) = PathKey.split(output), let bucket = manifest.bucket(named: name) else { return nil }
        return bucket.path + "/" + key
    }

    /// Removes a recorded output's file if its bytes are still the ones recorded, in the folder it
    /// was written to, then the folders Derive created for it that are now empty (never the bucket
    /// folder). Returns the file when it was left because it changed.
    public func removeOwned(_ record: OutputRecord, keeping wanted: WantedIdentities = WantedIdentities([])) throws -> (path: String, message: String)? {
        try OutputRemoval(planner: planner).remove(record, keeping: wanted)
    }

    /// Makes the lock and the index say what the state says: written when their bytes differ
    /// (a lock truncated by hand, an index deleted), an index at an old path removed when it is
    /// still the one Derive wrote. Returns an old index left because it was changed, and the
    /// files written or removed.
    /// `left`: files the build left in place (old outputs), kept in the lock with their ACL;
    /// old indexes left here are added to them. Returns the old indexes left, with why, and the
    /// lock's `left` lines let go.
    /// `indexExcluding`: recorded outputs about to be deleted (the build's orphans), left out of
    /// the index only: the reconcile before the deletions (attack 20's S3).
    @discardableResult
    public func reconcile(stateUnchangedSince plan: Plan? = nil, held: PathDictionary<LockFile.Entry> = [:], left added: [LockFile.Left] = [],
                          indexExcluding orphans: PathSet = []) throws
        -> (leftIndexes: [(path: String, message: String)], rewritten: [String], removed: [String], droppedLeft: [(path: String, why: String)],
            leftLines: [LockFile.Left]) {
        var targets = try (plan != nil && orphans.isEmpty ? plannedTargets : nil)
            ?? ControlFileTargets(planner: planner, stateUnchangedSince: plan, held: held, indexExcluding: orphans)
        let carried = early.value
        // Old indexes an earlier reconcile of this build left: their records are gone, their lines stay.
        targets.addLeft(added + carried.leftIndexLines)
        let isEarly = !orphans.isEmpty
        if isEarly { early.update { $0.ran = true; $0.droppedLeft = targets.droppedLeft } }
        let currentLock = try? disk.read(planner.lockPath)
        if let current = currentLock, !LockFile.isOurs(current, manifest: planner.manifestName, lockPath: planner.lockPath) {
            throw DiskError(LockFile.notOursMessage(planner.display(planner.lockPath), data: current, manifest: planner.manifestName, lockPath: planner.lockPath))
        }
        var rewritten: [String] = []
        // Old indexes first: one left in place goes into the lock (V2), written after them.
        var lefts: [(path: String, message: String)] = []
        var left: (path: String, message: String)? {
            get { lefts.last }
            set { if let newValue { lefts.append(newValue) } }
        }
        var removed: [String] = []
        var failure: IndexError?
        for (path, holdsIndex) in targets.writtenFromLock.sortedByKey() {
            if let link = targets.linkToOldIndex(path) {
                left = (path, "\(planner.display(path)) (Derive's old index) leads through a symbolic link (\(planner.display(link))), which Derive does not follow; left in place")
                continue
            }
            left = (path, "\(planner.display(path)) " + ControlFileTargets.lockOnlyOldIndexKept(path, holdsIndex: holdsIndex, lock: planner.display(targets.lockPath), display: planner.display))
        }
        for (path, digest) in targets.written.sortedByKey() where !PathKey.same(path, targets.index?.path ?? "") {
            if let link = targets.linkToOldIndex(path) {
                left = (path, "\(planner.display(path)) (Derive's old index) leads through a symbolic link (\(planner.display(link))), which Derive does not follow; left in place")
                try store.setControlFile(path, digest: nil)
                continue
            }
            let existed = disk.exists(path)
            let identity = targets.oldIndexIdentity(path)
            guard identity != nil || targets.notedOldIndexes.contains(path) else {
                // A record from before Derive kept which file it wrote: a copy would pass the digest.
                if existed { left = (path, "\(planner.display(path)) " + ControlFileTargets.unprovenOldIndexReason) }
                try store.setControlFile(path, digest: nil)
                continue
            }
            do {
                if try !disk.remove(path, ifDigest: digest, identity: identity) {
                    left = (path, targets.oldIndexLeft(path, display: planner.display))
                } else if existed {
                    removed.append(planner.display(path))
                    if isEarly { early.update { $0.removed.append(planner.display(path)) } }
                    try Self.removeCreatedFolders(above: path, disk: disk, store: store, foreign: planner.foreignProjects)
                }
                try store.setControlFile(path, digest: nil)
                if targets.notedOldIndexes.contains(path) { try store.clearPendingWrites([path]) }
            } catch where !FileKind.isRegularFile(path) {
                // A link, a folder (a user's, since Derive wrote a file there): not Derive's file any more.
                left = (path, "\(planner.display(path)) is not the file Derive wrote as the index (\(FileKind.describe(path))); left in place")
                try store.setControlFile(path, digest: nil)
            } catch {
                failure = failure ?? IndexError(message: "\(planner.display(path)): Derive's old index could not be removed (\(error)); left in place", path: planner.display(path))
            }
        }
        // Each old index left in place keeps the ACL an index listing those outputs had (V2).
        let oldIndexLines = lefts.compactMap { targets.oldIndexLeftLine($0.path, planner: planner) }
        targets.addLeft(oldIndexLines)
        // Old locks (`lock:` moved) go as old indexes do, before the lock is written (`OldLock`).
        for (path, written) in targets.oldLocks.sortedByKey() {
            let outcome = try OldLock.remove(path, written: written, disk: disk, store: store, foreign: planner.foreignProjects, display: planner.display)
            if outcome.removed {
                removed.append(planner.display(path))
                if isEarly { early.update { $0.removed.append(planner.display(path)) } }
            }
            if let message = outcome.left { left = (path, message) }
        }
        if isEarly { early.update { $0.leftIndexes += lefts; $0.leftIndexLines += oldIndexLines } }
        outputFiles.set(targets.files)
        writtenDigests.set(WrittenDigests(targets))
        // An index judged Derive's with no record of writing it (a recovered state, a fresh clone):
        // its bytes are noted before the lock names the new ones, so a build killed in between
        // leaves an index the next one still knows as Derive's (attack 39c's N3); dropped once
        // the index is written.
        if let (indexPath, _) = targets.index, targets.written[indexPath] == nil,
           case (.adoptable, let seen?) = targets.indexStatusAndDigest(disk: disk) {
            try store.addPendingWrite(Self.displacedKey(indexPath), digest: seen)
        }
        try BuildTestHooks.failLockWrite()
        if try writeIfChanged(targets.lock, to: targets.lockPath, force: forcesPlannedWrites.value && plannedWrites.contains(targets.lockPath) && !carried.written.contains(targets.lockPath),
                              replacingOnly: currentLock.map(ContentDigests.digest) ?? Self.nothing) {
            rewritten.append(planner.display(targets.lockPath))
            // Written once: a planned write the early reconcile made is not forced again.
            if isEarly { early.update { $0.rewritten.append(planner.display(targets.lockPath)); _ = $0.written.insert(targets.lockPath) } }
        }
        try Self.recordLockWritten(targets.lock, at: targets.lockPath, store: store, buckets: LockProvenance.bucketLines(planner.manifest))
        // The state records every left file too, sealed (round 21's N2: the lock alone could be
        // edited); the next build re-derives the lock's lines from it.
        try store.saveLeftFiles(targets.left.sortedByKey().map { planner.withDigest($0.value) })
        if let (indexPath, data) = targets.index {
            let digest = ContentDigests.digest(data)
            // Derive's when it wrote these bytes, or (no record of writing it: a fresh clone, a
            // recovered state) when they are what it writes for the lock's outputs, unless another
            // manifest's state records it; the plan showed the same refusal.
            let (status, seen) = targets.indexStatusAndDigest(disk: disk)
            if let refusal = targets.indexRefusal(status, display: planner.display) {
                throw IndexError(message: refusal, path: planner.display(indexPath), removed: removed, rewritten: rewritten)
            }
            var installed = false
            do {
                // Replaced only if it still holds the bytes just judged (checked in the move).
                if try writeIfChanged(data, to: indexPath, force: forcesPlannedWrites.value && plannedWrites.contains(indexPath) && !carried.written.contains(indexPath),
                                      replacingOnly: planner.overwrite ? nil : seen ?? Self.nothing) {
                    installed = true
                    rewritten.append(planner.display(indexPath))
                    if isEarly { early.update { $0.rewritten.append(planner.display(indexPath)); _ = $0.written.insert(indexPath) } }
                }
            } catch {
                // Named as the index, not the lock; what was removed or written before is still said.
                throw IndexError(message: "\(planner.display(indexPath)): \(error)", path: planner.display(indexPath), removed: removed, rewritten: rewritten)
            }
            // Recorded in its real folder; a record of it under another spelling is replaced.
            let key = ControlFileTargets.recordKey(indexPath)
            let recorded = try store.controlFiles()
            for (path, _) in recorded where !PathKey.same(path, key) && (PathKey.same(path, indexPath) || FileIdentity.sameFile(path, indexPath)) {
                try store.setControlFile(path, digest: nil)
            }
            // With the file's own device and inode: an old index is removed only while it is this file.
            // Only the file Derive installed gets them: one it found holding these bytes where the
            // record names another file (a copy the user put in a folder made by hand, a checkout)
            // is not made Derive's by its bytes, so `clean` leaves it and names it. A record
            // without them (a fresh clone's adoption, a record from before they were kept) takes
            // the file's as it is now.
            let identities = try store.controlFileIdentities()
            let known = identities[key] ?? nil
            let identity = installed || known == nil ? FileIdentity.ofRegularFile(indexPath) : known
            if recorded[key] != digest || known != identity {
                try store.setControlFile(key, digest: digest, identity: identity)
            }
            try store.clearPendingWrites([Self.displacedKey(indexPath)])
        }
        if var failure {
            failure.removed = removed; failure.rewritten = rewritten
            throw failure
        }
        return (lefts, rewritten.sortedByBytes(), removed.sortedByBytes(), targets.droppedLeft, targets.left.sortedByKey().map(\.value))
    }

    /// The lock's `left` line for a recorded output whose file a deletion left in place, with the
    /// ACL serve gave it while recorded; nil when the file is not at its key's place now (an old
    /// folder's copy: serve never answers it).
    func leftLine(_ record: OutputRecord, file: String, message: String) -> LockFile.Left? {
        Self.leftLine(record, file: file, message: message, manifest: planner.manifest, acls: EffectiveACL(planner.manifest))
    }

    /// The same for any caller (`derive clean` leaves such files too), with the manifest's ACLs.
    static func leftLine(_ record: OutputRecord, file: String, message: String, manifest: Manifest, acls: EffectiveACL) -> LockFile.Left? {
        guard let (name, key) = PathKey.split(record.path), let bucket = manifest.bucket(named: name),
              PathKey.same(file, bucket.path + "/" + key) || FileIdentity.sameFile(file, bucket.path + "/" + key) else { return nil }
        let built = EffectiveACL.Built(acl: BucketACL(rawValue: record.acl) ?? .private, rule: record.rule, source: record.source)
        let acl = acls.of(bucket, key: key, built: built)
        return LockFile.Left(path: record.path, acl: acl.rawValue, why: leftWhy(message))
    }

    /// The `why` of a left line, from what the deletion said of the file.
    static func leftWhy(_ message: String) -> String {
        if message.hasSuffix("was changed since Derive wrote it; left in place") { return LockFile.Left.changed }
        if let doubt = Planner.OrphanJudge.doubt(inMessage: message) { return LockFile.Left.inDoubt(doubt) }
        return LockFile.Left.notDerives
    }

    /// The lock's line for a recorded output.
    public static func lockEntry(_ record: OutputRecord) -> LockFile.Entry {
        LockFile.Entry(path: record.path, actionKey: record.actionKey, digest: record.outputDigest, width: record.width,
                       height: record.height, bytes: record.size, format: record.format)
    }

    /// Kept for callers that rewrite both: the same as `reconcile`.
    public func writeLockAndIndex() throws { try reconcile() }

    /// Records the lock just written at `path` (`data`), by every command that writes it (build,
    /// clean, release): in the state (`lockFiles`: where, its digest, its device and inode), so
    /// an old lock is removed when `lock:` moves (`OldLock`); and as this user's Derive's own
    /// record when each of its lines mirrors a record it rendered (`LockProvenance`), so a build
    /// that lost its state (moved away mid-build) recovers from it. Each is written only when it
    /// changed (a no-op build leaves the state as it was). The provenance is best effort: not
    /// remembered, a lost state's lock needs git's proof.
    /// `buckets`: the bucket folders the lock is written for (`LockProvenance.bucketLines`): one
    /// re-pointed since proves nothing (attack 37b's F6).
    static func recordLockWritten(_ data: Data, at path: String, store: StateStore, buckets: String) throws {
        let digest = ContentDigests.digest(data)
        if let identity = FileIdentity.ofRegularFile(path) {
            let key = ControlFileTargets.recordKey(path), lock = WrittenLock(digest: digest, identity: identity)
            if try store.lockFiles()[key] != lock { try store.setLockFile(key, lock) }
        }
        let database = store.folder + "/" + StateStore.fileName
        guard !LockProvenance.isJudged(lockDigest: digest, lockPath: path, buckets: buckets, forState: database) else { return }
        let own = (try? store.allOutputs()).flatMap { records in
            LockFile.parse(String(decoding: data, as: UTF8.self)).map { LockProvenance.isOwnRecord($0, records: records) }
        } ?? false
        try? LockProvenance.remember(lockDigest: digest, lockPath: path, ownRecord: own, buckets: buckets, forState: database)
    }

    /// Whether it wrote. `replacingOnly`: the digest of the file the caller judged replaceable
    /// (`nothing`: no file was there, so the write only creates); checked on the file the move
    /// displaces, so one swapped in since is kept.
    func writeIfChanged(_ data: Data, to path: String, force: Bool = false, replacingOnly digest: String? = nil) throws -> Bool {
        // Read no more than `data` holds: a larger file differs (and costs no memory).
        if !force, disk.stat(path) != nil, (try? disk.read(path, maxBytes: data.count)) == data { return false }
        // Noted before the temporary file exists, and dropped once it is gone: a build killed in
        // between leaves `.<name>.<pid>.<n>.derive-tmp` holding either these new bytes (before the
        // exchange) or the bytes the exchange displaced (the file judged replaceable, `digest`);
        // the next build's sweep removes it only while it holds one of them (attack 27's finding 5).
        try store.addPendingWrite(path, digest: ContentDigests.digest(data))
        if let digest, digest != Self.nothing { try store.addPendingWrite(Self.displacedKey(path), digest: digest) }
        defer { try? store.clearPendingWrites([path, Self.displacedKey(path)]) }
        let created: [String]
        if let digest {
            do {
                created = try disk.writeAtomically(data, to: path, replacingOnly: digest)
            } catch let error as DiskError where error.appeared {
                throw DiskError("\(planner.display(path)) appeared or changed while building and was not written by Derive; it was kept (move it and build again, or pass --overwrite)")
            }
        } else {
            created = try disk.writeAtomically(data, to: path)
        }
        // Folders made for it are recorded as an output's are: removed, once empty, when it moves
        // away or on `clean` (attack 36b's Low 8: an index's stayed for ever).
        try store.addCreatedFolders(created)
        return true
    }

    /// Removes the folders Derive made on the way to a file just removed from `path` (an output,
    /// an old index, a lock) that are empty now, deepest first: only folders it recorded making,
    /// still the ones it made (device and inode), strictly inside `floor` when given (an output's
    /// bucket folder), and never a folder that a project Derive can see declares as a bucket
    /// (`ForeignProjectFiles.isBucketFolder`: a manifest beside this one, or a sibling project's
    /// `path: ../B/out/t`; attack 42a's nestb2, 43's N5); never recursive (`removeEmptyFolder`).
    /// One definition for build and clean. The other projects are looked for only once a made
    /// folder is found empty here, never for a build that removes nothing.
    static func removeCreatedFolders(above path: String, inside floor: String? = nil, disk: any Disk, store: StateStore,
                                     foreign: ForeignProjectFiles) throws {
        let created = try store.createdFolderIdentities()
        var folder = (path as NSString).deletingLastPathComponent
        while floor.map({ folder.utf8.count > $0.utf8.count && folder.utf8.starts(with: ($0 + "/").utf8) }) ?? true,
              case .some(.some(let identity)) = created[folder], FileIdentity.ofFolder(folder) == identity,
              isEmptyFolder(folder), !foreign.isBucketFolder(folder), disk.removeEmptyFolder(folder) {
            try store.forgetCreatedFolder(folder)
            folder = (folder as NSString).deletingLastPathComponent
        }
    }

    /// Whether `folder` holds nothing now (read without following a link at it): the cheap test
    /// before other projects are looked for; `removeEmptyFolder` is what decides, on the folder.
    static func isEmptyFolder(_ folder: String) -> Bool {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0, let directory = fdopendir(fd) else {
            return true   // not readable as a folder: `removeEmptyFolder` refuses it after
        }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) { String(cString: $0) }
            }
            if name != ".", name != ".." { return false }
        }
        return true
    }

    /// The stale temporary files a build removes before it writes anything (`listOnly`: only
    /// lists them, for `plan` and `check`; attack 39a's F4): one definition for both, returning
    /// their paths.
    static func sweepTemporaries(_ plan: Plan, planner: Planner, store: StateStore, listOnly: Bool, probe: Bool = true) throws -> [String] {
        // Folders where a killed build may have left temporary files: only dead writers' are
        // removed, only those for a planned or recorded output's name in that folder, and only
        // when the bytes are Derive's for that name: the new bytes a write noted (pending), or
        // the recorded bytes it displaced. A user's file moved onto such a name stays.
        var folders: PathDictionary<PathSet> = [:]
        var digests: PathDictionary<Set<String>> = [:]
        let pending = try store.pendingWrites()
        var controls = [planner.lockPath]
        if let index = planner.manifest.index, let bucket = planner.manifest.bucket(named: index.bucket) { controls.append(bucket.path + "/" + index.path) }
        let recordedControls = try store.controlFiles()
        // First the folders' names alone (issue 15): the names and digests of every output were
        // 12 % of a one-edit plan at 2 000 outputs, listing the folders 0.2 %, and a folder with
        // no name of a temporary's shape has nothing to sweep whatever they are.
        // `TemporarySweepProbeTests` runs both ways.
        let noted = try pendingInBucketFolders(pending, planner: planner)
        // Indexes recorded where a bucket's folder used to be (a re-point killed while it removed
        // one leaves its temporary there, holding the recorded bytes: attack 41a's B4).
        let recordedElsewhere = recordedControls.filter { path, _ in !controls.contains(path) && path != planner.lockPath }
        if probe, !Self.anyFolderMayHoldTemporaries(plan, controls: controls + noted + plan.oldFolderNames.map(\.file) + recordedElsewhere.keys,
                                                    disk: planner.disk) { return [] }
        for item in plan.items {
            for path in [item.derivative?.outputPath, item.recorded?.file].compactMap({ $0 }) {
                // On bytes: NSString's path methods showed in profiles over 40 000 paths.
                guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { continue }
                folders[String(path[..<slash]), default: []].insert(String(path[path.utf8.index(after: slash)...]))
                for key in [path, Self.displacedKey(path)] { if let noted = pending[key], !noted.isEmpty { digests[path, default: []].insert(noted) } }
                if let recorded = item.recorded, recorded.file == path || path == item.derivative?.outputPath {
                    digests[path, default: []].insert(recorded.outputDigest)
                }
            }
        }
        // The lock's and the index's own temporaries too (`.derive.lock.PID.N.derive-tmp`): theirs
        // are the bytes at the name now (a copy of them loses nothing) or the index's recorded ones.
        for path in controls {
            folders[(path as NSString).deletingLastPathComponent, default: []].insert((path as NSString).lastPathComponent)
        }
        // Whatever a killed build noted writing in a bucket's folder, now or recorded (an index in
        // the folder a bucket was re-pointed from twice: attack 40a's A2): only the noted bytes.
        for path in noted {
            folders[(path as NSString).deletingLastPathComponent, default: []].insert((path as NSString).lastPathComponent)
            for key in [path, Self.displacedKey(path)] { if let digest = pending[key], !digest.isEmpty { digests[path, default: []].insert(digest) } }
        }
        for (path, digest) in recordedElsewhere where !digest.isEmpty {
            folders[(path as NSString).deletingLastPathComponent, default: []].insert((path as NSString).lastPathComponent)
            digests[path, default: []].insert(digest)
        }
        // Old copies where a re-pointed bucket's folder used to be, known from the lock this
        // user's Derive last wrote (no state): a build killed while deleting one left its temporary.
        for old in plan.oldFolderNames {
            folders[(old.file as NSString).deletingLastPathComponent, default: []].insert((old.file as NSString).lastPathComponent)
            digests[old.file, default: []].insert(old.digest)
        }
        let disk = planner.disk
        let lockCopies = Self.lockTemporaryDigests(planner.lockPath, manifestName: planner.manifestName)
        var found: [String] = []
        for (folder, names) in folders {
            found += disk.removeStaleTemporaries(in: folder, named: names, listOnly: listOnly) { name in
                let path = folder + "/" + name
                var allowed = digests[path] ?? []
                if controls.contains(path) { allowed.formUnion(Self.controlTemporaryDigests(path, pending: pending, recorded: recordedControls, disk: disk)) }
                if path == planner.lockPath { allowed.formUnion(lockCopies) }
                return allowed
            }
        }
        return found.sorted { PathKey.ordered($0, $1) }
    }

    /// Whether any folder the sweep would list (each planned or recorded output's, the lock's and
    /// the index's) may hold a temporary (`Disk.mayHoldTemporaries`). Consecutive outputs mostly
    /// share a folder, so each path's folder (its bytes before the last `/`, as the sweep takes
    /// it) is compared with the last one, byte for byte, before it is kept.
    static func anyFolderMayHoldTemporaries(_ plan: Plan, controls: [String], disk: any Disk) -> Bool {
        var folders: PathSet = []
        var last: [UInt8]?
        func note(_ path: String) {
            var path = path
            path.withUTF8 { bytes in
                guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return }
                let folder = UnsafeBufferPointer(rebasing: bytes[..<slash])
                if let known = last, known.count == folder.count,
                   folder.isEmpty || known.withUnsafeBufferPointer({ memcmp($0.baseAddress!, folder.baseAddress!, folder.count) == 0 }) { return }
                last = Array(folder)
                folders.insert(String(decoding: folder, as: UTF8.self))
            }
        }
        for item in plan.items {
            if let path = item.derivative?.outputPath { note(path) }
            if let path = item.recorded?.file { note(path) }
        }
        for path in controls { folders.insert((path as NSString).deletingLastPathComponent) }
        return folders.contains { disk.mayHoldTemporaries(in: $0) }
    }

    /// The bytes a temporary file of the control file at `path` (the lock, the index) may hold
    /// and still be removed as Derive's: the bytes at the name now (a copy of them loses
    /// nothing), the ones the state records writing there, and those a killed write noted as
    /// pending (its new bytes, or the ones its exchange displaced).
    static func controlTemporaryDigests(_ path: String, pending: PathDictionary<String>, recorded: PathDictionary<String>, disk: any Disk) -> Set<String> {
        var allowed = Set<String>()
        if let recorded = recorded[ControlFileTargets.recordKey(path)] { allowed.insert(recorded) }
        for key in [path, displacedKey(path)] { if let noted = pending[key], !noted.isEmpty { allowed.insert(noted) } }
        if let now = try? disk.digestAndHead(path, headBytes: 0).digest { allowed.insert(now) }
        return allowed
    }

    /// The files a killed command noted as pending (not the displaced bytes' keys) that lie in the
    /// folder of a bucket now or in a folder recorded as a bucket's that is still that folder
    /// (device and inode): where their temporaries are swept besides the planned outputs' folders.
    static func pendingInBucketFolders(_ pending: PathDictionary<String>, planner: Planner) throws -> [String] {
        let noted = pending.keys.filter { !$0.hasSuffix(displacedKey("")) }
        guard !noted.isEmpty else { return [] }
        let folders = planner.manifest.buckets.map(\.path) + (try planner.store.bucketFoldersStillThere())
        return noted.filter { path in folders.contains { path.utf8.starts(with: ($0 + "/").utf8) } }.sorted { PathKey.ordered($0, $1) }
    }

    /// The digests of the temporaries named after the lock at `lockPath` that are Derive locks
    /// this manifest may replace (`LockFile.isOurs`), owned by this user: what a build killed
    /// while replacing the lock left, which nothing else vouches for once the state is gone
    /// (attack 40a's A7). A copy of a lock loses nothing the lock itself does not hold. The sweep
    /// removes one only when its writer is dead, and checks these bytes again on the file it removes.
    static func lockTemporaryDigests(_ lockPath: String, manifestName: String) -> Set<String> {
        let folder = (lockPath as NSString).deletingLastPathComponent, name = (lockPath as NSString).lastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var result = Set<String>()
        for candidate in names where candidate.hasPrefix("." + name + ".") && candidate.hasSuffix(ConfinedFolder.temporaryMarker) {
            let fd = open(folder + "/" + candidate, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else { continue }
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid(), info.st_size <= LockFile.maxBytes,
                  let data = try? handle.readToEnd() ?? Data(), LockFile.isOurs(data, manifest: manifestName, lockPath: lockPath) else { continue }
            result.insert(ContentDigests.digest(data))
        }
        return result
    }

    /// The index digests the lock temporaries a dead build left beside the lock at `lockPath`
    /// record (`lockTemporaryDigests`' checks, and the writer's pid in the name no longer
    /// running): a build killed after it replaced the lock and before the index leaves the old
    /// lock (displaced) there, naming the index still on disk, which nothing else vouches for once
    /// the state is gone. Read once per process, before the build's sweep removes them.
    static func lockTemporaryIndexDigests(_ lockPath: String, manifestName: String) -> Set<String> {
        lockTemporaryIndexes.withLock { known in
            if let found = known[lockPath] { return found }
            let folder = (lockPath as NSString).deletingLastPathComponent, name = (lockPath as NSString).lastPathComponent
            var result = Set<String>()
            for candidate in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            where candidate.hasPrefix("." + name + ".") && candidate.hasSuffix(ConfinedFolder.temporaryMarker) {
                let parts = candidate.dropFirst(name.count + 2).dropLast(ConfinedFolder.temporaryMarker.count).split(separator: ".")
                guard parts.count == 2, let pid = Int32(parts[0]), pid > 0, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
                let fd = open(folder + "/" + candidate, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
                guard fd >= 0 else { continue }
                let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
                var info = stat()
                guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid(), info.st_size <= LockFile.maxBytes,
                      let data = try? handle.readToEnd() ?? Data(), LockFile.isOurs(data, manifest: manifestName, lockPath: lockPath),
                      let digest = LockFile.parse(String(decoding: data, as: UTF8.self))?.index?.digest else { continue }
                result.insert(digest)
            }
            known[lockPath] = result
            return result
        }
    }

    private static let lockTemporaryIndexes = Mutex<[String: Set<String>]>([:])

    /// Removes the temporary files a killed command left for the lock at `path` (only dead
    /// writers', only while they hold bytes `controlTemporaryDigests` allows, or are this
    /// manifest's locks: `lockTemporaryDigests`): what `clean` and `release` do before they write
    /// the lock, as a build does before its outputs.
    static func removeLockTemporaries(_ path: String, manifestName: String, disk: any Disk, store: StateStore) throws {
        let pending = try store.pendingWrites(), recorded = try store.controlFiles()
        let copies = lockTemporaryDigests(path, manifestName: manifestName)
        disk.removeStaleTemporaries(in: (path as NSString).deletingLastPathComponent, named: [(path as NSString).lastPathComponent], listOnly: false) { _ in
            controlTemporaryDigests(path, pending: pending, recorded: recorded, disk: disk).union(copies)
        }
    }

    /// Removes the temporary files a killed `clean` (or build) left for the files the state
    /// records: each recorded output (`records`), each index path in `indexes` (path → the digest
    /// recorded there, nil: none), and each file a pending note names (attack 39a's F7: a `clean`
    /// killed between moving a file to a fresh temporary name and unlinking it left the file
    /// there, and the next `clean` dropped the state that proved it). As the build's sweep: only
    /// dead writers' temporaries, only of those names, only while holding bytes Derive wrote or
    /// noted for that name (a user's file moved onto such a name stays). `clean` calls it before
    /// it removes anything, while the state still proves them.
    static func removeRecordedTemporaries(_ records: [OutputRecord], indexes: PathDictionary<String?>, planner: Planner) throws {
        let store = planner.store, disk = planner.disk
        let pending = try store.pendingWrites()
        var folders: PathDictionary<PathSet> = [:]
        var digests: PathDictionary<Set<String>> = [:]
        func add(_ path: String, _ known: String?) {
            guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return }
            folders[String(path[..<slash]), default: []].insert(String(path[path.utf8.index(after: slash)...]))
            for key in [path, displacedKey(path)] { if let noted = pending[key], !noted.isEmpty { digests[path, default: []].insert(noted) } }
            if let known, !known.isEmpty { digests[path, default: []].insert(known) }
        }
        for record in records where !record.folder.isEmpty && record.placeProblem == nil { add(record.file, record.outputDigest) }
        for (path, digest) in indexes { add(path, digest) }
        // Files a killed build noted before moving them into place (never recorded), in a bucket's
        // folder now or one recorded as a bucket's (attack 40a's A2).
        for path in try pendingInBucketFolders(pending, planner: planner) { add(path, pending[path]) }
        let recordedControls = try store.controlFiles()
        for (folder, names) in folders {
            _ = disk.removeStaleTemporaries(in: folder, named: names, listOnly: false) { name in
                let path = folder + "/" + name
                var allowed = digests[path] ?? []
                if indexes[path] != nil { allowed.formUnion(controlTemporaryDigests(path, pending: pending, recorded: recordedControls, disk: disk)) }
                return allowed
            }
        }
    }

    /// Rewrites the lock at `path` over the bytes `old` (nil: none), as a build writes it
    /// (`writeIfChanged`): the new bytes and the displaced ones are noted as pending writes
    /// first and dropped once the temporary file is gone, so a kill in between leaves a
    /// temporary file the next command removes (`removeLockTemporaries`), and no other.
    /// Without a state (`release` makes none) nothing can be noted.
    static func rewriteLock(_ data: Data, to path: String, replacing old: Data?, disk: any Disk, store: StateStore?, manifest: Manifest) throws {
        if let store {
            try store.addPendingWrite(path, digest: ContentDigests.digest(data))
            if let old { try store.addPendingWrite(displacedKey(path), digest: ContentDigests.digest(old)) }
        }
        defer { try? store?.clearPendingWrites([path, displacedKey(path)]) }
        let created = try disk.writeAtomically(data, to: path, replacingOnly: old.map(ContentDigests.digest) ?? nothing)
        if let store {
            try store.addCreatedFolders(created)
            try recordLockWritten(data, at: path, store: store, buckets: LockProvenance.bucketLines(manifest))
        }
    }

    /// A digest no file has: "replace only this" with it means "create only".
    static let nothing = String(repeating: "-", count: 64)

    /// The pending-write key under which the digest of the bytes a write of the lock or the index
    /// at `path` displaces is noted: no file's path (nothing is below a file's name).
    static func displacedKey(_ path: String) -> String { path + "/displaced" }
}

/// Removal of recorded outputs, shared by orphan deletion and `clean`: what to do is decided by
/// `Planner.OrphanJudge` (the very decision `plan` showed), made again at this moment; this
/// carries it out.
public struct OutputRemoval: Sendable {
    public let planner: Planner

    public init(planner: Planner) { self.planner = planner }

    /// What became of a recorded output's file.
    public enum Outcome: Sendable {
        /// The file held the recorded bytes and was deleted.
        case removed
        /// Nothing was there any more (or a record from before folders were kept): only the record goes.
        case forgotten
        /// A file this build keeps (a wanted output's, a source, a control file, by path or by
        /// device+inode through a link): it stays, only the record goes.
        case kept
        /// Not the file Derive wrote (changed since, a copy, another folder): left in place.
        case left(path: String, message: String)
        /// Adopted on a lock line's word and not proven Derive's: left in place, counted as kept.
        case unproven(path: String, message: String)
        /// Not reachable where Derive wrote it (a symbolic link, a mount point, a folder swapped
        /// in, perhaps for a moment): left in place, and its record kept so a later run tries again
        /// (attack 17's N6). `message` says what and why; the caller says what keeps the record.
        case deferred(path: String, message: String)
    }

    public func remove(_ record: OutputRecord, keeping wanted: WantedIdentities) throws -> (path: String, message: String)? {
        switch try removal(record, judge: Planner.OrphanJudge(planner, keeping: wanted)) {
        case .left(let path, let message), .unproven(let path, let message): return (path, message)
        case .deferred(let path, let message): return (path, OrphanFate.keptMessage(message))
        case .removed, .forgotten, .kept: return nil
        }
    }

    /// `identity`: the device and inode recorded for the file, when read already (the record was
    /// replaced since); nil: read from the state now.
    public func removal(_ record: OutputRecord, judge: Planner.OrphanJudge, identity: FileIdentity?? = nil) throws -> Outcome {
        let file = record.file
        switch try judge.fate(of: record, identity: identity) {
        case .dropRecord: return .forgotten
        case .keep: return .kept
        case .left(let path, let message): return .left(path: path, message: message)
        case .unproven(let path, let message): return .unproven(path: path, message: message)
        case .unreachable(let path, let message, _): return .deferred(path: path, message: message)
        case .delete:
            break
        }
        // Derive's file: deleted only while it still holds the recorded bytes and is the very file
        // Derive installed (checked on the open file, as it goes).
        // Or, judged Derive's by the bytes a killed build noted displacing there, while it holds them.
        let recordedIdentity: FileIdentity?
        if judge.acceptedDisplaced[file] != nil { recordedIdentity = nil }
        else if let identity { recordedIdentity = identity } else { recordedIdentity = try planner.store.outputIdentity(record.path) }
        guard try planner.disk.remove(file, ifDigest: judge.acceptedDisplaced[file] ?? record.outputDigest, identity: recordedIdentity) else {
            return .left(path: file, message: Planner.OrphanJudge.changedMessage(planner.display(file)))
        }
        try planner.store.removeFiles([file])
        // Only folders Derive created, still the ones it created, only when empty, inside the
        // bucket's folder, and never another project's bucket folder.
        try Builder.removeCreatedFolders(above: file, inside: record.folder, disk: planner.disk, store: planner.store, foreign: planner.foreignProjects)
        return .removed
    }
}

/// A value set once while building and read after.
/// What the lock and the state say each file Derive wrote should hold, looked up by file; the
/// map is made on the first lookup, which only a build that wrote something recently makes.
public final class WrittenDigests: @unchecked Sendable {
    private let lock = NSLock()
    private let targets: ControlFileTargets
    private var byFile: PathDictionary<String>?

    init(_ targets: ControlFileTargets) { self.targets = targets }

    public func digest(of file: String) -> String? {
        lock.withLock {
            if byFile == nil {
                var map: PathDictionary<String> = [:]
                for record in targets.recorded.values { map[record.file] = record.outputDigest }
                map[targets.lockPath] = ContentDigests.digest(targets.lock)
                if let index = targets.index { map[index.path] = ContentDigests.digest(index.data) }
                byFile = map
            }
            return byFile?[file]
        }
    }
}

final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T { lock.withLock { stored } }
    func set(_ value: T) { lock.withLock { stored = value } }
    func update(_ change: (inout T) -> Void) { lock.withLock { change(&stored) } }
}

/// Work distribution and results shared by the worker threads.
final class JobState<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var cursor = 0
    private let count: Int
    private(set) var results: [Result<T, Error>]

    init(count: Int) {
        self.count = count
        results = Array(repeating: .failure(DiskError("not run")), count: count)
    }

    func next() -> Int? {
        lock.withLock {
            guard cursor < count else { return nil }
            defer { cursor += 1 }
            return cursor
        }
    }

    func store(_ result: Result<T, Error>, at index: Int) { lock.withLock { results[index] = result } }
}

/// Bytes that may still be taken from a fixed allowance (rendered outputs held in memory).
final class ByteAllowance: @unchecked Sendable {
    private let lock = NSLock()
    private var left: Int
    init(_ bytes: Int) { left = bytes }
    /// Takes `count` bytes if that many are left.
    func take(_ count: Int) -> Bool {
        lock.withLock {
            guard count <= left else { return false }
            left -= count
            return true
        }
    }
}

/// A source whose bytes are not the ones the plan used (its digest, from the stat cache or read
/// while planning): edited while building, or (attack 20's B2) other bytes under the very stat
/// the cache knows, which only reading it shows.
public struct SourceChanged: Error, CustomStringConvertible, Sendable {
    public var source: String
    /// Gone when the build came to read it (removed or renamed while building): a change the
    /// next build takes, not a failure (attack 53c's F5: "cannot read …: does not exist", counted failed).
    public var removed = false
    public init(source: String, removed: Bool = false) {
        self.source = source; self.removed = removed
    }
    public var description: String { source + (removed ? Self.removedSuffix : Self.suffix) }
    /// What follows the source's name in the message (a watch tells these failures apart by it).
    public static let suffix = " changed while building; run the build again"
    public static let removedSuffix = " was removed while building; run the build again"
    /// How the progress line and the summary count such a source's outputs (apart from the failed).
    public static let removedWords = "not built (source removed while building)"
}

/// What the reconcile before a build's deletions did (attack 20's S3), for the one after them.
struct EarlyReconcile: Sendable {
    var ran = false
    /// The control files it wrote.
    var written: PathSet = []
    var rewritten: [String] = []
    var removed: [String] = []
    /// Old indexes it left in place (with why), and their `left` lines.
    var leftIndexes: [(path: String, message: String)] = []
    var leftIndexLines: [LockFile.Left] = []
    /// The lock's `left` lines it let go (the lock it read is the build's first).
    var droppedLeft: [(path: String, why: String)] = []
}

/// Hooks for tests into instants of a build no test can reach by timing. Inert unless the
/// process was started with the variable set (never in production).
enum BuildTestHooks {
    /// `DERIVE_TEST_AFTER_OUTPUT_WRITE=<file name>[@move]=<path>`: once, just after the output
    /// file `<file name>` was written and moved into place (before Derive records it), the bytes
    /// of the file at `<path>` are written in place into that output, or into the file
    /// `DERIVE_TEST_AFTER_OUTPUT_WRITE_TARGET` names (an optimiser or sync client working on the
    /// output folder); with `@move` the file at `<path>` is renamed over it instead (a user's
    /// file moved there). Then the build waits out the racy margin (1.2 s), so the change is
    /// not recent when the build ends.
    private static let target: (name: String, mode: String, path: String, into: String?)? = {
        let environment = ProcessInfo.processInfo.environment
        guard let value = environment["DERIVE_TEST_AFTER_OUTPUT_WRITE"], let equals = value.firstIndex(of: "=") else { return nil }
        var name = String(value[..<equals])
        var mode = "edit"
        if let at = name.lastIndex(of: "@") { mode = String(name[name.index(after: at)...]); name = String(name[..<at]) }
        return (name, mode, String(value[value.index(after: equals)...]), environment["DERIVE_TEST_AFTER_OUTPUT_WRITE_TARGET"])
    }()
    private static let fired = NSLock()
    nonisolated(unsafe) private static var done = false

    /// `DERIVE_TEST_AFTER_RENDERS=<n>=<path>`: once `n` `{hash}` outputs were rendered (and
    /// kept in the state folder), the file `<path>` is created and the build waits (60 s) for
    /// the test to interrupt it (Ctrl-C, a kill): an interruption at a known point of the work.
    private static let renders: (count: Int, path: String)? = {
        guard let value = ProcessInfo.processInfo.environment["DERIVE_TEST_AFTER_RENDERS"], let equals = value.firstIndex(of: "="),
              let count = Int(value[..<equals]) else { return nil }
        return (count, String(value[value.index(after: equals)...]))
    }()
    private static let rendered = Box(0)

    static func afterRender(kept: Bool) {
        guard let renders, kept else { return }
        var reached = false
        rendered.update { count in count += 1; reached = count == renders.count }
        guard reached else { return }
        _ = FileManager.default.createFile(atPath: renders.path, contents: Data("rendered \(renders.count)\n".utf8))
        sleep(60)
    }

    /// `DERIVE_TEST_BEFORE_INSTALL=<file name>=<path>`: once, just before the rendered output
    /// `<file name>` is checked one last time and moved into place, the file `<path>` is created
    /// and the build waits (at most 60 s) until the test removes it: another manifest's build
    /// run to its end in that instant (two manifests racing for one name, attack 48a's F4).
    static func beforeInstall(_ path: String) {
        guard let value = ProcessInfo.processInfo.environment["DERIVE_TEST_BEFORE_INSTALL"], let equals = value.firstIndex(of: "="),
              (path as NSString).lastPathComponent == String(value[..<equals]) else { return }
        let flag = String(value[value.index(after: equals)...])
        guard FileManager.default.createFile(atPath: flag, contents: Data("waiting\n".utf8)) else { return }
        for _ in 0..<600 where FileManager.default.fileExists(atPath: flag) { usleep(100_000) }
    }

    /// `DERIVE_TEST_KILL_AFTER_INSTALL=<n>`: the build kills itself (SIGKILL) just after its `n`th
    /// output file was moved into place, before anything records it: a `kill -9` at the one
    /// instant a file is installed and only its pending write vouches for it (attack 37b's finding 1).
    private static let killAfter: Int? = ProcessInfo.processInfo.environment["DERIVE_TEST_KILL_AFTER_INSTALL"].flatMap { Int($0) }
    private static let installs = Box(0)

    static func afterInstall() {
        guard let killAfter else { return }
        var reached = false
        installs.update { count in count += 1; reached = count == killAfter }
        if reached { kill(getpid(), SIGKILL) }
    }

    /// `DERIVE_TEST_FAIL_RECORD=<file name>`: recording the output file `<file name>` in the
    /// state fails as a full disk makes SQLite fail (attack 20's D2), after the file was moved
    /// into place.
    static func failRecord(_ path: String) throws {
        guard let name = ProcessInfo.processInfo.environment["DERIVE_TEST_FAIL_RECORD"], (path as NSString).lastPathComponent == name else { return }
        throw DiskError("SQLite error 13: database or disk is full (DERIVE_TEST_FAIL_RECORD)")
    }

    /// `DERIVE_TEST_FAIL_LOCK_WRITE=1`: every write of the lock by a build's reconcile fails, as
    /// a read-only folder or an immutable lock makes it fail (attack 42c's M1).
    static func failLockWrite() throws {
        guard ProcessInfo.processInfo.environment["DERIVE_TEST_FAIL_LOCK_WRITE"] == "1" else { return }
        throw DiskError("derive.lock could not be written (DERIVE_TEST_FAIL_LOCK_WRITE)")
    }

    /// `DERIVE_TEST_BEFORE_DELETIONS=<folder>`: just before a build deletes its first orphan,
    /// the lock and the index as they are on disk then are copied into `<folder>` (which must
    /// exist), under their own names.
    static func beforeDeletions(lock: String, index: String?) {
        guard let folder = ProcessInfo.processInfo.environment["DERIVE_TEST_BEFORE_DELETIONS"] else { return }
        for file in [lock] + (index.map { [$0] } ?? []) {
            guard let bytes = FileManager.default.contents(atPath: file) else { continue }
            _ = FileManager.default.createFile(atPath: folder + "/" + (file as NSString).lastPathComponent, contents: bytes)
        }
    }

    static func afterOutputWrite(_ path: String) {
        guard let target, (path as NSString).lastPathComponent == target.name else { return }
        guard fired.withLock({ () -> Bool in defer { done = true }; return !done }) else { return }
        let into = target.into ?? path
        if target.mode == "move" {
            _ = rename(target.path, into)
        } else if let bytes = FileManager.default.contents(atPath: target.path), let handle = FileHandle(forWritingAtPath: into) {
            handle.truncateFile(atOffset: 0)
            handle.write(bytes)
            try? handle.close()
        }
        usleep(1_200_000)
    }
}
