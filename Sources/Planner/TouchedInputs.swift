import Confinement
import Crypto
import Foundation
import ProcessLanguage

/// The touched-only path (issue 15): when the witness fails only because some source files' (or
/// fonts') stats moved while their bytes are the ones the last plan read, that plan's result
/// stands, so the answer is "nothing to do" without expanding rules or reading the state.
///
/// Beside the witness, a record of every input file the snapshot stats: its stat then and the
/// content digest the plan used for it. It is read only when the witness fails. The path is
/// taken only when everything else the witness covers is as it was (manifest files' bytes and
/// stats, engine identity, folder identities, the listing's names, the outputs, lock, index and
/// state database), and each file whose stat moved is the same file (inode) of the same size,
/// rehashed to the recorded digest. Anything else falls back to the full plan.
public enum TouchedInputs {
    public static let fileName = StateFiles.witnessInputs
    /// The first line; `StateOwnership` recognises Derive's file by it.
    public static let header = "derive-witness-inputs/1"

    /// What the record says, when it belongs to the witness saved now.
    struct Recorded {
        var shape: String
        var recorded: Int64
        var files: [String]
        var stats: [FileStat?]
        var digests: PathDictionary<String>
    }

    /// What the check found: the witness's output count and the files whose stat moved.
    public struct Found: Sendable {
        public let outputs: Int
        /// Touched files (same bytes) with their stats now.
        public let touched: PathDictionary<FileStat>
        /// Edited files (other bytes, or another file at the path) with their stats now: empty
        /// for the touched-only path; what `EditedSources` plans again.
        public let edited: PathDictionary<FileStat>
        /// Every input file the snapshot stat'ed, with its stat now (nil: missing).
        public var stats: PathDictionary<FileStat?> { PathDictionary(zip(snapshot.files, snapshot.stats), uniquingKeysWith: { a, _ in a }) }
        let snapshot: NoOpWitness.Snapshot
        let saved: NoOpWitness.Saved
        let digests: PathDictionary<String>
        /// The outputs' files the witness lists (every recorded output's, when it was saved).
        public var outputFiles: [String] { saved.outputs }
    }

    static func path(_ inputs: NoOpWitness.Inputs) -> String { inputs.manifest.stateFolder + "/" + fileName }

    static func remove(_ inputs: NoOpWitness.Inputs, disk: any Disk) {
        if disk.stat(path(inputs)) != nil { try? disk.remove(path(inputs)) }
    }

    /// Written before the witness it belongs to (named by the snapshot digest and saving time).
    static func save(_ inputs: NoOpWitness.Inputs, snapshot: NoOpWitness.Snapshot, recorded: Int64, disk: any Disk,
                     key: SymmetricKey, digest: (String, FileStat) -> String?) {
        var text = header + "\n" + snapshot.digest + "\n" + String(recorded) + "\n" + snapshot.shape + "\n"
        text.reserveCapacity(snapshot.files.count * 160)
        for (file, stat) in zip(snapshot.files, snapshot.stats) {
            if let stat {
                text += (digest(file, stat) ?? "-") + " \(stat.size) \(stat.mtime) \(stat.ctime) \(stat.inode) "
            } else {
                text += "- - - - - "
            }
            text += JSONText.string(file) + "\n"
        }
        do { _ = try disk.writeAtomically(WitnessSeal.sealed(text, domain: sealDomain, key: key), to: path(inputs)) } catch { WitnessWriteFailures.note(error, writing: path(inputs)) }
    }

    static let sealDomain = "derive-noop-witness-inputs/1"


    /// The record, when it belongs to `saved`; nil otherwise or when garbled.
    static func readRecorded(_ inputs: NoOpWitness.Inputs, saved: NoOpWitness.Saved, disk: any Disk) -> Recorded? {
        guard disk.stat(path(inputs)) != nil, let data = try? disk.read(path(inputs)) else { return nil }
        // Only as Derive sealed it: a digest swapped by hand is not taken (attack 30's F2).
        guard let body = WitnessSeal.opened([UInt8](data), domain: sealDomain, key: WitnessSeal.key(stateFolder: inputs.manifest.stateFolder))
        else { return nil }
        let lines = body.split(separator: 0x0A, omittingEmptySubsequences: true)
        guard lines.count >= 4 else { return nil }
        let head = lines.prefix(4).map { String(decoding: $0, as: UTF8.self) }
        guard head[0] == header, head[1] == saved.head[0], Int64(head[2]) == saved.recorded else { return nil }
        guard let entries = entries(lines.dropFirst(4)) else { return nil }
        return Recorded(shape: head[3], recorded: saved.recorded, files: entries.files, stats: entries.stats, digests: entries.digests)
    }

