import Confinement
import Foundation

/// What becomes of an old output's file: an orphan (the manifest no longer produces it), a
/// superseded `{hash}` name, the old copy of a moved bucket, a file `clean` removes. Decided by
/// one function, `Planner.OrphanJudge.fate`: `plan` calls it to say what the build will do, and
/// the build (and `clean`) calls it again at the moment it acts (issue 9, round 37: the planner
/// guessed while the build decided, and they disagreed). Only a disk that changes in between
/// makes the plan wrong.
public enum OrphanFate: Sendable {
    /// Derive's file as it wrote it (its device, inode, birth and bytes): deleted, its bytes
    /// checked once more as it goes.
    case delete
    /// Nothing is there any more (or the record is from before folders were kept): only the
    /// record goes.
    case dropRecord
    /// A file this build keeps (a wanted output's, a source, a control file, by path or by device
    /// and inode): it stays, only the record as an output goes.
    case keep
    /// Not provably the file Derive wrote (changed since, a copy, in a folder Derive did not
    /// create, adopted and not proven): left in place; the record goes and the lock keeps a
    /// `left` line for the file.
    case left(path: String, message: String)
    /// Adopted on a lock line's word (or found by `--verify` to hold other bytes) and not proven
    /// Derive's: left in place as `left` is; the build counts it as kept (Derive never wrote its bytes).
    case unproven(path: String, message: String)
    /// Not reachable where Derive wrote it (a symbolic link, `link`; a mount point; a folder
    /// swapped in, perhaps for a moment): left in place, its record kept so a later run tries
    /// again. `message` says what and why; the caller says what keeps the record (a build: the
    /// state; `clean`: the lock), with `keptMessage`.
    case unreachable(path: String, message: String, link: String?)

    /// What a build says of an unreachable file: its record stays in the state.
    public static func keptMessage(_ message: String) -> String { message + ", its record kept (tried again next build)" }

    /// What is said of a file kept because another manifest's state records it as the file it installed.
    public static func installedElsewhereMessage(_ file: String, owner: String) -> String {
        "\(file) is also recorded as its own by the build state of \(owner): the file stays, only this manifest's record is dropped"
    }
}

extension Planner {
    /// The one decision of `OrphanFate`. Made per plan (every orphan) or per removal; what it
    /// reads of the state (the folders Derive created, the buckets' folders, the files' device
    /// and inode) is read on first use, once. Not shared between threads.
    public final class OrphanJudge {
        let planner: Planner
        /// Files that stay whatever record names them: the plan's outputs, the manifest's sources
        /// and control files (by path, or by device and inode through a link).
        let keeping: WantedIdentities
        /// Why a file adopted on a lock line's word is not proven Derive's (nil: proven, or no
        /// proof needed): the build's proof, `--verify`'s finding, or what a plan can know
        /// without rendering (`Planner.unprovenWithoutRender`).
        let unproven: (OutputRecord) -> String?
        /// Whether many records are judged (a plan): the files' identities are read at once.
        let many: Bool
        private var created: PathDictionary<FileIdentity?>?
        private var bucketFolders: [String: FileIdentity]?
        private var places: [String: String?] = [:]
        private var identities: PathDictionary<FileIdentity?>?
        private var pending: PathDictionary<PendingWrite>?
        /// Whether the manifest still produces an output (`clean` judges every record): a file a
        /// neighbour's lock records is in doubt only once this manifest no longer writes its name;
        /// while both do, this manifest's own record wins the tie (attack 41c's C3). Nil: an orphan.
        public var stillProduced: ((_ output: String) -> Bool)?
        /// Files judged Derive's by a killed build's notes (`displacedBytes`), file → the noted
        /// bytes: removed only while the open file holds them.
        public private(set) var acceptedDisplaced: PathDictionary<String> = [:]

        public init(_ planner: Planner, keeping: WantedIdentities, many: Bool = false, unproven: @escaping (OutputRecord) -> String? = { _ in nil }) {
            self.planner = planner; self.keeping = keeping; self.many = many; self.unproven = unproven
        }

