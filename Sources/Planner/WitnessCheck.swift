import Confinement
import Foundation

/// One stat pass per command (issue 15): the witness and its record are read once, the inputs
/// stat'ed once (the snapshot) and the outputs once, and the answer serves every later step of
/// the command: the no-op answer, the touched-only answer and its refresh, the edited-source
/// plan, and the snapshot the build saves its witness with. The CLI's no-op check runs in a
/// session of its own; the session that plans takes the check over (`BuildSession.adopt`) only
/// when it planned from the same inputs (`NoOpWitness.Snapshot.inputsKey`).
///
/// Safety: the snapshot is the build's "before planning" snapshot, as ninja stats once before it
/// builds. A file changed after it is not hidden: the witness saved after the build holds the
/// older stat, so the next run sees the change and rebuilds. Under the build lock the check is
/// used only if no other build changed the state since (`isCurrent`).
public struct WitnessCheck: Sendable {
    /// The inputs as stat'ed; nil when there was no witness to compare with (or a manifest file
    /// could not be read): the build takes its own snapshot then.
    public let snapshot: NoOpWitness.Snapshot?
    /// The output count when the witness holds outright.
    public let held: Int?
    /// What moved, when only input files did: touched (same bytes) and edited files. Nil when
    /// anything else changed, when the witness held, or with the incremental paths off.
    public let found: TouchedInputs.Found?
    /// Whether the incremental paths were asked for (`DERIVE_INCREMENTAL`).
    public let incremental: Bool
    /// The witness as read.
    let saved: NoOpWitness.Saved?
    /// The output half as stat'ed when it held (the refresh saves the witness from it).
    var outputHalf: NoOpWitness.OutputHalf?
    /// The witness, its record and the state database (with its journal) as stat'ed before
    /// anything was read: another build changes at least one of them.
    let stateFiles: [FileStat?]
    /// The lock the witness covers (named in the no-op answer's line about adopted outputs).
    public var lockPath: String = ""
    /// The old outputs kept behind the witness's links, as the full plan names them (the no-op
    /// answer names them too); nil when they cannot be named, and then there is no no-op answer.
    public var keptBehindLinks: [OrphanBehindLink]? = []

    /// The number of outputs when there is nothing to do: the witness holds, or only inputs'
    /// stats moved and each holds the bytes the last plan read.
    public var unchanged: Int? {
        guard keptBehindLinks != nil else { return nil }
        return held ?? found.flatMap { $0.edited.isEmpty ? $0.outputs : nil }
    }

    /// How many outputs the state marked as adopted from the lock unverified when the witness
    /// was saved: what a no-op answer says besides the count (`unchanged`).
    public var adoptedUnverified: Int { saved?.adoptedUnverified ?? 0 }

    /// How many files of the lock's `left` lines the witness covers (a no-op `check` names them).
    public var leftFiles: Int { saved?.left.count ?? 0 }

    /// The state database's stat when the witness vouches for it: its output half held (the
    /// database, as every output, the lock and the index, is as the last clean build left it,
    /// and one written within the racy margin of saving held the bytes it held then), so the
    /// file with this stat is the one that build checked and wrote (`StateStore.open` skips its
    /// integrity check while the file keeps this stat). Nil when it does not vouch.
    public var vouchedDatabase: FileStat? {
        guard held != nil || found != nil, stateFiles.count > 2 else { return nil }
        return stateFiles[2]
    }

    /// The witness's "rows verified" token (`VerifiedRows`) when it vouches for the database as
    /// `vouchedDatabase` does; the store still compares it with the file before trusting a row.
    public var vouchedRows: String? {
        guard vouchedDatabase != nil else { return nil }
        return saved?.rowsVerified
    }

    /// Whether the answer is the touched-only path's (its refresh saves the witness again).
    public var answeredByTouch: Bool { held == nil && unchanged != nil }

    static func stateFilePaths(_ inputs: NoOpWitness.Inputs) -> [String] {
        let folder = inputs.manifest.stateFolder + "/"
        return [folder + StateFiles.witness, folder + StateFiles.witnessInputs, folder + StateFiles.database,
                folder + StateFiles.database + "-wal"]
    }