    /// The record's lines after its head, one input file each: `digest size mtime ctime inode
    /// "path"` (five fields, then the quoted path; `-` for an unknown digest, five `-` for a file
    /// missing then). Nil when one is garbled. Parsed from the bytes, each field a slice of its
    /// line (issue 15: a touched or edited source's plan made a `String` of every field and read
    /// every number through `Int64(String)`, five of each per source); `TouchedInputsParseTests` holds the
    /// answer equal to that `String` parse's, line by line.
    static func entries(_ lines: ArraySlice<ArraySlice<UInt8>>) -> (files: [String], stats: [FileStat?], digests: PathDictionary<String>)? {
        var files: [String] = [], stats: [FileStat?] = [], digests: PathDictionary<String> = [:]
        files.reserveCapacity(lines.count)
        stats.reserveCapacity(lines.count)
        var fields: [ArraySlice<UInt8>] = []
        fields.reserveCapacity(5)
        for line in lines {
            fields.removeAll(keepingCapacity: true)
            var rest = line[...]
            while fields.count < 5, let space = rest.firstIndex(of: 0x20) {
                fields.append(rest[rest.startIndex..<space])
                rest = rest[(space + 1)...]
            }
            guard fields.count == 5, let file = NoOpWitness.unquote(rest) else { return nil }
            files.append(file)
            if fields[1].elementsEqual(dash) {
                stats.append(nil)
                continue
            }
            guard let size = integer(fields[1], as: Int64.self), let mtime = integer(fields[2], as: Int64.self),
                  let ctime = integer(fields[3], as: Int64.self), let inode = integer(fields[4], as: UInt64.self) else { return nil }
            stats.append(FileStat(size: size, mtime: mtime, inode: inode, ctime: ctime))
            if !fields[0].elementsEqual(dash) { digests[file] = String(decoding: fields[0], as: UTF8.self) }
        }
        return (files, stats, digests)
    }

    private static let dash: [UInt8] = [0x2D]

    /// A field's number exactly as `T(String(decoding: field, as: UTF8.self))` reads it: up to 18
    /// ASCII digits (no sign, so no overflow) are read here, anything else by that parse.
    static func integer<T: FixedWidthInteger>(_ field: ArraySlice<UInt8>, as type: T.Type) -> T? {
        if !field.isEmpty, field.count <= 18 {
            var value: T = 0
            var digits = true
            for byte in field {
                guard byte >= 0x30, byte <= 0x39 else { digits = false; break }
                value = value * 10 + T(byte - 0x30)
            }
            if digits { return value }
        }
        return T(String(decoding: field, as: UTF8.self))
    }

    /// The output count when only input stats moved and every moved file holds the bytes the last
    /// plan read; nil means "plan".
    public static func check(_ inputs: NoOpWitness.Inputs, disk: any Disk, racyMargin: Int64 = 1_000_000_000) -> Found? {
        guard let found = changes(inputs, disk: disk, racyMargin: racyMargin), found.edited.isEmpty else { return nil }
        return found
    }

    /// The input files that moved since the witness, when nothing else it covers did (the same
    /// listing, manifest files, engine, folders, outputs, lock, index and state database):
    /// those holding the bytes the last plan read (touched) and those that do not (edited: other
    /// bytes, or another file put in its place). Nil when anything else changed, or a moved file
    /// was missing then or now, or its recorded digest is unknown: the full plan.
    public static func changes(_ inputs: NoOpWitness.Inputs, disk: any Disk, racyMargin: Int64 = 1_000_000_000) -> Found? {
        guard let saved = NoOpWitness.read(inputs, disk: disk), let snapshot = NoOpWitness.snapshot(inputs, disk: disk) else { return nil }
        var outputsHold: Bool?
        return changes(inputs, saved: saved, snapshot: snapshot, disk: disk, racyMargin: racyMargin) {
            if outputsHold == nil { outputsHold = NoOpWitness.outputsHold(saved, inputs, disk: disk, racyMargin: racyMargin) }
            return outputsHold ?? false
        }
    }

