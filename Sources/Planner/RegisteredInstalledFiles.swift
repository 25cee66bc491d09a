import Confinement
import Foundation
import GRDB
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// The files every project the registry of built projects names records as the ones it
/// installed, by device and inode, read once per load from each state where it lies now: at its
/// registered path, or where it moved (`MovedStateFolder`). Why: the claim lookup asked a
/// registered project only of a file under the bucket paths and at the state path it registered,
/// so a taker whose folder was renamed (attack 52a's F1), an original that renamed its bucket
/// folder or moved (F8), or a taker with more buckets than the registry keeps (F7) lost its file
/// to the original's "restored copy" and `clean`; serve answered it publicly (F9, 52b's 3). A
/// file is judged by its identity (device, inode, birth) and the key it lies under, whatever
/// paths changed around it. One definition for builds (`ForeignRecordedOutputs`) and serve.
public final class RegisteredInstalledFiles: @unchecked Sendable {
    /// A file a registered project's state records as one it installed.
    public struct Record: Sendable {
        /// The manifest as it lies now (carried along with its moved state), and whether it is there.
        public var manifest: String
        public var manifestThere: Bool
        /// The state folder where it lies now, and whether it moved from the registered one.
        public var state: String
        public var moved: Bool
        /// Its lock as it lies now (carried along when it lay in the folder moved).
        public var lock: String
        /// The output's key in its bucket, the folder it was written in, the file's identity then.
        public var key: String
        public var folder: String
        public var identity: FileIdentity
        /// The bytes it recorded writing (`outputs.outputDigest`) and the ACL its build gave.
        public var digest: String
        public var acl: BucketACL

        /// Whether the real path `real` ends with this record's key (its folder renamed or moved since).
        public func hasKey(of real: String) -> Bool {
            let tail = Array(("/" + key).utf8)
            return real.utf8.count > tail.count && real.utf8.suffix(tail.count).elementsEqual(tail)
        }
    }

    private let ownManifest: String
    private let ownState: String
    private let lock = NSLock()
    private var index: [FileIdentity: [Record]]?
    private var registryDoubt: String?

    /// `ownManifest`, `ownState`: this manifest's (real paths), whose records are its own, not
    /// another project's (a state moved away from this manifest is asked by `ownMoved`).
    public init(ownManifest: String, ownState: String) {
        self.ownManifest = ownManifest
        self.ownState = ProjectRegistry.realName(ownState)
    }

    /// The records of the very file at `path` (its identity and birth now, under the key it
    /// lies at: `real` is its real path), of every registered project's state but this one's.
    public func installers(of path: String, real: String) -> [Record] {
        guard let now = FileIdentity.ofRegularFile(path) else { return [] }
        // Whether each manifest is there is asked now: the index may be kept from an earlier load.
        var info = stat()
        return (load()[now] ?? []).filter { $0.identity.isFile(at: path) && $0.hasKey(of: real) }
            .map { var record = $0; record.manifestThere = lstat(record.manifest, &info) == 0; return record }
    }

    /// Why the registry cannot say (it cannot be read): nil when it can.
    public var doubt: String? {
        _ = load()
        return lock.withLock { registryDoubt }
    }

