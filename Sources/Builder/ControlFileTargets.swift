import Foundation
import Manifest
import Planner

/// What the lock and the index must hold for the outputs the state records: one definition used
/// by the build (which writes them) and by `plan` and `check` (which show how the files on disk
/// differ), so a plan never says "No changes" while the build would rewrite one of them.
struct ControlFileTargets {
    let lockPath: String
    let lock: Data
    /// The index's file and bytes, when the manifest has one.
    let index: (path: String, data: Data)?
    /// Indexes Derive wrote, path → digest written (one at an old path when `index:` moved).
    let written: [String: String]
    /// Every recorded output's file: what the witness stats.
    let files: [String]
    /// The outputs recorded (with the plan's adoptions): they vouch for an index too.
    let recorded: [String: OutputRecord]
    /// What decides whether an index with no record of writing it is Derive's (adoption from
    /// the lock), and whether `--overwrite` replaces a user's file there.
    private let vouchingLock: LockFile?
    private let manifest: Manifest
    private let overwrite: Bool
    /// Other manifests' states: an index one of them records is theirs, not adopted here.
    private let claims: ForeignClaimLookup

    /// `adopting`: a plan whose adoptions (outputs a fresh clone's lock vouches for) count as
    /// recorded, as they will be once the build records them.
    ///
    /// The records come from the plan when it was made from the state as it still is (nothing
    /// built, updated, adopted or deleted since), else from the state.
    init(planner: Planner, adopting plan: Plan? = nil, stateUnchangedSince planned: Plan? = nil, claims: ForeignClaimLookup? = nil) throws {
        var recorded = try (plan ?? planned)?.recorded ?? planner.store.allOutputs()
        for item in plan?.adoptions ?? [] {
            if let record = Builder.adoptedRecord(item, digests: planner.digests, time: 0) { recorded[record.path] = record }
        }
        // Updates (an ACL, a rule name) change the index as the build will write it.
        for item in plan?.updates ?? [] {
            if let record = Builder.updatedRecord(item) { recorded[record.path] = record }
        }
        // Sorted by key, then looked up: sorting the records themselves copies large structs.
        let outputs = recorded.keys.sorted().map { recorded[$0]! }
        files = outputs.map(\.file)
        self.recorded = recorded
        lockPath = planner.lockPath
        lock = Data(LockFile.text(sorted: outputs.map(Builder.lockEntry), manifest: planner.manifestName).utf8)
        let manifest = planner.manifest
        self.manifest = manifest
        if let declared = manifest.index, let bucket = manifest.bucket(named: declared.bucket) {
            let path = bucket.path + "/" + declared.path
            let knownColours = try planner.store.sourceColours(), knownPlaceholders = try planner.store.placeholders()
            var colours = Self.sourceColours(outputs, known: knownColours)
            var placeholders = Self.placeholders(outputs, manifest: manifest, known: knownPlaceholders)
            // Sources the state has no colour or placeholder for at all (it was lost): the index
            // on disk keeps its own, as the build adopts them (`Builder.recordSourceSummaries`).
            let colourKnown = Set(outputs.filter { knownColours[$0.sourceDigest] != nil }.map(\.source))
            let placeholderKnown = Set(outputs.filter { knownPlaceholders[$0.sourceDigest] != nil }.map(\.source))
            if outputs.contains(where: { !colourKnown.contains($0.source) || !placeholderKnown.contains($0.source) }) {
                let kept = IndexWriter.summaries(try? planner.disk.read(path))
                let sources = Set(outputs.map(\.source))
                for (source, colour) in kept.colours where sources.contains(source) && !colourKnown.contains(source) && colours[source] == nil {
                    colours[source] = colour
                }
                let wanting = Set(manifest.rules.filter(\.placeholder).map(\.planName))
                let withPlaceholderRule = Set(outputs.filter { wanting.contains($0.rule) }.map(\.source))
                for (source, placeholder) in kept.placeholders
                where withPlaceholderRule.contains(source) && !placeholderKnown.contains(source) && placeholders[source] == nil {
                    placeholders[source] = placeholder
                }
            }
            index = (path, IndexWriter.json(outputs, manifest: manifest, sourceSizes: Self.sourceSizes(outputs, manifest: manifest, digests: planner.digests),
                                            sourceColours: colours, placeholders: placeholders))
        } else {
            index = nil
        }
        // The index is recorded in the real folder it was written to (links resolved). One
        // recorded there, or under another spelling of the same file (the manifest or its bucket
        // reached through a symbolic link), is the current index; one in another real folder
        // (`index:` moved, or the bucket's link now points elsewhere) is an old one to remove.
        var written = try planner.store.controlFiles()
        if let current = index?.path {
            let key = Self.recordKey(current)
            for (path, digest) in written where path != current && (path == key || FileIdentity.sameFile(path, current)) {
                written[path] = nil
                written[current] = written[current] ?? digest
            }
        }
        self.written = written
        vouchingLock = planner.lock
        overwrite = planner.overwrite
        self.claims = claims ?? ForeignClaimLookup(stateFolder: manifest.stateFolder, owner: BuildSession.ownerName(planner.manifestPath))
    }

