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
    /// `type rendering` of each font the pipelines name (`EngineIdentity.fontRendering`).
    public let fontRendering: [String]
    /// Replace files Derive did not write (`--overwrite`).
    public let overwrite: Bool
    private let givenDisk: (any Disk)?
    private var openedStore: StateStore?
    private var openedPlanner: Planner?
    private var openedDisk: (any Disk)?
    /// What the last plan compared the lock and index with.
    private var plannedTargets: ControlFileTargets?
    /// Open the state without writing (for `check`).
    var readOnly = false
    /// `build --verify`: the plan reads every file again (no stat trusted, no fast path).
    var rereading = false
    /// What a build would do about the state that `check` found (corrupt, another manifest's).
    public private(set) var stateNote: String?

    public init(manifestPath: String, manifest: Manifest, manifestFiles: [String], identity: EngineIdentity,
                fontFiles: [String] = [], fontRendering: [String] = [], overwrite: Bool = false, disk: (any Disk)? = nil) {
        self.manifestPath = manifestPath
        self.manifest = manifest
        self.manifestFiles = manifestFiles
        self.identity = identity
        self.fontFiles = fontFiles
        self.fontRendering = fontRendering
        self.overwrite = overwrite
        self.givenDisk = disk
    }

    /// The lock file this manifest owns (`<manifest stem>.lock` beside it, or `lock:`).
    public var lockPath: String { manifest.lockFile }

    public var witnessInputs: NoOpWitness.Inputs {
        var inputs = NoOpWitness.Inputs(manifestFiles: manifestFiles, manifest: manifest, manifestPath: manifestPath, identity: identity,
                                        fontFiles: fontFiles, fontRendering: fontRendering, lockPath: lockPath)
        // Asked afresh (what other manifests record now), only of a witness that saved answers.
        inputs.narrowedNameTaken = narrowedNameTaken()
        inputs.leftFileClaimed = leftFileClaimed()
        return inputs
    }

    /// Whether another manifest of the folder records a file the lock's `left` lines place now
    /// (`lockOrphanOwner`'s definition, as `Planner.keptLeftLines` drops such a line); true when
    /// the lock cannot be read (in doubt, the full plan runs).
    func leftFileClaimed() -> @Sendable () -> Bool {
        let owner = takenOver(ownWins: false), manifest = manifest, lockPath = lockPath
        return {
            var info = stat()
            guard stat(lockPath, &info) == 0, Int(info.st_size) <= LockFile.maxBytes,
                  let data = FileManager.default.contents(atPath: lockPath),
                  let lock = LockFile.parse(String(decoding: data, as: UTF8.self)) else { return true }
            for line in lock.left.values {
                guard let (bucket, key) = LockFile.bucket(holding: line.place, in: manifest) else { continue }
                let file = bucket.path + "/" + key
                if SymbolicLinks.first(on: file, below: bucket.path) == nil, owner(file, bucket.name + "/" + key) != nil { return true }
            }
            return false
        }
    }

    /// Whether another manifest records the file a name narrowing would give, or a rule of a
    /// manifest beside this one writes it; its claims and neighbours are read on first use.
    func narrowedNameTaken() -> @Sendable (NarrowedName) -> Bool {
        narrowedNameQuestions().taken
    }

    /// `narrowedNameTaken`, and the first neighbour manifest that cannot be read (which takes every name).
    func narrowedNameQuestions() -> (taken: @Sendable (NarrowedName) -> Bool, unreadable: @Sendable () -> String?) {
        let claims = foreignClaims(), neighbours = NeighbourOutputNames(besides: manifestPath), doubt = NeighbourDoubt(besides: manifestPath)
        // A file a neighbour's lock records with its bytes, while its manifest is gone or does not
        // load, is in doubt even where this manifest's own line wins the tie (attack 50b's M2).
        return ({ name in
            claims.claimant(of: name.file, output: name.output) != nil || neighbours.writes(name) || doubt.lockedReason(file: name.file) != nil
        }, { neighbours.unreadable })
    }

    /// The manifest in this manifest's folder whose state or lock records a file (an old output
    /// of this one it took over with `--overwrite`), by its path; read on first use.
    /// `ownWins` false: this manifest's own lock line for the same bytes does not win the tie
    /// (`lockOrphanOwner`).
    func takenOver(ownWins: Bool = true) -> @Sendable (String, String) -> String? {
        let claims = foreignClaims(), folder = RealFolder.of(projectFolder)
        return { file, output in
            // Doubt takes nothing over: the file is left in place, named, its record kept.
            guard let claim = claims.claimant(of: file, output: output, ownWins: ownWins), claim.doubt == nil,
                  PathKey.same(RealFolder.of((claim.manifest as NSString).deletingLastPathComponent), folder) else { return nil }
            let name = (claim.manifest as NSString).lastPathComponent
            // A manifest gone from the folder records nothing: its lock left behind does (attack 50b's L7).
            if claim.takeOver != nil, let lock = claim.lock { return "\((lock as NSString).lastPathComponent) (the lock of \(name), which is no longer there)" }
            return name
        }
    }

    /// What this session's plans were answered about names narrowing would give: saved with the
    /// witness, which holds only while each is answered so again (attack 46c's t11).
    let narrowedAnswers = NarrowedNameAnswers()

    /// The disk before the state is read: confined to the buckets' folders.
    private var bucketDisk: any Disk { givenDisk ?? RealDisk(confiningTo: manifest.buckets.map(\.path), project: projectFolder, clock: fileSystemClock) }

    /// The racy-timestamp rule's clock: the state folder's file system's (attack 23's H1).
    private var fileSystemClock: FileSystemClock { FileSystemClock.forStateFolder(manifest.stateFolder, create: !readOnly) }

    /// The manifest's folder: no folder is made while it is gone (a project moved during a build).
    var projectFolder: String { URL(literalFilePath: manifestPath).standardizedFileURL.deletingLastPathComponent().path }

    /// The number of outputs when nothing can have changed since the last clean build (the
    /// witness holds, including the lock's digest, or only inputs' stats moved with their bytes
    /// as the last plan read them); nil means "plan".
    public func unchanged() -> Int? { witnessCheck().unchanged }

    /// The witness check of this command: taken once (one stat pass), or taken over from the
    /// CLI's no-op check (`adopt`); the plan and the build use the same answer and snapshot.
    public func witnessCheck() -> WitnessCheck {
        if let heldCheck { return heldCheck }
        let taken = WitnessCheck.take(witnessInputs, disk: bucketDisk, incremental: incrementalPlans)
        witnessChecksTaken += 1
        heldCheck = taken
        return taken
    }

    private var heldCheck: WitnessCheck?
    /// How many times this session stat'ed its inputs for the witness (tests: one pass per command).
    public private(set) var witnessChecksTaken = 0

    /// Takes over the witness check another session of the same command made (the CLI's no-op
    /// check runs before the full manifest load), when it fits this session: the same inputs
    /// (manifest bytes and stats, engine, fonts, folders), the same incremental setting, and no
    /// build since. Returns whether it was taken; otherwise this session checks on its own.
    @discardableResult
    public func adopt(_ other: WitnessCheck) -> Bool {
        guard heldCheck == nil, other.incremental == incrementalPlans, other.fits(witnessInputs, disk: bucketDisk) else { return false }
        heldCheck = other
        return true
    }

    /// Whether the incremental paths (touched-only, edited sources) may answer; `DERIVE_INCREMENTAL=0` turns
    /// them off (every changed witness then takes the full plan), for measuring and for doubt.
    public var incrementalPlans = ProcessInfo.processInfo.environment["DERIVE_INCREMENTAL"] != "0"

    /// After `unchanged()` answered: saves the witness again when it held only by rehashing files
    /// written within a second of it, or through touched files, so the next no-op only stats.
    /// Skipped when another build holds the lock; a plain no-op takes no lock at all.
    /// Returns the warning to give when a write it tried failed (a full disk), said once.
    @discardableResult
    public func refreshWitness() -> String? {
        let check = witnessCheck()
        guard check.needsRefresh, let held = try? BuildLock(folder: manifest.stateFolder, manifest: manifestPath) else { return nil }
        defer { withExtendedLifetime(held) {} }
        _ = WitnessWriteFailures.take()
        check.refresh(witnessInputs, disk: bucketDisk, store: { try? self.store() })
        guard let failure = WitnessWriteFailures.take().first else { return nil }
        return "the no-op witness could not be saved again (\(failure.path): \(failure.error)); nothing needed building, "
            + "but later no-ops read the files it vouches for by their bytes again until it is saved. To save it, free space on that disk "
            + "or make \(manifest.stateFolder) writable by this user; then run derive build again"
    }

    /// Forgets the witness: a build whose outputs breach a budget is not clean, so the next run
    /// must plan (and report the breach again) instead of answering "nothing to do".
    public func forgetWitness() {
        guard let held = try? BuildLock(folder: manifest.stateFolder, manifest: manifestPath) else { return }
        defer { withExtendedLifetime(held) {} }
        saveWitness(snapshot: nil, valid: false)
    }

    /// The build state, opened on first use. A corrupt database is moved aside (see `movedAside`).
    public func store() throws -> StateStore {
        if let openedStore { return openedStore }
        try refuseStateFilesOverControlFiles()   // SQLite never opens the manifest as its database or journal
        try StateFolderTrust.check(stateFolder: manifest.stateFolder, toMake: !readOnly)   // another user's folder, state or journal is never opened
        try StateOwnership.check(folder: manifest.stateFolder)   // a user's database is never migrated
        try StateOwner.refuseShared(stateFolder: manifest.stateFolder, manifest: manifestPath)   // another manifest's, sharing the folder
        // The database's stat the witness this command checked vouches for (never under `--verify`).
        let vouched = rereading ? nil : heldCheck?.vouchedDatabase
        // Its word that every outputs row verifies (`VerifiedRows`), never under `--verify` either.
        let vouchedRows = rereading ? nil : heldCheck?.vouchedRows
        if readOnly {
            // `check` writes nothing: it plans against an in-memory copy and says what build would do.
            let (store, note) = try StateStore.readOnlySnapshot(folder: manifest.stateFolder, owner: Self.ownerName(manifestPath), vouched: vouched,
                                                                 vouchedRows: vouchedRows)
            stateNote = note
            store.confine(to: recordPlaces)
            try store.followRenamedBucketFolders(lockFolder: (manifest.lockFile as NSString).deletingLastPathComponent)   // in the copy in memory, as the build will
            store.recognise(ruleNames: RecordedRuleNames(manifest.rules))
            openedStore = store
            return store
        }
        let store = try StateStore(folder: manifest.stateFolder, owner: Self.ownerName(manifestPath), vouched: vouched, vouchedRows: vouchedRows)
        store.confine(to: recordPlaces)
        try store.followRenamedBucketFolders(lockFolder: (manifest.lockFile as NSString).deletingLastPathComponent)   // a bucket folder renamed: its records follow it
        store.recognise(ruleNames: RecordedRuleNames(manifest.rules))
        openedStore = store
        return store
    }

    /// Where the state's records may lead: their own bucket's folder, a bucket's earlier folder
    /// Derive recorded (still the same folder), an old index a `.json` file in a bucket.
    var recordPlaces: RecordPlaces {
        RecordPlaces(manifestPath: manifestPath, buckets: manifest.buckets.map { ($0.name, $0.path) },
                     outputBuckets: LockableOutputs(manifest).buckets.union(manifest.index.map { [$0.bucket] } ?? []),
                     index: manifest.index.flatMap { index in manifest.bucket(named: index.bucket).map { $0.path + "/" + index.path } })
    }

    /// Throws when the lock is larger than `LockFile.maxBytes`, from its size alone: every command
    /// reads the lock whole (a 300 MB one cost 1.2 GB and 54 s: attack 15's F6). The file is left.
    func refuseOversizedLock() throws {
        var info = stat()
        guard stat(lockPath, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) > LockFile.maxBytes else { return }
        throw PlanError(message: "\(lockPath) is \(info.st_size) bytes, over the limit of \(LockFile.maxBytes) bytes (128 MiB) for a lock; nothing was read: restore it from version control, or delete it and run derive build (the build state in \(manifest.stateFolder) writes it again)")
    }

    /// Throws when a file Derive keeps in the state folder would be the manifest, an include, the
    /// lock or the index (a manifest named `state.sqlite-wal` with `state: .`): checked before
    /// SQLite opens anything there. Validation says the same; this holds for any caller.
    func refuseStateFilesOverControlFiles() throws {
        var controls = manifestFiles + manifest.files + [manifestPath, lockPath]
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) { controls.append(bucket.path + "/" + index.path) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: manifest.stateFolder)) ?? []
        for name in Set(StateFiles.files + names.filter(StateFiles.isReserved)).sorted() {
            let path = manifest.stateFolder + "/" + name
            guard let identity = FileIdentity.of(path) else { continue }
            if let control = controls.first(where: { FileIdentity.of($0) == identity }) {
                throw PlanError(message: "\(control) is where Derive keeps its state file \(name) (state folder \(manifest.stateFolder)); the build would open, overwrite or move it: rename the file, or set 'state:' to a folder of its own")
            }
        }
    }

    /// Where a corrupt state database (or one another manifest owns) was moved, when it was.
    public var movedAside: String? { openedStore?.movedAside }
    /// Why it was moved: `corrupt` or `owned by <manifest>`.
    public var movedAsideReason: String? { openedStore?.movedAsideReason }

    /// The name a state records for its owner (`StateOwner`): the manifest's absolute path with
    /// its folders' links resolved, its own name kept.
    public static func ownerName(_ manifestPath: String) -> String {
        StateOwner.name(manifestPath)
    }

    /// The disk confined to the buckets' folders and to every folder an output was written to.
    public func disk() throws -> any Disk {
        if let openedDisk { return openedDisk }
        // And the folders of the index files it recorded (an old index is removed there).
        let recorded = try store().recordedFolders() + store().controlFiles().keys.map { ($0 as NSString).deletingLastPathComponent }
        let disk = givenDisk ?? RealDisk(confiningTo: manifest.buckets.map(\.path), recorded: recorded, project: projectFolder, clock: fileSystemClock)
        openedDisk = disk
        return disk
    }

    public func planner() throws -> Planner {
        if let openedPlanner { return openedPlanner }
        try refuseOversizedLock()
        // The witness check the plan takes anyway (`editedSourcesPlan`), before the state is
        // opened: a database it vouches for is opened without its integrity check (`store()`).
        if incrementalPlans, !rereading { _ = witnessCheck() }
        // An edited source's plan (`editedSourcesPlan`) uses the stat rows of the inputs the
        // witness check stat'ed, not those of the outputs' files: only those are read up front.
        let statRows = incrementalPlans && !rereading ? witnessCheck().found.flatMap { found in
            !found.edited.isEmpty && found.edited.keys.isDisjoint(with: fontFiles) ? found.stats.keys : nil
        } : nil
        var planner = try Planner(manifest: manifest, manifestPath: manifestPath, disk: try disk(), store: try store(),
                                  identity: identity, lockPath: lockPath, overwrite: overwrite, statRows: statRows)
        // What `--verify` proved stands for the planner a state set aside opens anew.
        planner.proven = provenOutputs
        // git runs once per session, whichever planner asks first.
        if let gitProof { planner.gitProof = gitProof } else { gitProof = planner.gitProof }
        // And what the proof of adopted files found not Derive's (`proveAdoptedAtRisk`).
        for (output, reason) in adoptedDistrust { planner.distrusted[output] = reason }
        // A name another manifest records is never one narrowing gives (attack 46's M2); the
        // claims are read only when a narrower source renames an output.
        // Each answer is noted for the witness (`narrowedAnswers`).
        planner.takenOver = takenOver()
        planner.lockOrphanOwner = takenOver(ownWins: false)
        let installers = foreignClaims(), shownFrom = manifestPath
        planner.installedElsewhere = { file in installers.installer(of: file).map { Planner.display($0.manifest, manifestPath: shownFrom) } }
        let doubt = NeighbourDoubt(besides: manifestPath)
        planner.neighbourDoubt = { doubt.reason(file: $0) }
        planner.neighbourLockDoubt = { doubt.lockedReason(file: $0) }
        planner.replacedFileDoubt = { installers.ruleDoubtReason(of: $0) }
        let (taken, unreadable) = narrowedNameQuestions(), answers = narrowedAnswers
        planner.unreadableNeighbour = unreadable
        planner.narrowedNameTaken = { name in
            let answer = taken(name)
            answers.note(name, taken: answer)
            return answer
        }
        openedPlanner = planner
        return planner
    }

    /// The plan, with the lock and the index where they differ from the state, and with what
    /// another manifest's state claims (a copied project sharing a bucket folder outside its
    /// tree) refused: one evaluation for `plan`, `check` and `build`, so all three agree.
    public func plan() throws -> Plan {
        let planner = try self.planner()
        var plan: Plan
        if planner.distrusted.isEmpty, !rereading, let quick = try editedSourcesPlan(planner) {
            plan = quick
        } else {
            lastPlanPath = .full
            plan = try planner.plan()
        }
        // Adopted files whose recipe cannot be rendered again are decided now, as the build
        // decides them: plan says the refusal the build makes (attack 37a's M3).
        if settleUnrenderableAdopted(plan, planner: planner) { return try self.plan() }
        let claims = foreignClaims()
        plan = refuseClaimedFileOperations(plan, claims: claims)
        plan = notingAdoptedAtRisk(plan, planner: planner)
        let targets = try ControlFileTargets(planner: planner, adopting: plan, claims: claims)
        // The lock and index as the build will leave them (its deletions, renders, adoptions and
        // updates included), compared with the files on disk.
        plan.controlFiles = targets.changes(disk: planner.disk, display: planner.display)
        if let refusal = unwritableLock(planner: planner) { plan.errors.append(PlanError(message: refusal)) }
        if plan.refusesBuild {
            // A plan with errors builds nothing: no lock or index is written or removed, so none
            // is listed (what is blocked, or kept, is still said). The plan lists exactly what the build writes.
            plan.controlFiles.removeAll { $0.action == .write || $0.action == .remove }
        }
        plan = try listingSweep(plan, planner: planner)
        plannedTargets = targets
        return plan
    }

    /// When the plan's index needs sources' colours or placeholders the state lacks (a fresh
    /// clone: the index's own are never taken), renders them with `summaries` into the state
    /// (for `check` and `plan`, read-only: their in-memory copy; `build` says `intoState`) and
    /// compares the lock and the index again, so the plan says exactly what the build changes
    /// and the build writes either file only when it does.
    func renderingSummaries(_ plan: Plan, summaries: (() throws -> any DerivativeRenderer)?, intoState: Bool = false) throws -> Plan {
        guard let summaries, readOnly || intoState, !plan.refusesBuild, let targets = plannedTargets, targets.summariesPending else { return plan }
        let planner = try self.planner()
        var builder = Builder(planner: planner, manifestPath: manifestPath, renderer: NothingToRender(), options: BuildOptions())
        builder.summaryRenderer = try summaries()
        try builder.recordSourceSummaries(records: Array(targets.recorded.values))
        var plan = plan
        let rendered = try ControlFileTargets(planner: planner, adopting: plan, claims: foreignClaims())
        plan.controlFiles = rendered.changes(disk: planner.disk, display: planner.display)
        if plan.refusesBuild { plan.controlFiles.removeAll { $0.action == .write || $0.action == .remove } }
        plan = try listingSweep(plan, planner: planner)
        plannedTargets = rendered
        return plan
    }

    /// `plan` with the temporary files a killed command left, which the build removes before
    /// it writes anything (`Builder.sweepTemporaries`, listing only), as control files it
    /// removes: the plan lists exactly what the build removes, and `check` counts them as work
    /// pending (attack 39a's F4). None while the plan refuses the build (it removes nothing).
    func listingSweep(_ plan: Plan, planner: Planner) throws -> Plan {
        guard !plan.refusesBuild else { return plan }
        var plan = plan
        for path in try Builder.sweepTemporaries(plan, planner: planner, store: planner.store, listOnly: true) {
            plan.controlFiles.append(ControlFileChange(file: planner.display(path), path: path, action: .remove,
                                                       reason: "a temporary file a killed Derive command left (it holds Derive's bytes for that name, and its writer is gone)"))
        }
        return plan
    }

    /// How the last `plan()` was made.
    public enum PlanPath: Sendable, Equatable {
        /// Every rule expanded, every record and output compared.
        case full
        /// Only the derivatives of this many edited files planned again (`Planner.plan(edited:)`).
        case editedSources(Int)
    }

    public private(set) var lastPlanPath = PlanPath.full

    /// The edited-source plan, when the witness fails only because some sources' bytes changed
    /// (no font among them) and the planner can answer from the records for the rest; nil: plan in full.
    private func editedSourcesPlan(_ planner: Planner) throws -> Plan? {
        guard incrementalPlans, let found = witnessCheck().found, !found.edited.isEmpty,
              found.edited.keys.isDisjoint(with: fontFiles),
              // Touched files too: read again as the full plan does, so the stat cache learns their stats.
              let plan = try planner.plan(edited: found.edited.keys.union(found.touched.keys), stats: found.stats,
                                          outputFiles: found.outputFiles)
        else { return nil }
        lastPlanPath = .editedSources(found.edited.count)
        return plan
    }

    /// The error for a lock path the build could not write: a symbolic link (the build would
    /// replace the link by a file), anything else that is not a regular file (a folder), or a
    /// path whose folder is a file. A plan error, so the build refuses before rendering (attack
    /// round 25: a folder there failed the build after every render, advising --overwrite).
    /// (An index that is a link is a user's file, blocked by `ControlFileTargets`.)
    /// `ancestors`: also refuse a missing lock whose folder is a file (a build would fail to
    /// write it; clean, which only reads and removes, has nothing there to refuse).
    func unwritableLock(planner: Planner, ancestors: Bool = true) -> String? {
        let name = planner.display(lockPath)
        var info = stat()
        if lstat(lockPath, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG: return nil
            case S_IFLNK:
                return "\(name) is a symbolic link; Derive writes its lock by replacing the file and never replaces a link: make it a regular file, or set 'lock:' to where it points"
            case S_IFDIR:
                return "\(name) is a folder, where Derive writes its lock file; move the folder, or set 'lock:' in the manifest to a file's path"
            default:
                return "\(name) is not a regular file (a FIFO, socket or device), where Derive writes its lock file; move it, or set 'lock:' in the manifest to another path"
            }
        }
        // Missing: its nearest existing ancestor must be a folder for the build to make the rest.
        guard ancestors else { return nil }
        var folder = (lockPath as NSString).deletingLastPathComponent
        while !folder.isEmpty, folder != "/" {
            if lstat(folder, &info) == 0 {
                if (info.st_mode & S_IFMT) == S_IFDIR { return nil }
                if (info.st_mode & S_IFMT) == S_IFLNK, stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { return nil }
                return "\(planner.display(folder)) is not a folder, so the lock \(name) cannot be written in it; move that file, or set 'lock:' in the manifest to another path"
            }
            folder = (folder as NSString).deletingLastPathComponent
        }
        return nil
    }

    /// What other manifests' states claim, read once per plan (after `store()` moved a foreign
    /// state aside, or, read-only, where it still lies).
    /// This manifest's own state, when opened, says which file each output's record installed:
    /// the tie-breaker between its record and another's (`ForeignClaimLookup.claimant`).
    func foreignClaims() -> ForeignClaimLookup {
        var identity: (@Sendable (String) -> FileIdentity?)?
        if let store = openedStore { identity = { output in (try? store.outputIdentity(output)) ?? nil } }
        return ForeignClaimLookup(stateFolder: manifest.stateFolder, owner: Self.ownerName(manifestPath), ownIdentity: identity)
    }

    /// Every planned file operation (a write: create, rebuild, update, adoption; or a delete) of a
    /// file that another manifest's state records (a copied project sharing a bucket folder
    /// outside its tree) is refused here, whatever its verdict: two manifests never own one file.
    /// Writes and recorded deletes become plan errors. `--overwrite` takes files over.
    func refuseClaimedFileOperations(_ plan: Plan, claims: ForeignClaimLookup) -> Plan {
        let operations = plan.items.filter { $0.kind != .upToDate || $0.adopted != nil }
        // Every "not written by Derive" refusal (a stale line's included): another manifest's
        // output is not the user's file, and `--verify` must not take it (attack 40a's A3).
        // So are "changed since Derive wrote it" and "cannot prove it wrote it": a file another
        // project installed over this one's is that project's, named (attack 50a's F2, F3).
        let staleRefusals = plan.errored.filter { entry in
            entry.error.message.contains("was not written by Derive") || entry.error.message.hasSuffix("was changed since Derive wrote it; move it or pass --overwrite")
                || entry.error.message.contains(Planner.cannotProveItWroteIt)
        }
        guard !operations.isEmpty || !staleRefusals.isEmpty else { return plan }
        var result = plan
        // A file refused as nothing proves it Derive's, that another manifest's state records:
        // said as that manifest's output, the more useful reason (and the true one).
        for (derivative, error) in staleRefusals where !overwrite {
            guard let other = claims.claimant(of: derivative.outputPath, output: derivative.output) else { continue }
            let claimed = PlanError(message: Self.claimedMessage(planner: openedPlanner, file: derivative.outputPath, other: other, source: derivative.sourcePath))
            result.errors = result.errors.map { $0.message == error.message ? claimed : $0 }
            result.errored = result.errored.map { $0.error.message == error.message ? ($0.derivative, claimed) : $0 }
        }
        result.items = plan.items.compactMap { item in
            // An old output another manifest took over: only the record goes (`Planner.takenOver`).
            guard !(item.kind == .delete && plan.kept.contains(item.output)) else { return item }
            guard !overwrite || item.isRestoredCopy, item.kind != .upToDate || item.adopted != nil,
                  let file = item.derivative?.outputPath ?? item.recorded?.file, let other = claims.claimant(of: file, output: item.output),
                  // An orphan in a rule's doubt is left in place by its fate, not refused.
                  !(item.kind == .delete && other.ruleDoubtBeside != nil) else { return item }
            if overwrite {
                // Taken over: installed anew, never recorded as it is. Its device and inode are
                // the other manifest's record too, and both would count as its installer, the
                // tie-breaker between them (`ForeignClaimLookup.claimant`).
                let shown = openedPlanner?.display(file) ?? file
                return PlanItem(kind: .rebuild, output: item.output, reasons: ["\(shown) is an output of \(other.manifest): taken over (--overwrite)"],
                                derivative: item.derivative, recorded: item.recorded, adopted: item.adopted, replaces: item.replaces)
            }
            result.errors.append(PlanError(message: Self.claimedMessage(planner: openedPlanner, file: file, other: other, source: item.derivative?.sourcePath)))
            result.erroredOutputs.insert(item.output)   // wanted, and reported as refused: not "not produced"
            return nil
        }
        return result
    }

    /// The index file clean judges against the lock (no state): read only within the limits of
    /// `IndexAdoption.read` (a file over 1 MiB only when the lock's header records its digest).
    static func lockedIndex(_ file: String, planner: Planner, lockData: Data?) -> Data? {
        let lock = lockData.flatMap { LockFile.parse(String(decoding: $0, as: UTF8.self)) }
        return IndexAdoption.read(file, disk: planner.disk, trusted: 0, lockLines: { planner.presentVouchedLines(lock) },
                                  digests: IndexAdoption.recordedDigests(lock: lock))
    }

    /// A manifest of the same folder may hold the file under a name it gave a narrower source's
    /// width, one this manifest's rule writes: built first, it sees that rule and gives the name
    /// up, so the message says so, with the command (attack 48's F5: it advised only a bucket
    /// folder of its own or --overwrite). Only when a rule of that manifest reads `source`, the
    /// source this manifest's rule renders the file from, into the file's folder: narrowing
    /// weighs a neighbour's rule over that very source alone, so over another source (`src2/p.jpg`
    /// beside its `src/p.jpg`) building it first changes nothing (attack 48a's F3).
    static func claimedMessage(planner: Planner?, file: String, other: ForeignClaims.Claim, source: String? = nil) -> String {
        let shown = planner?.display(file) ?? file
        guard other.takeOver == nil, other.recordedOwner == nil, let planner, let source,
              PathKey.same(RealFolder.of((other.manifest as NSString).deletingLastPathComponent),
                           RealFolder.of((URL(literalFilePath: planner.manifestPath).standardizedFileURL.path as NSString).deletingLastPathComponent)),
              Self.rule(of: other.manifest, reads: source, into: (file as NSString).deletingLastPathComponent)
        else { return other.refusal(shown) }
        let name = (other.manifest as NSString).lastPathComponent
        return other.refusal(shown).replacingOccurrences(of: "not of this manifest; give", with: "not of this manifest; if \(name) gave that name to a "
            + "narrower source's width and this manifest's rule writes it, build \(name) first (derive build \(name)): it then plans that width "
            + "under its name as written and gives the file up; otherwise give")
    }

    /// Whether a rule of the manifest at `manifest` takes the file `source` and writes into a
    /// bucket whose folder holds `folder` (the folders compared with their links resolved), with
    /// a variant narrowing may rename; false when it does not load.
    static func rule(of manifest: String, reads source: String, into folder: String) -> Bool {
        var loader = ManifestLoader()
        loader.crossChecks = false
        loader.neighbourChecks = false
        guard let other = loader.load(manifest).manifest else { return false }
        let sourceFile = RealFolder.of((source as NSString).deletingLastPathComponent) + "/" + (source as NSString).lastPathComponent
        let target = RealFolder.of(folder)
        return other.rules.contains { rule in
            guard let from = other.bucket(named: rule.sourceBucket), let to = other.bucket(named: rule.targetBucket),
                  let key = PathKey.below(RealFolder.of(from.path), sourceFile), rule.includes(key) else { return false }
            // Only a variant with a matrix value naming its width is ever renamed by narrowing
            // (`Expansion.narrowing`): a plain `resize,w_40` never gives a name up (attack 49a's F11 advised it anyway).
            guard ((try? rule.variants(catalogue: other.catalogue)) ?? []).contains(where: { !($0.widthNames ?? []).isEmpty }) else { return false }
            return PathKey.same(RealFolder.of(to.path), target) || PathKey.below(RealFolder.of(to.path), target) != nil
        }
    }

    /// What a build did: the plan it followed and, unless the plan had errors, the report.
    public struct BuildOutcome {
        public var plan: Plan
        public var report: BuildReport?
        /// What `--verify` rendered again before planning the build (nil without it).
        public var verification: Verification?
    }

    /// `--verify`: render the outputs the plan adopts from the lock (every up-to-date output with
    /// `all`) again and compare their bytes with their files.
    public struct VerifyRequest {
        public var all: Bool
        public var options: BuildOptions
        public var renderer: () throws -> any DerivativeRenderer
        public init(all: Bool, options: BuildOptions, renderer: @escaping () throws -> any DerivativeRenderer) {
            self.all = all; self.options = options; self.renderer = renderer
        }
    }

    /// Renders `plan`'s adopted (or, with `all`, up-to-date) outputs again with the request's renderer.
    func verify(_ plan: Plan, _ request: VerifyRequest) throws -> Verification {
        let items = Verification.candidates(plan, all: request.all)
        guard !items.isEmpty else { return Verification() }
        let builder = Builder(planner: try planner(), manifestPath: manifestPath, renderer: try request.renderer(), options: request.options)
        return builder.verify(items)
    }

    /// Plans and builds under the state's lock. `renderer` is called only when something is to
    /// be rendered (a no-op never starts libvips).
    /// `verify`: render the outputs adopted from the lock (every up-to-date one with `all`) again
    /// first; one whose file holds other bytes is planned as not Derive's (`Planner.distrusted`).
    public func build(options: BuildOptions, verify: Bool = false, verifyAll: Bool = false,
                      renderer: @escaping () -> any DerivativeRenderer) throws -> BuildOutcome {
        let existedBefore = FileIdentity.anythingAt(manifest.stateFolder)
        let held = try BuildLock(folder: manifest.stateFolder, manifest: manifestPath)
        defer { withExtendedLifetime(held) {} }
        let stateFolder = FileIdentity.of(manifest.stateFolder)
        let vanished = "the state folder \(manifest.stateFolder) was deleted or replaced during the build"
        do {
            let outcome = try build(options: options, verify: verify || verifyAll ? verifyAll : nil, renderer: renderer, held: held)
            // Refused before anything was written: no state folder of its making is left behind.
            if outcome.report == nil { removeStateFolderOfRefusedBuild(existedBefore: existedBefore) }
            if let report = outcome.report, !report.succeeded, FileIdentity.of(manifest.stateFolder) != stateFolder {
                // SQLite's own words ("attempt to write a readonly database") would only mislead.
                throw PlanError(message: "\(vanished); run derive build again")
            }
            return outcome
        } catch let error as PlanError where error.message.hasPrefix(vanished) {
            throw error
        } catch {
            // SQLite's "attempt to write a readonly database" says nothing of why: the folder went.
            guard FileIdentity.of(manifest.stateFolder) != stateFolder else {
                throw StateWriteFailure(error, database: manifest.stateFolder + "/" + StateStore.fileName) ?? error
            }
            throw PlanError(message: "\(vanished); run derive build again")
        }
    }

    /// `verifyAll`: nil, no verification; false, the adopted outputs; true, every up-to-date one.
    private func build(options: BuildOptions, verify verifyAll: Bool?, renderer: @escaping () -> any DerivativeRenderer, held: BuildLock) throws -> BuildOutcome {
        // Under the lock: a check taken before it (the CLI's) stands only if no build ran since.
        if let heldCheck, !heldCheck.isCurrent(witnessInputs, disk: bucketDisk) { self.heldCheck = nil }
        // The snapshot before planning is the check's: one stat pass per command.
        let snapshot = witnessCheck().snapshot ?? NoOpWitness.snapshot(witnessInputs, disk: bucketDisk)
        // The engine starts only when something is rendered: a stale output, or a source's
        // colour or placeholder the state lacks (`Builder.recordSourceSummaries`), rendered
        // before the lock and the index are compared (a fresh clone writes neither when they match).
        let engine = LazyRenderer(renderer)
        var proof: Verification?
        if openedStore == nil, StateStore.wouldMoveAside(folder: manifest.stateFolder, owner: Self.ownerName(manifestPath)) {
            // Another manifest's (or a corrupt) state is moved aside only by a build that runs: a
            // refused one plans against an empty snapshot and leaves it where it is.
            readOnly = true
            var dryRun = try self.plan()
            if verifyAll != nil, dryRun.refusesBuild, let found = try proveUnvouchedFiles(dryRun, options: options, renderer: engine) {
                proof = found
                if !found.verified.isEmpty { dryRun = try self.plan() }
            }
            guard !dryRun.refusesBuild else { return BuildOutcome(plan: dryRun, report: nil, verification: proof) }
            readOnly = false
            openedStore = nil; openedPlanner = nil; openedDisk = nil; stateNote = nil
        }
        // `--verify` doubts the stat cache too: every source is read again, so one whose bytes
        // changed under the same stat (attack 20's B2) is planned from its bytes and rebuilt.
        if verifyAll != nil { rereading = true; try self.planner().digests.rereading = true }
        var plan = try self.plan()
        // Files adopted from the lock unverified that this build would replace or delete are
        // proven Derive's first (rendered from what they were recorded from); any other is the user's.
        if try proveAdoptedAtRisk(plan, options: options, renderer: engine) { plan = try self.plan() }
        var verification: Verification?
        if verifyAll != nil, proof == nil, let found = try proveUnvouchedFiles(plan, options: options, renderer: engine) {
            // Files at output paths that nothing vouches for, rendered again: one holding exactly
            // the rendered bytes is replaced (with those bytes), the others are still refused.
            proof = found
            if !found.verified.isEmpty { plan = try self.plan() }
        }
        if verifyAll == nil, plan.refusesBuild, let found = try proveUnvouchedFiles(plan, options: options, renderer: engine, lockListedOnly: true) {
            // A plain build while a state exists: files only the lock lists (a pull brought them
            // with their lines) are rendered again, and one holding exactly the rendered bytes is
            // taken; the others stay refused, said as the render settled them ("changed since
            // Derive wrote it", `Planner.renderedOtherBytes`; no `--verify` ran).
            if !found.verified.isEmpty {
                var taken = Verification()
                taken.verified = found.verified
                taken.seconds = found.seconds
                proof = taken
            }
            plan = try self.plan()
        }
        verification = proof
        if let verifyAll, !plan.refusesBuild {
            // Rendered again before anything is written: a file whose bytes differ was not written
            // by Derive, whatever the lock says, so the plan is made again without its line's word.
            var found = try verify(plan, VerifyRequest(all: verifyAll, options: options, renderer: { engine }))
            if let proof = verification {
                found.verified += proof.verified; found.mismatches += proof.mismatches; found.failures += proof.failures
                found.seconds += proof.seconds
            }
            verification = found
            if !found.mismatches.isEmpty {
                for mismatch in found.mismatches where openedPlanner?.distrusted[mismatch.output] == nil {
                    openedPlanner?.distrusted[mismatch.output] = "it \(mismatch.message) (derive build --verify rendered it again)"
                }
                plan = try self.plan()
            }
        }
        plan = try renderingSummaries(plan, summaries: { engine }, intoState: true)
        guard !plan.refusesBuild else { return BuildOutcome(plan: plan, report: nil, verification: verification) }   // the decision plan shows
        let planner = try self.planner()
        let rendering: any DerivativeRenderer = plan.work.isEmpty ? NothingToRender() : engine
        let taking = takeoverCandidates(plan)
        // A takeover is never made un-noted (attack 56c's M1, 57a's 1 and 2): noted as being made
        // before anything is written, or refused as a plan error is (nothing made is left behind).
        let reserving = taking.map { (path: ForeignProjectFiles.realPath($0.file), before: $0.before) }
        let reserved = reserving.map(\.path)
        if let why = TakeoverNotes.reserve(reserving, manifest: Self.ownerName(manifestPath)) {
            var refused = plan
            refused.errors.append(PlanError(message: "this build would write over \(taking.count) file\(taking.count == 1 ? "" : "s") its build state does not record as its own "
                + "(\(taking.prefix(3).map(\.output).joined(separator: ", "))\(taking.count > 3 ? ", …" : "")), and notes each such takeover in the state home first so that "
                + "the project it takes a file from never adopts or deletes it, but \(why)"))
            return BuildOutcome(plan: refused, report: nil, verification: verification)
        }
        if plan.hasChanges { saveWitness(snapshot: nil, valid: false) }   // outputs are about to change
        var builder = Builder(planner: planner, manifestPath: manifestPath, renderer: rendering, options: options)
        builder.summaryRenderer = engine
        builder.foreignClaims = foreignClaims()
        // The plan's targets hold no colour or placeholder still to be rendered: with one pending
        // (`index:` just added to a built tree, a state value not of Derive's shape) the lock and
        // index are made after `recordSourceSummaries`, or a no-op build wrote an index without
        // the colour and `check` then called both stale.
        builder.plannedTargets = plan.adoptions.isEmpty && plannedTargets?.summariesPending != true ? plannedTargets : nil
        builder.plannedWrites = PathSet(plan.controlFiles.filter { $0.action == .write }.map(\.path))
        builder.plannedRenders = plannedTargets.flatMap { $0.summariesPending ? nil : PathSet($0.renderedAnew) }
        builder.verified = PathSet(verification?.verified ?? [])
        builder.provenAdopted = provenAdopted
        // Outputs written but never recorded would be no one's: nothing is written at all.
        if plan.hasChanges || !plan.adoptions.isEmpty {
            try held.refuseUnwritable("build")
            // Before any file is installed: another project finds this one's records by it,
            // wherever its lock and state lie (attack 50a's F1).
            do {
                try ProjectRegistry.register(ProjectRegistry.carryingRecordedBuckets(registryEntry))
            } catch {
                // Where no token folder can be kept (another user's home under `sudo -E`, no HOME),
                // the build goes on as it does without the state's token: said, not a failure.
                // At the registry's limit the project is still found from its state's token beside
                // it (`ProjectRegistry.recovered`): no other advice (attack 52a's F11).
                let message = "\(error)".contains(ProjectRegistry.limitReached)
                    ? "derive: warning: this project is not recorded in the registry of built projects (\(error)); other projects still find it from its build state's token in the state home\n"
                    : "derive: warning: this project is not recorded in the registry of built projects (\(error)); "
                        + "another project finds its outputs only by looking nearby; set XDG_STATE_HOME or HOME to a folder you can write\n"
                FileHandle.standardError.write(Data(message.utf8))
            }
        } else {
            registerIfMissing()
        }
        let report: BuildReport
        do {
            report = try builder.build(plan)
        } catch let failure as StateWriteFailure where !plan.hasChanges && plan.adoptions.isEmpty {
            // Nothing to build: only the stat cache's refresh was not saved (a full disk, an
            // unwritable state folder). SQLite rolled it back; with no witness the next run checks again.
            saveWitness(snapshot: nil, valid: false)
            var unsaved = BuildReport()
            unsaved.adoptedUnverified = plan.adoptedUnverified
            unsaved.stateNotSaved = failure
            return BuildOutcome(plan: plan, report: unsaved, verification: verification)
        }
        let built = Set(report.built)
        var installed = plan.items.compactMap { item in
            built.contains(item.output) ? item.derivative.map { (output: item.output, file: ForeignProjectFiles.realPath($0.outputPath)) } : nil
        }
        // And outputs this build did not write whose file a pending note's path names (58c's 2: a
        // killed taker's pending notes of files it had installed outlived its next plain build,
        // which found them up to date): the state records that very file as its own, so the note
        // goes (noteTakeovers checks the record).
        let pending = TakeoverNotes.pendingPaths()
        if !pending.isEmpty {
            let names = Set(pending.map { ($0 as NSString).lastPathComponent })
            for item in plan.items where !built.contains(item.output) {
                guard let path = item.derivative?.outputPath, names.contains((path as NSString).lastPathComponent) else { continue }
                let real = ForeignProjectFiles.realPath(path)
                if pending.contains(where: { PathKey.same($0, real) }) { installed.append((item.output, real)) }
            }
        }
        noteTakeovers(taking, reserved: reserved, installed: installed)
        // A build that removed temporaries changed what its snapshot saw: no witness from it.
        let valid = report.succeeded && report.left.isEmpty && report.sweptTemporaries.isEmpty
        saveWitness(snapshot: valid ? snapshotAfterOwnWrites(snapshot, written: report.writtenDigests) : snapshot, valid: valid,
                    outputs: report.outputFiles.map { files in
                        // Old outputs kept behind a link are no outputs: the witness keeps the link instead.
                        let behind = PathSet(plan.orphansBehindLinks.map(\.file))
                        return behind.isEmpty ? files : files.filter { !behind.contains($0) }
                    },
                    written: report.writtenDigests, adoptedUnverified: report.adoptedUnverified, left: report.leftFiles,
                    links: plan.orphansBehindLinks.map(\.link))
        return BuildOutcome(plan: plan, report: report, verification: verification)
    }

    /// The files this build took over from another project (`--overwrite`), noted in the state
    /// home by the very file it installed (`TakeoverNotes`), so the project it took them from
    /// knows another build installed them however far this one moves (attack 56a's F3).
    func noteTakeovers(_ candidates: [(output: String, file: String, before: FileIdentity)], reserved: [String], installed: [(output: String, file: String)]) {
        guard let store = openedStore, !candidates.isEmpty || !installed.isEmpty else { return }
        let ownFiles: [(path: String, identity: FileIdentity)] = installed.compactMap { item in
            guard let recorded = (try? store.outputIdentity(item.output)) ?? nil, recorded != .unproven else { return nil }
            return (item.file, recorded)
        }
        var taken: [(path: String, identity: FileIdentity)] = []
        for candidate in candidates {
            guard let recorded = (try? store.outputIdentity(candidate.output)) ?? nil, recorded != .unproven,
                  !recorded.isSameFile(as: candidate.before),
                  recorded.isFile(at: candidate.file) else { continue }
            taken.append((ForeignProjectFiles.realPath(candidate.file), recorded))
        }
        if let warning = TakeoverNotes.note(taken, reserved: reserved, installed: ownFiles, manifest: Self.ownerName(manifestPath)) {
            FileHandle.standardError.write(Data("derive: warning: \(warning)\n".utf8))
        }
    }

    /// The outputs a `--overwrite` build is about to write over a file this manifest's state
    /// does not record as the one it installed there (another project's, or one put there), with
    /// that file's identity: those it installs anew are `noteTakeovers`' to note.
    /// And those a build writes anew over a file it took over earlier (noted): the note goes
    /// over to the new file (attack 56b's H3: a rebuild of the taker's own output lost it).
    func takeoverCandidates(_ plan: Plan) -> [(output: String, file: String, before: FileIdentity)] {
        let work = plan.items.filter { $0.kind != .upToDate && $0.kind != .delete }
        guard !work.isEmpty else { return [] }
        let noted = TakeoverNotes.taken(by: Self.ownerName(manifestPath))
        guard overwrite || !noted.all.isEmpty else { return [] }
        var found: [(output: String, file: String, before: FileIdentity)] = []
        for item in work {
            // With its birth: an inode number freed by a concurrent build and given to the file this
            // build installs made the two look the same, and the takeover went un-noted (57b's 1).
            guard let file = item.derivative?.outputPath, var there = FileIdentity.ofRegularFile(file) else { continue }
            there.birth = FileBirth.of(file) ?? 0
            let own = (try? openedStore?.outputIdentity(item.output)) ?? nil
            let ownFile = own.map { $0 != .unproven && $0.isFile(at: file) } ?? false
            // Noted as this manifest's takeover, or as any build's while this state records that
            // very file as the one it installed (58b's 2: the taker's manifest saved by rename is
            // another file, and its rebuild dropped the note instead of carrying it over).
            let takenEarlier = (noted.own.firstIndex(of: there).map { noted.own[$0].isFile(at: file) } ?? false)
                || (ownFile && (noted.all.firstIndex(of: there).map { noted.all[$0].isFile(at: file) } ?? false))
            if !takenEarlier {
                guard overwrite, !ownFile else { continue }
            }
            found.append((item.output, file, there))
        }
        return found
    }

    /// Records this project in the registry of built projects when its very line is not there: a
    /// build with nothing to write (the no-op too) of a project renamed or moved since, or whose
    /// line the registry lost, is found where it is now (attack 51a's 1b c). One read of the
    /// registry when the line is there; a failure is said by the next build that writes.
    public func registerIfMissing() {
        let entry = registryEntry
        guard !ProjectRegistry.isRegistered(entry) else { return }
        let carried = ProjectRegistry.carryingRecordedBuckets(entry)
        if carried != entry, ProjectRegistry.isRegistered(carried) { return }
        try? ProjectRegistry.register(carried)
    }

    /// This project as the registry of built projects names it (`ProjectRegistry`).
    var registryEntry: ProjectRegistry.Entry {
        ProjectRegistry.Entry(manifest: Self.ownerName(manifestPath), lock: ProjectRegistry.realName(lockPath),
                              state: ProjectRegistry.realName(manifest.stateFolder),
                              buckets: ProjectRegistry.keptBuckets(Dictionary(manifest.buckets.map { ($0.name, ProjectRegistry.realName($0.path)) }, uniquingKeysWith: { a, _ in a }),
                                                                   outputs: Set(manifest.rules.map(\.targetBucket) + (manifest.index.map { [$0.bucket] } ?? []))),
                              // Only where a link makes them differ: the registry's size is bounded.
                              declared: Dictionary(manifest.buckets.compactMap { bucket in
                                  let declared = ProjectRegistry.declaredName(bucket.path)
                                  return declared == ProjectRegistry.realName(bucket.path) ? nil : (bucket.name, declared)
                              }, uniquingKeysWith: { a, _ in a }))
    }

    /// The outputs `--verify` proved (`Planner.proven`), kept for every planner this session opens.
    private var provenOutputs: PathDictionary<String> = [:]
    /// Outputs adopted from the lock unverified whose file `proveAdoptedAtRisk` rendered again
    /// and found holding exactly what their record's recipe renders: replaced or deleted as Derive's.
    private var provenAdopted: PathSet = []
    /// What git holds at HEAD, shared by every planner of this session (`GitProof`).
    private var gitProof: GitProof?
    /// Those of `provenAdopted` whose recipe could not be rendered again, proven by git instead.
    private var adoptedProvenByGit: PathSet = []
    /// The others it rendered (or could not): output → why the file is not Derive's (`Planner.distrusted`).
    private var adoptedDistrust: PathDictionary<String> = [:]
    /// The outputs whose adopted file this session found not provably Derive's (refused or kept as the user's).
    public var unprovenAdoptions: PathSet { adoptedDistrust.keys }

    /// The records of outputs adopted from the lock unverified whose file `plan` replaces (a
    /// rebuild at its path, unless `--overwrite`) or deletes (an orphan, a superseded `{hash}`
    /// name, the old copy of a moved bucket), still holding the bytes the lock line gave, and not
    /// proven or distrusted yet: Derive never wrote those bytes, so they must be proven first.
    func adoptedAtRisk(_ plan: Plan, planner: Planner) -> [OutputRecord] {
        plan.items.compactMap { item in
            guard let record = item.recorded, record.adopted, item.kind != .upToDate, item.kind != .update,
                  planner.distrusted[item.output] == nil, !provenAdopted.contains(item.output) else { return nil }
            // Kept, or left by the plan's own check (nothing can render it, git does not hold it).
            if item.kind == .delete, plan.kept.contains(item.output) || plan.leftInPlace.contains(item.output) { return nil }
            // `--overwrite` replaces whatever file is at an output's path; it never deletes one.
            if planner.overwrite, let derivative = item.derivative, PathKey.same(derivative.outputPath, record.file) { return nil }
            return AdoptedProof.needsProof(record, digests: planner.digests) ? record : nil
        }
    }

    /// `plan`'s items whose file the build proves first (`adoptedAtRisk`), with a reason saying so.
    func notingAdoptedAtRisk(_ plan: Plan, planner: Planner) -> Plan {
        let atRisk = PathSet(adoptedAtRisk(plan, planner: planner).map(\.path))
        guard !atRisk.isEmpty || !adoptedProvenByGit.isEmpty else { return plan }
        var noted = plan
        noted.deleteIfRenderMatches = PathSet(plan.items.filter { $0.kind == .delete && atRisk.contains($0.output) }.map(\.output))
        noted.items = plan.items.map { item in
            let note: String
            if atRisk.contains(item.output) {
                note = AdoptedProof.planNote(replacing: item.kind != .delete)
            } else if adoptedProvenByGit.contains(item.output), item.kind != .upToDate, item.kind != .update {
                note = AdoptedProof.gitNote
            } else {
                return item
            }
            return PlanItem(kind: item.kind, output: item.output, reasons: item.reasons + [note],
                            derivative: item.derivative, recorded: item.recorded, adopted: item.adopted, replaces: item.replaces, supersedes: item.supersedes)
        }
        return noted
    }

    /// Decides the files `adoptedAtRisk` names whose recipe cannot be rendered again (their source
    /// changed since, their rule or bucket gone) as `Builder.proveAdopted` does, with the same
    /// function (`Planner.adoptedRecipe`), before anything renders: proven by git (`provenAdopted`)
    /// or the user's (`Planner.distrusted`: an error at a literal path, kept when deleted). So
    /// `plan` and `check` say what the build will do. True when any was decided: plan again.
    func settleUnrenderableAdopted(_ plan: Plan, planner: Planner) -> Bool {
        let atRisk = adoptedAtRisk(plan, planner: planner)
        guard !atRisk.isEmpty else { return false }
        planner.gitProof.prefetch(atRisk.map(\.file))
        var settled = false
        for record in atRisk {
            switch planner.adoptedRecipe(record) {
            case .renderable: continue
            case .provenByGit:
                provenAdopted.insert(record.path)
                adoptedProvenByGit.insert(record.path)
            case .unprovable(let why):
                adoptedDistrust[record.path] = why
                openedPlanner?.distrusted[record.path] = why
            }
            settled = true
        }
        return settled
    }

    /// Proves the files `adoptedAtRisk` names (`Builder.proveAdopted`): a file holding what its
    /// record's recipe renders is Derive's (`provenAdopted`); any other is planned as the user's
    /// (`Planner.distrusted`: refused at a literal path, kept in place when deleted). True when
    /// anything was rendered, so the plan is to be made again.
    func proveAdoptedAtRisk(_ plan: Plan, options: BuildOptions, renderer: any DerivativeRenderer) throws -> Bool {
        let planner = try self.planner()
        let atRisk = adoptedAtRisk(plan, planner: planner)
        guard !atRisk.isEmpty else { return false }
        let found = Builder(planner: planner, manifestPath: manifestPath, renderer: renderer, options: options).proveAdopted(atRisk)
        provenAdopted.formUnion(found.proven)
        adoptedProvenByGit.formUnion(found.provenByGit)
        for (output, reason) in found.distrusted {
            adoptedDistrust[output] = reason
            openedPlanner?.distrusted[output] = reason
        }
        return true
    }

    /// `--verify`: renders again the outputs whose file the plan refused because nothing vouches
    /// for it (no record of its bytes, no lock line: Derive's own output whose record was lost
    /// when the project moved while it built, or a build under another HOME set the state aside;
    /// attack 18's N5b and S11). Outputs are deterministic: a file holding exactly what its rule
    /// renders is what Derive writes there, so it is noted as proven (`Planner.proven`) and
    /// replaced; any other stays refused. Nil when no such file was refused.
    /// `lockListedOnly` (a plain build): only files the state does not record that a lock line
    /// states the digest of (`Planner.lockListedUnrecorded`), which a lock line proves nothing of
    /// while a state exists (round 24's H2).
    func proveUnvouchedFiles(_ plan: Plan, options: BuildOptions, renderer: any DerivativeRenderer,
                             lockListedOnly: Bool = false) throws -> Verification? {
        let planner = try self.planner()
        // `{hash}` outputs too (attack 41b's M4: a checkout brought back committed ones a build on
        // another branch had deleted, with their lock lines, and every build refused them).
        let candidates = plan.errored.filter { entry in
            planner.distrusted[entry.derivative.output] == nil
                && (!lockListedOnly || planner.lockListedUnrecorded(entry.derivative))
                && FileKind.isRegularFile(entry.derivative.outputPath)
                && (entry.error.message.contains("was not written by Derive") || entry.error.message.contains("was changed since Derive wrote it")
                    || entry.error.message.contains(Planner.lockLineProvesNothing)
                    || entry.error.message.contains(Planner.cannotProveItWroteIt))
        }
        guard !candidates.isEmpty else { return nil }
        let items = candidates.map { PlanItem(kind: .create, output: $0.derivative.output, reasons: [], derivative: $0.derivative, recorded: nil, adopted: nil) }
        var found = Builder(planner: planner, manifestPath: manifestPath, renderer: renderer, options: options).verify(items)
        var proven = planner.proven
        var taken = PathSet()
        for entry in candidates where found.verified.contains(entry.derivative.output) {
            guard let digest = try? planner.digests.content(of: entry.derivative.outputPath)?.digest,
                  // A `{hash}` output's file is taken only under the name its bytes give it.
                  PathKey.same(entry.derivative.named(digest: digest).outputPath, entry.derivative.outputPath) else { continue }
            proven[entry.derivative.output] = digest
            taken.insert(entry.derivative.output)
        }
        found.verified.removeAll { !taken.contains($0) }
        provenOutputs = proven
        openedPlanner?.proven = proven
        openedPlanner?.renderedOtherBytes.formUnion(candidates.map(\.derivative.output).filter { !taken.contains($0) })
        return found
    }

    /// The input snapshot to save the witness with after a build: the one taken before it
    /// planned, or one taken now when they differ only by files this build wrote into a folder
    /// the rules read (`NoOpWitness.afterOwnWrites`): each with the stat the build wrote it with
    /// (from its own descriptor), or holding exactly the bytes the build recorded for it (read
    /// now: stat, hash, stat). The files' digests are vouched for again when the witness is
    /// saved (`planDigest`), as for any input changed within the racy margin.
    func snapshotAfterOwnWrites(_ snapshot: NoOpWitness.Snapshot?, written: WrittenDigests?) -> NoOpWitness.Snapshot? {
        guard let snapshot, let written else { return snapshot }
        let digests = openedPlanner?.digests
        let disk = bucketDisk
        return NoOpWitness.afterOwnWrites(snapshot, witnessInputs, disk: disk) { file, stat in
            guard let wanted = written.digest(of: file) else { return false }
            if digests?.stat(for: file) == stat { return true }
            guard let hashed = try? disk.digestAndHead(file, headBytes: 0).digest, disk.stats([file]).first == .some(stat) else { return false }
            return hashed == wanted
        } ?? snapshot
    }

    /// Remembers (or forgets) that the state and outputs match the manifest.
    /// A racy file (written within the racy margin) is vouched for only with `written`'s digest
    /// for it; without `written` every racy file leaves no witness, as a file of unknown bytes.
    /// `adoptedUnverified`: how many outputs the state marks as adopted from the lock unverified,
    /// kept with the witness so a no-op answer says so too.
    /// `links`: the symbolic links old outputs were kept behind (`Plan.orphansBehindLinks`).
    func saveWitness(snapshot: NoOpWitness.Snapshot?, valid: Bool, outputs known: [String]? = nil, written: WrittenDigests? = nil,
                     adoptedUnverified: Int = 0, left: [String] = [], links: [String] = []) {
        guard valid else { NoOpWitness.save(witnessInputs, snapshot: nil, outputs: [], disk: bucketDisk, valid: false); return }
        let outputs = known ?? ((try? store().allOutputs()) ?? [:]).values.map(\.file)
        let stateFile = manifest.stateFolder + "/" + StateStore.fileName
        let digests = openedPlanner?.digests
        let outputSet = PathSet(outputs)
        let clock = bucketDisk.now()   // after the snapshot's stats (`FileStat.lastChange`)
        NoOpWitness.save(witnessInputs, snapshot: snapshot, outputs: outputs, left: left, links: links, disk: bucketDisk, valid: valid, adoptedUnverified: adoptedUnverified, expected: { file in
            // The state database has no recorded digest: its bytes are what this build left.
            PathKey.same(file, stateFile) ? nil : (written?.digest(of: file) ?? "unknown")
        }, inputDigest: { file, stat in
            // The digest this plan used, when its record is of exactly the stat the snapshot took.
            guard let record = digests?.record(for: file), record.size == stat.size, record.mtime == stat.mtime,
                  record.ctime == stat.ctime, record.inode == Int64(bitPattern: stat.inode),
                  stat.lastChange(now: clock, margin: digests?.racyMargin ?? 0) < record.recorded - (digests?.racyMargin ?? 0) else { return nil }
            return record.digest
        }, planDigest: { file, stat in
            // The same, hashed within the racy margin too: the witness checks it against the bytes now.
            // A file this build wrote into a folder the rules read (`snapshotAfterOwnWrites`): what it wrote.
            guard let record = digests?.record(for: file), record.size == stat.size, record.mtime == stat.mtime,
                  record.ctime == stat.ctime, record.inode == Int64(bitPattern: stat.inode) else { return written?.digest(of: file) }
            return record.digest
        }, settled: { file, stat in
            // An output's stat must be the one this build wrote it with (from the written file's
            // descriptor) or planned it with; any other (attack 20's B3: changed after Derive wrote
            // it, before the build ended) is read and must hold the bytes recorded for it.
            guard outputSet.contains(file) else { return true }
            return digests?.stat(for: file) == stat
        }, stateCommitted: openedStore?.holdsOnlyOwnCommits ?? false, rowsVerified: openedStore?.verifiedRowsToken(), asked: narrowedAnswers.lines)
    }

    /// For CI: every way the outputs, the state and the lock disagree with the manifest.
    public struct CheckResult {
        public var problems: [String]
        public var upToDate: Int
        /// Lock lines for outputs the manifest does not produce, with no state (a fresh clone):
        /// named, not problems (the build leaves the files and drops the lines; exit 0).
        public var left: [LockLeft] = []
        /// Outputs only a lock line vouches for (no `--verify`): those a build would adopt (a fresh
        /// clone's), and those an earlier plain build adopted and nothing rendered or verified since.
        public var adoptedUnverified = 0
        /// What `--verify` rendered again (nil without it).
        public var verification: Verification?
        /// The lock's `left` lines that stay (files left in place, not outputs): named, not problems.
        public var leftInLock: [LockFile.Left] = []
        /// The lock's `left` lines a build drops (the file is gone): named, not problems.
        public var droppedLeft: [(path: String, why: String)] = []
        /// Old outputs kept behind a symbolic link, records and all: named, not problems.
        public var orphansBehindLinks: [OrphanBehindLink] = []
        /// Whether they are adopted from the lock this user's Derive last wrote (`Plan.adoptsFromOwnLock`).
        public var adoptsFromOwnLock = false
    }

    /// `summaries`: what renders the sources' colours and placeholders the state lacks (a fresh
    /// clone: the index's own are never taken), into check's in-memory state, so the index on
    /// disk is compared with the values a build writes. Nil: such an index is said to be rewritten.
    /// `verify`: render outputs again and name each whose file differs (`--verify`).
    public func check(summaries: (() throws -> any DerivativeRenderer)? = nil, verify: VerifyRequest? = nil) throws -> CheckResult {
        if verify == nil, let count = unchanged() {
            return CheckResult(problems: [], upToDate: count, adoptedUnverified: witnessCheck().adoptedUnverified)
        }
        if openedStore == nil { readOnly = true }
        let plan = try renderingSummaries(self.plan(), summaries: summaries)
        let planner = try self.planner()
        var problems = plan.errors.map(\.message)
        let verification = try verify.map { try self.verify(plan, $0) }
        if let verification {
            problems += verification.mismatches.map(\.line)
            problems += verification.failures.map { "\($0.output): \($0.message)" }
        }
        problems += plan.failures.map { "\($0.subject): \($0.message)" }
        for item in plan.items where item.kind != .upToDate {
            // An old output kept in place (now a source, or behind a link) is not deleted: said as
            // kept; one the build leaves in place, as left (as plan says them: attack 50b's L1); a
            // record whose file is already gone is only dropped (attack 50b's L8).
            let kind = item.kind != .delete ? item.kind.rawValue : plan.kept.contains(item.output) ? "kept"
                : plan.leftInPlace.contains(item.output) ? "left" : item.kind.rawValue
            let only = item.kind == .delete && plan.dropsRecordOnly(item.output) ? Plan.recordOnlyNote : ""
            problems.append("\(item.output): \(kind)\(item.reasons.isEmpty ? "" : ": " + item.reasons.joined(separator: "; "))\(only)")
        }
        // The lock must list exactly the outputs, with the digests they have.
        let lockName = planner.display(lockPath)
        let lockData = try? planner.disk.read(lockPath)
        let lock = lockData.flatMap { LockFile.parse(String(decoding: $0, as: UTF8.self)) }
        let wanted = plan.items.filter { $0.kind != .delete }
        if let lock {
            let wantedOutputs = PathSet(wanted.map(\.output))
            // Every output the state records must have exactly the entry a build would write.
            for record in try store().allOutputs().values.sorted(by: { PathKey.ordered($0.path, $1.path) }) where wantedOutputs.contains(record.path) {
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
                } else if let measured = item.adopted, Self.stated(entry, as: measured) != measured {
                    // Adopted with the file's own numbers (verify 16's M6): the line is corrected by the next build.
                    problems.append("\(item.output): \(lockName) says \(Self.describe(Self.stated(entry, as: measured))), the file is \(Self.describe(measured)); run derive build")
                }
            }
            // One line per output: a lock entry the plan already names (a deletion, kept or not) is not
            // said twice; an output whose input failed (a missing watermark object) is reported above,
            // under its logical name when it is a `{hash}` output (`plan.heldByFailure`).
            let planned = PathSet(plan.items.map(\.output))
            let failedOutputs = PathSet(plan.failures.map(\.subject)).union(plan.heldByFailure.keys)
            let left = PathSet(plan.lockLeft.map(\.output))
            // Old outputs kept behind a link keep their record, and so their line (named above).
            let behindLinks = PathSet(plan.orphansBehindLinks.map(\.output))
            for path in lock.entries.keys.sorted() where !wantedOutputs.contains(path) && !plan.erroredOutputs.contains(path)
                && !planned.contains(path) && !failedOutputs.contains(path) && !left.contains(path) {
                if behindLinks.contains(path) {
                    if let record = plan.recorded[path], lock.entries[path] != Builder.lockEntry(record) {
                        problems.append("\(path): its \(lockName) entry differs from the build state; run derive build")
                    }
                    continue
                }
                if let source = plan.heldBySource[path] {
                    // Still produced by the manifest: its source could not be read (named above), so it is kept as built.
                    problems.append("\(path): kept as built and not checked: its source \(source) could not be read")
                    continue
                }
                if plan.heldLockLines[path] != nil {
                    // Known only from the lock, while a source (or its folder) could not be read: the line is kept.
                    problems.append("\(path): kept in \(lockName) as built and not checked: a source or source folder could not be read (named above)")
                    continue
                }
                problems.append("\(path): in \(lockName) but not produced by the manifest")
            }
        } else if lockData != nil {
            problems.append("\(lockName) is not a valid lock (truncated or edited); run derive build")
        } else if let unwritable = unwritableLock(planner: planner) {
            // Something that is no lock file is there (a folder, a FIFO, a link), or a file where
            // its folder goes: not "missing; run derive build" (a build refuses it). The plan's
            // error already says so, and how to fix it; said once.
            if !problems.contains(unwritable) { problems.append(unwritable) }
        } else {
            problems.append("\(lockName) is missing; run derive build")
        }
        // Anything else that differs in the lock's bytes (order, the header), and the index.
        let lockReported = problems.contains { $0.hasPrefix(lockName + " ") || $0.contains(": its \(lockName) entry") || $0.contains(" \(lockName)") }
        // With a state, a `left` line the build drops or marks gone is only named. Lines only the
        // lock names (no usable state: `plan.lockLeft`) are not exempt: the build rewrites the lock
        // without them, so check says so as `plan --detailed-exitcode` does (attack 39a's F1: one
        // definition of "the lock matches", the plan's, not a second one that took them out).
        let onlyLeftLines = plan.lockLeft.isEmpty && (lockData.map { lockDiffersOnlyByLeftLines($0, plan: plan) } ?? false)
        let lockOnly = plan.lockLeft.filter { lock?.entries[$0.output] != nil }
        for change in plan.controlFiles where !(PathKey.same(change.path, lockPath) && (lockReported || onlyLeftLines)) {
            if PathKey.same(change.path, lockPath), change.action == .write, !lockOnly.isEmpty {
                let count = lockOnly.count
                problems.append("\(lockName): lists \(count) output\(count == 1 ? "" : "s") the manifest does not produce, known only from \(lockName) "
                    + "(\(lockOnly.prefix(3).map(\.output).joined(separator: ", "))\(count > 3 ? ", …" : ""): named above); derive build rewrites it "
                    + "(a file still there keeps a `left` line, a line whose file is gone is dropped): run derive build and commit \(lockName)")
                continue
            }
            problems.append(change.problem)
        }
        // Derive's files where a re-pointed bucket's folder used to be, which the build deletes (no state records them).
        for copy in plan.oldFolderCopies where copy.deletes {
            problems.append("\(copy.displayed): \(copy.reason); derive build \(copy.isIndex ? "removes" : "deletes") it")
        }
        // A `left` line of a file another manifest of the folder now records (its lock read again
        // after a conflict) is dropped by the build, which rewrites the committed lock: check fails
        // as `plan --detailed-exitcode` does (attack 49b's F3: it said "Up to date", exit 0).
        for dropped in plannedTargets?.droppedLeft ?? [] where dropped.why.hasSuffix(Planner.leftToNeighbour) {
            problems.append("\(lockName): keeps \(dropped.path) as a file left in place, but \(dropped.why); derive build drops the line: run derive build and commit \(lockName)")
        }
        if problems.isEmpty, !onlyLeftLines, let lockData, let expected = try expectedLock(plan), lockData != expected {
            // Lines swapped, repeated, blank, respaced, an extra key: build would rewrite it, so it is not up to date.
            problems.append("\(lockName) is not exactly what derive build writes (lines reordered, repeated or reformatted?); run derive build")
        }
        return CheckResult(problems: problems, upToDate: plan.count(.upToDate), left: plan.lockLeft,
                           adoptedUnverified: verification == nil ? plan.adoptedUnverified : 0, verification: verification,
                           leftInLock: plannedTargets.map { targets in
                               let lockOnly = PathSet(plan.lockLeft.map(\.output))
                               return targets.left.sortedByKey().map(\.value).filter { !lockOnly.contains($0.path) }
                           } ?? [],
                           droppedLeft: plannedTargets?.droppedLeft ?? [], orphansBehindLinks: plan.orphansBehindLinks,
                           adoptsFromOwnLock: plan.adoptsFromOwnLock)
    }

    /// Whether `lockData` is the lock a build writes after `plan` once the lines of `plan.lockLeft`
    /// are taken out (byte for byte otherwise: reordered or reformatted lines still differ).
    /// Lines of files left in place whose file is gone count alike: the build drops them.
    func lockDiffersOnlyByLeftLines(_ lockData: Data, plan: Plan) -> Bool {
        // A line marked gone now (its file went) counts alike: the build marks it (round 21's N4).
        let gone = plannedTargets?.left.values.filter(\.isGone).map(\.path) ?? []
        let paths = PathSet(plan.lockLeft.map(\.output) + (plannedTargets?.droppedLeft.map(\.path) ?? []) + gone)
        guard !paths.isEmpty, let expected = try? expectedLock(plan) else { return false }
        // The lock-only files become the lock's `left` lines: taken out of both sides.
        return LockFile.dropping(paths, from: lockData) == LockFile.dropping(paths, from: expected)
    }

    /// A lock line as compared with the file's numbers: a line of an older lock that gives no
    /// format (it is filled in by a build) is not called false for that.
    static func stated(_ entry: LockFile.Entry, as measured: LockFile.Entry) -> LockFile.Entry {
        var stated = entry
        if stated.format.isEmpty { stated.format = measured.format }
        return stated
    }

    /// `100x67 webp, 1234 bytes`: a lock line's numbers, as `check` names them.
    static func describe(_ entry: LockFile.Entry) -> String {
        "\(entry.width)x\(entry.height) \(entry.format), \(entry.bytes) byte\(entry.bytes == 1 ? "" : "s")"
    }

    /// The bytes of the lock a build would write after `plan` (which must have nothing to render):
    /// the recorded outputs it keeps, plus those it adopts from the lock.
    func expectedLock(_ plan: Plan) throws -> Data? {
        guard plan.work.isEmpty else { return nil }
        return plannedTargets?.lock   // the plan's view: its deletions, adoptions and updates applied
    }

    /// The folder of the bucket a lock entry's path names (the manifest's, for `clean`).
    private func placed(_ file: String, bucketOf path: String) -> String {
        manifest.bucket(named: PathKey.bucket(of: path))?.path ?? (file as NSString).deletingLastPathComponent
    }

    /// The outputs today's manifest produces (`bucket/key`, `{hash}` names as the lock resolves
    /// them), those whose file the plan refuses (edited since) included: the only lock lines
    /// `clean` may act on without a state (each still digest-checked at removal). Empty when no
    /// plan can be made: then nothing is removed on the lock's word.
    static func producedOutputs(_ plan: Plan) -> PathSet {
        PathSet(plan.items.filter { $0.kind != .delete }.map(\.output)).union(plan.erroredOutputs)
    }

    /// What `clean` says of a file adopted on a lock line's word that was not proven Derive's.
    static func unprovenLeft(_ file: String, reason: String) -> String {
        "\(file) is left in place: \(reason); Derive removes only files it can prove its own (remove it yourself if it is yours to remove)"
    }

    /// The records adopted from the lock unverified that `clean` may not remove (output → why):
    /// those whose file does not hold what their record's recipe renders (`Builder.proveAdopted`),
    /// every one without a renderer.
    func unprovenAdopted(_ records: [OutputRecord], planner: Planner, renderer: (() throws -> any DerivativeRenderer)?) throws -> PathDictionary<String> {
        guard !records.isEmpty else { return [:] }
        guard let renderer else { return PathDictionary(records.map { ($0.path, AdoptedProof.adopted + ", and was not rendered again to prove it Derive's") }, uniquingKeysWith: { a, _ in a }) }
        let found = Builder(planner: planner, manifestPath: manifestPath, renderer: try renderer(), options: BuildOptions(quiet: true)).proveAdopted(records)
        return PathDictionary(found.distrusted.map { ($0.output, $0.reason) }, uniquingKeysWith: { a, _ in a })
    }

    /// Without a state: the outputs a build would adopt from the lock whose file `clean` may not
    /// remove (output → why): rendered again (today's rule, whose action key the line gives), any
    /// that differs or cannot be rendered; every one without a renderer.
    func unprovenLockAdoptions(_ items: [PlanItem], planner: Planner, renderer: (() throws -> any DerivativeRenderer)?) throws -> PathDictionary<String> {
        guard !items.isEmpty else { return [:] }
        let lock = planner.display(lockPath)
        guard let renderer else { return PathDictionary(items.map { ($0.output, "only \(lock) vouches for it, and it was not rendered again to prove it Derive's") }, uniquingKeysWith: { a, _ in a }) }
        let found = Builder(planner: planner, manifestPath: manifestPath, renderer: try renderer(), options: BuildOptions(quiet: true)).verify(items)
        var unproven: PathDictionary<String> = [:]
        for mismatch in found.mismatches { unproven[mismatch.output] = "only \(lock) vouches for it, and it \(mismatch.message) (rendered again before removing it)" }
        for (output, message) in found.failures { unproven[output] = "only \(lock) vouches for it, and it \(message)" }
        return unproven
    }

    /// The first symbolic link on `path` below the bucket folder holding it, if any.
    private func linkOnPath(_ path: String) -> String? {
        for bucket in manifest.buckets {
            for folder in PathSet([bucket.path, RealFolder.of(bucket.path)]) where path.utf8.starts(with: (folder + "/").utf8) {
                if let link = SymbolicLinks.first(on: path, below: folder) { return link }
            }
        }
        // A folder no bucket names now (the bucket moved), replaced by a link: found from the project's folder.
        let project = RealFolder.of((lockPath as NSString).deletingLastPathComponent)
        return SymbolicLinks.first(on: path, below: project)
    }

    /// What `clean` says of a file at an output's recorded path that holds the recorded bytes but
    /// is not the file Derive installed, and no other manifest claims: left, the lock kept (exit 1).
    /// What `clean` says of a file another project's records claim: left in place. A claim of
    /// doubt names no owner (attack 51a's 8: the registry's path was named as the owning manifest).
    static func claimedLeft(_ file: String, other: ForeignClaims.Claim) -> String {
        if let doubt = other.doubt, other.ruleDoubtBeside != nil { return Planner.OrphanJudge.doubtMessage(file, doubt: doubt) }
        return other.doubt != nil ? other.leftInPlace(file) : "\(file) is an output of \(other.manifest) (\(other.reason)), not of this manifest; left in place"
    }

    static func restoredCopyLeft(_ file: String, lock: String) -> String {
        "\(file) holds exactly the bytes Derive recorded there but is not the file it installed (a restored copy: cp -a, git checkout, "
            + "a hard link, a folder swapped); left in place, and \(lock) is kept as its record: derive build records it as Derive's, then derive clean removes it"
    }

    /// What `clean` removed and what it left.
    public struct CleanReport {
        public var removed = 0
        /// Files left because they changed since Derive wrote them (warnings).
        public var left: [String] = []
        /// Outputs that could not be removed (a folder or a link now at a recorded path): exit 1.
        public var problems: [String] = []
        /// The lock was kept: it still vouches for outputs `clean` could not place or remove.
        public var keptLock = false
        /// A usable build state was there (not missing, nor moved aside as corrupt or another manifest's, nor
        /// one recording no output while the lock vouched for some: an empty state a refused build left).
        public var hadState = false
        /// Old indexes removed that only the lock recorded (no state), as displayed.
        public var removedControlFiles: [String] = []
        /// The `left` lines the lock keeps (files left in place that keep the ACL serve gave them:
        /// round 21's N1), sorted; each is named.
        public var leftLines: [LockFile.Left] = []
        /// The lock's `left` lines let go (the file is gone), with why.
        public var droppedLeft: [(path: String, why: String)] = []
        /// The lock was written back holding only `leftLines` (no output line).
        public var lockHoldsOnlyLeft = false
    }

    /// Removes the outputs Derive wrote (only files still holding the recorded bytes, in the folder
    /// they were written to, and the folders it created once empty), the index it wrote, the lock,
    /// and its own state files by name; the state folder only when that leaves it empty. Holds
    /// the build lock throughout. Without a usable state (fresh clone, removed or corrupt state,
    /// or one recording no output: a fresh clone's refused build made it) the lock's outputs are removed where their bytes still match it; the lock is deleted only
    /// when no output it vouches for is left. Every file left in place that needs it keeps its
    /// `left` line (`CleanLeftLines`): the lock is then written back holding only those.
    /// `renderer`: renders the outputs adopted from the lock unverified (marked in the state, or
    /// ones a fresh clone's build would adopt) again before their files are removed: only a file
    /// holding exactly what Derive renders is removed (nil: none is, each is left in place).
    public func clean(renderer: (() throws -> any DerivativeRenderer)? = nil) throws -> CleanReport {
        let held = try BuildLock(folder: manifest.stateFolder, manifest: manifestPath)
        defer { withExtendedLifetime(held) {} }   // until the state files are gone
        try held.refuseUnwritable("clean")
        // A link, FIFO or folder at the lock path is never read, followed or removed (attack round
        // 26: clean deleted a FIFO there, and read another project's lock through a link to remove
        // outputs by its lines, where build refuses the link). Nothing is removed.
        let stateExisted = FileManager.default.fileExists(atPath: manifest.stateFolder + "/" + StateStore.fileName)
        if let refusal = unwritableLock(planner: try planner(), ancestors: false) {
            throw PlanError(message: refusal + "; derive clean removed nothing")
        }
        let store = try self.store()
        let planner = try self.planner()
        let removal = OutputRemoval(planner: planner)
        // What a killed `clean`, `release` or build left while writing the lock (noted as pending).
        try Builder.removeLockTemporaries(lockPath, manifestName: planner.manifestName, disk: planner.disk, store: store)
        // What a killed `clean` (or build) left of the outputs and indexes the state records,
        // while the state still proves them Derive's (attack 39a's F7).
        var indexes: PathDictionary<String?> = [:]
        for (path, digest) in try store.controlFiles() { indexes[path] = digest }
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket), indexes[bucket.path + "/" + index.path] == nil {
            indexes[bucket.path + "/" + index.path] = .some(nil)
        }
        try Builder.removeRecordedTemporaries(Array(try store.allOutputs().values), indexes: indexes, planner: planner)
        var report = CleanReport()
        report.hadState = stateExisted && store.movedAside == nil
        // A renamed manifest's lock (and state) are not this manifest's to remove: named, with the way on (attack 41a's B7).
        for gone in ForeignClaims.goneManifestLocks(owner: Self.ownerName(manifestPath)) {
            report.left.append("\(planner.display(gone.lock)) is the lock of \(planner.display(gone.manifest)), which is no longer there; kept with what it records: "
                               + "if this manifest is that one renamed, set \(gone.takeOver) in it and run derive clean again")
        }
        let recorded = try store.allOutputs()
        var leaving = CleanLeftLines(planner: planner, recorded: recorded)
        // Sources and control files of the manifest are never removed, whatever names them.
        let protected = WantedIdentities(planner.protectedFiles(sources: planner.listedSources()))
        // Files adopted on a lock line's word are removed only once proven Derive's (issue 13's finding 1).
        let unproven = try unprovenAdopted(recorded.values.filter { AdoptedProof.needsProof($0, digests: planner.digests) }, planner: planner, renderer: renderer)
        let judge = Planner.OrphanJudge(planner, keeping: protected, many: recorded.count > 1)
        // What the manifest produces now, planned only when a file is in doubt (`stillProduced`).
        var producedNow: PathSet?
        let stillProduced = { (output: String) -> Bool in
            if producedNow == nil { producedNow = (try? planner.plan()).map(Self.producedOutputs) ?? [] }
            return producedNow?.contains(output) ?? false
        }
        judge.stillProduced = stillProduced
        let notes = try store.pendingNotes(), pending = notes.mapValues(\.digest)
        var claimed: ForeignClaimLookup?
        var renamedFolders = RenamedBucketFolders()
        // This manifest's own lock, while the state is its own too (the lock and the state agree on
        // the owner): a line's bytes at its output's path are Derive's record as much as the
        // state's (an older state restored: attack 50c's M3).
        let ownLock: LockFile? = store.movedAside == nil ? (try? planner.disk.read(lockPath)).flatMap { data in
            LockFile.isOurs(data, manifest: planner.manifestName, lockPath: planner.lockPath) ? LockFile.parse(String(decoding: data, as: UTF8.self)) : nil
        } : nil
        for recordedOutput in recorded.values.sorted(by: { PathKey.ordered($0.path, $1.path) }) {
            // A file a killed build installed over this output's (a restyle) and never recorded:
            // Derive's while it holds the bytes the build noted (attack 39a's finding 4: left as
            // "not the file Derive wrote", with the state and the lock gone, so no record was left).
            let installed = Planner.installedByKilledBuild(recordedOutput, pending: pending, digests: planner.digests)
            let record = installed ?? recordedOutput
            // Never followed: the output is left, named, and the lock kept as its record (exit 1).
            if !record.folder.isEmpty, let link = SymbolicLinks.first(on: record.file, from: record.folder) {
                report.keptLock = true
                report.problems.append("\(planner.display(record.file)) leads through a symbolic link (\(planner.display(link))), which Derive does not follow; left in place, and \(planner.display(lockPath)) is kept as its record")
                continue
            }
            if let reason = unproven[record.path] {
                let message = Self.unprovenLeft(planner.display(record.file), reason: reason)
                report.left.append(message)
                leaving.leaveOutput(record, file: record.file, message: message)
                continue
            }
            do {
                // Judged as the record the killed build would have made: its bytes, and the file it
                // noted (device and inode; none in an older Derive's note).
                switch try removal.removal(record, judge: judge, identity: installed == nil ? nil : .some(notes[record.file]?.identity)) {
                case .removed: report.removed += 1
                case .forgotten:
                    // Gone from its path because the bucket's folder was renamed (`mv out out.bak`,
                    // the same folder by device and inode) with Derive's file still in it: named,
                    // and the lock kept as its record (attack 41a's B9, bak.sh).
                    if let moved = try renamedFolders.folder(of: record, store: store) {
                        let there = moved + String(record.file.dropFirst(record.folder.count))
                        if FileIdentity.ofRegularFile(there, holding: record.outputDigest) != nil {
                            report.keptLock = true
                            report.problems.append("\(planner.display(record.file)) is not at its path: the folder of bucket '\(record.bucket)', \(planner.display(record.folder)), "
                                + "was renamed \(planner.display(moved)) (the same folder, by device and inode), and Derive's file is there; left in place, and "
                                + "\(planner.display(lockPath)) is kept as its record (move the folder back and run derive clean to remove it, or remove it yourself)")
                        }
                    }
                case .kept:
                    // Another manifest's state records the very file as the one it installed: named.
                    if let owner = planner.installedElsewhere?(record.file) {
                        report.left.append(OrphanFate.installedElsewhereMessage(planner.display(record.file), owner: owner))
                    }
                case .left(let file, _) where PathKey.same(file, record.file)
                        && FileIdentity.ofRegularFile(file, holding: record.outputDigest) != nil:
                    // The recorded bytes at the recorded path, in another file than the one Derive
                    // installed (a restored copy, a folder swapped): another manifest's output when
                    // its state records it there (then it is that manifest's), else Derive's output
                    // restored, which the next build records. Its record is never dropped here:
                    // the lock is kept as its record and `clean` exits 1 (attack 41a's B8, B12, B5).
                    // Another manifest beside this one, a project in another folder, or one whose
                    // manifest is gone, below this folder or inside a bucket (issue #9).
                    if claimed == nil { claimed = foreignClaims() }
                    if let other = claimed?.claimant(of: file, output: record.path) {
                        let message = Self.claimedLeft(planner.display(file), other: other)
                        report.left.append(message)
                        leaving.leaveOutput(record, file: file, message: message)
                    } else if !stillProduced(record.path), let doubt = planner.neighbourLockDoubt?(file) ?? planner.neighbourDoubt?(file) {
                        // A neighbour may own it (its lock or rule names it): in doubt, as the build
                        // leaves it; never "a restored copy" whose advice comes back here (attack 50b's L3).
                        let message = Planner.OrphanJudge.doubtMessage(planner.display(file), doubt: doubt)
                        report.left.append(message)
                        leaving.leaveOutput(record, file: file, message: message)
                    } else {
                        report.keptLock = true
                        report.problems.append(Self.restoredCopyLeft(planner.display(file), lock: planner.display(lockPath)))
                    }
                case .left(let file, let message) where PathKey.same(file, record.file) && ownLock?.entries[record.path].map({ entry in
                        entry.digest != record.outputDigest && FileIdentity.ofRegularFile(file, holding: entry.digest) != nil }) == true:
                    // The bytes this manifest's lock lists there, not the ones its (older, restored)
                    // state records: Derive's, removed while the open file holds them, unless another
                    // manifest claims the file. Never left with the lock gone (attack 50c's M3: clean
                    // removed the lock, their only record, and every later build refused them).
                    let digest = ownLock?.entries[record.path]?.digest ?? ""
                    if claimed == nil { claimed = foreignClaims() }
                    if let other = claimed?.claimant(of: file, output: record.path) {
                        let message = Self.claimedLeft(planner.display(file), other: other)
                        report.left.append(message)
                        leaving.leaveOutput(record, file: file, message: message)
                    } else if try planner.disk.remove(file, ifDigest: digest) {
                        report.removed += 1
                        try store.removeFiles([file])
                        try Builder.removeCreatedFolders(above: file, inside: record.folder, disk: planner.disk, store: store, foreign: planner.foreignProjects)
                    } else {
                        report.keptLock = true
                        report.problems.append("\(message); \(planner.display(lockPath)) is kept as its record")
                    }
                case .left(let file, let message), .unproven(let file, let message):
                    report.left.append(message)
                    leaving.leaveOutput(record, file: file, message: message)
                case .deferred(_, let message):
                    // Never followed: the output is left, and the lock kept as its record (exit 1).
                    report.keptLock = true
                    // The state goes with `clean`: the lock is what keeps its record (attack 36c's L5).
                    report.problems.append(message + "; \(planner.display(lockPath)) is kept as its record")
                }
            } catch {
                // Derive's file stays (the system refused: an immutable file, a read-only mount…):
                // the state goes with `clean`, so the lock is kept as its record (attack 38a's M1).
                report.keptLock = true
                let why = (error as? DiskError)?.refusal.map { ": \($0)" } ?? " (\(error))"
                report.problems.append("\(planner.display(record.file)) could not be removed\(why); left in place, and \(planner.display(lockPath)) is kept as its record")
            }
        }
        // Files a killed build moved into place and never recorded (`Planner.uncommittedOutputs`):
        // removed while each is the file it noted with the bytes it noted, else left and named.
        let uncommitted = try planner.uncommittedOutputs(pending: notes, recorded: recorded, produced: [], elsewhere: true)
        let uncommittedJudge = Planner.OrphanJudge(planner, keeping: protected, many: uncommitted.count > 1)
        for (_, found) in uncommitted.sortedByKey() {
            let record = found.record
            do {
                switch try removal.removal(record, judge: uncommittedJudge, identity: .some(found.identity)) {
                case .removed: report.removed += 1
                case .forgotten, .kept: break
                case .left(let file, let message) where notes[file + Planner.displacedNoteSuffix] != nil && FileKind.isRegularFile(file):
                    // A killed build was replacing a file of Derive's there: what is there now may
                    // be Derive's, and the state goes with `clean`, so the lock is kept as its record.
                    report.keptLock = true
                    report.problems.append(message + "; \(planner.display(lockPath)) is kept as its record")
                case .left(_, let message), .unproven(_, let message): report.left.append(message)
                case .deferred(_, let message): report.problems.append(message)
                }
            } catch {
                report.problems.append("\(planner.display(record.file)) could not be removed (\(error)); left in place")
            }
        }
        // Records leading outside their bucket and the manifest's folder: named, nothing removed there.
        let ignoredOutputs = try store.ignoredOutputs()
        var ignored = ignoredOutputs
        for (path, why) in try store.ignoredControlFiles() where ignored[path] == nil { ignored[path] = why }
        for (path, why) in ignored.sortedByKey() {
            report.left.append("\(planner.display(path)): in the build state but \(why); the record is ignored (nothing is read or removed there)")
        }
        // The outputs those rows stood for are still in the bucket: the lock stays as their record
        // (the next clean, with no state, removes them there by it; a build adopts them).
        if !ignoredOutputs.isEmpty, let lockData = try? planner.disk.read(lockPath), LockFile.isOurs(lockData, manifest: planner.manifestName, lockPath: planner.lockPath) {
            report.keptLock = true
            report.left.append("\(planner.display(lockPath)) is kept: the build state's records of \(ignoredOutputs.count) output\(ignoredOutputs.count == 1 ? "" : "s") were ignored, so the lock is their record (run derive clean again to remove them where the lock places them)")
        }
        let lockData = try? planner.disk.read(lockPath)
        if let lockData, LockFile.isOurs(lockData, manifest: planner.manifestName, lockPath: planner.lockPath) {
            if !recorded.isEmpty || !ignoredOutputs.isEmpty {
                // A state of this manifest recording outputs says what Derive wrote: the lock adds
                // nothing to delete. One recording none (a fresh clone whose first build was
                // refused left it) is no record: the lock is, as for `plan` and `build` (round 25's F5).
            } else if let lock = LockFile.parse(String(decoding: lockData, as: UTF8.self)) {
                // Outputs the lock vouches for that the state does not record: removed only at paths
                // today's manifest writes (the outputs a build adopts) and only if their bytes still
                // match the line, unless another manifest's state records the file (a copied
                // project). Any other line is named and its file left: without a state, Derive
                // deletes nothing on the lock's word (attack 16's H2, V7).
                // A state that records none of them (a fresh clone's refused build made it) was no
                // usable state: the last line does not call it "the build state" (issue #9).
                if !lock.entries.isEmpty { report.hadState = false }
                let claims = foreignClaims()
                let database = store.folder + "/" + StateStore.fileName
                let produced = try? planner.plan()
                let wanted = produced.map(Self.producedOutputs) ?? []
                // The files a build would adopt on their lines' word: removed only once proven Derive's.
                let adoptions = (produced?.items ?? []).filter { $0.adopted != nil && recorded[$0.output] == nil }
                let lockUnproven = try unprovenLockAdoptions(adoptions, planner: planner, renderer: renderer)
                let adopted = PathSet(adoptions.map(\.output))
                let lockName = planner.display(lockPath)
                // The files of lines a build would not adopt are removed only on git's proof: asked about at once.
                planner.gitProof.prefetch(lock.entries.values.filter { recorded[$0.path] == nil && !adopted.contains($0.path) }
                    .compactMap { entry in if case .success(let placed?) = LockFile.place(entry.path, in: manifest) { placed.file } else { nil } })
                for entry in lock.entries.values.sorted(by: { PathKey.ordered($0.path, $1.path) }) where recorded[entry.path] == nil {
                    let file: String, bucket: Bucket
                    switch LockFile.place(entry.path, in: manifest) {
                    case .failure(let problem):
                        report.left.append("\(lockName) lists \(entry.path), but \(problem); nothing is removed for it")
                        continue
                    case .success(nil):
                        report.left.append("\(entry.path)  left: in \(lockName), but its bucket '\(PathKey.bucket(of: entry.path))' is no longer in the manifest; "
                                           + "Derive deletes nothing on the lock's word — remove the file yourself if it is yours to remove")
                        leaving.leaveLockOnly(entry.path, changed: false)
                        continue
                    case .success(let placed?):
                        (file, bucket) = (placed.file, placed.bucket)
                    }
                    if protected.contains(file) {
                        report.left.append("\(planner.display(file)) is listed in \(lockName) but is a source or control file of this manifest; left in place")
                        continue
                    }
                    // The lock was written for another folder of this bucket (re-pointed since): its
                    // line says nothing of the file here, a copy of the user's as likely as not (attack 37b's F6).
                    if let written = LockProvenance.movedFrom(bucket: bucket.name, folder: bucket.path, lockPath: lockPath, forState: database) {
                        if planner.disk.exists(file) {
                            report.left.append(Self.repointedLeft(file, bucket: bucket, written: written, lock: lockName, display: planner.display))
                            leaving.leaveLockOnly(entry.path, changed: (try? planner.digests.content(of: file))?.digest != entry.digest)
                        }
                        // The file the line stands for is in the folder the lock was written for,
                        // no bucket now: left there, so the lock stays as its only record, and it
                        // is named (attack 39a's F2: clean removed the lock, and a build with the
                        // bucket pointed back refused Derive's own file).
                        let old = written + "/" + PathKey.key(of: entry.path)
                        if FileIdentity.anythingAt(old) {
                            report.keptLock = true
                            report.left.append(Self.leftInWrittenFolder(old, bucket: bucket, written: written, lock: lockName, display: planner.display))
                        }
                        continue
                    }
                    guard wanted.contains(entry.path) else {
                        if planner.disk.exists(file) || SymbolicLinks.first(on: file, below: placed(file, bucketOf: entry.path)) != nil {
                            let changed = (try? planner.digests.content(of: file))?.digest != entry.digest
                            // Said as the plan says it: in doubt, or another manifest's now, which
                            // keeps it and no `left` line of this one (attack 50b's M2).
                            let planned = produced?.lockLeft.first { PathKey.same($0.output, entry.path) }
                            report.left.append("\(entry.path)  " + (planned?.message ?? LockLeft.leftMessage(lock: lockName, changed: changed)))
                            if planned?.present ?? true { leaving.leaveLockOnly(entry.path, changed: changed) }
                        }
                        continue
                    }
                    if let other = claims.claimant(of: file, output: entry.path) {
                        report.left.append(Self.claimedLeft(planner.display(file), other: other))
                        continue
                    }
                    if let link = SymbolicLinks.first(on: file, below: placed(file, bucketOf: entry.path)) {
                        report.keptLock = true
                        report.problems.append("\(planner.display(file)) leads through a symbolic link (\(planner.display(link))), which Derive does not follow; left in place, and \(lockName) is kept as its record")
                        continue
                    }
                    // The digest alone is the clone's word: the file's header must give the line's
                    // format, width and height too (attack 17's N1 C), or the file is left.
                    if let content = try? planner.digests.content(of: file), content.digest == entry.digest,
                       !Planner.headerAgrees(entry, content: content, imagesOnly: planner.identity.refusesNonImages) {
                        let header = Planner.measured(entry, content: content, size: entry.bytes, imagesOnly: planner.identity.refusesNonImages)
                            .map { "\($0.width)x\($0.height) \($0.format)" } ?? "no readable image header"
                        report.left.append("\(planner.display(file)) has the digest \(lockName) gives, but its header says \(header), the line \(entry.width)x\(entry.height) \(entry.format): "
                                           + "left in place (without a build state Derive removes a file only when its header and digest are its lock line's)")
                        leaving.leaveLockOnly(entry.path, changed: false)
                        continue
                    }
                    // A line a build would not adopt (another action key: stale, or forged) is the
                    // lock's word alone: its file is removed only when git holds it as it is at HEAD,
                    // or the lock is the one this user's Derive last wrote for this state (the proof
                    // the plan and the build take: attack 59b's F1, clean alone called such files
                    // unproven). Left, the lock is kept as their record: it was removed, and every
                    // later build refused Derive's own files.
                    if !adopted.contains(entry.path), let content = try? planner.digests.content(of: file), content.digest == entry.digest,
                       !planner.lockIsOwnRecord, !planner.gitProof.proves(file, digest: content.digest) {
                        report.keptLock = true
                        report.problems.append("\(planner.display(file)) is listed in \(lockName) under another recipe, and nothing proves it Derive's "
                                               + "(\(planner.gitProof.whyUnproven(file))): left in place, and \(lockName) is kept as its record")
                        continue
                    }
                    if let reason = lockUnproven[entry.path] {
                        report.left.append(Self.unprovenLeft(planner.display(file), reason: reason))
                        leaving.leaveLockOnly(entry.path, changed: false)
                        continue
                    }
                    let existed = planner.disk.exists(file)
                    do {
                        if try planner.disk.remove(file, ifDigest: entry.digest) {
                            if existed { report.removed += 1; try store.removeFiles([file]) }
                        } else {
                            report.left.append("\(planner.display(file)) was changed since Derive wrote it; left in place")
                            leaving.leaveLockOnly(entry.path, changed: true)
                        }
                    } catch {
                        report.keptLock = true
                        report.problems.append("\(planner.display(file)) could not be removed (\(error)); left in place")
                    }
                }
            } else if recorded.isEmpty {
                report.keptLock = true
                report.left.append("\(planner.display(lockPath)) is not a valid lock and no state records the outputs; it is kept so they are not orphaned")
            }
        }
        var controlIdentities = try store.controlFileIdentities()
        let currentIndex = manifest.index.flatMap { index in manifest.bucket(named: index.bucket).map { $0.path + "/" + index.path } }
        var controls = try store.controlFiles()
        // Derive's index where its bucket's folder took it (folders swapped on disk: attack 40a's
        // A8): removed as the record's file, while it is that file with those bytes.
        let folders = manifest.buckets.map { RealFolder.of($0.path) }
        for (path, digest) in controls.sortedByKey() {
            guard let moved = try store.movedWithBucketFolder(path, identity: controlIdentities[path] ?? nil, into: folders),
                  controls[moved] == nil else { continue }
            controls[moved] = digest
            controlIdentities[moved] = controlIdentities[path] ?? nil
        }
        for (path, digest) in controls.sortedByKey() {
            // The file Derive wrote (device and inode) is required; a record from before they were
            // kept is trusted only at the index's path now (which a build writes anyway), never
            // at another path the record alone names (attack 17's N7).
            let identity = controlIdentities[path] ?? nil
            let isCurrent = currentIndex.map { PathKey.same(path, $0) || PathKey.same(path, ControlFileTargets.recordKey($0)) } ?? false
            if identity == nil, !isCurrent {
                if planner.disk.exists(path) {
                    report.left.append("\(planner.display(path)) " + ControlFileTargets.unprovenOldIndexReason)
                    leaving.leaveOldIndex(path)
                }
                continue
            }
            if let link = linkOnPath((path as NSString).deletingLastPathComponent) {
                // Derive's index may be behind a linked folder: not removed through it, and said (exit 1,
                // as for outputs). A link at the index path itself is the user's: kept below, exit 0.
                report.problems.append("\(planner.display(path)) leads through a symbolic link (\(planner.display(link))), which Derive does not follow; the index there is left in place")
                continue
            }
            do {
                var removed = try planner.disk.remove(path, ifDigest: digest, identity: identity)
                // The index a killed build wrote there and never recorded: Derive's while it holds
                // exactly the bytes that build noted writing (checked on the open file as it goes).
                if !removed, let noted = notes[path]?.digest, !noted.isEmpty, noted != digest, FileKind.isRegularFile(path) {
                    removed = try planner.disk.remove(path, ifDigest: noted, identity: nil)
                }
                // The index this manifest's own lock records (its digest), at the index's path, where the
                // state records other bytes (an older state restored: attack 50c's M3): the lock is the
                // newer word, so the file holding its bytes is Derive's, unless another manifest claims it.
                // Not where the state records the lock's very bytes: a file holding them that is not the
                // one Derive wrote is a copy (a user's, in a folder made by hand: NeighbourOwnershipRound41).
                if !removed, isCurrent, let recordedIndex = ownLock?.index, recordedIndex.digest != digest,
                   case .success(let placed?) = LockFile.place(recordedIndex.path, in: manifest),
                   PathKey.same(placed.file, path), FileIdentity.ofRegularFile(path, holding: recordedIndex.digest) != nil, foreignClaims().index(path) == nil {
                    if try planner.disk.remove(path, ifDigest: recordedIndex.digest, identity: nil) {
                        try Builder.removeCreatedFolders(above: path, disk: planner.disk, store: store, foreign: planner.foreignProjects)
                    } else {
                        report.keptLock = true
                        report.problems.append("\(planner.display(path)) holds the index \(planner.display(lockPath)) records and could not be removed; left in place, and \(planner.display(lockPath)) is kept as its record")
                    }
                    continue
                }
                if !removed {
                    report.left.append("\(planner.display(path)) was changed since Derive wrote it as the index (or replaced: its bytes, or its device and inode, are not the ones recorded); left in place")
                    // The index's own path keeps the index's ACL without a line; an old one does not.
                    if !isCurrent { leaving.leaveOldIndex(path) }
                } else {
                    try Builder.removeCreatedFolders(above: path, disk: planner.disk, store: store, foreign: planner.foreignProjects)
                }
            } catch where !FileKind.isRegularFile(path) {
                // A user's link (or folder) where Derive wrote the index: not Derive's file; kept, and said.
                report.left.append("\(planner.display(path)) is not the file Derive wrote as the index (\(FileKind.describe(path))); left in place")
            } catch let error as DiskError where error.refusal != nil {
                // Derive's index stays: the lock is kept, so the next build knows it as Derive's.
                report.keptLock = true
                report.problems.append("\(planner.display(path)) could not be removed: \(error.refusal ?? ""); the index is left in place, and \(planner.display(lockPath)) is kept as its record")
            } catch {
                report.problems.append("\(planner.display(path)) could not be removed (\(error)); left in place")
            }
        }
        if !store.existed, try store.controlFiles().isEmpty, let lockData, LockFile.isOurs(lockData, manifest: planner.manifestName, lockPath: planner.lockPath),
           let recorded = LockFile.parse(String(decoding: lockData, as: UTF8.self))?.index,
           case .success(let placed?) = LockFile.place(recorded.path, in: manifest),
           !PathKey.same(placed.file, manifest.index.flatMap({ index in manifest.bucket(named: index.bucket).map { $0.path + "/" + index.path } }) ?? ""),
           planner.disk.exists(placed.file) {
            // No state: the index the lock records at another path (`index:` moved) is kept and
            // named: only that untrusted line says Derive wrote it (a user's copy has its bytes).
            let file = placed.file
            if protected.contains(file) {
                report.left.append("\(planner.display(file)) is named as the index in \(planner.display(lockPath)) but is a source or control file of this manifest; left in place")
            } else if let other = foreignClaims().index(file) {
                report.left.append("\(planner.display(file)) is the index of \(other.manifest) (\(other.reason)), not of this manifest; left in place")
            } else if !FileKind.isRegularFile(file) {
                report.left.append("\(planner.display(file)) is not the file Derive wrote as the index (\(FileKind.describe(file))); left in place")
            } else {
                let holdsIndex = ControlFileTargets.isDerivesOldIndex(file, recordedPath: recorded.path, planner: planner)
                report.left.append("\(planner.display(file)) " + ControlFileTargets.lockOnlyOldIndexKept(file, holdsIndex: holdsIndex, lock: planner.display(lockPath), display: planner.display))
                leaving.leaveOldIndex(file)
            }
        }
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket), try store.controlFiles().isEmpty,
           let data = Self.lockedIndex(bucket.path + "/" + index.path, planner: planner, lockData: lockData) {
            // An index without a record (no usable state): every way it is kept is said, never silent.
            let file = bucket.path + "/" + index.path
            let lock = lockData.flatMap { LockFile.parse(String(decoding: $0, as: UTF8.self)) }
            if report.keptLock {
                report.left.append("\(planner.display(file)) is kept with \(planner.display(lockPath)): both list outputs clean could not place or remove")
            } else if lock != nil, let written = LockProvenance.movedFrom(bucket: bucket.name, folder: bucket.path, lockPath: lockPath,
                                                                          forState: store.folder + "/" + StateStore.fileName) {
                report.left.append(Self.repointedLeft(file, bucket: bucket, written: written, lock: planner.display(lockPath), display: planner.display))
            } else if let noted = try store.pendingWrites()[Builder.displacedKey(file)], noted == ContentDigests.digest(data) {
                // The index a recovering build noted as Derive's before it wrote the lock, killed
                // before it replaced it (attack 39c's N3): removed while it still holds those bytes.
                _ = try planner.disk.remove(file, ifDigest: noted)
            } else if let lock, IndexAdoption.isDerives(data, lock: lock, manifest: manifest, indexBucket: index.bucket) {
                // What Derive writes for the lock, unless another manifest's state records it (a copied project).
                if let other = foreignClaims().index(file) {
                    report.left.append("\(planner.display(file)) is the index of \(other.manifest) (\(other.reason)), not of this manifest; left in place")
                } else {
                    _ = try planner.disk.remove(file, ifDigest: ContentDigests.digest(data))
                }
            } else if lock != nil {
                report.left.append("\(planner.display(file)) does not hold what Derive writes for \(planner.display(lockPath)) (edited, or not Derive's file); left in place")
            } else {
                report.left.append("\(planner.display(file)) is not known to be Derive's (no build state records it, no lock vouches for it); left in place")
            }
        }
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket), try store.controlFiles().isEmpty,
           let size = planner.disk.stat(bucket.path + "/" + index.path)?.size,
           size > Int64(IndexAdoption.maxBytes(outputs: 0)), Self.lockedIndex(bucket.path + "/" + index.path, planner: planner, lockData: lockData) == nil {
            // Not read (an index of the lock's outputs is never that large): kept, and said.
            report.left.append("\(planner.display(bucket.path + "/" + index.path)) is larger than any index Derive writes for \(planner.display(lockPath)) (\(size) bytes), or is not the index it records; left in place")
        }
        // Files left in place keep their `left` lines: the lock is never removed while it holds one
        // whose file is there; it is written back holding only those (round 21's N1).
        let left = leaving.lines()
        report.droppedLeft = left.dropped
        if let lockData, !LockFile.isOurs(lockData, manifest: planner.manifestName, lockPath: planner.lockPath) {
            report.left.append(LockFile.notOursMessage(planner.display(lockPath), data: lockData, manifest: planner.manifestName, lockPath: planner.lockPath))
        } else if report.keptLock {
            // Kept as the record of outputs clean could not remove: with the lines of the files left too.
            if let lockData, let lock = LockFile.parse(String(decoding: lockData, as: UTF8.self)) {
                let kept = LockFile(entries: Array(lock.entries.values), manifest: lock.manifest, index: lock.index, left: Array(left.kept.values))
                if Data(kept.text.utf8) != lockData {
                    try Builder.rewriteLock(Data(kept.text.utf8), to: lockPath, replacing: lockData, disk: planner.disk, store: store, manifest: planner.manifest)
                }
                report.leftLines = kept.left.sortedByKey().map(\.value)
            }
        } else if !left.kept.isEmpty {
            let lines = left.kept.sortedByKey().map(\.value)
            let text = LockFile.text(sorted: [], manifest: planner.manifestName, left: lines)
            if Data(text.utf8) != lockData {
                try Builder.rewriteLock(Data(text.utf8), to: lockPath, replacing: lockData, disk: planner.disk, store: store, manifest: planner.manifest)
            }
            report.leftLines = lines
            report.lockHoldsOnlyLeft = true
        } else {
            try planner.disk.remove(lockPath)
            // And the folders Derive made for it, once empty (never recursive).
            try Builder.removeCreatedFolders(above: lockPath, disk: planner.disk, store: store, foreign: planner.foreignProjects)
        }
        // A lock an earlier build wrote at another path (`lock:` moved since) goes as a build removes it.
        for (path, written) in try store.lockFiles().sortedByKey() where !OldLock.isCurrent(path, lockPath: lockPath) {
            if let left = try OldLock.remove(path, written: written, disk: planner.disk, store: store, foreign: planner.foreignProjects, display: planner.display).left {
                report.left.append(left)
            }
        }
        // derive serve's uploads in progress, render cache and appendable record, by their shapes.
        report.left += ServeStateCleanup.remove(in: manifest.stateFolder, md5: ContentDigests.md5)
        // The `{hash}` renders an interrupted build kept: each only when sealed as this user's
        // Derive's (a file named like one in `state: .` is the user's: kept and named).
        let keptRenders = BuildRenderCache.removeFolder(inStateFolder: manifest.stateFolder, seals: store.seals)
        if !keptRenders.isEmpty {
            let folder = manifest.stateFolder + "/" + StateFiles.buildRenders   // as serve's lines: the state folder's line refers to it
            report.left.append("\(folder) is kept: it holds \(ServeStateCleanup.names(keptRenders)), which \(keptRenders.count == 1 ? "is not a render" : "are not renders") "
                               + "Derive kept (none holds its seal under your secret); clean removes only its own: move \(keptRenders.count == 1 ? "it" : "them") if \(keptRenders.count == 1 ? "it is" : "they are") yours")
        }
        for name in StateFiles.files where name != StateFiles.clockStamp {
            _ = unlink(manifest.stateFolder + "/" + name)
        }
        if let kept = Self.removeClockStamp(in: manifest.stateFolder) { report.left.append(kept) }
        // Only the folders Derive made on the way to the state (`.derive/` too), once empty (attack 37b's F9).
        var made = StateFolderMade.removeEmpty(stateFolder: manifest.stateFolder)
        // The default state folder, `.derive/<stem>` beside the manifest, that no note says Derive
        // made (made by `derive serve` before any build, or by a Derive from before the note:
        // round 39): a place of Derive's own, which held its state. Removed once empty (`rmdir`,
        // never recursively), and `.derive` with it when that is empty too; a user's file there
        // keeps it (named below). A folder `state:` names elsewhere stays the user's.
        if !made, Self.isDefaultStateFolder(manifest.stateFolder, manifestPath: manifestPath), rmdir(manifest.stateFolder) == 0 {
            made = true
            _ = rmdir((manifest.stateFolder as NSString).deletingLastPathComponent)
        }
        // A `state:` symbolic link to the folder is left, as the user's, and its files are named the same.
        if let names = try? FileManager.default.contentsOfDirectory(atPath: manifest.stateFolder) {
            if !names.isEmpty {
                // Kept, and said why for each entry: what is left there is not a state file clean
                // removes by name (serve's headers, a state moved aside, a user's file in a shared folder).
                report.left.append(CleanKeptState.message(folder: manifest.stateFolder, display: planner.display(manifest.stateFolder),
                                                          names: names, above: report.left + report.problems))
            } else if !made {
                report.left.append(CleanKeptState.notMadeMessage(display: planner.display(manifest.stateFolder)))
            }
        }
        return report
    }
}

