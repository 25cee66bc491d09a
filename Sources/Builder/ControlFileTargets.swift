import Confinement
import Foundation
import Manifest
import Planner

/// What the lock and the index must hold for the outputs the state records: one definition used
/// by the build (which writes them) and by `plan` and `check` (which show how the files on disk
/// differ), so a plan never says "No changes" while the build would rewrite one of them.
struct ControlFileTargets {
    let lockPath: String
    /// The lock's bytes: the outputs, then the files left in place (`left`).
    private(set) var lock: Data
    /// Files left in place the lock keeps with the ACL they were left under (`LockFile.Left`):
    /// the lock's own still there, those the plan leaves, and those the build adds (`addLeft`).
    private(set) var left: PathDictionary<LockFile.Left>
    /// The lock's `left` lines let go (the file is gone, or the path is an output again), with why.
    let droppedLeft: [(path: String, why: String)]
    /// Whether any output recorded before this plan's deletions is private.
    private let listsPrivate: Bool
    private let lockEntries: [LockFile.Entry]
    private let lockIndexLine: LockFile.Index?
    private let manifestName: String
    /// The index's file and bytes, when the manifest has one.
    let index: (path: String, data: Data)?
    /// Indexes Derive wrote, path → digest written (one at an old path when `index:` moved).
    let written: PathDictionary<String>
    /// The digest a build noted, before it wrote the lock, of the index it was about to replace
    /// (judged Derive's, with no record at its path: a recovered state, a fresh clone); nil when
    /// none is pending. A build killed between the lock and the index leaves these bytes at the
    /// index path while the lock names the new ones (attack 39c's N3): they are still Derive's.
    let displacedIndex: String?
    /// The device and inode each index record says Derive wrote (nil: a record from before they
    /// were kept). An old index is removed only while it is still that file (attack 17's N7).
    let writtenIdentities: PathDictionary<FileIdentity?>
    /// Old indexes known by a killed build's note of writing them, not by a record
    /// (`StateStore.notedIndexesInFormerBucketFolders`): removed on the noted bytes alone, as the
    /// files a killed build installed and never recorded are (`Planner.uncommittedOutputs`).
    let notedOldIndexes: PathSet
    /// An old index known only from the lock's first line (no state): never deleted, since
    /// nothing but that untrusted line says Derive wrote it (a user's copy of the index has the
    /// same bytes); kept and named. True when it holds an index Derive writes for the lock.
    let writtenFromLock: PathDictionary<Bool>
    /// Locks Derive wrote at another path than the lock's now (`lock:` moved), path → what it
    /// wrote there: each is removed while it is still that file with those bytes (`OldLock`).
    let oldLocks: PathDictionary<WrittenLock>
    /// Every recorded output's file: what the witness stats.
    let files: [String]
    /// The outputs recorded (with the plan's adoptions): they vouch for an index too.
    let recorded: PathDictionary<OutputRecord>
    /// Every output the state, the lock's adoptions and updates vouch for before this plan's
    /// deletions and renders: an index listing some of them is Derive's.
    private let vouching: PathDictionary<OutputRecord>
    /// Outputs the plan renders under an action key nothing vouches for yet: their bytes are known
    /// only after rendering, so the lock (and the index, which lists their sizes) are rewritten.
    let renderedAnew: [String]
    /// A planned output's source lacks the colour or placeholder the index lists: rendered by the
    /// build, so the index (and the lock, which records its digest) are written then.
    let summariesPending: Bool
    /// What the plan changes in the outputs, said as the reason the lock and index are rewritten.
    private let planChanges: String?
    /// What decides whether an index with no record of writing it is Derive's (adoption from
    /// the lock), and whether `--overwrite` replaces a user's file there.
    private var vouchingLock: LockFile? { lockSource.lock }
    /// Parses the lock only when an index's ownership is in question (a 40 000-entry lock took a
    /// fifth of an edited source's plan to parse, for an index that was current).
    private let lockSource: Planner
    private let manifest: Manifest
    private let overwrite: Bool
    /// What a refusal adds while the lock that could vouch for the index is not valid
    /// (`Planner.lockRefusalNote`). Asked only when a refusal is written: a plan that refuses
    /// nothing never reads the lock (issue 15: an edited source's plan reads only the state).
    private var lockNote: String? { lockSource.lockRefusalNote }
    /// Other manifests' states: an index one of them records is theirs, not adopted here.
    private let claims: ForeignClaimLookup
    /// What the state and the sources say the index holds (nil without a state).
    private let known: IndexAdoption.KnownFields?
    /// Why the index may not be written: it is public and would list private outputs
    /// (`PublicIndex`); said after the index's path. Nil when it may.
    let publicIndexLeak: String?

