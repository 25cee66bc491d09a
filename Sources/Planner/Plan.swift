import Confinement
import Foundation
import ImagingCore
import Manifest
import ProcessLanguage

/// One line of a plan. A class: plans over tens of thousands of outputs are sorted and
/// filtered, and copying the derivative and record each time showed in no-op builds.
public final class PlanItem: Sendable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// `update`: the bytes are right, only the record changes (ACL, rule name): nothing is rendered.
        case create, rebuild, update, delete, upToDate = "up-to-date"
    }

    /// `bucket/key` of the output.
    public let output: String
    /// Why (for rebuilds, updates and deletes; empty otherwise).
    public let reasons: [String]
    /// The wanted derivative (nil for deletes).
    public let derivative: Derivative?
    /// The record, the lock entry and the digest of the file replaced, held apart: the first two
    /// are large values, and a plan from scratch (200 000 creates) has none of them, so its
    /// items stay small (64 bytes).
    private let history: History?
    public let kind: Kind
    /// What the state recorded (nil for creates).
    public var recorded: OutputRecord? { history?.recorded }
    /// An up-to-date output known only from the lock (a fresh clone): the build records it.
    public var adopted: LockFile.Entry? { history?.adopted }
    /// An output whose file nothing but a lock line vouches for: adopted by this plan, or adopted
    /// by an earlier build and marked so in the state (`OutputRecord.adopted`), and neither
    /// rendered nor verified since. `--verify` renders these again; `check` and `plan` count them.
    /// An up-to-date output whose file is a restored copy of Derive's (`Planner.restoredCopyReason`):
    /// the build records the file there as the output's.
    public var isRestoredCopy: Bool { kind == .update && reasons.first == Planner.restoredCopyReason }
    public var isUnverifiedAdoption: Bool {
        (kind == .upToDate || kind == .update) && derivative != nil && (adopted != nil || recorded?.adopted == true)
    }
    /// The digest of the file the write may replace (one Derive wrote); nil: the path must be free.
    public var replaces: String? { history?.replaces }
    /// A `{hash}` output created because its bytes, and so its name, change: the record of the
    /// old copy it replaces (deleted once it is written), whose components say why (attack 39b's L4).
    public var supersedes: OutputRecord? { history?.supersedes }

    private final class History: Sendable {
        let recorded: OutputRecord?
        let adopted: LockFile.Entry?
        let replaces: String?
        let supersedes: OutputRecord?
        init(recorded: OutputRecord?, adopted: LockFile.Entry?, replaces: String?, supersedes: OutputRecord?) {
            self.recorded = recorded; self.adopted = adopted; self.replaces = replaces; self.supersedes = supersedes
        }
    }

    public init(kind: Kind, output: String, reasons: [String], derivative: Derivative?, recorded: OutputRecord?,
                adopted: LockFile.Entry?, replaces: String? = nil, supersedes: OutputRecord? = nil) {
        self.kind = kind; self.output = output; self.reasons = reasons
        self.derivative = derivative
        history = recorded == nil && adopted == nil && replaces == nil && supersedes == nil ? nil
            : History(recorded: recorded, adopted: adopted, replaces: replaces, supersedes: supersedes)
    }

    /// This create, saying why it replaces `old` (a `{hash}` output's old copy): what changed
    /// between the old copy's record and the wanted derivative, as a rebuild says it.
    func superseding(_ old: OutputRecord) -> PlanItem {
        guard kind == .create, let derivative else { return self }
        return PlanItem(kind: kind, output: output, reasons: Planner.reasons(old: old, new: derivative) + reasons, derivative: derivative,
                        recorded: recorded, adopted: adopted, replaces: replaces, supersedes: old)
    }
}

/// A file Derive writes besides outputs (the lock, the index) that a build would write or remove,
/// because it differs from what the build state says it must hold.
public struct ControlFileChange: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        /// Written from the state (missing, or Derive's file with other bytes).
        case write
        /// An old index Derive wrote (`index:` moved), still holding its bytes: removed.
        case remove
        /// An old index changed since Derive wrote it: left in place, its record dropped.
        case keep
        /// A file Derive did not write is where it would write: the build fails on it.
        case blocked
    }
    /// How the file is named in messages (relative to the manifest's folder when inside it).
    public var file: String
    public var path: String
    public var action: Action
    public var reason: String

    public init(file: String, path: String, action: Action, reason: String) {
        self.file = file; self.path = path; self.action = action; self.reason = reason
    }

    /// `site/index.json: missing; the build rewrites it`, for `check`.
    public var problem: String {
        switch action {
        case .write: return "\(file): \(reason); derive build rewrites it"
        case .remove: return "\(file): \(reason); derive build removes it"
        case .keep: return "\(file): \(reason)"
        case .blocked: return "\(file) \(reason)"   // the reason reads on from the file ("… exists and was not written …")
        }
    }
}

/// A lock line for an output the manifest does not produce, with no build state recording it (a
/// fresh clone): the lock alone never proves that Derive wrote a file, so it is left, named once.
public struct LockLeft: Sendable, Hashable {
    /// `bucket/key`, as the lock names it.
    public var output: String
    /// `left: …`, `dropped: …` or `ignored: …`: what happens and why.
    public var message: String
    /// Whether a file (or a bucket no longer in the manifest) may be there: it is left in place.
    public var present: Bool

    public init(output: String, message: String, present: Bool) {
        self.output = output; self.message = message; self.present = present
    }

    /// What plan, build, check and clean say of a file only the lock names.
    /// `changed`: the file no longer holds its line's bytes; said as the build's `left` line
    /// says it (`LockFile.Left.lockOnlyChanged`), so plan and build name one state alike.
    /// `doubt`: why the file may be another manifest's of the folder (`NeighbourDoubt`): then no
    /// advice to remove it, which would remove that manifest's output.
    public static func leftMessage(lock: String, changed: Bool = false, doubt: String? = nil) -> String {
        let known = "left: known only from \(lock)\(changed ? ", changed since" : "") (no build state)"
        if let doubt { return known + ", in doubt: \(doubt); Derive deletes nothing in doubt, and the next build decides again" }
        return known + "; Derive deletes nothing on the lock's word — remove it yourself if it is yours to remove"
    }

    /// `= site/x.jpg  left: …`: one line, as plan prints it.
    public var line: String { "= \(output)  \(message)" }
}

/// The diff between the manifest and what was built, in a stable order.
public struct Plan: Sendable {
    public var items: [PlanItem]
    /// Problems that stop the build (a file Derive did not write in an output's place).
    public var errors: [PlanError]
    /// Inputs that fail only their own outputs; the build goes on and exits 1.
    public var failures: [PlanFailure] = []
    /// Files the plan's outputs occupy: never removed as orphans, whatever record names them.
    /// Made when asked (only a build asks) from the planned derivatives, not held: at 200 000
    /// outputs the set is 8 MB that `plan` and `check` never read.
    public var wantedFiles: PathSet {
        get { wantedPaths ?? PathSet(wanted.map(\.outputPath)) }
        set { wantedPaths = newValue; wanted = [] }
    }
    private var wantedPaths: PathSet?
    /// The derivatives whose files `wantedFiles` names (when not set as paths).
    var wanted: [Derivative] = []
    /// The lock and the index where they differ from the state (set by the build session).
    public var controlFiles: [ControlFileChange] = []
    /// Outputs whose planning failed with an error (a file Derive did not write, or that was
    /// changed, at their path): wanted, but neither up to date nor buildable.
    public var erroredOutputs: PathSet = []
    /// Recorded outputs kept as built because their source could not be read this time, output →
    /// source (`bucket/key`): `check` says so instead of calling them no longer produced.
    public var heldBySource: PathDictionary<String> = [:]
    /// Recorded `{hash}` outputs of a derivative that could not be planned (a missing watermark
    /// object), output → the failure's subject (its logical name): kept as built, never deleted,
    /// as a plain-named output of a failed derivative is (attack 25).
    public var heldByFailure: PathDictionary<String> = [:]
    /// Recorded `{hash}` outputs this plan deletes because a new render replaces them (its bytes,
    /// and so its name, change), output → the planned output (logical name) that replaces it. The
    /// build deletes one only when that output was written: a failed render keeps it (attack 25).
    public var replacedBy: PathDictionary<String> = [:]
    /// Lock lines no state records, for outputs the manifest does not produce while a source
    /// could not be read: kept in the rewritten lock as they are (`Planner.heldLockLines`).
    public var heldLockLines: PathDictionary<LockFile.Entry> = [:]
    /// The derivatives of `erroredOutputs`, each with its error (a review still judges them).
    public var errored: [(derivative: Derivative, error: PlanError)] = []
    /// The state's records the plan was made from (output → record).
    public var recorded: PathDictionary<OutputRecord> = [:]
    /// The lock's lines for outputs the manifest does not produce, with no state recording them (a
    /// fresh clone): never deleted, named once, dropped from the rewritten lock (`lockOrphans`).
    public var lockLeft: [LockLeft] = []
    /// Files the lock this user's Derive last wrote places in the folder a bucket had then, which
    /// it no longer points at, with no state recording them (`Planner.oldFolderCopies`): each
    /// deleted by the build while it holds the line's bytes, or left and named.
    public var oldFolderCopies: [OldFolderCopy] = []
    /// Every file that lock places in such a folder, with its line's bytes (`Planner.oldFolderCopies`):
    /// names whose temporaries a build killed while deleting them left, swept as Derive's when they hold those bytes.
    public var oldFolderNames: [(file: String, digest: String)] = []
    /// State records whose path or folder is not trusted (`OutputRecord.placeProblem`): named as
    /// failures, never walked; the build drops them.
    public var ignoredRecords: [String] = []
    /// Control file records (old indexes) outside every place the manifest gives: named as
    /// failures, dropped by the build, never removed.
    public var ignoredControlFiles: [String] = []
    /// Deletions of files only the lock names that git proves (`gitProofDeletion`): no state
    /// recorded which file Derive installed there, so the file is the one git holds, whatever its inode.
    public var provenByGit: PathSet = []
    /// How many derivatives the plan's failures leave unbuilt (ignored records are no derivative):
    /// the unit the build's progress line and summary count failures in (attack 36a's L1).
    public var failedDerivatives: Int {
        let ignored = PathSet(ignoredRecords + ignoredControlFiles)
        return failures.reduce(0) { $0 + (ignored.contains($1.subject) ? 0 : $1.notBuilt) }
    }
    /// Deletions that delete no file (`OrphanFate` other than `delete`): the file is already
    /// gone, kept, or left in place; only their records are dropped.
    public var recordsOnly: PathSet = []
    /// Deletions whose file the build leaves in place (`OrphanFate.left`, `.unproven`,
    /// `.unreachable`): shown as `= … left:`, `"kind": "left"`, never counted as deleted. Those
    /// left with a `left` line in the lock are in `recordsOnly` too; the `unreachable` ones keep
    /// their record instead.
    public var leftInPlace: PathSet = []
    /// What plan, check and explain add to a deletion that drops only its record (`dropsRecordOnly`).
    public static let recordOnlyNote = " (file already gone: only its record is dropped)"