extension BuildSession {
    /// Whether `folder` is a manifest's default state folder, `.derive/<stem>` beside it (by
    /// real path: a `state:` naming that very place is the same), and a folder itself, not a link.
    static func isDefaultStateFolder(_ folder: String, manifestPath: String) -> Bool {
        let manifest = URL(literalFilePath: manifestPath)
        let place = RealFolder.of(manifest.deletingLastPathComponent().path) + "/.derive/" + manifest.deletingPathExtension().lastPathComponent
        return !FileIdentity.isSymbolicLink(folder) && RealFolder.of(folder) == place
    }

    /// A file only the lock names, in a bucket re-pointed since the lock was written (`LockProvenance.movedFrom`): left.
    static func repointedLeft(_ file: String, bucket: Bucket, written: String, lock: String, display: (String) -> String) -> String {
        "\(display(file)) is left in place: \(lock) was written for \(display(written)) (bucket '\(bucket.name)'), and the bucket is now \(display(RealFolder.of(bucket.path))), "
            + "another folder, where Derive never wrote (no build state says otherwise); Derive deletes nothing there on the lock's word — remove it yourself if it is yours to remove"
    }

    /// A file a lock line places in the folder the lock was written for (`written`), which its
    /// bucket no longer points at: Derive's output as far as the lock says, left where it is.
    static func leftInWrittenFolder(_ file: String, bucket: Bucket, written: String, lock: String, display: (String) -> String) -> String {
        "\(display(file)) is left in place: \(lock) was written for \(display(written)) (bucket '\(bucket.name)' then), where Derive wrote it, and the bucket is now "
            + "\(display(RealFolder.of(bucket.path))); \(lock) is kept as its record (point the bucket back at \(display(written)) and run derive clean to remove it, "
            + "or remove it yourself)"
    }