    /// `changes` from a witness already read and a snapshot already taken (`WitnessCheck`: one
    /// stat pass per command); `outputsHold` says whether the witness's output half holds.
    static func changes(_ inputs: NoOpWitness.Inputs, saved: NoOpWitness.Saved, snapshot: NoOpWitness.Snapshot, disk: any Disk,
                        racyMargin: Int64, outputsHold: () -> Bool) -> Found? {
        guard let recorded = readRecorded(inputs, saved: saved, disk: disk), snapshot.shape == recorded.shape,
              snapshot.files.elementsEqual(recorded.files, by: PathKey.same), snapshot.stats.count == recorded.stats.count, outputsHold() else { return nil }
        var touched: PathDictionary<FileStat> = [:]
        var edited: PathDictionary<FileStat> = [:]
        let clock = disk.now()   // after the snapshot's stats (`FileStat.lastChange`)
        for (index, file) in snapshot.files.enumerated() {
            let old = recorded.stats[index], now = snapshot.stats[index]
            if old == nil, now == nil { continue }   // a font missing then and now
            let settled = old.map { $0.lastChange(now: clock, margin: racyMargin) < recorded.recorded - racyMargin } ?? false
            if let old, old == now, settled { continue }
            guard let old, let now, let digest = recorded.digests[file] else { return nil }
            // A touch only: the same file, the same size, the bytes the plan read (stat, read, stat).
            // Hashed streaming, as `ContentDigests` hashes a large source: a touched file of any
            // size costs 64 KiB of memory, not its size, on every run until the witness is saved.
            if old.inode == now.inode, old.size == now.size, let hashed = try? disk.digestAndHead(file, headBytes: 0).digest,
               disk.stats([file]).first == .some(now), hashed == digest {
                // Its stat unchanged but not settled against the record (a file dated ahead whose
                // date the clock has passed): touched too, so the refresh records it again now and
                // later no-ops only stat it, instead of hashing it on every run.
                if old != now || !settled { touched[file] = now }
                continue
            }
            edited[file] = now
        }
        return Found(outputs: saved.outputs.count, touched: touched, edited: edited, snapshot: snapshot, saved: saved,
                     digests: recorded.digests)
    }

    /// After a touched-only answer, under the build lock: the stat cache learns the touched
    /// files' new stats (rows read by key) and the witness is saved again with them, so the next
    /// run is a plain no-op. Racy inputs are vouched for by their bytes (`NoOpWitness.save`);
    /// when one cannot be, no witness is left and the next run plans.
    public static func refresh(_ inputs: NoOpWitness.Inputs, disk: any Disk, store: StateStore, racyMargin: Int64 = 1_000_000_000) {
        refresh(inputs, found: check(inputs, disk: disk, racyMargin: racyMargin), disk: disk, store: store, racyMargin: racyMargin)
    }

    /// `refresh` with the answer a `WitnessCheck` already found (the caller checked, under the
    /// build lock, that no build changed the state since).
    static func refresh(_ inputs: NoOpWitness.Inputs, found: Found?, disk: any Disk, store: StateStore, racyMargin: Int64) {
        guard let found, found.edited.isEmpty, !found.touched.isEmpty else { return }
        let now = disk.now()
        var rows: [FileRecord] = []
        for (file, stat) in found.touched.sortedByKey() {
            guard var row = try? store.file(at: file), row.digest == found.digests[file] else { continue }
            row.size = stat.size; row.mtime = stat.mtime; row.ctime = stat.ctime
            row.inode = Int64(bitPattern: stat.inode); row.recorded = now
            rows.append(row)
        }
        do { try store.saveFiles(rows) } catch { WitnessWriteFailures.note(error, writing: store.folder + "/" + StateStore.fileName); return }
        let stateFile = inputs.manifest.stateFolder + "/" + StateStore.fileName
        NoOpWitness.save(inputs, snapshot: found.snapshot, outputs: found.saved.outputs, left: found.saved.left, links: found.saved.links, disk: disk, valid: true,
                         adoptedUnverified: found.saved.adoptedUnverified, expected: { $0 == stateFile ? nil : (found.saved.racy[$0] ?? "unknown") },
                         inputDigest: { file, _ in found.digests[file] }, planDigest: { file, _ in found.digests[file] },
                         stateCommitted: store.holdsOnlyOwnCommits, rowsVerified: store.verifiedRowsToken(), asked: found.saved.asked, racyMargin: racyMargin)
    }
}