    /// Whether the deletion of `output` drops only its record: its file is already gone, neither
    /// kept nor left in place. One test for plan, check and explain (attack 50b's L8: check said
    /// "delete" where plan said the file was already gone).
    public func dropsRecordOnly(_ output: String) -> Bool {
        recordsOnly.contains(output) && !kept.contains(output) && !leftInPlace.contains(output) && !deleteIfRenderMatches.contains(output)
    }
    /// Deletions of files adopted from the lock unverified whose recipe can still be rendered:
    /// the build renders it and deletes the file only if it holds exactly those bytes (else it is
    /// left in place, with a `left` line). Shown and counted apart from `delete`: a plan cannot
    /// know which without rendering (attack 37b's finding 2).
    public var deleteIfRenderMatches: PathSet = []
    /// Of `leftInPlace`, deletions whose file cannot be reached where Derive wrote it (a mount
    /// point, a folder swapped in): their record stays, and a later build tries again.
    public var unreachable: PathSet = []
    /// Old outputs whose file stays: now a source (or a control file) of this manifest, or the
    /// file of an output it produces now. Only the record as an output (or the lock's entry) is
    /// dropped. Shown and counted as kept, never as a delete; the build agrees.
    public var kept: PathSet = []
    /// Old outputs behind a symbolic link: no item (nothing to do while the link stays), their
    /// records kept; named as kept (`OrphanBehindLink`).
    public var orphansBehindLinks: [OrphanBehindLink] = []
    /// Files a killed build moved into place and never recorded, as the records it would have
    /// made (`Planner.uncommittedOutputs`), by output: the build settles them before its work,
    /// each judged again then (deleted while it holds the noted bytes, else left and named), and
    /// drops their notes. Those the plan shows are deletions too; no `left` line is kept for them.
    public var uncommitted: PathDictionary<Planner.Uncommitted> = [:]
    /// Files no build operation may delete or overwrite: the manifest's sources and control
    /// files (manifest, includes, lock, index, state). Builder and `clean` keep them by identity.
    public var protectedFiles: PathSet = []
    /// Whether outputs this plan adopts from the lock are adopted from the lock this user's
    /// Derive last wrote for this state (`LockProvenance`): plan and build name it so in the one
    /// line about unverified adoptions (attack 37b's finding 12).
    public var adoptsFromOwnLock = false

    public init(items: [PlanItem], errors: [PlanError], failures: [PlanFailure] = [], wantedFiles: PathSet = []) {
        self.items = items; self.errors = errors; self.failures = failures; self.wantedFiles = wantedFiles
    }

    /// A plan whose `wantedFiles` are the files of `wanted`, made when asked.
    init(items: [PlanItem], errors: [PlanError], failures: [PlanFailure], wanted: [Derivative]) {
        self.items = items; self.errors = errors; self.failures = failures; self.wanted = wanted
    }

    public func count(_ kind: PlanItem.Kind) -> Int { items.reduce(0) { $0 + ($1.kind == kind ? 1 : 0) } }
    public var work: [PlanItem] { items.filter { $0.kind == .create || $0.kind == .rebuild } }
    public var updates: [PlanItem] { items.filter { $0.kind == .update } }
    public var deletions: [PlanItem] { items.filter { $0.kind == .delete } }
    public var adoptions: [PlanItem] { items.filter { $0.adopted != nil } }
    /// How many outputs only a lock line vouches for (`PlanItem.isUnverifiedAdoption`).
    public var adoptedUnverified: Int { items.reduce(0) { $0 + ($1.isUnverifiedAdoption ? 1 : 0) } }
    /// Whether a build would change anything: an output, a record, the lock or the index.
    public var hasChanges: Bool {
        items.contains { $0.kind != .upToDate } || controlFiles.contains { $0.action != .blocked } || oldFolderCopies.contains(where: \.deletes)
    }
    /// Control files a build cannot write (a user's file at the index path): the build fails on them.
    public var blockedControlFiles: [ControlFileChange] { controlFiles.filter { $0.action == .blocked } }
    /// Whether a build refuses this plan as a whole (writes no output, lock or index): an error,
    /// or a control file it may not write. `plan` counts the same as errors; one decision for both.
    public var refusesBuild: Bool { !errors.isEmpty || controlFiles.contains { $0.action == .blocked } }

    public var summary: String {
        var text = "Plan: \(count(.create)) to create, \(count(.rebuild)) to rebuild, "
        if count(.update) > 0 { text += "\(count(.update)) to update, " }
        let keeps = kept.intersection(deletions.map(\.output)).count
        let dropped = recordsOnly.subtracting(kept).subtracting(leftInPlace).intersection(deletions.map(\.output)).count
        let left = leftInPlace.intersection(deletions.map(\.output)).count
        let ifRenderMatches = deleteIfRenderMatches.subtracting(recordsOnly).subtracting(leftInPlace).intersection(deletions.map(\.output)).count
        text += "\(count(.delete) - dropped - keeps - left - ifRenderMatches) to delete, "
        let oldCopies = oldFolderCopies.filter { $0.deletes && !$0.isIndex }.count
        if oldCopies > 0 { text += "\(oldCopies) old cop\(oldCopies == 1 ? "y" : "ies") to delete where the bucket folder used to be, " }
        let oldLeft = oldFolderCopies.filter { !$0.deletes }.count
        if oldLeft > 0 { text += "\(oldLeft) left in place where the bucket folder used to be (not proven Derive's), " }
        if ifRenderMatches > 0 { text += "\(ifRenderMatches) to delete only if a render matches (adopted unverified: otherwise left in place), " }
        if dropped > 0 { text += "\(dropped) record\(dropped == 1 ? "" : "s") to drop (file already gone), " }
        if left > 0 { text += "\(left) left in place (not the file Derive wrote, or not reachable: why above), " }
        if keeps > 0 { text += "\(keeps) kept in place (only the output record is dropped), " }
        text += "\(count(.upToDate)) up to date"
        // Recorded outputs neither planned nor deleted: their source (or its folder) could not be read.
        let held = heldBySource.count + heldLockLines.count
        if held > 0 { text += ", \(held) kept as built (\(held == 1 ? "its source" : "their sources") could not be read)" }
        let lockOnly = lockLeft.filter(\.present).count
        if lockOnly > 0 { text += ", \(lockOnly) left in place (known only from the lock)" }
        let written = controlFiles.filter { $0.action == .write }.map(\.file)
        let removed = controlFiles.filter { $0.action == .remove }.map(\.file) + oldFolderCopies.filter { $0.deletes && $0.isIndex }.map(\.displayed)
        if !written.isEmpty { text += "; rewrite \(written.joined(separator: ", "))" }
        if !removed.isEmpty { text += "; remove \(removed.joined(separator: ", "))" }
        return text + "."
    }
}

/// Reads the lock on first use.
final class LockText: @unchecked Sendable {
    private let disk: any Disk
    private let path: String
    private let lock = NSLock()
    private var loaded = false
    private var parsed: LockFile?
    /// Why a lock that is there could not be parsed (`LockFile.unreadable`).
    private var unreadable: String?
    /// The SHA-256 of the lock's bytes as read (nil when missing).
    private var digest: String?
    /// Whether `LockProvenance` vouches for the lock as read, once asked.
    private var ownRecord: Bool?

    /// The manifest and the state database whose remembered bucket folders the lock is read for.
    private let manifest: Manifest?
    private let database: String

    init(disk: any Disk, path: String, manifest: Manifest? = nil, database: String = "") {
        self.disk = disk
        self.path = path
        self.manifest = manifest
        self.database = database
    }

    /// Whether the lock was read (and parsed) yet.
    var wasRead: Bool { lock.withLock { loaded } }

    var file: LockFile? {
        lock.withLock {
            if !loaded {
                loaded = true
                let data = try? disk.read(path)
                digest = data.map(ContentDigests.digest)
                let text = data.map { String(decoding: $0, as: UTF8.self) }
                parsed = text.flatMap { LockFile.parse($0) }
                if parsed == nil, let text { unreadable = LockFile.unreadable(text) }
                // A line of a bucket re-pointed since the lock was written vouches for nothing there
                // (attack 37b's F6): not adopted, not proven by a render, not an orphan of the lock.
                if let lock = parsed, let manifest {
                    parsed = LockProvenance.forFoldersNow(lock, manifest: manifest, lockPath: path, forState: database)
                }
            }
            return parsed
        }
    }

    /// Whether the lock as read is this user's Derive's own record for the state at `database`
    /// (`LockProvenance`), asked once.
    func isOwnRecord(forState database: String) -> Bool {
        guard file != nil else { return false }
        return lock.withLock {
            if let ownRecord { return ownRecord }
            let vouched = digest.map { LockProvenance.vouches(lockDigest: $0, lockPath: path, forState: database) } ?? false
            ownRecord = vouched
            return vouched
        }
    }

    /// Why the lock there is not valid (nil while it is, or is missing).
    var problem: String? {
        _ = file
        return lock.withLock { unreadable }
    }
}

/// The state's output records by their bytes' digest, read on first use: only a plan that finds
/// a file no record of its own output vouches for at an output's path asks.
final class RecordsByDigest: @unchecked Sendable {
    private let store: StateStore
    private let lock = NSLock()
    private var byDigest: [String: [OutputRecord]]?
    private var identities: PathDictionary<FileIdentity?>?

    init(store: StateStore) { self.store = store }

    /// The record of another output than `output` whose file is the very file at `path` (its
    /// device, inode and birth, as the state recorded them) and holds `digest`; nil when none is.
    /// Whether the file at `path` (the recorded output's path, holding its recorded bytes) is not
    /// the very file the state records for `record` (device, inode and birth), while the state does
    /// record one: a restored copy (`Planner.restoredCopyReason`).
    func isRestoredCopy(_ record: OutputRecord, at path: String) -> Bool {
        let recorded = lock.withLock {
            if identities == nil { identities = (try? store.outputIdentities()) ?? [:] }
            return identities?[record.path]
        }
        guard case .some(.some(let identity)) = recorded, identity != .unproven, FileKind.isRegularFile(path) else { return false }
        return !identity.isFile(at: path)
    }