    /// Removes the clock stamp from the state folder only when it is what Derive makes there: an
    /// empty regular file with one name (`FileSystemClock`). Anything else of that name (a user's
    /// notes with `state: .`, a link) is the user's: kept, and the message returned says so.
    static func removeClockStamp(in stateFolder: String) -> String? {
        guard let folder = try? ConfinedFolder(path: stateFolder), let key = try? ObjectKey(StateFiles.clockStamp),
              let kind = folder.kind(key) else { return nil }
        let path = stateFolder + "/" + StateFiles.clockStamp
        guard kind == .file else {
            return "\(path) is kept: it is \(ServeStateCleanup.describe(kind)), not the empty file Derive makes there; move it if it is yours"
        }
        var size: Int64 = 0
        let removed = (try? folder.removeFile(key) { fd in
            var info = stat()
            guard fstat(fd, &info) == 0 else { return false }
            size = Int64(info.st_size)
            return StateFiles.isClockStamp(info)
        }) ?? false
        guard !removed, folder.kind(key) != nil else { return nil }
        let what = size > 0 ? "holds \(size) bytes" : "has another name (a hard link)"
        return "\(path) is kept: Derive's clock stamp is an empty file with one name, and this one \(what), so it is yours; move it if you want the state folder removed"
    }
}