    /// Reads the witness, takes the snapshot and decides, once.
    public static func take(_ inputs: NoOpWitness.Inputs, disk: any Disk, incremental: Bool,
                            racyMargin: Int64 = 1_000_000_000) -> WitnessCheck {
        let stateFiles = disk.stats(stateFilePaths(inputs))
        guard let saved = NoOpWitness.read(inputs, disk: disk), let snapshot = NoOpWitness.snapshot(inputs, disk: disk) else {
            return WitnessCheck(snapshot: nil, held: nil, found: nil, incremental: incremental, saved: nil, stateFiles: stateFiles, lockPath: inputs.lockPath)
        }
        let kept = keptOutputsBehindLinks(saved, inputs)
        // Names narrowing gave or gave up because of other manifests, asked again: another
        // answer takes the full plan, which decides those names anew (neither fast path answers).
        guard NoOpWitness.answersHold(saved, inputs) else {
            return WitnessCheck(snapshot: snapshot, held: nil, found: nil, incremental: incremental, saved: saved, stateFiles: stateFiles,
                                lockPath: inputs.lockPath, keptBehindLinks: kept)
        }
        // The output half is stat'ed at most once, whichever path asks first.
        var outputsHold: Bool?
        var half: NoOpWitness.OutputHalf?
        func outputs() -> Bool {
            if outputsHold == nil {
                half = NoOpWitness.outputsNow(saved, inputs, disk: disk, racyMargin: racyMargin)
                outputsHold = half != nil
            }
            return outputsHold ?? false
        }
        if snapshot.digest == saved.head[0], NoOpWitness.inputsHold(saved, snapshot, disk: disk, racyMargin: racyMargin), outputs() {
            return WitnessCheck(snapshot: snapshot, held: saved.outputs.count, found: nil, incremental: incremental, saved: saved,
                                outputHalf: half, stateFiles: stateFiles, lockPath: inputs.lockPath, keptBehindLinks: kept)
        }
        let found = incremental
            ? TouchedInputs.changes(inputs, saved: saved, snapshot: snapshot, disk: disk, racyMargin: racyMargin, outputsHold: outputs)
            : nil
        return WitnessCheck(snapshot: snapshot, held: nil, found: found, incremental: incremental, saved: saved, stateFiles: stateFiles,
                            lockPath: inputs.lockPath, keptBehindLinks: kept)
    }

    /// Whether the state (witness, record, database) is as this check read it: no build ran
    /// since. Under the build lock, a check that is not current is taken again.
    public func isCurrent(_ inputs: NoOpWitness.Inputs, disk: any Disk) -> Bool {
        disk.stats(Self.stateFilePaths(inputs)) == stateFiles
    }

    /// Whether a session with `inputs` may use this check taken by another session of the same
    /// command: the same manifest bytes (and stats), engine, folders, fonts, lock and manifest
    /// paths, none of the manifest files changed within the racy margin (an edit in the same
    /// clock tick keeps its stat), and the state as the check read it.
    public func fits(_ inputs: NoOpWitness.Inputs, disk: any Disk, racyMargin: Int64 = 1_000_000_000) -> Bool {
        guard let snapshot else { return isCurrent(inputs, disk: disk) }
        guard snapshot.manifestNewest < snapshot.taken - racyMargin, let key = NoOpWitness.inputsKey(inputs, disk: disk),
              key == snapshot.inputsKey else { return false }
        return isCurrent(inputs, disk: disk)
    }

    /// Whether refreshing after this answer would write anything: a touched-only answer with
    /// touched files, or a witness that held through racy files' bytes. A plain no-op takes no lock.
    /// A witness whose only racy line is the state database's identity is not saved again: its
    /// check reads 100 bytes, and saving it again stat'ed every output twice more (issue 15).
    public var needsRefresh: Bool {
        if answeredByTouch { return !(found?.touched.isEmpty ?? true) }
        return held != nil && (saved.map(NoOpWitness.racyBeyondTheState) ?? false)
    }

    /// After this check answered "nothing to do", under the build lock: the witness saved again
    /// (`TouchedInputs.refresh`, `NoOpWitness.refresh`) from what the check read, when no build
    /// changed the state since; otherwise from a check taken again.
    public func refresh(_ inputs: NoOpWitness.Inputs, disk: any Disk, store: () -> StateStore?, racyMargin: Int64 = 1_000_000_000) {
        guard needsRefresh else { return }
        let check = isCurrent(inputs, disk: disk) ? self : Self.take(inputs, disk: disk, incremental: incremental, racyMargin: racyMargin)
        if check.answeredByTouch {
            guard let store = store() else { return }
            TouchedInputs.refresh(inputs, found: check.found, disk: disk, store: store, racyMargin: racyMargin)
        } else if check.held != nil, let saved = check.saved {
            // From the check's own stats; a check that began within the racy margin of the
            // witness's saving saves nothing (its racy files would still be racy): a later no-op
            // refreshes, rather than this one stat'ing everything twice more.
            if let snapshot = check.snapshot, let half = check.outputHalf {
                NoOpWitness.refresh(inputs, saved: saved, snapshot: snapshot, outputs: half, disk: disk, racyMargin: racyMargin)
            } else {
                NoOpWitness.refresh(inputs, saved: saved, disk: disk, racyMargin: racyMargin)
            }
        }
    }
}