    func record(of path: String, holding digest: String, except output: String) -> OutputRecord? {
        let candidates = lock.withLock {
            if byDigest == nil { byDigest = Dictionary(grouping: ((try? store.allOutputs()) ?? [:]).values, by: \.outputDigest) }
            return byDigest?[digest] ?? []
        }
        return candidates.first { record in
            !PathKey.same(record.path, output) && !record.folder.isEmpty && record.outputDigest == digest
                && ((try? store.outputIdentity(record.path)) ?? nil)?.isFile(at: path) == true
        }
    }
}

/// Compares the manifest's derivatives with the recorded state and the files on disk.
public struct Planner: Sendable {
    public let manifest: Manifest
    public let manifestPath: String
    public let disk: any Disk
    public let store: StateStore
    public let identity: EngineIdentity
    public let digests: ContentDigests
    /// The lock file this manifest owns.
    public let lockPath: String
    /// Whether files Derive did not write may be replaced (`--overwrite`).
    public let overwrite: Bool
    private let lockText: LockText
    private let recordsByDigest: RecordsByDigest
    /// Other projects whose files lie where this one writes (asked only of a file nothing of this
    /// manifest vouches for: attack 41a's B10), and whose bucket folder a made folder is before
    /// it is removed (attack 43's N5).
    public let foreignProjects: ForeignProjectFiles
    /// Other projects' recorded outputs among them, named with their owner (attack 41c's C4).
    private let foreignOutputs: ForeignRecordedOutputs
    /// Outputs whose file `--verify` rendered again and found other bytes in (output → why): their
    /// lock line vouches for nothing, so they are neither adopted nor replaced on its word (the
    /// file is a user's: `--overwrite` replaces it), and a `{hash}` name is not resolved from it.
    public var distrusted: PathDictionary<String> = [:]
    /// Outputs whose file nothing vouches for (no record of its bytes, no lock line) that
    /// `--verify` rendered again and found holding exactly the rendered bytes (output → that
    /// digest): what Derive writes there, whoever made the file, so replacing it loses nothing.
    public var proven: PathDictionary<String> = [:]
    /// Outputs whose file a build rendered again and found holding other bytes than the render
    /// (`BuildSession.proveUnvouchedFiles`): the render settled it, so such a file is "changed
    /// since Derive wrote it", no longer "a build renders it again first" (a lock line forged for
    /// a retouched file: LockVouchRound24's aRetouchedOutputWithItsLineRewrittenIsNotOverwritten).
    public var renderedOtherBytes: PathSet = []
    /// Whether a file's bytes are committed to git as they are at HEAD (`GitProof`): what lets a
    /// lock line of another recipe (a fresh clone) have its file replaced. A build session
    /// shares one, so git runs once per build.
    public var gitProof: GitProof
    /// Whether another manifest records the file a name narrowing would give (`ForeignClaims`),
    /// or a rule of a manifest beside this one writes it (`NeighbourOutputNames`): a narrower
    /// source's variant never takes such a name; it is planned as written
    /// (`Expansion.settleNarrowedNames`). Nil: no other manifest is asked.
    public var narrowedNameTaken: (@Sendable (NarrowedName) -> Bool)?
    /// The first manifest beside this one that cannot be read (`NeighbourOutputNames.unreadable`):
    /// while there is one, every name narrowing would give is taken, and explain says why.
    public var unreadableNeighbour: (@Sendable () -> String?)?
    /// The manifest beside this one whose state or lock records the file `file` (this
    /// manifest's old output `output`) now: it took the file over (`build --overwrite`). Such an
    /// orphan is kept, only this manifest's record goes (attack 46c's t32: the delete was refused
    /// as that manifest's file on every build, and the manifest never built again). Nil: none does.
    public var takenOver: (@Sendable (_ file: String, _ output: String) -> String?)?
    /// `takenOver` for a file only this manifest's lock names and the manifest no longer
    /// produces (`lockOrphans`): its lock line recording the same bytes as the other manifest's
    /// is no claim on it then (attack 48's F2).
    public var lockOrphanOwner: (@Sendable (_ file: String, _ output: String) -> String?)?
    /// The other manifest whose build state records the file `file` as the very one it installed
    /// (`ForeignClaimLookup.installer`), shown as the plan shows paths; nil: none does.
    public var installedElsewhere: (@Sendable (_ file: String) -> String?)?
    /// Why a file only this manifest's lock names may be another manifest's of the folder
    /// (`NeighbourDoubt.reason`): such an orphan is left in place, never deleted on git's proof.
    public var neighbourDoubt: (@Sendable (_ file: String) -> String?)?
    /// Why a file this manifest installed, holding its recorded bytes, may be a neighbour's that
    /// adopted it (`NeighbourDoubt.lockedReason`): such an orphan is left in place, never deleted.
    public var neighbourLockDoubt: (@Sendable (_ file: String) -> String?)?
    /// Why a file at an old output's path, not the one this manifest installed, may be the output
    /// of a live manifest whose rule writes its name (`ForeignClaimLookup.ruleDoubtReason`): left
    /// in doubt, never "not the file Derive wrote there" (attack 52a's F13).
    public var replacedFileDoubt: (@Sendable (_ file: String) -> String?)?

    public init(manifest: Manifest, manifestPath: String, disk: any Disk, store: StateStore, identity: EngineIdentity,
                racyMargin: Int64 = 1_000_000_000, lockPath: String? = nil, overwrite: Bool = false, statRows: PathSet? = nil) throws {
        self.manifest = manifest
        self.manifestPath = manifestPath
        self.disk = disk
        self.store = store
        self.identity = identity
        self.overwrite = overwrite
        // The stat cache's rows, each verified when the plan first uses it (`StateStore.fileRows`).
        // With `statRows` (an edited source's plan: its inputs) only those up front, any other by
        // key when asked, and the rest at once when the full plan runs (`ContentDigests.readRest`).
        if let statRows {
            let files = try store.fileRows(including: { statRows.contains($0) })
            let rest = ContentDigests.RowSource(byKey: { [store] path in try store.fileRow(at: path) },
                                                rest: { [store] including in try store.fileRows(including: including).rows })
            self.digests = ContentDigests(disk: disk, rows: files.rows, check: files.check, rest: rest, racyMargin: racyMargin)
        } else {
            let files = try store.fileRows()
            self.digests = ContentDigests(disk: disk, rows: files.rows, check: files.check, racyMargin: racyMargin)
        }
        self.lockPath = lockPath ?? LockFile.path(forManifest: manifestPath)
        self.lockText = LockText(disk: disk, path: self.lockPath, manifest: manifest, database: store.folder + "/" + StateStore.fileName)
        self.recordsByDigest = RecordsByDigest(store: store)
        self.foreignProjects = ForeignProjectFiles(besides: manifestPath)
        self.foreignOutputs = ForeignRecordedOutputs(foreignProjects)
        self.gitProof = GitProof(manifest: manifest, manifestPath: manifestPath)
    }

    /// Why the file at `path`, holding `digest` and vouched for by nothing of this manifest, is
    /// another project's (its manifest, lock, index, state or source, or an output its lock or
    /// state records with these bytes): the refusal the plan gives such a file, for a `{hash}`
    /// name the build learns only once it rendered (attack 43a's H1: a copy of the manifest beside
    /// it took the original's hashed outputs over, then deleted them). Nil when it is none's.
    public func foreignRefusal(unvouched path: String, digest: String) -> String? {
        if let owner = foreignProjects.owner(of: path) ?? foreignOutputs.unloadedOwner(of: path, digest: digest) { return owner.refusal(path, display: display) }
        if let other = foreignOutputs.claim(of: path, digest: digest) { return other.refusal(display(path)) }
        return nil
    }

    /// Another project's claim on the file at `path` holding `digest` that nothing of this manifest
    /// vouches for: a gone project whose state records the very file first (it installed it), then
    /// a lock or state recording these bytes; a gone project's lock line (a backup `trash/site.lock`)
    /// never outranks a live project whose state records the very file (attack 52a's F5: the
    /// backup was named the owner once the site had cleaned, and its advice moved the live state).
    func recordedElsewhere(_ path: String, digest: String) -> ForeignClaims.Claim? {
        let installer = foreignOutputs.installerClaim(of: path)
        if let installer, installer.takeOver != nil || installer.gone { return installer }
        let claim = foreignOutputs.claim(of: path, digest: digest)
        if let claim, claim.gone || claim.takeOver != nil, let installer, installer.doubt == nil { return installer }
        return claim
    }

    /// Whose output the file at `path` is when another project's lock or build state records it
    /// with the bytes it holds now (`ForeignRecordedOutputs.claim`): what `clean` says of a file it
    /// recorded and leaves in place (`ForeignClaims.Claim.leftInPlace`); nil when none does.
    public func otherProjectsOutput(_ path: String) -> String? {
        // The state that installed the very file first, whatever its bytes or its manifest's
        // state now (attack 50a's F3: a taker mid-edit was "a copy, or a file put there since").
        if let installer = foreignOutputs.installerClaim(of: path) { return installer.leftInPlace(display(path)) }
        guard let digest = (try? digests.content(of: path))?.digest, let claim = foreignOutputs.claim(of: path, digest: digest) else { return nil }
        return claim.leftInPlace(display(path))
    }

    /// Why a fresh clone's file at an output path that a lock line of another action key names
    /// is refused (after the file and the lock's names).
    public static let staleLineRefusal = "lists it under another recipe, and nothing proves it Derive's"

    /// What a refusal says of a file at a path the lock this user's Derive last wrote names, with
    /// other bytes, once its state is gone: `--verify` renders such a file again (`proveUnvouchedFiles`).
    public static let cannotProveItWroteIt = "exists and Derive cannot prove it wrote it"

    /// Why an up-to-date output's record is updated: the file at its path holds exactly the
    /// recorded bytes but is not the file Derive installed (`PlanItem.isRestoredCopy`).
    public static let restoredCopyReason = "restored copy: the file there holds exactly the recorded bytes, but is not the file Derive installed (cp -a, git checkout, a hard link, a folder swapped); the build records it as Derive's"

    /// Why a lock line of another recipe vouches for its file when the lock is Derive's own record.
    public static let ownLockProof = "its lines are records of bytes Derive rendered: proven Derive's by the lock"

    /// The lock, read and parsed only when an output is missing from the state; nil when it is
    /// missing or not valid.
    public var lock: LockFile? { lockText.file }

    /// What a refusal of a file the lock would have vouched for adds while the lock is there but
    /// not valid (a fresh clone whose committed lock holds a merge-conflict marker: round 27's
    /// finding 9): the lock named, where, and the fix. Nil with a valid or missing lock.
    public var lockRefusalNote: String? {
        guard let problem = lockText.problem else { return nil }
        let name = display(lockPath)
        return "\(name) could have vouched for it, but \(name) \(problem): resolve the conflict in \(name) (or restore it: git checkout -- \(name)) "
            + "and build again; or, if every file at the outputs' paths is Derive's, delete \(name) and run derive build --overwrite"
    }