/// Stands in when there is nothing to render, so libvips is never loaded.
/// The renderer made on first use (the CLI's starts worker processes and libvips).
final class LazyRenderer: DerivativeRenderer, @unchecked Sendable {
    private let lock = NSLock()
    private let make: () -> any DerivativeRenderer
    private var made: (any DerivativeRenderer)?

    init(_ make: @escaping () -> any DerivativeRenderer) { self.make = make }

    private var current: any DerivativeRenderer {
        lock.withLock {
            if let made { return made }
            let renderer = make()
            made = renderer
            return renderer
        }
    }

    func render(_ source: Data, _ pipeline: ProcessLanguage.Pipeline, bucketPath: String) throws -> Rendered {
        try current.render(source, pipeline, bucketPath: bucketPath)
    }

    func memoryEstimate(_ source: Data) -> Int { current.memoryEstimate(source) }
    var maxSourceBytes: Int { current.maxSourceBytes }
    func sourceTooLarge(_ size: Int) -> any Error { current.sourceTooLarge(size) }
    func maxSourceBytes(_ pipeline: ProcessLanguage.Pipeline, bucketPath: String) throws -> Int {
        try current.maxSourceBytes(pipeline, bucketPath: bucketPath)
    }
    func sourceTooLarge(_ size: Int, name: String, pipeline: ProcessLanguage.Pipeline, bucketPath: String) -> any Error {
        current.sourceTooLarge(size, name: name, pipeline: pipeline, bucketPath: bucketPath)
    }
}