        /// `identity`: the device and inode recorded for the file, when read already (its record
        /// was replaced since); nil: read from the state.
        public func fate(of record: OutputRecord, identity recordedIdentity: FileIdentity?? = nil) throws -> OrphanFate {
            let store = planner.store, display = planner.display
            let file = record.file
            acceptedDisplaced[file] = nil   // judged again now
            // Records from before the folder was kept cannot be placed safely: they are only forgotten.
            guard !record.folder.isEmpty else { return .dropRecord }
            if keeping.contains(file) { return .keep }
            // Another manifest's output now (`Planner.takenOver`): neither deleted nor left as this one's.
            if planner.takenOver?(file, record.path) != nil { return .keep }
            if let why = unproven(record) {
                return .unproven(path: file, message: "\(display(file)) is left in place: \(why) (only its record is dropped)")
            }
            if let link = SymbolicLinks.first(on: file, from: record.folder) {
                // The folder it was written to is now reached through a link (or is one): never followed.
                return .unreachable(path: file, message: "\(display(file)) leads through a symbolic link (\(display(link))), which Derive does not follow; left in place", link: link)
            }
            guard planner.disk.exists(file) else {
                // Not seen, yet something is there behind a mount point or a folder swapped in for
                // a moment: never "already gone" then (attack 36c's M1).
                if FileIdentity.anythingAt(file) {
                    if let mount = SymbolicLinks.firstMountPoint(on: file, from: record.folder, belowFirst: true) {
                        // Behind a mount point: as behind a link, nothing to do while it stays (attack 37b's finding 7).
                        return .unreachable(path: file, message: "\(display(file)) could not be reached where Derive wrote it: it is behind a mount point (\(display(mount))), which Derive does not cross; left in place", link: mount)
                    }
                    return .unreachable(path: file, message: "\(display(file)) could not be reached where Derive wrote it (a symbolic link, a mount point or another folder was on its path); left in place", link: nil)
                }
                return .dropRecord
            }
            // A folder (or a FIFO, a device) where Derive's file was is never Derive's file: left,
            // its record kept, so `clean` keeps the lock as its record and exits 1 as README says
            // (its bytes are not "changed": there are none).
            if FileKind.isPresentButNotARegularFile(file) {
                return .unreachable(path: file, message: "\(display(file)) is not the file Derive wrote there (\(FileKind.describe(file)) is at that path now); left in place", link: nil)
            }
            // The folder it was written to must still be one the record may lead to (asked again:
            // the folder at that path may have been replaced since the plan).
            if bucketFolders == nil { bucketFolders = try store.queue.read { try store.bucketFolderIdentities($0) } }
            if let problem = store.problem(record, known: &places, identities: bucketFolders ?? [:]) {
                return .left(path: file, message: "\(display(file)): \(problem); left in place")
            }
            // The file Derive installed (device and inode), not only its bytes: a copy in a folder
            // that took the old folder's inode number is the user's (attack 17's N3). A record from
            // before they were kept is followed only in the bucket's folder now (today's rule there).
            let identity: FileIdentity?
            if let recordedIdentity { identity = recordedIdentity } else { identity = try self.identity(of: record) }
            // A folder Derive created on the way that is not the one there now (the user moved
            // Derive's away and made a new one, or swapped two buckets' folders): that folder is not
            // Derive's to remove, but a file in it still is while it is the very file Derive
            // installed (device, inode, birth) with its bytes, checked below (attack 40a's A9, A8:
            // a folder re-created around the same files disowned them, and `clean` dropped their
            // only record). Only a record from before files' identities were kept has nothing else
            // to go by: left in place.
            if created == nil { created = try store.createdFolderIdentities() }
            var folder = (file as NSString).deletingLastPathComponent
            while folder.utf8.count > record.folder.utf8.count, folder.utf8.starts(with: (record.folder + "/").utf8) {
                if case .some(.some(let recorded)) = created?[folder], FileIdentity.ofFolder(folder) != recorded {
                    if FileIdentity.ofFolder(folder) == nil {
                        // A link or a file where Derive's folder was (moved aside for a moment?): tried again next build.
                        return .unreachable(path: file, message: "\(display(folder)) is not the folder Derive created there (\(FileKind.describe(folder)) is at that path now); \(display(file)) is left in place", link: nil)
                    }
                    if identity == nil {
                        return .left(path: file, message: "\(display(folder)) is not the folder Derive created there (another folder is at that path now), and the build state that recorded \(display(file)) is from before Derive recorded which file it wrote (device and inode); left in place (delete it by hand if it is Derive's)")
                    }
                }
                folder = (folder as NSString).deletingLastPathComponent
            }
            if identity == nil, let places = store.places, !places.isCurrentFolder(record.folder, bucket: record.bucket) {
                return .left(path: file, message: "\(display(file)) is recorded by a build state from before Derive recorded which file it wrote (device and inode), outside its bucket's folder now, so nothing proves it is not a copy; left in place (delete it by hand if it is Derive's old copy)")
            }
            // And born when it was (attack 18's S3: a file re-created there may get the inode number back).
            if let identity, FileIdentity.ofRegularFile(file) != nil, !identity.isFile(at: file) {
                if try displacedBytes(file) { return .delete }
                // The bucket's folder itself is not the one Derive last wrote to (swapped with another
                // folder, perhaps for a moment): the file Derive wrote may be in that folder wherever it
                // is now, and come back. Its record stays, and the next build tries again (attack 18's
                // S7). That build records the folder it finds, so a folder replaced for good is judged
                // as such by the one after.
                if let recorded = try store.recordedBucketFolder(record.folder, bucket: record.bucket),
                   let now = FileIdentity.ofFolder(record.folder), now != recorded {
                    return .unreachable(path: file, message: "\(display(file)) is not the file Derive wrote there, and \(display(record.folder)) is not the folder Derive wrote it in (another folder is at that path now: swapped or replaced since the last build); left in place", link: nil)
                }
                // The file this build has just written there for a wanted output reached another way
                // (bucket links swapped): wanted, not left (attack 41a's B11).
                if keeping.containsAsNow(file) { return .keep }
                // Another project's output now (a neighbour took the path over with --overwrite): named.
                if let whose = planner.otherProjectsOutput(file) { return .left(path: file, message: whose) }
                if let doubt = planner.replacedFileDoubt?(file) { return .left(path: file, message: Self.doubtMessage(display(file), doubt: doubt)) }
                return .left(path: file, message: "\(display(file)) is not the file Derive wrote there (its device and inode differ: a copy, or a file put there since); left in place")
            }
            // Its bytes: the recorded ones (checked once more as it goes).
            guard (try? planner.digests.content(of: file))?.digest == record.outputDigest else {
                if try displacedBytes(file) { return .delete }
                if let whose = planner.otherProjectsOutput(file) { return .left(path: file, message: whose) }
                return .left(path: file, message: Self.changedMessage(display(file)))
            }
            // One file is never two states' own: when another manifest's state records this very
            // file (device, inode, birth, where it wrote it) as the one it installed, neither may
            // delete it (the other builds on it, and its own clean is the one to remove it). This
            // record goes, so one state is left recording the file (attack 49a's F4: the original
            // adopted a neighbour's file, then the neighbour, its bucket re-pointed, deleted it as
            // its old copy). The one rule `ForeignClaimLookup.installer` answers, asked only of a
            // file otherwise deleted; a file another manifest merely claims by bytes is its own
            // state's to judge, and this manifest's installed file stays deletable.
            if planner.installedElsewhere?(file) != nil { return .keep }
            // A neighbour's build may have adopted the very file (same inode: nothing above tells),
            // and its lock still records it: in doubt, left in place (attack 50b's H2).
            if let doubt = planner.neighbourLockDoubt?(file), !(stillProduced?(record.path) ?? false) {
                return .left(path: file, message: Self.doubtMessage(display(file), doubt: doubt))
            }
            return .delete
        }