    /// Whether no build state of this manifest exists (a fresh clone; a state deleted, corrupt or
    /// another manifest's): a lock line may then vouch for a file's bytes. It may also while the
    /// state records no output (a fresh clone whose first build was refused): `item(for:)` is told
    /// that as `stateRecordsOutputs`. While one records outputs, only its records say what Derive
    /// wrote (round 24's H2).
    public var lockIsTheOnlyRecord: Bool { !store.existed }

    /// Whether `derivative`'s file is one only the lock lists while a build state exists: the
    /// state does not record it as Derive's, and a lock line states the digest it holds. A plain
    /// build renders such an output again and takes the file only if it holds exactly those bytes
    /// (a `git pull` that brings committed outputs with their lines); any other stays refused.
    /// Said by the error for such a file, which a plain build renders again before it decides
    /// (`PlanPrinter` tells these apart: the build starts for them; attack 30's F5).
    public static let lockLineProvesNothing = "but while a build state exists a lock line proves nothing"
    /// Why a file holding what its lock line lists is still to be proven though the state records
    /// the output: the state records other bytes (`lockListedUnrecorded`).
    public static let stateRecordsOtherBytes = "not what the build state records (an older state restored?)"

    public func lockListedUnrecorded(_ derivative: Derivative) -> Bool {
        guard !lockIsTheOnlyRecord, let digest = lockLineDigest(derivative.output) else { return false }
        return (try? digests.content(of: derivative.outputPath))?.digest == digest
    }

    /// The digest the lock states for `output`: its output line's, else its `known only from the
    /// lock` left line's (the output line that line replaced: attack 46c's t24).
    func lockLineDigest(_ output: String) -> String? {
        if let entry = lock?.entries[output] { return entry.digest }
        return lock?.left[output].flatMap { $0.digestInLock ? $0.digest : nil }
    }

    /// Whether this planner read the lock (an edited source's plan, whose records vouch for every
    /// output, never does: `EditedSourceReadsTests`).
    public var hasReadTheLock: Bool { lockText.wasRead }

    /// Whether the lock is the one this user's Derive last wrote for this state, every line its own
    /// record (`LockProvenance.vouches`): its lines are records of bytes Derive rendered.
    public var lockIsOwnRecord: Bool { lockText.isOwnRecord(forState: store.folder + "/" + StateStore.fileName) }

    public func plan() throws -> Plan {
        // The full plan asks for most stat rows: those not read up front, in one pass.
        try digests.readRest()
        let recorded = try store.allOutputs()
        // Which record (if any) wrote each file: ownership is by file, not by output name.
        // File → output name (not a copy of the record: a state of 200 000 outputs is read once).
        let owners = PathDictionary(recorded.values.map { ($0.file, $0.path) }, uniquingKeysWith: { a, _ in a })
        let pending = try store.pendingNotes()
        var expansion = try Expansion(manifest: manifest, disk: disk, digests: digests, identity: identity,
                                      knownOutputs: recorded.keys, nameTaken: narrowedNameTaken).derivatives()
        // A recorded output the manifest no longer produces but a rule's `from` now matches is a
        // source (a new rule reads the old outputs): planned again with it as one, never deleted.
        // (Only records are looked up in it: a plan from scratch does not make it.)
        let produced = recorded.isEmpty ? PathSet() : PathSet(expansion.derivatives.map(\.output))
        let nowSources = recorded.keys.filter { !produced.contains($0) && isSource($0) }
        if !nowSources.isEmpty {
            expansion = try Expansion(manifest: manifest, disk: disk, digests: digests, identity: identity,
                                      knownOutputs: recorded.keys.subtracting(nowSources), nameTaken: narrowedNameTaken).derivatives()
        }
        let superseded = resolveHashedNames(&expansion.derivatives, recorded: recorded)
        expansion.errors += Self.refuseCoincidingNames(&expansion.derivatives)
        let protected = protectedFiles(sources: expansion.sources)
        let protectedIdentities = WantedIdentities(protected)
        let derivatives = expansion.derivatives
        let stats = digests.stats(derivatives.map(\.outputPath))
        // Where the lock is the record (a fresh clone), a file whose line has another action key
        // is replaced only on git's proof: git is asked about those files at once, and no other.
        if lockIsTheOnlyRecord || recorded.isEmpty, let lock {
            gitProof.prefetch(derivatives.filter { derivative in lock.entries[derivative.output].map { $0.actionKey != derivative.actionKey } ?? false }.map(\.outputPath))
        }
        let planned = try parallelMap(Array(derivatives.indices)) { index in
            let derivative = derivatives[index]
            // Its own record first: a killed build may leave two records naming one file (an
            // output's new one, and the old one of the output it displaced there: attack 40a's A5).
            let own = recorded[derivative.output].flatMap { PathKey.same($0.file, derivative.outputPath) ? $0 : nil }
            return try self.item(for: derivative, recorded: recorded[derivative.output], owner: own ?? owners[derivative.outputPath].flatMap { recorded[$0] },
                                 pending: pending[derivative.outputPath], displaced: pending[derivative.outputPath + Self.displacedNoteSuffix]?.digest,
                                 protected: protectedIdentities, stat: stats.map { $0[index] },
                                 stateRecordsOutputs: !recorded.isEmpty)
        }
        var items: [PlanItem] = []
        var errors = expansion.errors
        if let data = try? disk.read(lockPath) {
            if !LockFile.isOurs(data, manifest: manifestName, lockPath: lockPath) {
                errors.append(PlanError(message: LockFile.notOursMessage(display(lockPath), data: data, manifest: manifestName, lockPath: lockPath)))
            } else if let note = LockFile.takeOverNote(display(lockPath), data: data, manifest: manifestName, lockPath: lockPath) {
                StateSuccession.say(note)
            }
        }
        var erroredOutputs: PathSet = []
        var errored: [(derivative: Derivative, error: PlanError)] = []
        // Outputs below one symbolic link: one error for the link, not one per output.
        var belowLink: [String: [PlanError]] = [:]
        var links: [String] = []
        // A `{hash}` output created in place of an old copy (logical name → the old copy's
        // record): the create says why, as a rebuild of a plain-named output does.
        var supersededBy: PathDictionary<OutputRecord> = [:]
        for (old, logical) in superseded.sortedByKey() where supersededBy[logical] == nil {
            if let record = recorded[old] { supersededBy[logical] = record }
        }
        for (derivative, result) in zip(expansion.derivatives, planned) {
            switch result {
            case .success(let item):
                if item.kind == .create, derivative.hashed != nil, let old = supersededBy[item.output] {
                    items.append(item.superseding(old))
                } else {
                    items.append(item)
                }
            case .failure(let error):
                if let link = error.throughLink {
                    if belowLink[link] == nil { links.append(link) }
                    belowLink[link, default: []].append(error)
                } else {
                    errors.append(error)
                }
                erroredOutputs.insert(derivative.output); errored.append((derivative, error))
            }
        }
        for link in links {
            let below = belowLink[link] ?? []
            guard below.count > 1 else { errors += below; continue }
            let outputs = errored.filter { $0.error.throughLink == link }.map(\.derivative.output)
            errors.append(PlanError(message: "\(link) is a symbolic link, which Derive never follows inside a bucket; remove the link (or make it a folder) so the \(below.count) outputs below it "
                                    + "(\(outputs.first ?? "?") and \(below.count - 1) more) can be written", throughLink: link))
        }
        // Read only for records and (without a state) lock lines: a plan from scratch without a
        // lock does not make it. The lock is read here exactly when `lockOrphans` reads it.
        let wanted = recorded.isEmpty && (store.existed || lock == nil) ? PathSet() : PathSet(expansion.derivatives.map(\.output))
        // What becomes of each old output's file is decided as the build decides it, by the same
        // function (`OrphanJudge`): the plan is wrong only if the disk changes before the build.
        var fates = PlannedFates()
        // File → output for the planned derivatives, made only when an orphan is looked up in it.
        var filesOfOutputs: PathDictionary<String>?
        func outputOfFile(_ file: String) -> String? {
            if filesOfOutputs == nil {
                filesOfOutputs = PathDictionary(expansion.derivatives.map { ($0.outputPath, $0.output) }, uniquingKeysWith: { a, _ in a })
            }
            return filesOfOutputs?[file]
        }
        // Output → planned derivative, made only when an old `{hash}` copy is replaced.
        var derivativesByOutput: PathDictionary<Derivative>?
        func wantedDerivative(_ output: String) -> Derivative? {
            if derivativesByOutput == nil {
                derivativesByOutput = PathDictionary(expansion.derivatives.map { ($0.output, $0) }, uniquingKeysWith: { a, _ in a })
            }
            return derivativesByOutput?[output]
        }
        var heldBySource: PathDictionary<String> = [:]
        var heldByFailure: PathDictionary<String> = [:]
        var replacedBy: PathDictionary<String> = [:]
        var orphans: [(output: String, record: OutputRecord)] = []
        for (output, record) in recorded where !wanted.contains(output) {
            // Outputs of a source that could not be read this time are kept as they are.
            if expansion.failedSources.contains(record.source) { heldBySource[output] = record.source; continue }
            // So are those of a source below a folder that is now a link or cannot be read.
            if expansion.failedFolders.contains(where: { record.source.utf8.starts(with: ($0 + "/").utf8) }) {
                heldBySource[output] = record.source
                continue
            }
            if expansion.blockedOutputs.contains(output) { continue }
            // A `{hash}` output's failure names its logical name (`site/a.{hash}.webp`): its
            // recorded file, under its hashed name, is kept as a plain-named one is (attack 25).
            if let logical = blockedLogicalName(of: record, blocked: expansion.blockedOutputs) { heldByFailure[output] = logical; continue }
            orphans.append((output, record))
        }
        // Files a killed build moved into place and never recorded (`uncommittedOutputs`).
        let uncommitted = try uncommittedOutputs(pending: pending, recorded: recorded, produced: expansion.derivatives)
        // What the build keeps (`Builder.build`'s `wanted`): the planned outputs' files, those
        // of records held as built, the manifest's sources and control files.
        func makeJudge() -> OrphanJudge {
            let held = PathSet(recorded.values.filter { heldBySource[$0.path] != nil || heldByFailure[$0.path] != nil || expansion.blockedOutputs.contains($0.path) }
                .compactMap { $0.folder.isEmpty ? nil : $0.file })
            return OrphanJudge(self, keeping: WantedIdentities(PathSet(derivatives.map(\.outputPath)).union(held).union(protected)),
                               many: orphans.count > 1) { record in
                self.distrusted[record.path] ?? self.unprovenWithoutRender(record)
            }
        }
        if !orphans.isEmpty {
            let judge = makeJudge()
            for (output, record) in orphans {
                if let by = superseded[output] { replacedBy[output] = by }
                let reason = superseded[output].map { by in
                    // What changed, as the create of `by` says it (attack 39b's L4).
                    let why = wantedDerivative(by).map { Self.reasons(old: record, new: $0) } ?? []
                    return "replaced by a new \(by) (\(why.isEmpty ? "" : why.joined(separator: "; ") + "; ")its bytes, and so its name, change)"
                } ?? "no longer produced by the manifest"
                var reasons = [reason]
                switch try judge.fate(of: record) {
                case .delete: break
                case .dropRecord: fates.recordsOnly.insert(output)
                case .keep:
                    fates.kept.insert(output)
                    replacedBy[output] = nil
                    if let owner = takenOver?(record.file, output) {
                        reasons = ["\(display(record.file)) is now an output of \(owner), which took the file over: the file stays, only this manifest's record is dropped"]
                    } else if let owner = installedElsewhere?(record.file) {
                        reasons = [OrphanFate.installedElsewhereMessage(display(record.file), owner: owner)]
                    } else if protectedIdentities.contains(record.file) {
                        // The file is now a source (or a control file) of this manifest: kept, only its record goes.
                        let what = nowSources.contains(output) || expansion.sources.contains(record.file) ? "a source of this manifest"
                            : watermarkDrawer(of: record.file).map { "the watermark object rule \($0) draws" } ?? "a control file of this manifest"
                        reasons = ["\(display(record.file)) is now \(what): the file stays, only its record as an output is dropped"]
                    } else {
                        // The file of an output the manifest produces now (a bucket renamed over the
                        // same folder: `out:` → `www:`): it stays, only the old record goes (attack 18's B1).
                        let now = outputOfFile(record.file).map { "the file of \($0)" } ?? "the file of an output this manifest produces (through another path)"
                        reasons = ["\(display(record.file)) is now \(now): the file stays, only its old record is dropped"]
                    }
                case .left(_, let message), .unproven(_, let message):
                    fates.recordsOnly.insert(output)
                    fates.left.insert(output)
                    reasons.append(message)
                    // Why no one can say whose it is, as the build's left line says it (attack 50b's
                    // L1: plan, check and explain left out the doubt the build named).
                    if let doubt = neighbourDoubt?(record.file) { reasons.append("in doubt: \(doubt)") }
                case .unreachable(_, let message, let link):
                    let mount = link.flatMap { SymbolicLinks.firstMountPoint(on: record.file, from: record.folder) == $0 ? $0 : nil }
                    if let link, mount != nil || SymbolicLinks.first(on: record.file, below: record.folder) == link {
                        // Behind a symbolic link below its folder (or a mount point): no item (nothing
                        // to do while it stays: round 30's F3, attack 37b's finding 7), its record kept; named as kept.
                        fates.behindLinks.append(OrphanBehindLink(output: output, file: record.file, link: link,
                                                                  message: mount != nil ? behindMountMessage(record.file, mount: link) : behindLinkMessage(record.file, link: link)))
                        replacedBy[output] = nil
                        continue
                    }
                    fates.left.insert(output)
                    fates.unreachable.insert(output)
                    reasons.append(OrphanFate.keptMessage(message))
                }
                items.append(PlanItem(kind: .delete, output: output, reasons: reasons, derivative: nil, recorded: record, adopted: nil))
            }
        }
        if !uncommitted.isEmpty {
            // Judged as the build judges them: by the file noted (device, inode, birth) and its bytes.
            let judge = makeJudge()
            for (output, found) in uncommitted.sortedByKey() {
                let record = found.record
                var reasons = [Self.uncommittedReason(display(record.file))]
                switch try judge.fate(of: record, identity: .some(found.identity)) {
                case .delete: break
                // Gone, or a file this build keeps (a source): only the note goes, nothing to say.
                case .dropRecord, .keep: continue
                case .left(_, let message), .unproven(_, let message):
                    fates.recordsOnly.insert(output)
                    fates.left.insert(output)
                    reasons.append(message)
                case .unreachable(_, let message, _):
                    fates.left.insert(output)
                    fates.unreachable.insert(output)
                    reasons.append(message + ", its note kept (tried again next build)")
                }
                items.append(PlanItem(kind: .delete, output: output, reasons: reasons, derivative: nil, recorded: record, adopted: nil))
            }
        }
        let (lockLeft, provenByGit) = lockOrphans(wanted: wanted, recorded: recorded, expansion: expansion, protected: protectedIdentities)
        items += provenByGit
        let heldLines = heldLockLines(wanted: wanted, recorded: recorded, held: heldBySource, expansion: expansion, protected: protectedIdentities)
        items.sort { PathKey.ordered($0.output, $1.output) }
        // State rows naming a place outside their bucket (`..`, an absolute key): never walked.
        let ignored = (try? store.ignoredOutputs()) ?? [:]
        let stateFailures = ignored.keys.sorted().map { path in
            PlanFailure(subject: path, message: "in the build state but \(ignored[path]!); the record is ignored (nothing is read or deleted there) and the build drops it")
        }
        // An index record outside every bucket and the manifest's folder: never removed there.
        let ignoredControls = (try? store.ignoredControlFiles()) ?? [:]
        let controlFailures = ignoredControls.keys.sorted().map { path in
            PlanFailure(subject: path, message: "in the build state as Derive's old index but \(ignoredControls[path]!); the record is ignored (nothing is read or removed there) and the build drops it")
        }
        var plan = Plan(items: items, errors: errors, failures: expansion.failures + stateFailures + controlFailures,
                        wanted: expansion.derivatives)
        plan.ignoredRecords = ignored.keys.sorted()
        plan.ignoredControlFiles = ignoredControls.keys.sorted()
        plan.lockLeft = lockLeft
        (plan.oldFolderCopies, plan.oldFolderNames) = oldFolderCopies(recorded: recorded,
                                                                      keeping: WantedIdentities(PathSet(expansion.derivatives.map(\.outputPath)).union(protected)))
        plan.provenByGit = PathSet(provenByGit.map(\.output))
        plan.recordsOnly = fates.recordsOnly.union(fates.kept)
        plan.leftInPlace = fates.left
        plan.unreachable = fates.unreachable
        plan.kept = fates.kept
        plan.orphansBehindLinks = fates.behindLinks.sorted { PathKey.ordered($0.output, $1.output) }
        plan.protectedFiles = protected
        plan.erroredOutputs = erroredOutputs
        plan.heldBySource = heldBySource
        plan.heldByFailure = heldByFailure
        plan.replacedBy = replacedBy
        plan.heldLockLines = heldLines
        plan.errored = errored
        plan.recorded = recorded
        plan.uncommitted = uncommitted
        // Asked before the build rewrites the lock: the build says the plan's words.
        if items.contains(where: { $0.adopted != nil }) {
            plan.adoptsFromOwnLock = lockText.isOwnRecord(forState: store.folder + "/" + StateStore.fileName)
        }
        return plan
    }