    /// The displayed sizes of the outputs' sources, as read with their digests.
    static func sourceSizes(_ outputs: [OutputRecord], manifest: Manifest, digests: ContentDigests) -> [String: SourceSize] {
        var sizes: [String: SourceSize] = [:]
        for source in Set(outputs.map(\.source)) {
            guard let bucket = manifest.bucket(named: IndexWriter.bucket(source)),
                  let record = digests.record(for: bucket.path + "/" + IndexWriter.key(source)), record.width > 0, record.height > 0 else { continue }
            sizes[source] = SourceSize(width: record.width, height: record.height)
        }
        return sizes
    }

    /// The sources' dominant colours, by the digest their outputs were made from (the first
    /// output by path with a known colour).
    static func sourceColours(_ outputs: [OutputRecord], known: [String: String]) -> [String: String] {
        var colours: [String: String] = [:]
        for record in outputs where colours[record.source] == nil {
            if let colour = known[record.sourceDigest], !colour.isEmpty { colours[record.source] = colour }
        }
        return colours
    }

    /// The placeholders of the sources of rules with `placeholder: true`, by the digest their
    /// outputs were made from.
    static func placeholders(_ outputs: [OutputRecord], manifest: Manifest,
                             known: [String: (image: String, thumbhash: String)]) -> [String: IndexWriter.Placeholder] {
        let rules = Set(manifest.rules.filter(\.placeholder).map(\.planName))
        var result: [String: IndexWriter.Placeholder] = [:]
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
    }

    func indexStatus(disk: any Disk) -> IndexStatus {
        guard let index else { return .missing }
        guard disk.exists(index.path) else { return .missing }
        let data = try? disk.read(index.path)
        let current = data.map(ContentDigests.digest)
        if current == ContentDigests.digest(index.data) { return .current }
        if current != nil, current == written[index.path] { return .recorded }
        // Derive's bytes for outputs the lock or the state vouch for, even with a record of other
        // bytes: what a build racing another, or killed between the lock and the index, leaves.
        guard let data, let declared = manifest.index,
              IndexAdoption.isDerives(data, lock: vouchingLock, manifest: manifest, indexBucket: declared.bucket, recorded: recorded)
        else { return .notOurs }
        if let other = claims.index(index.path) { return .claimed(by: other) }
        return .adoptable
    }

    /// The error a build gives (and a plan shows) for an index it may not write; nil when it may.
    func indexRefusal(_ status: IndexStatus, display: (String) -> String) -> String? {
        guard let index else { return nil }
        // A link is never replaced, with or without --overwrite: that option is not offered for it.
        if case .notOurs = status, Self.isSymbolicLink(index.path) { return "\(display(index.path)) \(Self.linkedIndexReason)" }
        guard !overwrite else { return nil }
        switch status {
        case .claimed(let other): return "\(display(index.path)) \(Self.claimedIndexReason(other))"
        case .notOurs: return Self.notOurIndex(display(index.path))
        default: return nil
        }
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
        if !disk.exists(lockPath) {
            change(lockPath, .write, "missing")
        } else if let current = try? disk.read(lockPath), LockFile.isDeriveLock(current), current != lock {
            change(lockPath, .write, "differs from the build state")
        }
        for (path, digest) in written.sorted(by: { $0.key < $1.key }) where path != index?.path && disk.exists(path) {
            let current = (try? disk.read(path)).map(ContentDigests.digest)
            if current == digest {
                change(path, .remove, "Derive's old index" + (index.map { ", now at \(display($0.path))," } ?? "") + " is no longer wanted")
            } else {
                change(path, .keep, "Derive's old index was changed since it was written; it is left in place")
            }
        }
        if let index {
            switch indexStatus(disk: disk) {
            case .missing: change(index.path, .write, "missing")
            case .current: break   // right bytes not yet recorded (a fresh clone's committed index) change no file
            case .recorded: change(index.path, .write, "differs from the build state")
            case .adoptable: change(index.path, .write, "Derive's index for the lock's outputs; differs from the build state")
            case .claimed(let other):
                if overwrite { change(index.path, .write, "the index of \(other); --overwrite replaces it") }
                else { change(index.path, .blocked, Self.claimedIndexReason(other)) }
            case .notOurs where Self.isSymbolicLink(index.path):
                // --overwrite would not help: Derive never replaces a link, so it is not offered.
                change(index.path, .blocked, Self.linkedIndexReason)
            case .notOurs:
                if overwrite { change(index.path, .write, "not written by Derive as the index; --overwrite replaces it") }
                else { change(index.path, .blocked, Self.notOurIndexReason) }
            }
        }
        return changes
    }

    /// How the state records a file Derive wrote besides outputs: in its real folder (links
    /// resolved), so a bucket whose link is pointed elsewhere leaves the record where the file is.
    static func recordKey(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return RealFolder.of(String(path[..<slash])) + String(path[slash...])
    }

    static let notOurIndexReason = "exists and was not written by Derive as the index (or was edited since); move it or pass --overwrite"
    static func notOurIndex(_ display: String) -> String { "\(display) \(notOurIndexReason)" }
    static let linkedIndexReason = "is a symbolic link, not an index Derive wrote; Derive never writes through nor replaces a link (--overwrite does not change that): remove the link or make it a regular file"

    static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }
}