        /// Whether `file` holds exactly the bytes a killed build noted it was displacing there (a
        /// file it judged Derive's, by a record it had already moved to another file when it was
        /// killed: two buckets' folders swapped, attack 40a's A5), or is the very file (device,
        /// inode, birth) a killed build noted installing there, with the bytes it noted (a render
        /// equal to the record's bytes, installed over another file). Such a file is Derive's; it
        /// is removed only while the open file still holds those bytes (`acceptedDisplaced`).
        private func displacedBytes(_ file: String) throws -> Bool {
            if pending == nil { pending = try planner.store.pendingNotes() }
            guard let digest = (try? planner.digests.content(of: file))?.digest else { return false }
            if let displaced = pending?[file + Planner.displacedNoteSuffix], !displaced.digest.isEmpty, displaced.digest == digest {
                acceptedDisplaced[file] = digest
                return true
            }
            if let installed = pending?[file], installed.digest == digest, installed.identity?.isFile(at: file) == true {
                acceptedDisplaced[file] = digest
                return true
            }
            return false
        }

        /// What is said of a file left in place because a neighbour may own it (`NeighbourDoubt`).
        public static func doubtMessage(_ file: String, doubt: String) -> String {
            "\(file) is left in place, in doubt: \(doubt)\(doubtMessageEnd)"
        }
        private static let doubtMessageEnd = "; Derive deletes nothing in doubt, and the next build decides again"