    private func load() -> [FileIdentity: [Record]] {
        if let known = lock.withLock({ index }) { return known }
        var found: [FileIdentity: [Record]] = [:]
        var why: String?
        var unsearched: [String] = []
        switch ProjectRegistry.read() {
        case .unreadable(let reason): why = reason
        case .entries(let entries):
            var seen = Set<String>()
            var read: [(entry: ProjectRegistry.Entry, moved: Bool)] = []
            for registered in entries.reversed() {
                var entry = registered, moved = false
                switch MovedStateFolder.answer(registered: registered.state) {
                case .found(let now):
                    entry = MovedStateFolder.moved(registered, to: now)
                    moved = true
                case .unsearched: unsearched.append(registered.state)
                case .inPlace, .notFound: break
                }
                guard seen.insert(entry.state).inserted, !PathKey.same(entry.state, ownState) else { continue }
                read.append((entry, moved))
            }
            // The whole index is kept while every line and every state's files are as they were
            // (serve loads it every second; building it anew cost a third of a listing, s54).
            let signature = RegisteredStateRecords.Signature(own: [ownManifest, ownState], states: read.map {
                RegisteredStateRecords.StateKey(entry: $0.entry, moved: $0.moved, stamp: RegisteredStateRecords.stamp(of: $0.entry.state).stamp)
            })
            if let kept = RegisteredStateRecords.keptIndex(signature) {
                found = kept
            } else {
                // Kept per state while its line and files are unchanged (`RegisteredStateRecords`).
                for (entry, moved) in read {
                    for record in RegisteredStateRecords.records(of: entry, moved: moved) where !(PathKey.same(record.manifest, ownManifest) && !moved) {
                        found[record.identity, default: []].append(record)
                    }
                }
                if RegisteredStateRecords.Signature(own: signature.own, states: read.map {
                    RegisteredStateRecords.StateKey(entry: $0.entry, moved: $0.moved, stamp: RegisteredStateRecords.stamp(of: $0.entry.state).stamp)
                }) == signature, RegisteredStateRecords.allSettled(signature) {
                    RegisteredStateRecords.keepIndex(signature, found)
                }
            }
        }
        lock.withLock { index = found; registryDoubt = why; unsearchedStates = unsearched }
        return found
    }

    /// Why a registered state that is gone from its path was not searched for to the end
    /// (`MovedStateIndex`'s budget ran out this window): it may lie anywhere, recording any file,
    /// so what it may record is doubt. Nil when every one was.
    public var searchDoubt: String? {
        _ = load()
        guard let states = lock.withLock({ unsearchedStates }), let first = states.first else { return nil }
        return "the build state \(first)\(states.count > 1 ? " and \(states.count - 1) more" : ""), gone from where the registry of built projects names it, was not yet searched for where it moved (the search's bound this second)"
    }
    private var unsearchedStates: [String]?

    /// The installed files `entry`'s state records, read-only, when the state names that project as
    /// its owner: its registered manifest, or (moved) the manifest at the place its owner record
    /// keeps beside it, where the project moved with its state.
    static func records(of entry: ProjectRegistry.Entry, moved: Bool) -> [Record] {
        let database = entry.state + "/" + StateFiles.database
        var info = stat()
        guard lstat(database, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, (try? StateFolderTrust.checkDatabaseFiles(database)) != nil else { return [] }
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: database, configuration: configuration) else { return [] }
        defer { try? queue.close() }
        let read: (manifest: String, rows: [(String, String, FileIdentity, String, String)])? = try? queue.read { db in
            var manifest = entry.manifest
            guard let owner = try StateOwner.recordedOwner(db) else { return nil }
            let same = StateOwner.isSame(recorded: owner.manifest, owner: entry.manifest)
            if !same, moved, !owner.place.isEmpty {
                // Moved with its project: its manifest is at the place its owner record keeps.
                manifest = URL(literalFilePath: entry.state + "/" + owner.place).standardizedFileURL.path
            } else if !same, owner.place.isEmpty || owner.place != StateOwner.place(owner: StateOwner.name(entry.manifest), stateFolder: entry.state) {
                return nil
            }
            return (manifest, try Row.fetchAll(db, sql: "SELECT f.path, o.folder, f.device, f.inode, f.birth, o.outputDigest, o.acl FROM outputFiles f JOIN outputs o ON o.path = f.path").map {
                ($0[0] as String, $0[1] as String, FileIdentity(stored: $0[2], $0[3], birth: $0[4]), $0[5] as String, $0[6] as String)
            })
        }
        guard let read else { return [] }
        let manifest = read.manifest
        let manifestThere = lstat(manifest, &info) == 0
        var found: [Record] = []
        for (output, folder, identity, digest, acl) in read.rows where !folder.isEmpty && !(identity.device == 0 && identity.inode == 0) {
            guard let slash = output.firstIndex(of: "/") else { continue }
            found.append(Record(manifest: manifest, manifestThere: manifestThere, state: entry.state, moved: moved, lock: entry.lock,
                                key: String(output[output.index(after: slash)...]), folder: folder, identity: identity, digest: digest,
                                acl: BucketACL(rawValue: acl) ?? .private))
        }
        return found
    }
}