    /// `adopting`: a plan whose adoptions (outputs a fresh clone's lock vouches for) count as
    /// recorded, as they will be once the build records them.
    ///
    /// The records come from the plan when it was made from the state as it still is (nothing
    /// built, updated, adopted or deleted since), else from the state.
    /// `held`: lock lines kept as they are while a source could not be read (`Plan.heldLockLines`;
    /// the plan's own when a plan is given).
    /// `left`: files the build left in place, with the ACL each was left under (with a plan,
    /// those only the lock names are added from it).
    /// `indexExcluding`: recorded outputs the build is about to delete (its orphans), left out of
    /// the index it writes before deleting them (attack 20's S3); the lock keeps their lines
    /// while their files are there.
    init(planner: Planner, adopting plan: Plan? = nil, stateUnchangedSince planned: Plan? = nil, claims: ForeignClaimLookup? = nil,
         held: PathDictionary<LockFile.Entry> = [:], left added: [LockFile.Left] = [], indexExcluding orphans: PathSet = []) throws {
        var recorded = try (plan ?? planned)?.recorded ?? planner.store.allOutputs()
        let stateRecords = recorded
        for item in plan?.adoptions ?? [] {
            if let record = Builder.adoptedRecord(item, digests: planner.digests, time: 0) { recorded[record.path] = record }
        }
        // Updates (an ACL, a rule name) change the index as the build will write it.
        for item in plan?.updates ?? [] {
            if let record = Builder.updatedRecord(item) { recorded[record.path] = record }
        }
        self.vouching = recorded
        // An old index listed these: one a build leaves in place is private if any is (V2).
        listsPrivate = recorded.values.contains { !(BucketACL(rawValue: $0.acl)?.isPublic ?? false) }
        // For a plan: the records as the build will leave them, so the plan lists exactly the
        // lock and index the build writes. Deletions (deleted, kept in place, already gone) drop
        // their records. A create or rebuild under an action key the state (or, with no record,
        // the lock) already vouches for renders those same bytes again (outputs are
        // deterministic); any other makes bytes not known before rendering, so both files change.
        var renderedAnew: [String] = []
        // Those outputs too go into the index once rendered, with the ACL the plan gives them.
        // (Their derivatives, not records made of them: a plan from scratch renders all its
        // outputs anew, and 200 000 records held 130 MB at the peak of `plan`.)
        var anew: [Derivative] = []
        if let plan {
            // A file the build cannot reach keeps its record, and so its line (`OrphanFate.unreachable`).
            for item in plan.deletions where !plan.unreachable.contains(item.output) { recorded[item.output] = nil }
            for item in plan.work {
                guard let derivative = item.derivative else { continue }
                let known: (digest: String, bytes: Int64, width: Int, height: Int, format: String)?
                if let old = item.recorded {
                    known = old.actionKey == derivative.actionKey && !old.format.isEmpty
                        ? (old.outputDigest, old.size, old.width, old.height, old.format) : nil
                } else if let entry = planner.lock?.entries[item.output], entry.actionKey == derivative.actionKey, !entry.format.isEmpty {
                    known = (entry.digest, entry.bytes, entry.width, entry.height, entry.format)
                } else {
                    known = nil
                }
                if let known {
                    recorded[item.output] = Builder.record(derivative, digest: known.digest, size: known.bytes, width: known.width,
                                                           height: known.height, format: known.format, time: 0)
                } else {
                    renderedAnew.append(item.output)
                    anew.append(derivative)
                }
            }
            planChanges = Self.describe(plan)
        } else {
            planChanges = nil
        }
        self.renderedAnew = renderedAnew
        // Sorted by key, then looked up: sorting the records themselves copies large structs.
        let outputs = recorded.keys.sorted().map { recorded[$0]! }
        files = outputs.map(\.file)
        self.recorded = recorded
        lockPath = planner.lockPath
        let manifest = planner.manifest
        self.manifest = manifest
        let listed = orphans.isEmpty ? outputs : outputs.filter { !orphans.contains($0.path) }
        publicIndexLeak = Self.publicIndexLeak(listed, renderedAnew: anew, manifest: manifest)
        if let declared = manifest.index, let bucket = manifest.bucket(named: declared.bucket) {
            let outputs = listed
            let path = bucket.path + "/" + declared.path
            let knownColours = SummaryShape.recorded(colours: try planner.store.sourceColours())
            let knownDominants = SummaryShape.recorded(colours: try planner.store.sourceDominants())
            let knownPlaceholders = SummaryShape.recorded(placeholders: try planner.store.placeholders())
            let colours = Self.sourceColours(outputs, known: knownColours)
            let dominants = Self.sourceColours(outputs, known: knownDominants)
            let placeholders = Self.placeholders(outputs, manifest: manifest, known: knownPlaceholders)
            let sizes = Self.sourceSizes(outputs, manifest: manifest, digests: planner.digests, disk: planner.disk)
            // With a state: what it and the sources say the index holds, to tell a hand edit.
            if planner.store.existed {
                known = IndexAdoption.KnownFields(colours: colours, dominants: dominants, placeholders: placeholders, sizes: sizes,
                                                  acls: stateRecords.mapValues(\.acl))
            } else {
                known = nil
            }
            // Sources the state has no colour or placeholder for at all (it was lost, a fresh
            // clone): the index on disk lends none (it and the lock's `indexDigest` both come from
            // the clone: verify 16's V4); `build`, `plan` and `check` render them before comparing
            // (`BuildSession.renderingSummaries`).
            let colourKnown = PathSet(outputs.filter { knownColours[$0.sourceDigest] != nil && knownDominants[$0.sourceDigest] != nil }.map(\.source))
            let placeholderKnown = PathSet(outputs.filter { knownPlaceholders[$0.sourceDigest] != nil }.map(\.source))
            index = (path, IndexWriter.json(outputs, manifest: manifest, sourceSizes: sizes,
                                            sourceColours: colours, dominants: dominants, placeholders: placeholders))
            // A planned output's source with a colour or placeholder the state lacks: the build renders it (`Builder.recordSourceSummaries`), so the
            // index's bytes, and the digest the lock records of them, are known only then.
            // (Sources that cannot be read now have no planned output and are left for later.)
            if let plan {
                let planned = PathSet(plan.items.filter { $0.kind != .delete }.map(\.output))
                let wanting = Set(manifest.rules.filter(\.placeholder).map(\.planName))
                summariesPending = outputs.contains { record in
                    planned.contains(record.path) && !record.sourceDigest.isEmpty
                        && ((!colourKnown.contains(record.source) && (colours[record.source] == nil || dominants[record.source] == nil))
                            || (wanting.contains(record.rule) && !placeholderKnown.contains(record.source) && placeholders[record.source] == nil))
                }
            } else {
                summariesPending = false
            }
        } else {
            index = nil
            summariesPending = false
            known = nil
        }
        // The lock names the index written with it, so a build without the state still finds it.
        // Lines kept while a source could not be read go in as they were, in the lock's order.
        let heldLines = ((plan ?? planned)?.heldLockLines ?? held).sortedByKey().map(\.value).filter { recorded[$0.path] == nil }
        var entries = outputs.map(Builder.lockEntry)
        if !heldLines.isEmpty {
            var all = PathDictionary(entries.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            for line in heldLines { all[line.path] = line }
            entries = all.keys.sorted().map { all[$0]! }
        }
        // Files left in place (rounds 19's V1, V2): the lock's own while they are there, and
        // those this plan or build leaves, each with the ACL it was left under.
        let leftByPlan = plan.flatMap { plan in
            plan.lockLeft.contains(where: \.present) ? planner.lockOnlyLeft(plan, acls: EffectiveACL(manifest)) : nil
        } ?? []
        let kept = planner.keptLeftLines(outputs: recorded, added: leftByPlan + added)
        left = heldLines.isEmpty ? kept.kept : kept.kept.filter { line in !heldLines.contains { PathKey.same($0.path, line.key) } }
        droppedLeft = kept.dropped
        lockEntries = entries
        lockIndexLine = Self.lockIndex(manifest: manifest, index: index)
        manifestName = planner.manifestName
        lock = LockFile.data(sorted: entries, manifest: planner.manifestName, index: lockIndexLine,
                             left: left.sortedByKey().map(\.value))
        // The index is recorded in the real folder it was written to (links resolved). One
        // recorded there, or under another spelling of the same file (the manifest or its bucket
        // reached through a symbolic link), is the current index; one in another real folder
        // (`index:` moved, or the bucket's link now points elsewhere) is an old one to remove.
        var written = try planner.store.controlFiles()
        if let current = index?.path {
            let key = Self.recordKey(current)
            for (path, digest) in written where !PathKey.same(path, current) && (PathKey.same(path, key) || FileIdentity.sameFile(path, current)) {
                written[path] = nil
                written[current] = written[current] ?? digest
            }
        }
        if !planner.store.existed, written.isEmpty, let old = try Self.oldIndexFromLock(planner: planner, current: index?.path, outputs: PathSet(files), claims: claims) {
            // No state of this manifest (lost, corrupt, a fresh clone): the lock says where the
            // index was written and what it held; one left at another path is Derive's old index.
            writtenFromLock = [old.file: old.holdsIndex]
        } else {
            writtenFromLock = [:]
        }
        // Derive's index where its bucket's folder took it (folders swapped on disk: attack 40a's
        // A8), and one a killed re-point installed in a folder no bucket names now and never
        // recorded (its note): old indexes, removed while they hold the recorded (noted) bytes.
        let identities = try planner.store.controlFileIdentities()
        var movedIdentities: PathDictionary<FileIdentity?> = [:]
        let folders = manifest.buckets.map { RealFolder.of($0.path) }
        for (path, digest) in written.sortedByKey() {
            guard let moved = try planner.store.movedWithBucketFolder(path, identity: identities[path] ?? nil, into: folders),
                  written[moved] == nil, !PathKey.same(moved, index?.path ?? "") else { continue }
            written[moved] = digest
            movedIdentities[moved] = identities[path] ?? nil
        }
        let noted = try planner.store.notedIndexesInFormerBucketFolders(current: folders, excluding: PathSet(Array(written.keys) + [index?.path ?? ""]))
        for (path, digest) in noted { written[path] = digest }
        notedOldIndexes = PathSet(noted.keys)
        self.written = written
        displacedIndex = try index.flatMap { try planner.store.pendingWrites()[Builder.displacedKey($0.path)] }.flatMap { $0.isEmpty ? nil : $0 }
        oldLocks = try planner.store.lockFiles().filter { path, _ in !OldLock.isCurrent(path, lockPath: planner.lockPath) }
        var allIdentities = identities
        for (path, identity) in movedIdentities where allIdentities[path] == nil { allIdentities[path] = identity }
        writtenIdentities = allIdentities
        lockSource = planner
        overwrite = planner.overwrite
        self.claims = claims ?? ForeignClaimLookup(stateFolder: manifest.stateFolder, owner: BuildSession.ownerName(planner.manifestPath))
    }

    /// Adds files the build left in place (an old output it could not delete, an old index) to
    /// the lock's `left` lines; the lock's bytes follow. A path that is an output is not one.
    mutating func addLeft(_ added: [LockFile.Left]) {
        var changed = false
        for line in added.map({ LockFile.located($0, in: manifest) }) {
            guard recorded[line.path] == nil else { continue }
            if let old = left[line.path] {
                let acl = BucketACL.morePrivate(BucketACL(rawValue: old.acl) ?? .private, BucketACL(rawValue: line.acl) ?? .private)
                guard acl.rawValue != old.acl || old.isGone else { continue }
                var merged = old
                merged.acl = acl.rawValue
                merged.gone = nil
                merged.goneSince = 0
                left[line.path] = merged
            } else {
                left[line.path] = line
            }
            changed = true
        }
        guard changed else { return }
        lock = LockFile.data(sorted: lockEntries, manifest: manifestName, index: lockIndexLine,
                             left: left.sortedByKey().map(\.value))
    }

    /// The lock's `left` line for an old index left in place at `file` (round 19's V2), nil when
    /// it is in no bucket's folder (serve never answers it). An index lists every output with its
    /// source's name and placeholder, so the old one is never more public than the index's key
    /// is now, than the index is now (`index:` moved with its `objects:` rule), nor, when any
    /// output it may list (recorded before this build, or left) is private, than private.
    func oldIndexLeftLine(_ file: String, planner: Planner) -> LockFile.Left? {
        Self.oldIndexLeftLine(file, manifest: manifest, left: left, listsPrivate: listsPrivate)
    }

    /// The same for any caller (`derive clean` leaves old indexes too): `left`, the `left` lines
    /// known (a line at the old index's key narrows it; any private one makes it private), and
    /// `listsPrivate`, whether any output the old index may list is private (the build: its
    /// records before this plan's deletions; clean: the state's records and the lock's lines).
    static func oldIndexLeftLine(_ file: String, manifest: Manifest, left: PathDictionary<LockFile.Left>, listsPrivate: Bool) -> LockFile.Left? {
        for bucket in manifest.buckets {
            guard let key = PathKey.below(bucket.path, file) ?? PathKey.below(RealFolder.of(bucket.path), file) else { continue }
            let acls = EffectiveACL(manifest)
            var acl = BucketACL.morePrivate(acls.of(bucket, key: key, left: left[bucket.name + "/" + key].flatMap { BucketACL(rawValue: $0.acl) }),
                                            acls.indexACL ?? .private)
            if listsPrivate || left.values.contains(where: { !(BucketACL(rawValue: $0.acl)?.isPublic ?? false) }) { acl = .private }
            return LockFile.Left(path: bucket.name + "/" + key, acl: acl.rawValue, why: LockFile.Left.oldIndex)
        }
        return nil
    }

    /// `3 created, 1 deleted, 2 kept in place`: what a plan changes in the outputs the lock and
    /// the index list; nil when it changes none.
    static func describe(_ plan: Plan) -> String? {
        // A file a killed build never recorded is in neither the lock nor the index.
        let deletions = PathSet(plan.deletions.map(\.output)).subtracting(plan.unreachable).subtracting(plan.uncommitted.keys)
        let kept = plan.kept.intersection(deletions).count
        let dropped = plan.recordsOnly.subtracting(plan.kept).intersection(deletions).count
        let parts = [(plan.count(.create), "created"), (plan.count(.rebuild), "rebuilt"), (plan.count(.update), "updated"),
                     (deletions.count - kept - dropped, "deleted"), (dropped, "dropped (file gone or changed)"),
                     (kept, "kept in place (record dropped)"), (plan.adoptions.count, "adopted from the lock")]
            .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    /// What the lock records of the index written with it: `bucket/path` and the digest.
    static func lockIndex(manifest: Manifest, index: (path: String, data: Data)?) -> LockFile.Index? {
        guard let index, let declared = manifest.index else { return nil }
        return LockFile.Index(path: declared.bucket + "/" + declared.path, digest: ContentDigests.digest(index.data))
    }

    /// The index the lock on disk records at another place than the current one, placed in a
    /// bucket of the manifest like any lock entry (the lock is untrusted input: a bad path, a
    /// bucket no longer in the manifest, a source or control file of the manifest, or a file
    /// another manifest's state claims is never a deletion). Nil when there is none.
    static func oldIndexFromLock(planner: Planner, current: String?, outputs: PathSet, claims: ForeignClaimLookup?) throws -> (file: String, holdsIndex: Bool)? {
        guard let recorded = planner.lock?.index, case .success(let placed?) = LockFile.place(recorded.path, in: planner.manifest) else { return nil }
        let file = placed.file
        guard !PathKey.same(file, current ?? ""), !(current.map { FileIdentity.sameFile(file, $0) } ?? false), planner.disk.exists(file) else { return nil }
        // Never an index: an output this build lists (it adopts or builds it) or a folder, so
        // neither is named with advice to delete it by hand.
        if outputs.contains(file) || FileKind.describe(file) == "a folder" { return nil }
        if WantedIdentities(planner.protectedFiles(sources: planner.listedSources())).contains(file) { return nil }
        let claims = claims ?? ForeignClaimLookup(stateFolder: planner.manifest.stateFolder, owner: BuildSession.ownerName(planner.manifestPath))
        if claims.index(file) != nil || claims.claimant(of: file, output: recorded.path) != nil { return nil }
        return (file, isDerivesOldIndex(file, recordedPath: recorded.path, planner: planner))
    }

    /// The lock's first line is untrusted too: a file it names as the old index is Derive's only
    /// when it is a `.json` file whose bytes are exactly an index Derive writes for the lock's
    /// own outputs (what the build that wrote that lock wrote beside it). A user's file, whatever
    /// digest the line gives, is never that.
    static func isDerivesOldIndex(_ file: String, recordedPath: String, planner: Planner) -> Bool {
        guard file.hasSuffix(".json"),
              let data = IndexAdoption.read(file, disk: planner.disk, trusted: 0, lockLines: { planner.presentVouchedLines(planner.lock) },
                                            digests: IndexAdoption.recordedDigests(lock: planner.lock)) else { return false }
        return IndexAdoption.isDerives(data, lock: planner.lock, manifest: planner.manifest,
                                       indexBucket: PathKey.bucket(of: recordedPath))
    }

    /// The displayed sizes of the outputs' sources, as read with their digests (an animation of
    /// unknown size is listed without one), and whether each is an animation (`SourceAnimation`: only GIF and WebP sources are read for it).
    static func sourceSizes(_ outputs: [OutputRecord], manifest: Manifest, digests: ContentDigests, disk: any Disk) -> PathDictionary<SourceSize> {
        var sizes: PathDictionary<SourceSize> = [:]
        for source in PathSet(outputs.map(\.source)) {
            guard let bucket = manifest.bucket(named: IndexWriter.bucket(source)) else { continue }
            let path = bucket.path + "/" + IndexWriter.key(source)
            guard let record = digests.record(for: path) else { continue }
            let animated = SourceAnimation.isAnimated(path, format: record.format, disk: disk)
            // An unknown size (a GIF whose frames reach past its screen) leaves out the size,
            // never `animated`: the frames are counted whatever the screen (attack 49b's F4).
            if record.width > 0, record.height > 0 {
                sizes[source] = SourceSize(width: record.width, height: record.height, animated: animated)
            } else if animated {
                sizes[source] = SourceSize(width: nil, height: nil, animated: true)
            }
        }
        return sizes
    }

    /// The sources' colours (`color`, or `dominant` with those `known`), by the digest their
    /// outputs were made from (the first output by path with a known colour).
    static func sourceColours(_ outputs: [OutputRecord], known: [String: String]) -> PathDictionary<String> {
        var colours: PathDictionary<String> = [:]
        for record in outputs where colours[record.source] == nil {
            if let colour = known[record.sourceDigest], !colour.isEmpty { colours[record.source] = colour }
        }
        return colours
    }

    /// The placeholders of the sources of rules with `placeholder: true`, by the digest their
    /// outputs were made from.
    static func placeholders(_ outputs: [OutputRecord], manifest: Manifest,
                             known: [String: (image: String, thumbhash: String)]) -> PathDictionary<IndexWriter.Placeholder> {
        let rules = Set(manifest.rules.filter(\.placeholder).map(\.planName))
        var result: PathDictionary<IndexWriter.Placeholder> = [:]
        for record in outputs where result[record.source] == nil && rules.contains(record.rule) {
            if let made = known[record.sourceDigest], !(made.image.isEmpty && made.thumbhash.isEmpty) {
                result[record.source] = IndexWriter.Placeholder(image: made.image, thumbhash: made.thumbhash)
            }
        }
        return result
    }

    /// What the file at the index path is, compared with what the state says it must hold.
    enum IndexStatus: Equatable {
        /// Nothing there.
        case missing
        /// Exactly what the build would write.
        case current
        /// The bytes Derive last wrote there (per the state): rewritten.
        case recorded
        /// Not what Derive recorded, but exactly what Derive writes for some of the outputs the
        /// lock or the state vouch for (a fresh clone, a removed or recovered state, a build
        /// that raced another): rewritten.
        case adoptable
        /// Derive's index, but another manifest's state records it (a copied project sharing
        /// the bucket folder): that manifest's file.
        case claimed(by: ForeignClaims.Claim)
        /// Anything else: a user's file, or an index edited by hand.
        case notOurs
        /// Missing, and its path leads through a symbolic link inside the bucket (the link named):
        /// never written through, with or without `--overwrite`.
        case throughLink(String)
        /// A folder Derive made that holds nothing but old indexes it removes first and folders it
        /// made for them (`index:` moved onto the folder made for the old one: attack 37b's
        /// finding 10): gone, once they are, when the index is written.
        case vacated
    }

    func indexStatus(disk: any Disk) -> IndexStatus { indexStatusAndDigest(disk: disk).status }

    /// The status and the digest of the file judged (nil: nothing there, or unreadable).
    func indexStatusAndDigest(disk: any Disk) -> (status: IndexStatus, digest: String?) {
        guard let index else { return (.missing, nil) }
        guard disk.exists(index.path) else {
            if let declared = manifest.index, let bucket = manifest.bucket(named: declared.bucket),
               let link = SymbolicLinks.first(on: index.path, below: bucket.path) {
                return (.throughLink(link), nil)
            }
            return (.missing, nil)
        }
        if FileKind.describe(index.path) == "a folder", vacates(index.path) { return (.vacated, nil) }
        // Hashed streaming: a user's large file at the index path costs no memory.
        let current = try? disk.digestAndHead(index.path, headBytes: 0).digest
        return (indexStatus(current: current, disk: disk), current)
    }

    private func indexStatus(current: String?, disk: any Disk) -> IndexStatus {
        guard let index else { return .missing }
        if current == ContentDigests.digest(index.data) {
            // The bytes the build writes, but in a re-pointed bucket with no record of Derive
            // writing them there: the user's copy, never taken over (then removed by clean).
            return written[index.path] == nil && repointedIndexFolder != nil ? .notOurs : .current
        }
        if current != nil, current == written[index.path] { return .recorded }
        // The bytes a build noted as the index it was replacing (Derive's), killed after it wrote
        // the lock and before the index; not in a bucket re-pointed since (a copy there is yours).
        if current != nil, current == displacedIndex, repointedIndexFolder == nil { return .recorded }
        // The bytes the lock this user's Derive last wrote records as its index (the lock's own
        // record, `LockProvenance`): Derive wrote them here, though the state records others (an
        // older state restored: attack 49c's finding 2, where the outputs were proven and the
        // index alone kept the build refused). Only where the state records other bytes: with no
        // record (a state recovered) the index is judged below, and noted before the lock is
        // written (`Builder`: attack 39c's N3).
        if let current, written[index.path] != nil, repointedIndexFolder == nil, let declared = manifest.index, let recordedIndex = vouchingLock?.index,
           recordedIndex.digest == current, recordedIndex.path == declared.bucket + "/" + declared.path,
           lockSource.lockIsOwnRecord { return .recorded }
        // The index the lock a dead build displaced names (killed after it replaced the lock and
        // before the index, its state gone since): Derive's, as that lock was.
        if let current, written[index.path] == nil, repointedIndexFolder == nil,
           Builder.lockTemporaryIndexDigests(lockPath, manifestName: manifestName).contains(current) { return .recorded }
        // Derive's bytes for outputs the lock or the state vouch for, even with a record of other
        // bytes: what a build racing another, or killed between the lock and the index, leaves.
        // Read only up to the size such an index can have.
        // A bucket re-pointed since Derive wrote there (at the user's copy of the old folder): a
        // copy of Derive's index there is the user's, as the output copies beside it are (attack
        // 39a's F0); only an index recorded at this path (above) is Derive's in that folder.
        guard current != nil, repointedIndexFolder == nil,
              let data = IndexAdoption.read(index.path, disk: disk, trusted: vouching.count, lockLines: { lockSource.presentVouchedLines(vouchingLock) },
                                            digests: IndexAdoption.recordedDigests(lock: vouchingLock, state: written[index.path])),
              let declared = manifest.index,
              IndexAdoption.isDerives(data, lock: vouchingLock, manifest: manifest, indexBucket: declared.bucket, recorded: vouching, known: known)
        else { return .notOurs }
        if let other = claims.index(index.path) { return .claimed(by: other) }
        return .adoptable
    }

    /// The folder Derive last wrote the index's bucket in, when the bucket is now another folder
    /// (re-pointed: neither that path nor that folder renamed): by the folders remembered when the
    /// lock was written (`LockProvenance`), or the state's records of the bucket's outputs, none
    /// in its folder now. Nil when it is the same folder or nothing says otherwise (a fresh clone).
    /// Asked only when an index with no record at its path is in question.
    var repointedIndexFolder: String? {
        guard let declared = manifest.index, let bucket = manifest.bucket(named: declared.bucket) else { return nil }
        let store = lockSource.store
        if let written = LockProvenance.movedFrom(bucket: bucket.name, folder: bucket.path, lockPath: lockPath,
                                                  forState: store.folder + "/" + StateStore.fileName) {
            return written
        }
        guard let places = store.places else { return nil }
        var folders = Set<String>()
        for record in vouching.values where !record.folder.isEmpty && PathKey.bucket(of: record.path) == bucket.name {
            folders.insert(record.folder)
        }
        // A folder renamed since (`mv outA outC`) is the one Derive recorded using (device and inode).
        let now = FileIdentity.ofFolder(RealFolder.of(bucket.path))
        guard !folders.isEmpty, !folders.contains(where: { folder in
            places.isCurrentFolder(folder, bucket: bucket.name)
                || (now != nil && ((try? store.recordedBucketFolder(folder, bucket: bucket.name)) ?? nil) == now)
        }) else { return nil }
        return folders.min()
    }

    /// Why a public index may not list `outputs` (attack 17's N4: the load-time check's words,
    /// for the records the build would write into it): nil when the index is private or every
    /// output is public. Each output's ACL is the one serve answers it with (`EffectiveACL`: its
    /// record, its rule now, and every rule whose output template gives its key); a recorded ACL
    /// that does not parse counts as private, as serve reads it. `renderedAnew`: planned outputs
    /// whose records the build writes after rendering them, named as their records will name
    /// them (`Builder.record`: the output, its ACL, rule and source).
    static func publicIndexLeak(_ outputs: [OutputRecord], renderedAnew: [Derivative] = [], manifest: Manifest) -> String? {
        let acls = EffectiveACL(manifest)
        guard let indexACL = acls.indexACL, indexACL.isPublic else { return nil }
        let listed = outputs.map { (path: $0.path, acl: $0.acl, rule: $0.rule, source: $0.source) }
            + renderedAnew.map { (path: $0.output, acl: $0.acl.rawValue, rule: $0.rule, source: $0.source) }
        let hidden = listed.filter { entry in
            let built = EffectiveACL.Built(acl: BucketACL(rawValue: entry.acl) ?? .private, rule: entry.rule, source: entry.source)
            guard let bucket = manifest.bucket(named: PathKey.bucket(of: entry.path)) else { return !built.acl.isPublic }
            return !acls.of(bucket, key: PathKey.key(of: entry.path), built: built).isPublic
        }.sorted { PathKey.ordered($0.path, $1.path) }
        guard !hidden.isEmpty else { return nil }
        let shown = hidden.prefix(3).map { "\($0.path) of \(RuleName.described($0.rule)), from \($0.source)" }.joined(separator: "; ")
            + (hidden.count > 3 ? "; and \(hidden.count - 3) more" : "")
        return "is not written: it is \(PublicIndex.readable(manifest, acl: indexACL)) and would list private outputs (\(shown)): "
            + "\(PublicIndex.exposed); \(PublicIndex.hint(manifest))"
    }

    /// The error a build gives (and a plan shows) for an index it may not write; nil when it may.
    func indexRefusal(_ status: IndexStatus, display: (String) -> String) -> String? {
        guard let index else { return nil }
        // Not for --overwrite to lift: the index would publish what the manifest keeps private.
        if let publicIndexLeak { return "\(display(index.path)) \(publicIndexLeak)" }
        if case .throughLink(let link) = status { return "\(display(index.path)) \(Self.throughLinkReason(link, display: display))" }
        // A link is never replaced, with or without --overwrite: that option is not offered for it.
        if case .notOurs = status, Self.isSymbolicLink(index.path) { return "\(display(index.path)) \(Self.linkedIndexReason)" }
        // Nor another project's file (attack 41a's B10: `index: top/derive.yaml` over a project in that bucket).
        if let foreign = foreignOwner(ofIndex: index.path, status) { return foreign.refusal(index.path, display: display, fix: Self.foreignIndexFix) }
        guard !overwrite else { return nil }
        switch status {
        case .claimed(let other): return "\(display(index.path)) \(Self.claimedIndexReason(other))"
        case .notOurs: return "\(display(index.path)) \(indexRefusedReason)"
        default: return nil
        }
    }

    /// The other project whose file is where the index would be written (`ForeignProjectFiles`),
    /// asked only of a file this manifest did not write there.
    func foreignOwner(ofIndex path: String, _ status: IndexStatus) -> ForeignProjectFiles.Owner? {
        switch status {
        case .notOurs, .claimed:
            let projects = ForeignProjectFiles(besides: lockSource.manifestPath)
            if let owner = projects.owner(of: path) { return owner }
            // The index of a project that does not load, which its lock names with these bytes.
            guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size <= 64 << 20,
                  let data = FileManager.default.contents(atPath: path) else { return nil }
            return ForeignRecordedOutputs(projects).unloadedIndexOwner(of: path, digest: ContentDigests.digest(data))
        default: return nil
        }
    }

    static let foreignIndexFix = "give 'index:' a path of this project's own"

    static func throughLinkReason(_ link: String, display: (String) -> String) -> String {
        "leads through a symbolic link (\(display(link))), which Derive never follows inside a bucket; remove the link (or make it a folder) so the index can be written"
    }

    static func claimedIndexReason(_ other: ForeignClaims.Claim) -> String {
        "is the index of \(other.manifest) (\(other.reason)), not of this manifest; give this manifest an index path of its own, or pass --overwrite to take the file over"
    }

    /// How the files on disk differ from the targets. A lock that is not Derive's is a plan error
    /// already and is not listed.
    func changes(disk: any Disk, display: (String) -> String) -> [ControlFileChange] {
        var changes: [ControlFileChange] = []
        func change(_ path: String, _ action: ControlFileChange.Action, _ reason: String) {
            changes.append(ControlFileChange(file: display(path), path: path, action: action, reason: reason))
        }
        // Why the lock or the index changes when the plan's outputs are the cause.
        let withPlan = planChanges.map { "lists the outputs this build changes (\($0))" }
        if !disk.exists(lockPath) {
            change(lockPath, .write, "missing")
        } else if let current = try? disk.read(lockPath), LockFile.isDeriveLock(current), current != lock || !renderedAnew.isEmpty || summariesPending {
            change(lockPath, .write, withPlan ?? (summariesPending ? Self.pendingReason : "differs from the build state"))
        }
        for (path, holdsIndex) in writtenFromLock.sortedByKey() {
            if let link = linkToOldIndex(path) {
                change(path, .keep, "Derive's old index leads through a symbolic link (\(display(link))), which Derive does not follow; it is kept")
                continue
            }
            change(path, .keep, Self.lockOnlyOldIndexKept(path, holdsIndex: holdsIndex, lock: display(lockPath), display: display))
        }
        for path in written.keys.sorted() where !PathKey.same(path, index?.path ?? "") {
            if let link = linkToOldIndex(path) {
                change(path, .keep, "Derive's old index leads through a symbolic link (\(display(link))), which Derive does not follow; it is kept")
            }
        }
        for (path, digest) in written.sortedByKey() where !PathKey.same(path, index?.path ?? "") && disk.exists(path) && linkToOldIndex(path) == nil {
            let current = try? disk.digestAndHead(path, headBytes: 0).digest
            let identity = oldIndexIdentity(path)
            guard identity != nil || notedOldIndexes.contains(path) else {
                change(path, .keep, Self.unprovenOldIndexReason)
                continue
            }
            if current == digest, identity.map({ FileIdentity.ofRegularFile(path) == $0 }) ?? FileKind.isRegularFile(path) {
                change(path, .remove, "Derive's old index" + (index.map { ", now at \(display($0.path))," } ?? "") + " is no longer wanted")
            } else {
                change(path, .keep, oldIndexKept(path, display: display))
            }
        }
        for (path, written) in oldLocks.sortedByKey() where FileIdentity.anythingAt(path) {
            let fate = OldLock.fate(path, written: written, disk: disk)
            change(path, fate.removes ? .remove : .keep, fate.removes ? "Derive's old lock, now at \(display(lockPath)), is no longer wanted" : fate.why(display))
        }
        if let index, let publicIndexLeak {
            change(index.path, .blocked, publicIndexLeak)
        } else if let index {
            let status = indexStatus(disk: disk)
            if let foreign = foreignOwner(ofIndex: index.path, status) {
                change(index.path, .blocked, foreign.reason(display: display, fix: Self.foreignIndexFix))
            } else {
            switch status {
            case .missing: change(index.path, .write, "missing")
            case .current:
                // Right bytes (not yet recorded: a fresh clone's committed index change no file),
                // unless outputs rendered anew change the sizes it lists.
                if !renderedAnew.isEmpty { change(index.path, .write, withPlan ?? "lists outputs this build renders") }
                else if summariesPending { change(index.path, .write, Self.pendingReason) }
            case .recorded: change(index.path, .write, withPlan ?? "differs from the build state")
            case .adoptable: change(index.path, .write, "Derive's index for the lock's outputs; differs from the build state")
            case .claimed(let other):
                if overwrite { change(index.path, .write, "the index of \(other); --overwrite replaces it") }
                else { change(index.path, .blocked, Self.claimedIndexReason(other)) }
            case .notOurs where Self.isSymbolicLink(index.path):
                // --overwrite would not help: Derive never replaces a link, so it is not offered.
                change(index.path, .blocked, Self.linkedIndexReason)
            case .notOurs:
                if overwrite { change(index.path, .write, "not written by Derive as the index; --overwrite replaces it") }
                else { change(index.path, .blocked, indexRefusedReason) }
            case .throughLink(let link):
                change(index.path, .blocked, Self.throughLinkReason(link, display: display))
            case .vacated:
                change(index.path, .write, "the folder Derive made for its old index is there; it goes once the old index is removed, then the index is written")
            }
            }
        }
        return changes
    }

    /// Whether the folder at `folder` is one Derive made (recorded, still that folder) holding
    /// only old indexes the build removes first (still the file and the bytes Derive wrote) and
    /// folders of the same kind, at most 64 names in all: once they go it goes (`removeCreatedFolders`).
    func vacates(_ folder: String) -> Bool {
        guard let created = try? lockSource.store.createdFolderIdentities() else { return false }
        var budget = 64
        func holdsOnlyOldIndexes(_ folder: String) -> Bool {
            guard case .some(.some(let identity)) = created[folder], FileIdentity.ofFolder(folder) == identity,
                  let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return false }
            for name in names {
                budget -= 1
                let path = folder + "/" + name
                guard budget >= 0 else { return false }
                if let digest = written[path], !PathKey.same(path, index?.path ?? ""), let identity = oldIndexIdentity(path),
                   FileIdentity.ofRegularFile(path) == identity, (try? lockSource.disk.digestAndHead(path, headBytes: 0).digest) == digest { continue }
                guard FileKind.describe(path) == "a folder", holdsOnlyOldIndexes(path) else { return false }
            }
            return true
        }
        return holdsOnlyOldIndexes(folder)
    }

    /// A symbolic link on the folders leading to an old index, below the lock's folder (a bucket
    /// folder replaced by a link since the index was written there); nil when there is none.
    func linkToOldIndex(_ path: String) -> String? {
        let project = RealFolder.of((lockPath as NSString).deletingLastPathComponent)
        return SymbolicLinks.first(on: (path as NSString).deletingLastPathComponent, below: project)
    }

    /// The device and inode recorded for an old index, nil when the record has none.
    func oldIndexIdentity(_ path: String) -> FileIdentity? {
        writtenIdentities[path] ?? nil
    }

    /// Why an old index recorded without its device and inode is left in place.
    static let unprovenOldIndexReason = "is recorded as Derive's old index by a build state from before Derive recorded which file it wrote (device and inode), so nothing proves this file is that one (a copy has the same bytes); it is left in place: delete it by hand if it is Derive's old index"

    /// Why an old index is left in place: its bytes are not the ones Derive wrote there.
    func oldIndexKept(_ path: String, display: (String) -> String) -> String {
        "Derive's old index was changed since it was written; it is left in place"
    }

    /// The build's warning for an old index it left in place.
    func oldIndexLeft(_ path: String, display: (String) -> String) -> String {
        "\(display(path)) was changed since Derive wrote it as the index (or replaced: its bytes, or its device and inode, are not the ones recorded); left in place"
    }

    /// Why an old index only the lock names (no state) is kept, and how to remove it: said the
    /// same by plan, build and clean. `holdsIndex`: its bytes are an index Derive writes for the
    /// lock's outputs (still no proof: a copy of the index has them too).
    static func lockOnlyOldIndexKept(_ path: String, holdsIndex: Bool, lock: String, display: (String) -> String) -> String {
        let why = holdsIndex
            ? "and holds an index Derive writes for that lock's outputs, but no build state records that Derive wrote it (a copy of the index has the same bytes)"
            : "but does not hold an index Derive writes for that lock's outputs (a user's file, or edited since)"
        return "is named as the old index by \(lock) \(why); it is kept: if it is Derive's old index, delete it by hand (rm \(display(path)))"
    }

    /// How the state records a file Derive wrote besides outputs: in its real folder (links
    /// resolved), so a bucket whose link is pointed elsewhere leaves the record where the file is.
    static func recordKey(_ path: String) -> String {
        guard let (folder, name) = PathKey.splitLast(path) else { return path }
        return RealFolder.of(folder) + "/" + name
    }

    static let pendingReason = "the build renders a source's colour or placeholder the index lists (the state lost it); the lock records the index's digest"

    static let notOurIndexReason = "exists and was not written by Derive as the index (or was edited since); move it or pass --overwrite"
    static func notOurIndex(_ display: String) -> String { "\(display) \(notOurIndexReason)" }
    /// `notOurIndexReason`, naming the lock when it is there but not valid.
    var indexRefusedReason: String {
        // A FIFO, a folder, a device: said as what it is, never "edited" (attack 36b's a54).
        if let index, FileIdentity.anythingAt(index.path), !FileKind.isRegularFile(index.path) {
            return "exists and is not a regular file Derive wrote (\(Planner.kindOfNonFile(index.path))); move it so the index can be written"
        }
        if let crlf = crlfIndexNote { return "exists and was not written by Derive as the index: \(crlf)" }
        if index != nil, let written = repointedIndexFolder, let declared = manifest.index {
            return "exists and was not written by Derive as the index: bucket '\(declared.bucket)' was re-pointed at another folder since Derive wrote "
                + "there (in \(lockSource.display(written))), and a copy of its index here is yours, as copies of its outputs are; move it or pass --overwrite"
        }
        if let gone = goneManifestIndexNote { return gone }
        guard let lockNote else { return Self.notOurIndexReason }
        return "exists and was not written by Derive as the index (\(lockNote)); otherwise move it or pass --overwrite"
    }

    /// The index a lock left by a manifest gone from this folder records with these very bytes
    /// (`ForeignClaims.goneManifestLocks`: `mv derive.yaml site.yaml`), said as its outputs are:
    /// whose it is and the settings that carry on (attack 45c's M1: the index alone was "not
    /// written by Derive", with --overwrite as the advice, and a second lock then owned the files).
    var goneManifestIndexNote: String? {
        guard let index, let data = try? lockSource.disk.read(index.path, maxBytes: 64 << 20) else { return nil }
        let digest = ContentDigests.digest(data)
        for gone in ForeignClaims.goneManifestLocks(owner: BuildSession.ownerName(lockSource.manifestPath)) {
            guard let lock = FileManager.default.contents(atPath: gone.lock),
                  let firstLine = lock.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first,
                  let recorded = LockFile.index(Data(firstLine)), recorded.digest == digest,
                  let slash = recorded.path.firstIndex(of: "/"), index.path.hasSuffix("/" + recorded.path[recorded.path.index(after: slash)...]) else { continue }
            return "is the index of \(lockSource.display(gone.manifest)), which is no longer there, but its lock \(lockSource.display(gone.lock)) records this file "
                + "with these very bytes; if this manifest is that one renamed, set \(gone.takeOver) in it to carry on from its records (or give it its old name back); "
                + "otherwise move its lock away, or pass --overwrite to take the file over"
        }
        return nil
    }

    /// Why an index refused holds Derive's bytes with every line ending turned into CRLF, as git
    /// checks text files out with `core.autocrlf` (attack 29's finding 11: such a clone could
    /// never build). Only said: its bytes on disk are still not Derive's, and are not replaced.
    /// Nil unless the file with CRLF made LF is exactly the index Derive writes now or the one the
    /// lock records.
    var crlfIndexNote: String? {
        guard let index, let data = try? lockSource.disk.read(index.path, maxBytes: 4 * index.data.count + 4096) else { return nil }
        let bytes = [UInt8](data)
        var lf: [UInt8] = []
        lf.reserveCapacity(bytes.count)
        var converted = false
        for (offset, byte) in bytes.enumerated() {
            if byte == 0x0D, offset + 1 < bytes.count, bytes[offset + 1] == 0x0A { converted = true; continue }
            lf.append(byte)
        }
        let digest = ContentDigests.digest(Data(lf))
        guard converted, digest == ContentDigests.digest(index.data) || digest == lockSource.lock?.index?.digest else { return nil }
        let name = (index.path as NSString).lastPathComponent
        return "its bytes are Derive's index with every line ending turned into CRLF, as git checks text files out with core.autocrlf; "
            + "tell git it is not text (a line '\(name) -text' in a .gitattributes beside it, and 'derive.lock -text' beside the lock), "
            + "then delete it and check it out again (git checkout -- \(name)), or delete it and build"
    }
    static let linkedIndexReason = "is a symbolic link, not an index Derive wrote; Derive never writes through nor replaces a link (--overwrite does not change that): remove the link or make it a regular file"

    static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }
}