    /// A `{hash}` name resolved from the record (its bytes are known) that equals another
    /// output's name, a literal `to:` or another rule's hashed name: one file for two outputs.
    /// Refused as a literal collision is; the second is dropped from the plan.
    static func refuseCoincidingNames(_ derivatives: inout [Derivative]) -> [PlanError] {
        var byOutput: PathDictionary<Derivative> = [:]
        var errors: [PlanError] = []
        var kept: [Derivative] = []
        for derivative in derivatives {
            if let other = byOutput[derivative.output] {
                let hashed = [other, derivative].filter { $0.hashed != nil }.map { "\($0.recipe) from \($0.source)" }
                errors.append(PlanError(message: "\(derivative.output) would be written twice: by \(other.recipe) from \(other.source) and by \(derivative.recipe) from \(derivative.source) (the {hash} name of \(hashed.joined(separator: " and ")), from its bytes); give them different 'to' paths"))
                continue
            }
            byOutput[derivative.output] = derivative
            kept.append(derivative)
        }
        if !errors.isEmpty { derivatives = kept }
        return errors
    }

    /// Names each `{hash}` derivative after the output the state (or, in a fresh clone, the lock)
    /// recorded for it under the same action key: its bytes, and so its name, are known without
    /// rendering, so an up-to-date output plans as one and a no-op stays a no-op. The others keep
    /// the logical name (`lake.{hash}.webp`) and are created; the records they replace (same
    /// logical name, another action key) are returned, output → logical name, to say why they go.
    func resolveHashedNames(_ derivatives: inout [Derivative], recorded: PathDictionary<OutputRecord>) -> PathDictionary<String> {
        let lengths = Set(derivatives.compactMap { $0.hashed?.length })
        guard !lengths.isEmpty else { return [:] }
        // A recorded path with its own digest's first N hex taken out (at each place it occurs),
        // keyed with N: what the logical name's prefix and suffix must join to.
        struct Known { var path: String; var actionKey: String }
        var byLogical: PathDictionary<[Known]> = [:]
        func learn(_ path: String, digest: String, actionKey: String) {
            for length in lengths where digest.count >= length {
                let hex = String(digest.prefix(length))
                var search = path.startIndex..<path.endIndex
                while let found = path.range(of: hex, range: search) {
                    let logical = String(path[..<found.lowerBound]) + "\u{0}" + String(path[found.upperBound...]) + "\u{0}\(length)"
                    byLogical[logical, default: []].append(Known(path: path, actionKey: actionKey))
                    search = found.upperBound..<path.endIndex
                }
            }
        }
        // A file `--verify` found holding other bytes names nothing, whether a lock line or the
        // record a plain build made on that line's word vouched for it (verify 19's V4).
        for (path, record) in recorded where distrusted[path] == nil { learn(path, digest: record.outputDigest, actionKey: record.actionKey) }
        var superseded: PathDictionary<String> = [:]
        var taken: PathSet = []
        func resolve(_ index: Int) -> Bool {
            guard let hashed = derivatives[index].hashed,
                  derivatives[index].output.utf8.reversed().starts(with: hashed.logicalKey.utf8.reversed()) else { return true }
            let bucket = PathKey.bucket(of: derivatives[index].output)
            let candidates = byLogical[bucket + "/" + hashed.prefix + "\u{0}" + hashed.suffix + "\u{0}\(hashed.length)"] ?? []
            var resolved = false
            if let match = candidates.first(where: { $0.actionKey == derivatives[index].actionKey && !taken.contains($0.path) }) {
                taken.insert(match.path)
                derivatives[index] = derivatives[index].renamed(
                    output: match.path,
                    outputPath: derivatives[index].outputFolder + "/" + PathKey.key(of: match.path))
                resolved = true
            }
            for other in candidates where !PathKey.same(other.path, derivatives[index].output) && recorded[other.path] != nil {
                superseded[other.path] = bucket + "/" + hashed.logicalKey
            }
            return resolved
        }
        let unresolved = derivatives.indices.filter { !resolve($0) }
        // Outputs the state does not know: a fresh clone's lock vouches for them (read only then).
        if !unresolved.isEmpty, let lock {
            byLogical = [:]
            for (path, entry) in lock.entries where recorded[path] == nil && distrusted[path] == nil {
                learn(path, digest: entry.digest, actionKey: entry.actionKey)
            }
            for index in unresolved { _ = resolve(index) }
        }
        return superseded
    }