        /// The doubt a `doubtMessage` says; nil for any other message.
        public static func doubt(inMessage message: String) -> String? {
            guard message.hasSuffix(doubtMessageEnd), let start = message.range(of: " is left in place, in doubt: ") else { return nil }
            return String(message[start.upperBound..<message.index(message.endIndex, offsetBy: -doubtMessageEnd.count)])
        }

        /// What is said of a file whose bytes are not the recorded ones.
        public static func changedMessage(_ file: String) -> String { "\(file) was changed since Derive wrote it; left in place" }

        private func identity(of record: OutputRecord) throws -> FileIdentity? {
            guard many else { return try planner.store.outputIdentity(record.path) }
            if identities == nil { identities = try planner.store.outputIdentities() }
            if case .some(let identity) = identities?[record.path] { return identity }
            return try planner.store.outputIdentity(record.path)   // no row: the state says what that means
        }
    }

    /// Why the file of `record`, adopted on a lock line's word, cannot be proven Derive's without
    /// rendering: what it was recorded from cannot be rendered again (its rule or bucket gone,
    /// its source changed or gone), and git does not hold its bytes at HEAD. Nil when it needs no
    /// proof, when git proves it, or when its recipe can be rendered (the build renders it
    /// first: `AdoptedProof.planNote`). The build's proof (`Builder.proveAdopted`) says the same.
    public func unprovenWithoutRender(_ record: OutputRecord) -> String? {
        guard Self.needsProof(record, digests: digests), case .unprovable(let why) = adoptedRecipe(record) else { return nil }
        return why
    }

    /// Whether `record`'s file is one a build or `clean` may replace or delete only once proven:
    /// adopted on a lock line's word, and still holding the bytes that line gave (a file that
    /// holds others is already not Derive's, and handled as such).
    public static func needsProof(_ record: OutputRecord, digests: ContentDigests) -> Bool {
        guard record.adopted, !record.folder.isEmpty, FileKind.isRegularFile(record.file) else { return false }
        return (try? digests.content(of: record.file))?.digest == record.outputDigest
    }
}

/// The plan's deletions by fate (`Planner.plan`).
struct PlannedFates {
    var recordsOnly: PathSet = []
    var kept: PathSet = []
    var left: PathSet = []
    var unreachable: PathSet = []
    var behindLinks: [OrphanBehindLink] = []
}

/// What is at a path, not following a link: for saying why a file is left.
public enum FileKind {
    public static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
    /// Something is at `path` on the file system, and it is not a regular file (a folder, a FIFO,
    /// a device, a link). False for nothing there (a planner over another `Disk` sees no such thing).
    public static func isPresentButNotARegularFile(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG
    }

    /// `a symbolic link`, `a folder`, …
    public static func describe(_ path: String) -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "missing" }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFLNK: return "a symbolic link"
        case S_IFDIR: return "a folder"
        default: return "not a regular file"
        }
    }
}