struct NothingToRender: DerivativeRenderer {
    func render(_ source: Data, _ pipeline: ProcessLanguage.Pipeline, bucketPath: String) throws -> Rendered {
        throw DiskError("nothing should be rendered")
    }
    func memoryEstimate(_ source: Data) -> Int { 0 }
}

extension BuildSession {
    /// The pictures of one source (`bucket/key`) from recorded outputs: what `derive html` prints.
    /// An animated source's pictures offer the formats that keep its frames first, as the index's do.
    public func pictures(of source: String, records: PathDictionary<OutputRecord>) -> [Picture] {
        let mine = records.values.filter { PathKey.same($0.source, source) }.sorted { PathKey.ordered($0.path, $1.path) }
        let animated = openedPlanner.map { planner in
            ControlFileTargets.sourceSizes(mine, manifest: manifest, digests: planner.digests, disk: planner.disk).values.contains(where: \.animated)
        } ?? false
        return Picture.sets(mine, manifest: manifest, animated: animated)
    }

    /// The pictures of one source as a build of `plan` would leave them recorded without
    /// rendering: the state's records and, in a fresh clone (no state), the lock's entries the
    /// plan adopts, so `html` answers there as it does after a no-op build.
    public func pictures(of source: String, plan: Plan) -> [Picture] {
        var records = plan.recorded
        if let digests = openedPlanner?.digests {
            for item in plan.adoptions where records[item.output] == nil {
                if let record = Builder.adoptedRecord(item, digests: digests, time: 0) { records[item.output] = record }
            }
        }
        return pictures(of: source, records: records)
    }
}