    /// The failure subject in `blocked` (an output that could not be planned) that `record` is
    /// the `{hash}` output of: its path with its own digest's first N hex shown as a rule's
    /// placeholder (`site/a.{hash}.webp`); nil when none is. Only asked while an output is blocked.
    func blockedLogicalName(of record: OutputRecord, blocked: PathSet) -> String? {
        guard !blocked.isEmpty else { return nil }
        let shapes = Set(manifest.rules.compactMap { rule in rule.to.hashLength.map { HashShape(length: $0, placeholder: rule.to.hashPlaceholder) } })
        let path = record.path
        for shape in shapes where record.outputDigest.count >= shape.length {
            let hex = String(record.outputDigest.prefix(shape.length))
            var search = path.startIndex..<path.endIndex
            while let found = path.range(of: hex, range: search) {
                let logical = path.replacingCharacters(in: found, with: shape.placeholder)
                if blocked.contains(logical) { return logical }
                search = found.upperBound..<path.endIndex
            }
        }
        return nil
    }

    private struct HashShape: Hashable { var length: Int; var placeholder: String }

    /// Whether `output` (`bucket/key`) is matched by a rule's `from` in that bucket.
    func isSource(_ output: String) -> Bool {
        let bucket = PathKey.bucket(of: output), key = PathKey.key(of: output)
        return manifest.rules.contains { $0.sourceBucket == bucket && $0.includes(key) }
    }

    /// Every file a rule's `from` matches now (absolute paths), without reading any: for `clean`.
    public func listedSources() -> PathSet {
        var sources: PathSet = []
        for rule in manifest.rules {
            guard let bucket = manifest.bucket(named: rule.sourceBucket),
                  let listing = disk.entries(inFolder: bucket.path, skipping: [manifest.stateFolder]) else { continue }
            for key in listing.keys where rule.includes(key) { sources.insert(bucket.path + "/" + key) }
        }
        return sources
    }

    /// The files no build operation may delete or overwrite: `sources`, the manifest and its
    /// includes, the lock, the index and the state files (absolute paths; compared by identity too).
    public func protectedFiles(sources: PathSet) -> PathSet {
        var files = sources
        for file in manifest.files + [manifestPath, lockPath] { files.insert(URL(literalFilePath: file).standardizedFileURL.path) }
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) { files.insert(bucket.path + "/" + index.path) }
        for name in StateFiles.files { files.insert(manifest.stateFolder + "/" + name) }
        // Watermark objects the rules draw are inputs as sources are (attack 16 V6: a lock line
        // deleted one in a fresh clone and every later build failed).
        for rule in manifest.rules {
            guard let bucket = manifest.bucket(named: rule.sourceBucket) else { continue }
            for variant in (try? rule.variants(catalogue: manifest.catalogue)) ?? [] {
                for case .object(let key) in variant.pipeline.dependencies { files.insert(bucket.path + "/" + key) }
            }
        }
        return files
    }

    /// The first rule that draws the file at `file` as its watermark object (as `protectedFiles`
    /// finds them), named as in messages (`'stamped'`); nil when none does.
    func watermarkDrawer(of file: String) -> String? {
        manifest.rules.first { rule in
            guard let bucket = manifest.bucket(named: rule.sourceBucket) else { return false }
            return ((try? rule.variants(catalogue: manifest.catalogue)) ?? []).contains { variant in
                variant.pipeline.dependencies.contains { dependency in
                    if case .object(let key) = dependency { PathKey.same(bucket.path + "/" + key, file) } else { false }
                }
            }
        }?.label
    }

    /// The manifest as its lock's first line names it: its path relative to the lock's folder
    /// (`site.yaml` beside its lock, `../b/site.yaml` otherwise), so two manifests with one file
    /// name in different folders never take each other's lock.
    public var manifestName: String { LockFile.ownerName(manifestPath: manifestPath, lockPath: lockPath) }

    /// How a path is named in messages: relative to the manifest's folder when inside it.
    public func display(_ path: String) -> String { Self.display(path, manifestPath: manifestPath) }

    /// As `display(_:)`, for the manifest at `manifestPath`.
    public static func display(_ path: String, manifestPath: String) -> String {
        let base = URL(literalFilePath: manifestPath).standardizedFileURL.deletingLastPathComponent().path
        return path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : path
    }

    /// `pending`: what a killed build noted of the file it was renaming to this path; what is
    /// there is Derive's only if it is that file (device, inode, birth) and hashes to its digest.
    /// `displaced`: the digest of the file a killed build judged Derive's and was replacing at
    /// this path (its note of the file it displaces): the record that vouched for it may have been
    /// moved already (two buckets swapped folders: attack 40a's A5), so these bytes are Derive's.
    /// `stat`: the output's stat when it was taken ahead (`ContentDigests.stats`).
    func item(for derivative: Derivative, recorded: OutputRecord?, owner: OutputRecord?, pending: PendingWrite?, displaced: String? = nil,
              protected: WantedIdentities = WantedIdentities([]), stat: FileStat?? = nil,
              stateRecordsOutputs: Bool = true) throws -> Result<PlanItem, PlanError> {
        let path = derivative.outputPath
        // A source or a control file of this manifest is never written over, whatever vouches for its bytes.
        if let other = protected.sameFile(as: path) {
            // A hard link between an output and a source (attack 39a's finding 10): writing the
            // output would change the source, so the link is what to break.
            let how = FileKind.isRegularFile(path) ? "a hard link: one file with two names" : "\(FileKind.describe(path)) leading to it"
            return .failure(PlanError(message: "\(display(path)) is the same file as \(display(other)), a source or a control file of this manifest "
                + "(\(how)), so rule '\(derivative.rule)' may not write its output over it: break the link, "
                + "either with rm \(display(path)) (\(display(other)) keeps its bytes, and the build writes its own file there) "
                + "or by giving \(display(other)) its own copy (cp \(display(other)) \(display(other)).copy, then mv \(display(other)).copy \(display(other)))"))
        }
        if protected.contains(path) {
            return .failure(PlanError(message: "\(display(path)) is a source or a control file (manifest, lock, index, state) of this manifest; \(derivative.output) may not be written over it: change the rule's 'to:'"))
        }
        // Nor another manifest's lock (attack 40a's A6: a bucket holding another project, and
        // `to: top/{name}.lock`, wrote that project's lock and blocked its builds).
        if let owner = SiblingManifests.lockOwner(of: path, besides: manifestPath) {
            return .failure(PlanError(message: SiblingManifests.lockTargetMessage(path: display(path), owner: display(owner), output: derivative.output)))
        }
        // Nor below one (attack 36a's L7: a photo folder named derive-index.json put outputs in
        // _site/derive-index.json/, and then the index could not be written): that name stays a file.
        var ancestor = (path as NSString).deletingLastPathComponent
        while ancestor.count > 1 {
            if protected.containsPath(ancestor) {
                return .failure(PlanError(message: "\(display(path)) lies under \(display(ancestor)), a source or a control file (manifest, lock, index, state) of this manifest, which must stay a file; "
                                          + "\(derivative.output) may not be written there: rename the folder that gives it its name, or change the rule's 'to:'"))
            }
            ancestor = (ancestor as NSString).deletingLastPathComponent
        }
        // The record of this output wrote this file when its folder is the same real folder.
        let owner = owner ?? recorded.flatMap { !PathKey.same($0.file, path) && FileIdentity.sameFolder($0.folder, derivative.outputFolder) ? $0 : nil }
        // One stat (through the digest cache) tells both whether the output exists and what it holds.
        let onDisk: ContentDigests.Content?
        if case .some(let stat) = stat { onDisk = try? digests.content(of: path, stat: stat) } else { onDisk = try? digests.content(of: path) }
        let exists = onDisk != nil || disk.exists(path)
        // A missing output whose folder is now a symbolic link: the build would refuse to write
        // through it, so the plan says so (and a plan with errors builds nothing).
        if !exists, let link = SymbolicLinks.first(on: path, below: derivative.outputFolder) {
            return .failure(PlanError(message: "\(display(path)) leads through a symbolic link (\(display(link))), which Derive never follows inside a bucket; remove the link (or make it a folder) so \(derivative.output) can be written",
                                      throughLink: display(link)))
        }
        // Ownership: a file may be replaced only if it holds bytes Derive recorded for this path
        // (in the state, or in the lock of a fresh clone).
        var replaces: String?
        // The lock is committed: a user edits it, a merge or a pull request brings lines. While a
        // build state exists only its records say what Derive wrote here (round 24's H2: a line
        // stating a user's file's digest made the build take the file as Derive's and overwrite
        // it); a file only the lock lists is the user's unless it holds exactly what the rule
        // renders (`lockListedUnrecorded`: a build renders it and compares).
        let lockCounts = lockIsTheOnlyRecord || !stateRecordsOutputs
        // A lock line (a fresh clone's only record) vouches for the file at its path only when it is
        // what the line says: its digest, and (for a line of another action key, which is not
        // adopted but written over) its header's format, width and height (attack 17's N1 B).
        // A file `--verify` rendered again and found other bytes in is vouched for by nothing.
        let distrust = distrusted[derivative.output]
        // Asked only when the record does not vouch (issue 15): the lock is parsed on first use,
        // and a 40 000-line lock was a tenth of an edited source's plan, for records that vouched.
        // A line of another action key (a stale line: the manifest changed since, or a forged
        // one) is the lock's word alone: its file is replaced only when git proves its bytes
        // recoverable (committed as they are at HEAD: `GitProof`); otherwise it is the user's.
        func staleLine() -> Bool {
            lockCounts && distrust == nil && onDisk.flatMap { content in
                lock?.entries[derivative.output].map { entry in
                    entry.digest == content.digest && entry.actionKey != derivative.actionKey
                        && Self.headerAgrees(entry, content: content, imagesOnly: identity.refusesNonImages)
                }
            } == true
        }
        var provenByGit = false, provenByLock = false, provenByLeftLine = false
        // A file a build of this manifest left in place as known only from its lock (then holding
        // its output line's bytes: Derive's render), with those bytes still: vouched for by that
        // record as by the line it replaced (attack 46c's t24/t25: the output came back, and the
        // file was "not written by Derive"), where the lock counts and is the one this user's
        // Derive last wrote. With a state, the line is the lock's word, as an output line is: a
        // build renders the output again first (`lockListedUnrecorded`).
        func leftLineVouches(_ digest: String) -> Bool {
            guard distrust == nil, lockCounts, lock?.entries[derivative.output] == nil, lockLineDigest(derivative.output) == digest,
                  lockText.isOwnRecord(forState: store.folder + "/" + StateStore.fileName) else { return false }
            provenByLeftLine = true
            return true
        }
        func lockVouches() -> Bool {
            guard lockCounts, distrust == nil, let content = onDisk, let entry = lock?.entries[derivative.output],
                  entry.digest == content.digest else { return false }
            if entry.actionKey == derivative.actionKey { return true }
            guard staleLine() else { return false }
            // A lock this user's Derive wrote (its state lost since: attack 36c's M4) is its own
            // record of those bytes, not a clone's word.
            provenByLock = lockText.isOwnRecord(forState: store.folder + "/" + StateStore.fileName)
            provenByGit = !provenByLock && gitProof.proves(path, digest: content.digest)
            return provenByLock || provenByGit
        }
        // The file there is the very file Derive recorded for another of its outputs (two output
        // buckets' folders swapped on disk: attack 18's S9), named in the reasons.
        var anotherOutputs: OutputRecord?
        var sameBytes = false
        if exists {
            let digest = onDisk?.digest
            // A record adopted on a lock line's word vouches no more than the line (`--verify-all`).
            if let digest, (owner?.outputDigest == digest && distrust == nil) || lockVouches() || (owner == nil && leftLineVouches(digest)) {
                replaces = digest
            } else if !(pending?.vouches(for: path, digest: onDisk?.digest ?? "") == true), !(distrust == nil && displaced?.isEmpty == false && displaced == onDisk?.digest),
                      let foreign = foreignProjects.owner(of: path) ?? onDisk.flatMap({ foreignOutputs.unloadedOwner(of: path, digest: $0.digest) }) {
                // Another project's manifest, lock, index, state or source (attack 41a's B10: a
                // bucket holding another project and `to: top/{name}.yaml`): not even `--overwrite`
                // or a render proving the bytes (a source may be exactly what a rule renders) takes it.
                return .failure(PlanError(message: foreign.refusal(path, display: display)))
            } else if let digest, overwrite || pending?.vouches(for: path, digest: digest) == true || proven[derivative.output] == digest
                        || (distrust == nil && displaced?.isEmpty == false && displaced == digest) {
                replaces = digest
            } else if let digest, distrust == nil, let other = recordsByDigest.record(of: path, holding: digest, except: derivative.output) {
                // Its bytes, device, inode and birth are the ones Derive recorded for that output:
                // Derive's to replace (the other output is rendered again in its own place).
                replaces = digest
                anotherOutputs = other
            } else if let digest, distrust == nil, let recorded, !recorded.folder.isEmpty, !overwrite,
                      recorded.outputDigest == digest, recorded.actionKey == derivative.actionKey, owner == nil,
                      // Not a file another project records (attack 46a's H6: a bucket pointed at a
                      // neighbour's output folder took its identical outputs, then deleted them).
                      foreignOutputs.claim(of: path, digest: digest) == nil {
                // Exactly the bytes Derive recorded for this very output under the recipe the rule
                // has now (what it renders), found where the bucket leads now: Derive's own file in
                // a folder renamed with a build in between (attack 41a's B9), or a copy of those
                // very bytes. Rendered again over it (nothing is lost); never "not written by Derive".
                replaces = digest
                sameBytes = true
            } else if let digest, let other = recordedElsewhere(path, digest: digest) {
                // Another project's output (a sibling's `../pub`): named with its owner, not "not
                // written by Derive", so `--verify` does not take it; `--overwrite` does (above).
                // First a gone project whose state records the very file: it installed it, whatever
                // lock holds these bytes too (attack 51a's 6: a taker renamed in its folder was
                // told its own file was the original's, without the rename advice). A live one is
                // named by its lock as before.
                return .failure(PlanError(message: other.refusal(display(path))))
            } else if onDisk == nil {
                return .failure(PlanError(message: "\(display(path)) exists and is not a regular file Derive wrote (\(Self.kindOfNonFile(path))); move it so \(derivative.output) can be written"))
            } else if let distrust {
                return .failure(PlanError(message: "\(display(path)) exists and was not written by Derive: \(distrust); move it or pass --overwrite"))
            } else if staleLine() {
                return .failure(PlanError(message: "\(display(path)) exists and was not written by Derive: \(display(lockPath)) \(Self.staleLineRefusal) (\(gitProof.whyUnproven(path))); move it or pass --overwrite"))
            } else if owner != nil, !renderedOtherBytes.contains(derivative.output), lockListedUnrecorded(derivative) {
                // The bytes the lock lists, not the ones the state records (an older state
                // restored: attack 49c's finding 2): said as the build treats it, which renders it
                // again first (`lockListedUnrecorded`, the one rule for both), not "changed".
                return .failure(PlanError(message: "\(display(path)) holds what \(display(lockPath)) lists for it, \(Self.stateRecordsOtherBytes), \(Self.lockLineProvesNothing): a build renders it again first and adopts the file if it holds exactly what \(RuleName.described(derivative.rule)) renders from \(derivative.source); if it does not, move it or pass --overwrite"))
            } else if owner != nil {
                return .failure(PlanError(message: "\(display(path)) was changed since Derive wrote it; move it or pass --overwrite"))
            } else if !lockCounts, let onDisk, lockLineDigest(derivative.output) == onDisk.digest {
                return .failure(PlanError(message: "\(display(path)) exists and was not written by Derive (\(display(lockPath)) lists it, \(Self.lockLineProvesNothing): a build renders it again first and takes the file only if it holds exactly what \(RuleName.described(derivative.rule)) renders from \(derivative.source)); if it does not, move it or pass --overwrite"))
            } else {
                // The lock this user's Derive last wrote names the path, with other bytes: what is
                // there may be what a build rendered before its state folder went (attack 37b's
                // finding 12): named as unproven, with the way to prove it.
                if lockCounts, lock?.entries[derivative.output] != nil, lockText.isOwnRecord(forState: store.folder + "/" + StateStore.fileName) {
                    return .failure(PlanError(message: "\(display(path)) \(Self.cannotProveItWroteIt): its build state is gone (the state folder was deleted or replaced, perhaps while a build ran), "
                        + "and \(display(lockPath)), the lock it last wrote, records other bytes there; derive build --verify renders it again and adopts it if it holds exactly what \(RuleName.described(derivative.rule)) renders from \(derivative.source); "
                        + "otherwise move it or pass --overwrite"))
                }
                if lockCounts, let note = lockRefusalNote {
                    return .failure(PlanError(message: "\(display(path)) exists and was not written by Derive (\(note)); otherwise move it or pass --overwrite"))
                }
                return .failure(PlanError(message: "\(display(path)) exists and was not written by Derive; move it or pass --overwrite"))
            }
        }
        // An older state restored (attack 50c's M4): it records other bytes, the lock lists the
        // file's under the rule's recipe, and a render before the build found exactly those bytes
        // (`proven`): adopted as a fresh clone's file is, recorded and not written again.
        if let recorded, exists, distrust == nil, recorded.outputDigest != onDisk?.digest, let onDisk,
           let entry = lock?.entries[derivative.output], entry.actionKey == derivative.actionKey, onDisk.digest == entry.digest,
           proven[derivative.output] == onDisk.digest,
           let measured = Self.measured(entry, content: onDisk, size: digests.record(for: path)?.size ?? disk.stat(path)?.size,
                                        imagesOnly: identity.refusesNonImages) {
            return .success(PlanItem(kind: .upToDate, output: derivative.output, reasons: [], derivative: derivative,
                                     recorded: nil, adopted: measured, replaces: replaces))
        }
        guard let recorded else {
            // Not in the state: a fresh clone whose lock vouches for the file (its digest) is up to
            // date. The line's other numbers come from the clone too (a hand-resolved merge, a pull
            // request): what is adopted is what the file itself says (verify 16's M6).
            // With a state, the line counts only for a file rendered again and found holding
            // exactly the rendered bytes (`proven`): adopted, not written again.
            if exists, distrust == nil, let entry = lock?.entries[derivative.output], entry.actionKey == derivative.actionKey,
               let onDisk, onDisk.digest == entry.digest, lockCounts || proven[derivative.output] == onDisk.digest {
                if let measured = Self.measured(entry, content: onDisk, size: digests.record(for: path)?.size ?? disk.stat(path)?.size,
                                                imagesOnly: identity.refusesNonImages) {
                    return .success(PlanItem(kind: .upToDate, output: derivative.output, reasons: [], derivative: derivative,
                                             recorded: nil, adopted: measured, replaces: replaces))
                }
                return .success(PlanItem(kind: .create, output: derivative.output,
                                         reasons: ["\(display(path)) is vouched for by the lock but its image header cannot be read; rendered again"],
                                         derivative: derivative, recorded: nil, adopted: nil, replaces: replaces))
            }
            var why = ""
            if let distrust {
                why = "; \(distrust)"
            } else if let other = anotherOutputs {
                why = "; the file there is Derive's \(other.path) (the folders of its buckets moved)"
            } else if let proof = proven[derivative.output], proof == replaces, !overwrite {
                why = "; rendered again before the build: it holds exactly what the rule renders"
            } else if provenByLeftLine {
                return .success(PlanItem(kind: .rebuild, output: derivative.output,
                                         reasons: ["\(display(path)) holds the bytes Derive rendered there before, which a build left in place as known only from the lock (its left line records them)"],
                                         derivative: derivative, recorded: nil, adopted: nil, replaces: replaces))
            } else if provenByGit || provenByLock {
                // Derive's bytes of another recipe: rendered over, as a recorded output is (a rebuild).
                let proof = provenByGit ? "it is committed to git as it is at HEAD (proven Derive's by git)"
                    : "is the lock this user's Derive last wrote for this state (\(Self.ownLockProof))"
                return .success(PlanItem(kind: .rebuild, output: derivative.output,
                                         reasons: ["\(display(lockPath)) lists it under another recipe, and \(proof)"],
                                         derivative: derivative, recorded: nil, adopted: nil, replaces: replaces))
            }
            return .success(PlanItem(kind: .create, output: derivative.output,
                                     reasons: exists ? ["replaces \(display(path))" + (overwrite && owner == nil ? " (--overwrite)" : "") + why] : [],
                                     derivative: derivative, recorded: nil, adopted: nil, replaces: replaces))
        }
        var reasons = Self.reasons(old: recorded, new: derivative)
        // A bucket named by another path that reaches the same folder (a symbolic link) has not
        // moved: the file system decides, never the path string.
        let sameFolder = PathKey.same(recorded.file, path) || FileIdentity.sameFolder(recorded.folder, derivative.outputFolder)
        if !sameFolder {
            // Named by real folders (the path a link now leads to, then the link as spelt).
            let now = RealFolder.of(derivative.outputFolder)
            let spelt = now == derivative.outputFolder ? "" : " (\(display(derivative.outputFolder)))"
            reasons.insert("bucket folder moved: \(display(recorded.folder)) → \(display(now))\(spelt)", at: 0)
            if sameBytes {
                reasons.append("\(display(path)) holds exactly the bytes Derive recorded for it under this recipe (its folder renamed since?): rendered again over it")
            }
            if let link = SymbolicLinks.first(on: recorded.file, from: recorded.folder) {
                // The old folder's path now leads elsewhere: what is there is not followed, so kept.
                reasons.append("the old copy \(display(recorded.file)) leads through a symbolic link (\(display(link))), which Derive does not follow; it is kept")
            }
        } else if !exists {
            reasons.insert("output missing", at: 0)
        } else if let other = anotherOutputs {
            reasons.insert("output modified on disk: the file there is Derive's \(other.path) (the folders of its buckets moved)", at: 0)
        } else if onDisk?.digest != recorded.outputDigest {
            reasons.insert("output modified on disk", at: 0)
        } else if let distrust {
            // Recorded, yet not what the rule renders now (`--verify-all`): rendered again, which
            // the ownership check above allowed only with --overwrite.
            reasons.insert(distrust, at: 0)
        }
        if reasons.isEmpty {
            // A folder named through a link is no change at all: the record keeps its name for it
            // (rewriting it would make `check` through one name fail after a build through the other).
            var changes = Self.recordChanges(old: recorded, new: derivative)
            // The recorded bytes at the recorded path, in another file than the one Derive
            // installed (restored with `cp -a` or `git checkout`, a dedupe tool's hard link, two
            // buckets' folders of identical renders swapped): Derive's output restored. The build
            // records the file there (its device and inode), so `check`, the build and `clean`
            // give one answer (attack 41a's B8, B12, B5). Another manifest's claim on it is
            // refused before (`BuildSession.refuseClaimedFileOperations`: B1).
            if recordsByDigest.isRestoredCopy(recorded, at: path) { changes.insert(Self.restoredCopyReason, at: 0) }
            return .success(PlanItem(kind: changes.isEmpty ? .upToDate : .update, output: derivative.output, reasons: changes,
                                     derivative: derivative, recorded: recorded, adopted: nil, replaces: replaces))
        }
        return .success(PlanItem(kind: .rebuild, output: derivative.output, reasons: reasons,
                                 derivative: derivative, recorded: recorded, adopted: nil, replaces: replaces))
    }

    /// The lock line `entry` of a file holding its digest, with the numbers the file itself gives:
    /// its size (`size`, from `stat`), and its format and width and height from its header, read
    /// with its digest (`content`; outputs carry no orientation, so the displayed size is the
    /// stored one). A file that is no image is a JSON answer (`info`, `average-hue`: 0x0), unless
    /// the engine draws no images (`imagesOnly` false: the tests' stand-in, whose outputs are text).
    /// Nil when the size is unknown or the file is an image whose header gives no size: not adopted.
    public static func measured(_ entry: LockFile.Entry, content: ContentDigests.Content, size: Int64?, imagesOnly: Bool = true) -> LockFile.Entry? {
        guard let size else { return nil }
        var measured = entry
        measured.bytes = size
        if content.format.isEmpty {
            if imagesOnly { (measured.format, measured.width, measured.height) = ("json", 0, 0) }
        } else {
            guard content.width > 0, content.height > 0 else { return nil }
            (measured.format, measured.width, measured.height) = (content.format, content.width, content.height)
        }
        return measured
    }

    /// Whether the file's header (`content`, read with its digest) gives the lock line's format,
    /// width and height (a line of an older lock that gives no format is not called false for that).
    public static func headerAgrees(_ entry: LockFile.Entry, content: ContentDigests.Content, imagesOnly: Bool = true) -> Bool {
        guard let measured = measured(entry, content: content, size: entry.bytes, imagesOnly: imagesOnly) else { return false }
        return (entry.format.isEmpty || entry.format == measured.format) && entry.width == measured.width && entry.height == measured.height
    }

    /// Fields of the record outside the action key that differ: updated without rendering.
    static func recordChanges(old: OutputRecord, new: Derivative) -> [String] {
        var changes: [String] = []
        if old.acl != new.acl.rawValue { changes.append("acl \(old.acl) → \(new.acl.rawValue)") }
        if old.rule != new.rule { changes.append("rule '\(old.rule)' → '\(new.rule)'") }
        if old.style != new.style { changes.append("style name \(old.style ?? "none") → \(new.style ?? "none")") }
        if old.matrix != new.matrix { changes.append("matrix \(old.matrix) → \(new.matrix)") }
        if !PathKey.same(old.source, new.source) { changes.append("source \(old.source) → \(new.source)") }
        return changes
    }

    /// Which components changed, in words.
    static func reasons(old: OutputRecord, new: Derivative) -> [String] {
        var reasons: [String] = []
        let components = new.components
        if old.engine != components.engine {
            reasons.append(engineChange(old: old.engine, new: components.engine))
        }
        if old.pipeline != components.pipeline {
            let label = new.style.map { "style '\($0)'" } ?? "process of \(new.rule)"
            reasons.append("\(label): \(pipelineChange(old: old.pipeline, new: components.pipeline))")
        }
        if old.sourceDigest != components.sourceDigest { reasons.append("source changed") }
        if old.dependencies != components.dependencies { reasons.append(dependencyChange(old: old.dependencies, new: components.dependencies)) }
        if old.encoder != components.encoder { reasons.append("encoder settings: \(old.encoder) → \(components.encoder)") }
        if old.actionKey != components.actionKey, reasons.isEmpty { reasons.append("action key changed") }
        return reasons
    }

    static func engineChange(old: String, new: String) -> String {
        func parts(_ text: String) -> [String: String] {
            Dictionary(text.split(separator: " ").compactMap { part -> (String, String)? in
                let pieces = part.split(separator: "/", maxSplits: 1)
                return pieces.count == 2 ? (String(pieces[0]), String(pieces[1])) : nil
            }, uniquingKeysWith: { a, _ in a })
        }
        let a = parts(old), b = parts(new)
        var changes: [String] = []
        if a["libvips"] != b["libvips"] { changes.append("libvips \(a["libvips"] ?? "?") → \(b["libvips"] ?? "?")") }
        // Codec and colour libraries, by name: "libwebp 1.3.2 → 1.4.0".
        for name in Set(a.keys).union(b.keys).sorted() where name != "libvips" && name != "derive-render" && a[name] != b[name] {
            changes.append("\(name) \(a[name] ?? "none") → \(b[name] ?? "none")")
        }
        if a["derive-render"] != b["derive-render"] {
            changes.append("Derive render version \(a["derive-render"] ?? "?") → \(b["derive-render"] ?? "?")")
        }
        return changes.isEmpty ? "engine \(old) → \(new)" : changes.joined(separator: ", ")
    }

    /// `resize,w_200 → resize,w_240`: only the actions and parameters that differ.
    static func pipelineChange(old: String, new: String) -> String {
        let a = old.split(separator: "/").dropFirst().map(String.init)
        let b = new.split(separator: "/").dropFirst().map(String.init)
        func name(_ action: String) -> Substring { action.split(separator: ",", maxSplits: 1).first ?? "" }
        guard a.count == b.count, zip(a, b).allSatisfy({ name($0) == name($1) }) else {
            return "\(old.dropFirst("image/".count)) → \(new.dropFirst("image/".count))"
        }
        var olds: [String] = [], news: [String] = []
        for (x, y) in zip(a, b) where x != y {
            let xi = x.split(separator: ",").dropFirst().map(String.init)
            let yi = y.split(separator: ",").dropFirst().map(String.init)
            let removed = xi.filter { !yi.contains($0) }, added = yi.filter { !xi.contains($0) }
            olds.append(([String(name(x))] + removed).joined(separator: ","))
            news.append(([String(name(y))] + added).joined(separator: ","))
        }
        return "\(olds.joined(separator: "/")) → \(news.joined(separator: "/"))"
    }

    /// For tests and tools: the text of a pipeline change.
    public static func pipelineChangeText(_ old: String, _ new: String) -> String { pipelineChange(old: old, new: new) }

    static func dependencyChange(old: String, new: String) -> String {
        let a = Set(old.split(separator: ",").map(String.init)), b = Set(new.split(separator: ",").map(String.init))
        let changed = b.subtracting(a).map { $0.split(separator: "=").first.map(String.init) ?? $0 }.sorted()
        if changed.isEmpty { return "dependencies removed: \(a.subtracting(b).sorted().joined(separator: ", "))" }
        return changed.map { item -> String in
            if item.hasPrefix("object:") { return "watermark object '\(item.dropFirst("object:".count))' changed" }
            if item.hasPrefix("font:") { return "font '\(item.dropFirst("font:".count))' changed" }
            if item.hasPrefix("fallback-font:") {
                let named = item.dropFirst("fallback-font:".count)
                let type = named.prefix { $0 != ":" }, family = named.dropFirst(type.count + 1)
                return "font '\(family)' (fallback for '\(type)') changed"
            }
            if item == Expansion.textEnvironmentItem {
                return "the environment text is drawn under changed (\(TextDrawing.environmentVariables.filter { !TextDrawing.languageVariables.contains($0) }.joined(separator: ", ")), \(TextDrawing.environmentPrefixes.map { $0 + "…" }.joined(separator: ", ")))"
            }
            return "\(item) changed"
        }.joined(separator: ", ")
    }
}

extension Planner {
    /// What is at `path` in words, not following a link: "a folder", "a FIFO", … (attack 36's F9:
    /// a FIFO at an output path was called "a folder or a symbolic link").
    public static func kindOfNonFile(_ path: String) -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "something that is not a regular file" }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return "a folder"
        case S_IFLNK: return "a symbolic link"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFREG: return "a regular file of other bytes"
        default: return "something that is not a regular file"
        }
    }
}