// MARK: derive release (round 22's V3)

extension BuildSession {
    /// What `derive release` did: each line released (placed in the manifest now) with the ACL
    /// its key takes now (nil: no bucket of the manifest holds its place, so nothing serves it);
    /// or, when any key was refused, why, and nothing was released.
    public struct ReleaseReport: Sendable {
        public var released: [(line: LockFile.Left, acl: BucketACL?)] = []
        public var refused: [String] = []
        /// The lock or the state that held the lines (`derive.lock`, `the build state`).
        public var from: [String] = []
        /// A build state was there (without one serve answers the keys of a bucket that rules
        /// write with `acl:` privately until a build: `BuiltOutputs`).
        public var hadState = false
    }

    /// `derive release KEY...`: the user's word that the files a build left in place at those
    /// keys (`bucket/key`: a `left` line of the lock or a record of the state's `leftFiles`,
    /// matched by key and by the file's place, gone or not) are theirs and may take their key's
    /// ACL. A file at a place only a private rule ever gave is otherwise never answered more
    /// publicly, whatever is written there (round 22's V3), and a line deleted from the lock
    /// alone comes back from the state (round 21's N2). The lines go from the lock (its other
    /// bytes kept) and from the state (when there is one: none is made) under the build lock,
    /// so a running serve answers the keys by their ACL at once and the next build keeps them
    /// out. Every key must have such a line: otherwise nothing is released.
    public func release(_ keys: [String]) throws -> ReleaseReport {
        let held = try BuildLock(folder: manifest.stateFolder, manifest: manifestPath)
        defer { withExtendedLifetime(held) {} }
        try held.refuseUnwritable("release")
        try refuseOversizedLock()
        var report = ReleaseReport()
        report.hadState = FileManager.default.fileExists(atPath: manifest.stateFolder + "/" + StateStore.fileName)
        let stateExists = FileManager.default.fileExists(atPath: manifest.stateFolder + "/" + StateStore.fileName)
        let store = stateExists ? try self.store() : nil
        let stateLines = try store?.leftFiles() ?? [:]
        let disk = stateExists ? try self.disk() : bucketDisk
        // What a killed `clean`, `release` or build left while writing the lock (noted as pending).
        if let store { try Builder.removeLockTemporaries(lockPath, manifestName: LockFile.ownerName(manifestPath: manifestPath, lockPath: lockPath), disk: disk, store: store) }
        let lockData = try? disk.read(lockPath)
        let lockName = (lockPath as NSString).lastPathComponent
        let ours = lockData.map { LockFile.isOurs($0, manifest: (manifestPath as NSString).lastPathComponent, lockPath: lockPath) } ?? false
        let lock = ours ? lockData.flatMap { LockFile.parse(String(decoding: $0, as: UTF8.self)) } : nil
        if let lockData, !ours {
            report.refused.append(LockFile.notOursMessage(lockName, data: lockData))
            return report
        }
        if lockData != nil, lock == nil, store == nil {
            report.refused.append("\(lockName) is not a valid lock and there is no build state: its left lines cannot be read; run derive build first")
            return report
        }
        // Each line under the key it has in the manifest now, and its place.
        let lockLines = (lock?.left.sortedByKey().map(\.value) ?? []).map { (line: $0, placed: LockFile.located($0, in: manifest)) }
        let recorded = stateLines.sorted { $0.key < $1.key }.map { (place: $0.key, placed: LockFile.located($0.value, in: manifest, placed: true)) }
        var lockPaths = PathSet()
        var statePlaces = Set<String>()
        var released: [String: LockFile.Left] = [:]
        for key in keys {
            let place = PathKey.split(key).flatMap { split in manifest.bucket(named: split.bucket).map { LockFile.place(bucket: $0, key: split.key, manifest: manifest) } }
            func matches(_ line: LockFile.Left) -> Bool { PathKey.same(line.path, key) || (place.map { line.place == $0 } ?? false) }
            let inLock = lockLines.filter { matches($0.placed) || PathKey.same($0.line.path, key) }
            let inState = recorded.filter { matches($0.placed) }
            guard let first = inState.first?.placed ?? inLock.first?.placed else {
                report.refused.append("\(key) has no left line in \(lockName) or the build state: it is not a file a build left in place (derive check names those), so there is nothing to release")
                continue
            }
            for line in inLock { lockPaths.insert(line.line.path) }
            for line in inState { statePlaces.insert(line.place) }
            var line = first
            line.acl = ([first] + inLock.map(\.placed) + inState.map(\.placed)).reduce(first.aclValue) { BucketACL.morePrivate($0, $1.aclValue) }.rawValue
            line.gone = (inLock.contains { $0.placed.isGone } || inState.contains { $0.placed.isGone }) ? true : nil
            released[line.path] = line
        }
        guard report.refused.isEmpty else { return report }
        if let store, !statePlaces.isEmpty {
            try store.saveLeftFiles(stateLines.filter { !statePlaces.contains($0.key) }.map(\.value))
            report.from.append("the build state")
        }
        if let lockData, !lockPaths.isEmpty {
            let rewritten = LockFile.dropping(lockPaths, from: lockData)
            // Forgotten first: a kill during the write must not leave a no-op that skips the sweep.
            if stateExists { saveWitness(snapshot: nil, valid: false) }
            try Builder.rewriteLock(rewritten, to: lockPath, replacing: lockData, disk: disk, store: store, manifest: manifest)
            report.from.insert(lockName, at: 0)
        }
        // The witness vouched for the lock and the state as they were: the next build plans.
        if stateExists { saveWitness(snapshot: nil, valid: false) }
        let acls = EffectiveACL(manifest)
        for line in released.sorted(by: { $0.key < $1.key }).map(\.value) {
            let acl = LockFile.bucket(holding: line.place, in: manifest).map { acls.of($0.bucket, key: $0.key) }
            report.released.append((line, acl))
        }
        return report
    }
}

/// Where a bucket's recorded folder went when it was renamed beside itself (`mv out out.bak`):
/// found by the device and inode the state recorded for it, among the entries of its parent
/// folder (read once per folder). For `clean`, of an output whose file is gone from its path.
struct RenamedBucketFolders {
    private var found: [String: String?] = [:]

    mutating func folder(of record: OutputRecord, store: StateStore) throws -> String? {
        guard !record.folder.isEmpty else { return nil }
        let key = record.folder + "\u{0}" + record.bucket
        if let known = found[key] { return known }
        var result: String?
        if let recorded = try store.recordedBucketFolder(record.folder, bucket: record.bucket), FileIdentity.ofFolder(record.folder) != recorded {
            let parent = (record.folder as NSString).deletingLastPathComponent
            let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
            result = names.sorted().map { parent + "/" + $0 }.first { FileIdentity.ofFolder($0) == recorded }
        }
        found[key] = .some(result)
        return result
    }
}
