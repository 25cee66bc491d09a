import Confinement
import Foundation
import GRDB
import Manifest

/// One file's content digest as last hashed, with the `stat` it had then (git's index idea).
public struct FileRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "files"
    public var path: String
    public var size: Int64
    public var mtime: Int64
    public var inode: Int64
    public var digest: String
    /// Image format sniffed from the first bytes (`jpg`, `png`, ...), empty when unknown.
    public var format: String
    /// When the digest was taken (ns): a file modified within the racy margin of this is rehashed.
    public var recorded: Int64
    /// Status-change time (ns): moves on an edit that restores size and mtime.
    public var ctime: Int64
    /// Displayed size from the header (the planner collapses derivatives a narrow source makes
    /// identical), 0 when not an image it reads, -1 when never read (a record from before).
    public var width: Int
    public var height: Int

    public init(path: String, size: Int64, mtime: Int64, inode: Int64, digest: String, format: String, recorded: Int64, ctime: Int64 = 0,
                width: Int = 0, height: Int = 0) {
        self.path = path; self.size = size; self.mtime = mtime; self.inode = inode
        self.digest = digest; self.format = format; self.recorded = recorded; self.ctime = ctime
        self.width = width; self.height = height
    }

    /// Decodes by column position (no Codable): state tables are read whole on every plan.
    public init(row: Row) {
        self.init(path: row[0], size: row[1], mtime: row[2], inode: row[3], digest: row[4], format: row[5], recorded: row[6], ctime: row[7],
                  width: row[8], height: row[9])
    }
}

/// What was built for one output, the one definition the planner, the builder, `clean`,
/// `check` and `derive serve` share: where it was written (the bucket folder at write time and
/// the key), its digest, its action key with every component kept separately (so a plan can say
/// which one changed), and its ACL.
public struct OutputRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "outputs"
    /// `bucket/key` of the output.
    public var path: String
    /// The bucket's folder when the file was written: orphans are deleted there, not wherever
    /// the bucket points now. Empty for records from before it was kept.
    public var folder: String
    public var rule: String
    /// `bucket/key` of the source.
    public var source: String
    public var style: String?
    /// Matrix values as `name=value` joined by `,`, sorted.
    public var matrix: String
    public var engine: String
    public var pipeline: String
    public var sourceDigest: String
    /// Other objects the pipeline reads, `name=digest` joined by `,`.
    public var dependencies: String
    public var encoder: String
    public var actionKey: String
    public var acl: String
    public var outputDigest: String
    public var size: Int64
    public var width: Int
    public var height: Int
    public var format: String
    public var builtAt: Int64
    /// Adopted from a lock line on its word (a fresh clone's plain build), not yet rendered
    /// again: `--verify` renders it again; a render or a verification clears it (state v9).
    public var adopted: Bool

    public init(path: String, rule: String, source: String, style: String?, matrix: String, engine: String, pipeline: String,
                sourceDigest: String, dependencies: String, encoder: String, actionKey: String, acl: String,
                outputDigest: String, size: Int64, width: Int, height: Int, format: String, builtAt: Int64, folder: String,
                adopted: Bool = false) {
        self.folder = folder
        self.adopted = adopted
        self.path = path; self.rule = rule; self.source = source; self.style = style; self.matrix = matrix
        self.engine = engine; self.pipeline = pipeline; self.sourceDigest = sourceDigest; self.dependencies = dependencies
        self.encoder = encoder; self.actionKey = actionKey; self.acl = acl; self.outputDigest = outputDigest
        self.size = size; self.width = width; self.height = height; self.format = format; self.builtAt = builtAt
    }

    /// Decodes by column position (no Codable), in the table's column order, from `offset` on.
    public init(row: Row, offset o: Int = 0) {
        self.init(path: row[o], rule: row[o + 1], source: row[o + 2], style: row[o + 3], matrix: row[o + 4], engine: row[o + 5],
                  pipeline: row[o + 6], sourceDigest: row[o + 7], dependencies: row[o + 8], encoder: row[o + 9], actionKey: row[o + 10],
                  acl: row[o + 11], outputDigest: row[o + 12], size: row[o + 13], width: row[o + 14], height: row[o + 15],
                  format: row[o + 16], builtAt: row[o + 17], folder: row[o + 18], adopted: row[o + 19])
    }

    /// The bucket name and key of `path`.
    public var bucket: String { PathKey.bucket(of: path) }
    public var key: String { PathKey.key(of: path) }

    /// The file written: the key below the folder recorded at write time.
    public var file: String { folder + "/" + key }

    /// Why this record's place cannot be trusted, or nil: its key must be a valid key (no `.`,
    /// `..` or empty segment, not absolute) and its folder an absolute path with no `.` or `..`
    /// component, the rules lock lines follow. The state is a file on disk (committed by
    /// mistake, or in a shared `state:` folder): a row naming `out/../../victim` is never walked.
    /// Asked of every row of a whole read of the outputs table (issue 15): the path is split once.
    public var placeProblem: String? {
        guard let (bucket, key) = PathKey.split(path), !bucket.isEmpty else { return "its path '\(path)' names no bucket and key" }
        do { _ = try ObjectKey(fileName: Array(key.utf8)) } catch { return "its key '\(key)' is not a valid key (\(error))" }
        if !folder.isEmpty, let problem = StateStore.absolutePathProblem(folder) { return "its folder '\(folder)' \(problem)" }
        return nil
    }
}

/// The build state: an SQLite database (GRDB) in the manifest's state folder.
public final class StateStore: Sendable {
    public let queue: DatabaseQueue
    public let folder: String
    /// This connection's changes to the outputs table, and their rows as last verified (`outputRows`).
    private let changes = TableChanges()
    private let outputsMemo = OutputRowsMemo()
    /// The witness's word that every outputs row verifies (`VerifiedRows`), while it holds.
    let rowsVouch = RowsVouch()
    /// Whether the outputs table has been read (and is kept) in this process.
    var outputsMemoHasReading: Bool { outputsMemo.hasReading }
    /// Whether this store's connection is to the database file itself (not a copy in memory):
    /// only then does its reading vouch for the file (`verifiedRowsToken`).
    let opensTheFile: Bool
    /// The data version read inside this store's last write (`holdsOnlyOwnCommits`).
    let commitVersion = CommitVersion()
    /// Where records may lead (set by the session from the manifest): nil, none is checked
    /// beyond `placeProblem` (tests of the store alone).
    private let placesBox = PlacesBox()

    /// Confines every record this store hands out to the places the manifest gives: a record
    /// leading elsewhere is left out of `allOutputs()`, `recordedFolders()` and `controlFiles()`
    /// and named by `ignoredOutputs()` and `ignoredControlFiles()`.
    public func confine(to places: RecordPlaces) { placesBox.set(places) }
    public var places: RecordPlaces? { placesBox.get() }
    /// How recorded rule names read (set by the session from the manifest): nil, as recorded.
    private let ruleNamesBox = RuleNamesBox()

    /// Reads every record's rule through `names`: an unnamed rule an older Derive recorded under
    /// the manifest's path as typed (`rule at /abs/derive.yaml:6`) is handed out under its name
    /// now (`rule at derive.yaml:6`), so no plan calls it renamed and the index lists the name of
    /// now. The rows are not rewritten for it. Rows read before are read again.
    public func recognise(ruleNames names: RecordedRuleNames) {
        ruleNamesBox.set(names)
        outputsMemo.forget()
    }

    /// Why `record` may not be followed: its key or folder is malformed, or its folder is not a
    /// place the manifest gives.
    /// `known`: answers by folder and bucket already given in this read (a state of 200 000
    /// outputs has a handful of folders; a moved bucket's folder would be stat'ed for each row).
    /// `identities`: the bucket folders the state recorded (`bucketFolderIdentities`).
    func problem(_ record: OutputRecord, known: inout [String: String?], identities: [String: FileIdentity]) -> String? {
        if let problem = record.placeProblem { return problem }
        guard !record.folder.isEmpty, let places else { return nil }
        let bucket = record.bucket
        let place = record.folder + "\u{0}" + bucket
        if let answer = known[place] { return answer }
        let answer = places.problem(outputFolder: record.folder, bucket: bucket, recorded: identities[place])
        known[place] = .some(answer)
        return answer
    }

    /// Why `record` may not be followed now (asked again just before a file is deleted: the
    /// folder at the recorded path may have been replaced since the plan), or nil.
    public func problem(_ record: OutputRecord) throws -> String? {
        var known: [String: String?] = [:]
        let identities = try queue.read { db in try bucketFolderIdentities(db) }
        return problem(record, known: &known, identities: identities)
    }

    /// The device and inode the state recorded for `folder` as `bucket`'s folder when Derive last
    /// used it (sealed records only); nil when none is recorded.
    public func recordedBucketFolder(_ folder: String, bucket: String) throws -> FileIdentity? {
        try queue.read { db in try bucketFolderIdentities(db)[folder + "\u{0}" + bucket] }
    }

    /// The folders recorded as buckets' folders, `folder NUL bucket` → device and inode then
    /// (sealed records only).
    func bucketFolderIdentities(_ db: Database) throws -> [String: FileIdentity] {
        var result: [String: FileIdentity] = [:]
        try forEachRow(db, "bucketFolders", ["bucket", "folder", "device", "inode"]) { row, sealed in
            if sealed { result[(row[1] as String) + "\u{0}" + (row[0] as String)] = FileIdentity(stored: row[2], row[3]) }
        }
        return result
    }

    /// Reads `table`'s rows, the `leading` columns first (decoded by position), each with whether
    /// its seal verifies (always, for a store without seals). `clause`: `WHERE …`, or empty.
    /// `trusted`: rows the witness vouches for (`VerifiedRows`): read as sealed, no seal checked.
    func forEachRow(_ db: Database, _ table: String, _ leading: [String], _ clause: String = "", _ arguments: StatementArguments = [],
                    trusted: Bool = false, _ body: (Row, Bool) throws -> Void) throws {
        if let seals, !trusted {
            let query = try seals.query(db, table: table, leading: leading, clause: clause)
            let rows = try Row.fetchCursor(db, sql: query.sql, arguments: arguments)
            while let row = try rows.next() { try body(row, seals.verifies(query, row)) }
        } else {
            let sql = "SELECT " + leading.map { "\"\($0)\"" }.joined(separator: ", ") + " FROM \(table) " + clause
            let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try rows.next() { try body(row, true) }
        }
    }

    /// Why a record whose seal does not verify is ignored.
    public static let unsealed = "its seal does not verify (a record this user's Derive did not write: added or changed in the state by hand, by another program or another user, or copied from another state)"

    /// Writes to the state in one transaction, sealing every row of a sealed table the
    /// statements inserted or updated (`StateSeals`) before it commits. Every write goes here.
    /// A write SQLite refuses for a full disk or an unwritable folder is a `StateWriteFailure`.
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.write { db in
                let result = try body(db)
                try seals?.sealWritten(db)
                try noteCommitVersion(db)
                return result
            }
        } catch {
            throw StateWriteFailure(error, database: folder + "/" + Self.fileName) ?? error
        }
    }

    /// Records the device and inode of the folders of the buckets rules write to now (those
    /// that exist), each as that bucket's: the only earlier folders a record may later lead to.
    /// Writes nothing when every one is recorded as it is (a no-op build leaves the database as it was).
    public func noteBucketFolders() throws {
        guard let places else { return }
        let now = places.currentOutputFolders.compactMap { entry in FileIdentity.ofFolder(entry.folder).map { (entry.bucket, entry.folder, $0) } }
        guard !now.isEmpty else { return }
        let recorded = try queue.read { db in try bucketFolderIdentities(db) }
        let changed = now.filter { recorded[$0.1 + "\u{0}" + $0.0] != $0.2 }
        guard !changed.isEmpty else { return }
        try write { db in
            for (bucket, folder, identity) in changed {
                try db.execute(sql: "INSERT OR REPLACE INTO bucketFolders (bucket, folder, device, inode) VALUES (?, ?, ?, ?)",
                               arguments: [bucket, folder, identity.stored.device, identity.stored.inode])
            }
        }
    }

    /// Follows the output buckets' folders renamed since Derive used them (`mv outA userB`, then
    /// `path: userB`: the same folder by device and inode; attack 39c's N4): each sealed record
    /// below the old path moves to the new one, as a moved project's records do
    /// (`StateSuccession.reanchor`), and a note says so once. Whatever is at the old path now (a
    /// folder the user made there) is no record's any more, so never read or deleted. Nothing is
    /// followed without seals (a store opened without an owner, a bearer-token state).
    /// Returns the renames followed (bucket, old and new real folder).
    @discardableResult
    /// `lockFolder`: the folder of the lock, which the places of the files left in place
    /// (`left` lines) are relative to; they move in the same transaction.
    public func followRenamedBucketFolders(lockFolder: String? = nil) throws -> [(bucket: String, from: String, to: String)] {
        guard let places, let seals else { return [] }
        let moves = try queue.read { db in try StateSuccession.renamedBucketFolders(db, seals: seals, now: places.currentOutputFolders) }
        guard !moves.isEmpty else { return [] }
        try write { db in
            for move in moves {
                try StateSuccession.reanchor(db, seals: seals, from: move.from, to: move.to, keepingExisting: true)
                if let lockFolder { try StateSuccession.reanchorLeftPlaces(db, seals: seals, lockFolder: lockFolder, from: move.from, to: move.to) }
            }
        }
        for move in moves {
            StateSuccession.say("derive: note: the folder of bucket '\(move.bucket)', \(move.from), was renamed \(move.to) (the same folder, "
                + "by device and inode); Derive's records of the files in it follow it\n")
        }
        return moves
    }

    /// Where a corrupt database, or one another manifest owns, was moved before this one was
    /// started afresh.
    public let movedAside: String?
    /// Why it was moved (`corrupt`, or `owned by <manifest>`); nil when it was not.
    public let movedAsideReason: String?
    /// Whether a state of this manifest was there when opened (not created now, nor replacing
    /// one moved aside): then its records alone say what Derive wrote; the lock adds nothing.
    public let existed: Bool
    /// The seals of this state's records, keyed by the user's secret; nil for a store opened
    /// without an owner (tests of the store alone, `derive serve`'s reader), which takes every
    /// record as it is. A build's store always has them: a record that does not verify is ignored.
    public let seals: StateSeals?
    /// Whether the database's integrity was checked when opened (every page read), false when
    /// a witness vouched for the file as the last clean build left it (`open`).
    public let integrityChecked: Bool

    public static let fileName = StateFiles.database

    /// The state databases this process started afresh (`existed` false): a state made by this
    /// command says nothing of who installed a file, as a lost one does (`ForeignClaimLookup`
    /// asks; attack 56b's H1: a build deleted an old copy its plan left as a neighbour's, as the
    /// build's own new state was taken for one that was there).
    public static func madeByThisProcess(_ path: String) -> Bool { madeHere.contains(path) }
    private static let madeHere = MadePaths()

    private final class MadePaths: @unchecked Sendable {
        private let lock = NSLock()
        private var paths: Set<String> = []
        func insert(_ path: String) { _ = lock.withLock { paths.insert(path) } }
        func contains(_ path: String) -> Bool { lock.withLock { paths.contains(path) } }
    }

    /// Opens (or creates) the state in `folder`. A database SQLite calls corrupt or "not a
    /// database" is moved aside (`state.sqlite.corrupt-<time>`, named in `movedAside`) and a new
    /// one started: the lock and the outputs on disk are enough to rebuild it.
    ///
    /// `owner` is the manifest opening it (its absolute real path). A state records its owner
    /// when created; one recording another manifest (a copied project, two manifests sharing a
    /// `state:` folder) is not trusted: its folders are another project's, so it is moved aside
    /// (`state.sqlite.foreign-<time>`) and a new one started. A state without an owner record
    /// (from before it was kept) is taken as this manifest's. Nil: no check (read-only users).
    ///
    /// `vouched`: the database's stat when a witness of the last clean build vouches for it
    /// (`WitnessCheck.vouchedDatabase`): then the integrity check that reads every page is
    /// skipped while the file still has exactly that stat and no journal (see `open`).
    ///
    /// `vouchedRows`: the witness's "rows verified" token (`WitnessCheck.vouchedRows`): while the
    /// database is the file it names and no other connection has committed, the outputs rows are
    /// read without checking their seals (`VerifiedRows`).
    public init(folder: String, owner: String? = nil, vouched: FileStat? = nil, vouchedRows: String? = nil) throws {
        self.folder = folder
        let path = folder + "/" + Self.fileName
        try StateFolderTrust.checkDatabaseFiles(path)   // a user's journal or a FIFO there: refused, never opened
        try StateFolderTrust.prepare(stateFolder: folder, database: path)   // the user's own, 0700/0600, before SQLite opens it
        var info = stat()
        let wasThere = lstat(path, &info) == 0 && info.st_size > 0
        var opened: DatabaseQueue
        var checked: Bool
        var aside: String?
        var reason: String?
        do {
            (opened, checked) = try Self.open(path, vouched: vouched)
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            aside = try Self.moveAside(path, suffix: "corrupt", error: error)
            reason = "corrupt"
            (opened, checked) = try Self.open(path)
        }
        if let owner {
            let row = try opened.read { db in try Row.fetchOne(db, sql: "SELECT manifest, place FROM owner") }
            var foreign: String?
            if let row, let recorded = row[0] as String?, !StateOwner.isSame(recorded: recorded, owner: owner) {
                // Its manifest gone from this one's folder (moved with the project, or renamed): taken over.
                let place = row[1] as String? ?? ""
                if StateSuccession.succeeds(recorded: recorded, recordedPlace: place, owner: owner, stateFolder: folder) {
                    do {
                        try StateSuccession.takeOver(opened, database: path, recorded: recorded, recordedPlace: place, owner: owner,
                                                     stateFolder: folder, writable: true)
                    } catch {
                        // Not re-anchored (no secret can be kept: no writable home): foreign, as it was before.
                        foreign = "owned by \(recorded), and not re-anchored here (\(error))"
                    }
                } else {
                    foreign = "owned by \(recorded)"
                }
            }
            // Records this user's Derive did not write (a committed or unpacked `.derive/`, rows
            // edited in): not followed, whatever they say (attack 17's N4).
            if foreign == nil, case .foreign(let why) = try Self.binding(opened, database: path) { foreign = why }
            if let foreign {
                try opened.close()
                aside = try Self.moveAside(path, suffix: "foreign", error: nil)
                reason = foreign
                (opened, checked) = try Self.open(path)
            }
            let now = try opened.read { db in try Row.fetchOne(db, sql: "SELECT manifest, place FROM owner") }
            let place = StateOwner.place(owner: owner, stateFolder: folder)
            if now.map({ $0[0] as String != owner || $0[1] as String != place }) ?? true {
                try opened.write { db in
                    try db.execute(sql: "DELETE FROM owner")
                    try db.execute(sql: "INSERT INTO owner (manifest, place) VALUES (?, ?)", arguments: [owner, place])
                }
            }
        }
        let seals = owner == nil ? nil : Self.bind(opened, database: path)
        if let seals { opened.add(transactionObserver: seals, extent: .databaseLifetime) }
        self.seals = seals
        queue = opened
        movedAside = aside
        movedAsideReason = reason
        integrityChecked = checked
        opensTheFile = true
        existed = wasThere && aside == nil
        if !existed { Self.madeHere.insert(path) }
        opened.add(transactionObserver: changes, extent: .databaseLifetime)
        if aside == nil { trustRows(vouchedRows, file: path) }
    }

    /// How a state is bound to this user (`StateBinding`).
    enum Binding {
        /// No records to trust, and no mark of this user's secret.
        case empty
        /// Sealed with the secret this user keeps for it.
        case sealed(Data)
        /// Bound by build-17's bearer token, which this user keeps too: re-sealed once.
        case bearer
        /// Has records, and is not this user's: why.
        case foreign(String)
    }

    static func binding(_ queue: DatabaseQueue, database: String) throws -> Binding {
        let (records, mark) = try queue.read { db -> (Bool, String?) in
            // (A database opened read-only may predate some tables.)
            let records = try ["outputs", "controlFiles", "bucketFolders", "createdFolders", "pendingWrites", "outputFiles", "lockFiles"].contains { table in
                try db.tableExists(table) && (try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(table))") ?? false)
            }
            return (records, try db.tableExists("binding") ? try String.fetchOne(db, sql: "SELECT token FROM binding") : nil)
        }
        let held = StateBinding.held(forState: database)
        if case .secret(let secret)? = held, let mark, mark == StateBinding.mark(secret: secret, forState: database) { return .sealed(secret) }
        if case .token(let token)? = held, let mark, mark == token { return .bearer }
        guard records else { return .empty }
        let keeper = StateBinding.file(forState: database) ?? "(no HOME nor XDG_STATE_HOME)"
        return .foreign(mark == nil
            ? "not bound to this user (it holds no mark of the user's secret: made by another Derive, or from before 0.14), so its records are not trusted (the user's secrets are in \(keeper))"
            // The secret is kept for the state's path: a state sealed at another path (a copy, a
            // mount of another project's folder) is not this one's, whoever made it (attack 37b's F8).
            : "not bound to this user at this path (it is not sealed with the secret kept in \(keeper) for a state at \(StateBinding.key(forState: database).path): "
                + "copied or moved here from another path, another project's state shown here by a mount or link, made by another user's Derive, or planted in the project), so its records are not trusted")
    }

    /// Why the state at `database` is not this user's (it has records, and is not sealed with the
    /// secret the user keeps for it), nil when it is or has nothing to trust.
    static func unboundReason(_ queue: DatabaseQueue, database: String) throws -> String? {
        if case .foreign(let why) = try binding(queue, database: database) { return why }
        return nil
    }

    /// Binds the state to this user and returns its seals: a state sealed with the user's secret
    /// is left as it is (a no-op build writes nothing); a state bound by build-17's bearer token
    /// is re-sealed once, every row, with a NEW secret (the old token was in a file others could
    /// read); an empty one is marked with the user's secret (a new one if none is kept). A secret
    /// that cannot be kept (no writable home) is said: the next build finds the state foreign.
    static func bind(_ queue: DatabaseQueue, database: String) -> StateSeals {
        try? dropTriggers(queue)
        let binding = (try? Self.binding(queue, database: database)) ?? .empty
        if case .sealed(let secret) = binding { return StateSeals(secret: secret) }
        var secret = StateBinding.secret(forState: database)
        if case .bearer = binding { secret = nil }
        let fresh = secret ?? StateBinding.newSecret()
        let seals = StateSeals(secret: fresh)
        if secret == nil {
            // Kept first: a failure below leaves the state unbound (foreign next time), never trusted on an old word.
            do {
                try StateBinding.hold(secret: fresh, forState: database)
            } catch {
                // Not silent: without its secret kept, every later build finds this state unbound and
                // starts afresh from the lock (old outputs left in place, no no-op answer).
                let message = "derive: warning: \(error) — so the next build will not trust this build state and will start again from "
                    + "derive.lock (old outputs are left in place, and nothing is ever 'up to date' at once); set XDG_STATE_HOME or HOME to a folder you can write\n"
                FileHandle.standardError.write(Data(message.utf8))
            }
        }
        let mark = StateBinding.mark(secret: fresh, forState: database)
        try? queue.write { db in
            if case .bearer = binding {
                // Outputs from before devices and inodes were kept say so in a sealed row (0, 0),
                // so one whose row is removed later is never taken for one of them.
                try db.execute(sql: "INSERT OR IGNORE INTO outputFiles (path, device, inode) SELECT path, 0, 0 FROM outputs")
                try seals.sealAll(db)
            }
            if try String.fetchAll(db, sql: "SELECT token FROM binding") != [mark] {
                try db.execute(sql: "DELETE FROM binding")
                try db.execute(sql: "INSERT INTO binding (token) VALUES (?)", arguments: [mark])
            }
        }
        return seals
    }

    /// Drops every trigger in the database: Derive makes none, and a trigger planted in a state
    /// (its mark copied from the user's) would add rows whenever Derive writes, which Derive would
    /// then seal as its own (SQLite reports rows a trigger writes as the statement's).
    static func dropTriggers(_ queue: DatabaseQueue) throws {
        let triggers = try queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger'") }
        guard !triggers.isEmpty else { return }
        try queue.write { db in
            for name in triggers { try db.execute(sql: "DROP TRIGGER IF EXISTS \(name.quotedDatabaseIdentifier)") }
        }
    }

    /// Renames the database (and its journal files) to `<path>.<suffix>-<time>`.
    private static func moveAside(_ path: String, suffix: String, error: Error?) throws -> String {
        try StateAside.move(path, suffix: suffix)   // unique names, the newest few kept
    }

    /// The manifest recorded as this state's owner, nil when none is.
    public func owner() throws -> String? {
        try queue.read { db in try String.fetchOne(db, sql: "SELECT manifest FROM owner") }
    }

    /// Opens the database and checks its integrity (`PRAGMA quick_check`, every page read: a
    /// truncated file can pass the header check), unless `vouched` is its stat now (size, mtime,
    /// ctime and inode, taken before SQLite opens it) and it has no journal: then it is the very
    /// file the last clean build left, bytes unchanged, and that build opened it checked (or so
    /// vouched) and wrote it only through SQLite, so the check would read what it read then
    /// (issue 15: the check read the whole 72 MB state of 40 000 outputs on every build of one
    /// touched or edited source). Anything else (no witness, another stat, a journal of an
    /// interrupted write, `build --verify`) checks.
    private static func open(_ path: String, vouched: FileStat? = nil) throws -> (queue: DatabaseQueue, checked: Bool) {
        try StateFolderTrust.checkDatabaseFiles(path)
        StateFolderTrust.makePrivate(database: path)   // 0600: no one else reads its token
        let unchanged = vouched.map { isUnchanged(path, since: $0) } ?? false
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try stamp(queue)
        try migrator.migrate(queue)
        guard !unchanged else { return (queue, false) }
        let result = try queue.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
        if result != "ok" { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: result) }
        return (queue, true)
    }

    /// Stamps the state Derive's (`StateFolderTrust.applicationID`: a new one, or one an older
    /// Derive made), so its journals can be told from another database's (issue 9). A database
    /// another application stamped never gets here: `checkDatabaseFiles` refuses it unopened.
    static func stamp(_ queue: DatabaseQueue) throws {
        try queue.writeWithoutTransaction { db in
            if try Int32.fetchOne(db, sql: "PRAGMA application_id") == 0 {
                try db.execute(sql: "PRAGMA application_id = \(StateFolderTrust.applicationID)")
            }
        }
    }

    /// Whether the database at `path` has exactly the stat `vouched` and no journal beside it
    /// (a write SQLite did not finish leaves one; the next opening rolls it back).
    public static func isUnchanged(_ path: String, since vouched: FileStat) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        let now = FileStat(size: Int64(info.st_size), mtime: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                           inode: UInt64(info.st_ino), ctime: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))
        guard now == vouched else { return false }
        return StateFiles.journalSuffixes.allSatisfy { suffix in
            var journal = stat()
            return lstat(path + suffix, &journal) != 0 && errno == ENOENT
        }
    }

    /// A store over an already opened database (the read-only copy `check` plans against).
    init(queue: DatabaseQueue, folder: String, movedAside: String?, movedAsideReason: String?, existed: Bool = false, seals: StateSeals? = nil,
         integrityChecked: Bool = true) {
        self.queue = queue; self.folder = folder; self.seals = seals; self.integrityChecked = integrityChecked; opensTheFile = false
        if let seals { queue.add(transactionObserver: seals, extent: .databaseLifetime) }
        self.movedAside = movedAside; self.movedAsideReason = movedAsideReason; self.existed = existed
        queue.add(transactionObserver: changes, extent: .databaseLifetime)
    }

    /// A throwaway store for tests.
    public init(inMemory: Void = ()) throws {
        folder = ""
        movedAside = nil
        movedAsideReason = nil
        existed = false
        seals = nil
        integrityChecked = true
        opensTheFile = false
        queue = try DatabaseQueue()
        try Self.migrator.migrate(queue)
        queue.add(transactionObserver: changes, extent: .databaseLifetime)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "files") { t in
                t.primaryKey("path", .text)
                t.column("size", .integer).notNull()
                t.column("mtime", .integer).notNull()
                t.column("inode", .integer).notNull()
                t.column("digest", .text).notNull()
                t.column("format", .text).notNull()
                t.column("recorded", .integer).notNull()
            }
            try db.create(table: "outputs") { t in
                t.primaryKey("path", .text)
                t.column("rule", .text).notNull()
                t.column("source", .text).notNull()
                t.column("style", .text)
                t.column("matrix", .text).notNull()
                t.column("engine", .text).notNull()
                t.column("pipeline", .text).notNull()
                t.column("sourceDigest", .text).notNull()
                t.column("dependencies", .text).notNull()
                t.column("encoder", .text).notNull()
                t.column("actionKey", .text).notNull()
                t.column("acl", .text).notNull()
                t.column("outputDigest", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("width", .integer).notNull()
                t.column("height", .integer).notNull()
                t.column("format", .text).notNull()
                t.column("builtAt", .integer).notNull()
            }
        }
        migrator.registerMigration("v2") { db in
            try db.alter(table: "outputs") { t in t.add(column: "folder", .text).notNull().defaults(to: "") }
            try db.alter(table: "files") { t in t.add(column: "ctime", .integer).notNull().defaults(to: 0) }
            // Folders Derive created to hold outputs: the only folders it ever removes (when empty).
            try db.create(table: "createdFolders") { t in t.primaryKey("path", .text) }
            // Output files a running build is about to write: a build killed between the rename and
            // the record leaves its file owned (replaceable), not mistaken for the user's.
            try db.create(table: "pendingWrites") { t in t.primaryKey("path", .text) }
            // Files Derive writes besides outputs (the index), with the digest written.
            try db.create(table: "controlFiles") { t in
                t.primaryKey("path", .text)
                t.column("digest", .text).notNull()
            }
        }
        migrator.registerMigration("v3") { db in
            // The manifest (absolute real path) the state belongs to: one row.
            try db.create(table: "owner") { t in t.column("manifest", .text).notNull() }
            // The digest of the bytes a pending write is about to rename into place: a file there
            // is Derive's only if it hashes to it.
            try db.alter(table: "pendingWrites") { t in t.add(column: "digest", .text).notNull().defaults(to: "") }
        }
        migrator.registerMigration("v4") { db in
            // Sources' displayed sizes, read with the digest: -1 marks a record from before (read again once).
            try db.alter(table: "files") { t in
                t.add(column: "width", .integer).notNull().defaults(to: -1)
                t.add(column: "height", .integer).notNull().defaults(to: -1)
            }
        }
        migrator.registerMigration("v5") { db in
            // Each source's dominant colour (OSS's average-hue answer) by content digest, for the index.
            try db.create(table: "sourceColours") { t in
                t.primaryKey("digest", .text)
                t.column("colour", .text).notNull()
            }
            // Each source's placeholder (a data URI and a ThumbHash) by content digest, for the index.
            try db.create(table: "placeholders") { t in
                t.primaryKey("digest", .text)
                t.column("image", .text).notNull()
                t.column("thumbhash", .text).notNull()
            }
        }
        migrator.registerMigration("v6") { db in
            // PNG and WebP sizes recorded before the header reader applied their EXIF orientation
            // (attack 15 M8: a rotated PNG or WebP was planned at its stored size): read again once.
            try db.execute(sql: "UPDATE files SET width = -1, height = -1 WHERE format IN ('png', 'webp')")
        }
        migrator.registerMigration("v7") { db in
            // The folders Derive used as each bucket's folder, with their device and inode then: a
            // record's folder that is not its bucket's folder now is followed only when it is one of
            // these and still the same folder (verify 16's V1, attack 15's F8).
            try db.create(table: "bucketFolders") { t in
                t.column("bucket", .text).notNull()
                t.column("folder", .text).notNull()
                t.column("device", .integer).notNull()
                t.column("inode", .integer).notNull()
                t.primaryKey(["bucket", "folder"])
            }
            // Each folder Derive created, with its device and inode then (0, 0: from before they were
            // kept): a new folder the user made at that path is not Derive's (verify 16's V2).
            try db.alter(table: "createdFolders") { t in
                t.add(column: "device", .integer).notNull().defaults(to: 0)
                t.add(column: "inode", .integer).notNull().defaults(to: 0)
            }
        }
        migrator.registerMigration("v8") { db in
            // The index's own device and inode when Derive wrote it (0, 0: from before they were
            // kept): an old index is removed only when it is still that file (attack 17's N7).
            try db.alter(table: "controlFiles") { t in
                t.add(column: "device", .integer).notNull().defaults(to: 0)
                t.add(column: "inode", .integer).notNull().defaults(to: 0)
            }
            // Each output file's own device and inode when Derive installed it, by `bucket/key`: an
            // output is deleted or replaced only while it is still that file (attack 17's N3: a
            // folder re-created by the user gets the old inode number back; its files do not).
            try db.create(table: "outputFiles") { t in
                t.primaryKey("path", .text)
                t.column("device", .integer).notNull()
                t.column("inode", .integer).notNull()
            }
            // The state's token (one row): the user whose Derive made the state holds the same token
            // outside every project (`StateBinding`); a state whose token they do not hold is foreign.
            try db.create(table: "binding") { t in t.column("token", .text).notNull() }
        }
        migrator.registerMigration("v9") { db in
            // Outputs adopted from a lock line on its word alone (a fresh clone's plain build),
            // kept marked until rendered again: `--verify` renders them, `check` and `plan` count
            // them. Records of a state from before (0.13, v8) are not marked: nothing says which
            // were adopted.
            try db.alter(table: "outputs") { t in t.add(column: "adopted", .boolean).notNull().defaults(to: false) }
        }
        migrator.registerMigration("v9-seals") { db in
            // A seal on each record that can authorise an overwrite, a deletion or an "up to date"
            // answer (`StateSeals`; attack 18's S1): rows from before have none, so a state of
            // build-17 is re-sealed once when its user opens it (`bind`), and no other.
            for table in StateSeals.tables where !StateSeals.cacheTables.contains(table) && !StateSeals.sealedFromTheStart.contains(table) {
                try db.alter(table: table) { t in t.add(column: StateSeals.column, .blob) }
            }
            // When each output file was made (`FileBirth`; 0: not recorded): a file re-created at
            // its path with the same bytes may get the same inode number back (attack 18's S3).
            try db.alter(table: "outputFiles") { t in t.add(column: "birth", .integer).notNull().defaults(to: 0) }
        }
        migrator.registerMigration("v9-seals-caches") { db in
            // The index's colours and placeholders are sealed too (attack 19's V3: a row planted
            // through a write-ahead log put a forged colour in the index, called up to date).
            for table in StateSeals.cacheTables {
                try db.alter(table: table) { t in t.add(column: StateSeals.column, .blob) }
            }
        }
        migrator.registerMigration("v10-left") { db in
            // Every file a build left in place, by its place (`LockFile.Left.place`), with the ACL it
            // was left under (round 21's N2: in the lock alone, deleting or editing a line published
            // the file; the build re-derives the lock's lines from these, serve takes the more
            // private of both), its digest when known, and since when it is gone (0: present; N4).
            try db.create(table: "leftFiles") { t in
                t.primaryKey("place", .text)
                t.column("path", .text).notNull()
                t.column("acl", .text).notNull()
                t.column("why", .text).notNull()
                t.column("digest", .text).notNull().defaults(to: "")
                t.column("gone", .integer).notNull().defaults(to: 0)
                t.column(StateSeals.column, .blob)
            }
            try db.create(index: "leftFilesByPath", on: "leftFiles", columns: ["path"])
        }
        migrator.registerMigration("v11-owner-place") { db in
            // Where the owner lies seen from the state folder (`StateOwner.place`): a state recorded
            // for a manifest at another place, still there, is another manifest's sharing the
            // folder, refused rather than moved aside (gaps 28). '': recorded before.
            try db.alter(table: "owner") { t in t.add(column: "place", .text).notNull().defaults(to: "") }
        }
        migrator.registerMigration("v12-dominant-colours") { db in
            // Each source's dominant colour (`DominantColour`, the index's `dominant`; attack 36a's
            // M6) by content digest, sealed from the start; '': none (a wholly transparent picture,
            // or one that could not be drawn). A state from before has none: made by the next build.
            try db.create(table: "sourceDominants") { t in
                t.primaryKey("digest", .text)
                t.column("colour", .text).notNull()
                t.column(StateSeals.column, .blob)
            }
        }
        migrator.registerMigration("v13-lock-files") { db in
            // The lock file Derive wrote (its real path, the digest written, its device and inode),
            // sealed from the start: when `lock:` moves, the old one is removed only while it is
            // still that file with those bytes, as an old index is (attack 37b's finding 13).
            try db.create(table: "lockFiles") { t in
                t.primaryKey("path", .text)
                t.column("digest", .text).notNull()
                t.column("device", .integer).notNull()
                t.column("inode", .integer).notNull()
                t.column(StateSeals.column, .blob)
            }
        }
        migrator.registerMigration("v14-pending-files") { db in
            // The file a pending write installs (its device, inode and birth, from the open
            // temporary before it is linked into place) and where (the output `bucket/key` and the
            // bucket's real folder then): a byte-identical copy put at that path after a kill is
            // not Derive's, and a note whose bucket was re-pointed or removed since is judged in
            // the folder it was written in (issue 9, round 39). Notes from before keep a seal over
            // fewer columns, which no longer verifies: they vouch for nothing (the file is the user's).
            try db.alter(table: "pendingWrites") { t in
                t.add(column: "device", .integer).notNull().defaults(to: 0)
                t.add(column: "inode", .integer).notNull().defaults(to: 0)
                t.add(column: "birth", .integer).notNull().defaults(to: 0)
                t.add(column: "output", .text).notNull().defaults(to: "")
                t.add(column: "folder", .text).notNull().defaults(to: "")
            }
        }
        return migrator
    }

    /// The lock files Derive wrote (sealed rows only, absolute paths), path → the digest written
    /// and the file's device and inode then.
    public func lockFiles() throws -> PathDictionary<WrittenLock> {
        try queue.read { db in
            var result: PathDictionary<WrittenLock> = [:]
            guard try db.tableExists("lockFiles") else { return result }
            try forEachRow(db, "lockFiles", ["path", "digest", "device", "inode"]) { row, sealed in
                let path: String = row[0], device: Int64 = row[2], inode: Int64 = row[3]
                guard sealed, Self.absolutePathProblem(path) == nil else { return }
                result[path] = WrittenLock(digest: row[1], identity: FileIdentity(stored: device, inode))
            }
            return result
        }
    }

    /// Records the lock Derive wrote at `path` (nil `lock`: forgets the record).
    public func setLockFile(_ path: String, _ lock: WrittenLock?) throws {
        try write { db in
            if let lock {
                let stored = lock.identity.stored
                try db.execute(sql: "INSERT OR REPLACE INTO lockFiles (path, digest, device, inode) VALUES (?, ?, ?, ?)",
                               arguments: [path, lock.digest, stored.device, stored.inode])
            } else {
                try db.execute(sql: "DELETE FROM lockFiles WHERE path = ?", arguments: [path])
            }
        }
    }

    /// The files builds left in place (`leftFiles`, sealed rows only), by place.
    public func leftFiles() throws -> [String: LockFile.Left] {
        try queue.read { db in
            var result: [String: LockFile.Left] = [:]
            try forEachRow(db, "leftFiles", ["place", "path", "acl", "why", "digest", "gone"]) { row, sealed in
                guard sealed, let acl = BucketACL(rawValue: row[2] as String) else { return }
                let gone: Int64 = row[5]
                let place: String = row[0]
                result[place] = LockFile.Left(path: row[1], acl: acl.rawValue, why: row[3], file: place, gone: gone != 0,
                                              digest: row[4], goneSince: gone)
            }
            return result
        }
    }

    /// Replaces the records of files left in place with `lines` (by place); writes nothing when
    /// they are recorded as they are (a no-op build leaves the database as it was).
    public func saveLeftFiles(_ lines: [LockFile.Left]) throws {
        var wanted: [String: LockFile.Left] = [:]
        for line in lines { wanted[line.place] = line }
        let current = try leftFiles()
        func same(_ a: LockFile.Left, _ b: LockFile.Left) -> Bool {
            a.path == b.path && a.acl == b.acl && a.why == b.why && a.digest == b.digest && a.goneSince == b.goneSince
        }
        let unsealed = try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM leftFiles") ?? 0 } != current.count
        guard unsealed || current.count != wanted.count || wanted.contains(where: { place, line in current[place].map { !same($0, line) } ?? true })
        else { return }
        try write { db in
            try db.execute(sql: "DELETE FROM leftFiles")
            for (place, line) in wanted.sorted(by: { $0.key < $1.key }) {
                try db.execute(sql: "INSERT INTO leftFiles (place, path, acl, why, digest, gone) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [place, line.path, line.acl, line.why, line.digest, line.isGone ? max(line.goneSince, 1) : 0])
            }
        }
    }

    /// Dominant colours (`#rrggbb`) by source digest.
    public func sourceColours() throws -> [String: String] {
        try queue.read { db in
            var colours: [String: String] = [:]
            try forEachRow(db, "sourceColours", ["digest", "colour"]) { row, sealed in
                if sealed, colours[row[0] as String] == nil { colours[row[0]] = row[1] as String }
            }
            return colours
        }
    }

    /// Placeholders (data URI, ThumbHash in base64) by source digest; empty strings: none could be made.
    public func placeholders() throws -> [String: (image: String, thumbhash: String)] {
        try queue.read { db in
            var placeholders: [String: (image: String, thumbhash: String)] = [:]
            try forEachRow(db, "placeholders", ["digest", "image", "thumbhash"]) { row, sealed in
                if sealed, placeholders[row[0] as String] == nil { placeholders[row[0]] = (image: row[1] as String, thumbhash: row[2] as String) }
            }
            return placeholders
        }
    }

    public func savePlaceholder(digest: String, image: String, thumbhash: String) throws {
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO placeholders (digest, image, thumbhash) VALUES (?, ?, ?)",
                           arguments: [digest, image, thumbhash])
        }
    }

    /// Dominant colours (`#rrggbb`, '' for none) by source digest.
    public func sourceDominants() throws -> [String: String] {
        try queue.read { db in
            var colours: [String: String] = [:]
            try forEachRow(db, "sourceDominants", ["digest", "colour"]) { row, sealed in
                if sealed, colours[row[0] as String] == nil { colours[row[0]] = row[1] as String }
            }
            return colours
        }
    }

    public func saveSourceDominant(digest: String, colour: String) throws {
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO sourceDominants (digest, colour) VALUES (?, ?)", arguments: [digest, colour])
        }
    }

    public func saveSourceColour(digest: String, colour: String) throws {
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO sourceColours (digest, colour) VALUES (?, ?)", arguments: [digest, colour])
        }
    }

    public func allFiles() throws -> PathDictionary<FileRecord> {
        try queue.read { db in
            var result: PathDictionary<FileRecord> = [:]
            var intern = StringInterner()
            try forEachRow(db, "files", Self.fileColumns) { row, sealed in
                // An unsealed digest is not Derive's reading: the file is hashed again.
                guard sealed else { return }
                var record = FileRecord(row: row)
                record.format = intern(record.format)
                if result[record.path] == nil { result[record.path] = record }
            }
            return result
        }
    }

    /// The stat cache's rows for a plan, each row's seal verified when the plan first uses the
    /// row (`ContentDigests`), not here (issue 15): a plan of one edited source among 20 000
    /// read and verified all 60 000 rows (sources and output files) and used the 20 000 of the
    /// sources. Every row is read and decoded; a row is handed out with its seal still to verify
    /// (`FileSealCheck`) when its columns are exactly a `FileRecord`'s, each of the type Derive
    /// writes; any other row is verified here, as `allFiles` does (a column added by hand joins
    /// the seal, which a record cannot reproduce). The first row of a path whose seal verifies
    /// wins, as in `allFiles`. Without seals (a store opened without an owner) every row is taken.
    /// `including`: only rows whose path it accepts are decoded (an edited source's plan needs the
    /// inputs' rows, not the outputs' files': two thirds of the table at two styles); the others are
    /// stepped past on their path alone. What a taken row answers is the same either way.
    public func fileRows(including: ((String) -> Bool)? = nil) throws -> (rows: PathDictionary<CachedFile>, check: FileSealCheck?) {
        try queue.read { db in
            var result: PathDictionary<CachedFile> = [:]
            var intern = StringInterner()
            guard let seals else {
                try forEachRow(db, "files", Self.fileColumns) { row, _ in
                    if let including, !including(row[0]) { return }
                    var record = FileRecord(row: row)
                    record.format = intern(record.format)
                    if result[record.path] == nil { result[record.path] = CachedFile(record: record, seal: nil) }
                }
                return (result, nil)
            }
            let check = FileSealCheck(seals: seals, columns: try seals.columns(db, "files"))
            let lazy = check.columns == Self.fileColumns.sorted()
            let query = try seals.query(db, table: "files", leading: Self.fileColumns)
            let rows = try Row.fetchCursor(db, sql: query.sql)
            while let row = try rows.next() {
                if let including, !Self.takes(row, including) { continue }
                let seal: RowSeal?
                if lazy, Self.hasRecordTypes(row), case .blob(let stored) = (row[query.sealIndex] as DatabaseValue).storage {
                    guard let stored = RowSeal(stored) else { continue }   // not a seal: verifies nothing
                    seal = stored
                } else {
                    guard seals.verifies(query, row) else { continue }
                    seal = nil
                }
                var record = FileRecord(row: row)
                record.format = intern(record.format)
                if let earlier = result[record.path] {
                    // (A primary key: only a state whose table was made by hand repeats a path.)
                    if let pending = earlier.seal {
                        guard !check.verifies(earlier.record, pending) else { result[record.path] = CachedFile(record: earlier.record, seal: nil); continue }
                    } else {
                        continue
                    }
                }
                result[record.path] = CachedFile(record: record, seal: seal)
            }
            return (result, check)
        }
    }

    /// Whether `including` takes the path of `row` (a `files` query led by `fileColumns`); a
    /// path that is not text is taken, for the seal check to refuse as before.
    static func takes(_ row: Row, _ including: (String) -> Bool) -> Bool {
        guard case .string(let path) = (row[0] as DatabaseValue).storage else { return true }
        return including(path)
    }

    /// The stat cache's row for `path` as `fileRows` would give it (the first row of the path
    /// whose seal verifies; any row without seals), its seal verified here: read by key for a
    /// plan that took only some rows up front (`ContentDigests.RowSource`).
    public func fileRow(at path: String) throws -> CachedFile? {
        try queue.read { db in
            var found: FileRecord?
            try forEachRow(db, "files", Self.fileColumns, "WHERE path = ?", [path]) { row, sealed in
                if sealed, found == nil { found = FileRecord(row: row) }
            }
            return found.map { CachedFile(record: $0, seal: nil) }
        }
    }

    /// Whether `row` (a `files` query led by `fileColumns`) holds a text or an integer in each of
    /// them as a `FileRecord` has: only then is it decoded before its seal is verified (a value
    /// of another type would stop `FileRecord(row:)`; Derive never writes one).
    static func hasRecordTypes(_ row: Row) -> Bool {
        for index in fileColumns.indices {
            switch (row[index] as DatabaseValue).storage {
            case .string: if !fileTextColumns.contains(index) { return false }
            case .int64: if fileTextColumns.contains(index) { return false }
            default: return false
            }
        }
        return true
    }

    /// The positions in `fileColumns` of the text columns (path, digest, format).
    static let fileTextColumns: Set<Int> = [0, 4, 5]

    /// Output records `allOutputs` leaves out because their place is not trusted
    /// (`OutputRecord.placeProblem`, or a folder `places` does not give): path → why. The plan names each; nothing is deleted.
    public func ignoredOutputs() throws -> PathDictionary<String> {
        try queue.read { db in
            var result: PathDictionary<String> = [:]
            let rows = try outputRows(db)
            for path in rows.unsealed { result[path] = Self.unsealed }
            var identities: [String: FileIdentity]?
            for (place, paths) in rows.places {
                guard let problem = try placeProblem(place, db, identities: &identities) else { continue }
                for path in paths { result[path] = problem }
            }
            // (Said before a folder's: `problem(_:known:identities:)` asks in this order.)
            for (path, problem) in rows.malformed { result[path] = problem }
            return result
        }
    }

    /// Why records leading to `place` may not be followed, or nil (`problem(_:known:identities:)`
    /// for each of them). Checked once per reading: a state of 200 000 outputs has a handful of places.
    func placeProblem(_ place: OutputRows.Place, _ db: Database, identities: inout [String: FileIdentity]?) throws -> String? {
        guard let places else { return nil }
        if identities == nil { identities = try bucketFolderIdentities(db) }
        let folder = place.folder.string, bucket = place.bucket.string
        return places.problem(outputFolder: folder, bucket: bucket, recorded: identities?[folder + "\u{0}" + bucket])
    }

    /// The outputs table as read: its records whose seal verifies (decoded, the first row of each
    /// path) and the paths of those whose seal does not.
    /// With the records whose seal verifies: those with a folder by the place they lead to, and
    /// those whose place is malformed (`placeProblem`) with why, kept as records come and go, so
    /// that each read asks once per place (not once per record, 10 000 times per read).
    struct OutputRows: Equatable {
        var sealed: PathDictionary<OutputRecord> = [:]
        var unsealed: [String] = []
        var places: [Place: PathSet] = [:]
        var malformed: PathDictionary<String> = [:]

        /// A bucket's folder a record was written to, and the bucket, by bytes.
        struct Place: Hashable {
            var folder: PathKey
            var bucket: PathKey
        }

        /// Adds `record` (sealed) as the record of its path.
        mutating func add(_ record: OutputRecord) {
            sealed[record.path] = record
            if !record.folder.isEmpty { places[Place(folder: PathKey(record.folder), bucket: PathKey(record.bucket)), default: []].insert(record.path) }
            if let problem = record.placeProblem { malformed[record.path] = problem }
        }

        /// Removes the record of `path` (sealed).
        mutating func removeSealed(_ path: String) {
            guard let record = sealed.removeValue(forKey: path) else { return }
            if !record.folder.isEmpty {
                let place = Place(folder: PathKey(record.folder), bucket: PathKey(record.bucket))
                places[place]?.remove(path)
                if places[place]?.isEmpty == true { places[place] = nil }
            }
            malformed[path] = nil
        }
    }

    /// The outputs table, each row's seal verified once per process while the table is unchanged
    /// (issue 15): a build read it four times (the folders it may write to, the plan, the kept
    /// records, the witness), verifying 40 000 seals each time. After this connection's own
    /// writes only the rows they touched are read and verified again (`TableChanges` names each
    /// rowid inserted, updated or deleted, whatever the statement): a build that recorded two
    /// outputs re-read 10 000 rows for its reconcile and witness (issue 15, 7% of an edited build).
    /// The whole table is read again, and every seal verified, on a commit by any other connection
    /// or process (SQLite's `data_version`), a schema change (`schema_version`), a rollback, or
    /// whenever the patch cannot account for every row (`OutputRowsMemo.patch`). A row is never
    /// trusted on an earlier reading of other bytes.
    func outputRows(_ db: Database) throws -> OutputRows {
        let key = OutputRowsMemo.Key(epoch: changes.epoch,
                                     dataVersion: try Int64.fetchOne(db, sql: "PRAGMA data_version") ?? -1,
                                     schemaVersion: try Int64.fetchOne(db, sql: "PRAGMA schema_version") ?? -1)
        let changed = changes.take()
        if let rows = try outputsMemo.rows(for: key, changed: changed, reading: { ids in try outputRows(db, rowids: ids) },
                                           count: { try Int.fetchOne(db, sql: "SELECT count(*) FROM outputs") ?? -1 }) {
            return rows
        }
        let fresh = try outputRowsAfresh(db)
        outputsMemo.set(fresh, for: key)
        return fresh.rows
    }

    /// The outputs table read whole, every seal verified, without the memo (and what the memo
    /// keeps of it: each row's rowid, or none when a column named like the rowid hides it).
    func outputRowsAfresh(_ db: Database) throws -> OutputRowsMemo.Reading {
        var reading = OutputRowsMemo.Reading()
        let hidden = try db.columns(in: "outputs").contains { ["rowid", "_rowid_", "oid"].contains($0.name.lowercased()) }
        if hidden { reading.rowids = nil }
        let offset = hidden ? 0 : 1
        var shared = RepeatedColumns()
        // Read in this transaction: the rows are the vouched ones only while no other connection committed.
        let trusted = rowsVouch.holds(try Int64.fetchOne(db, sql: "PRAGMA data_version") ?? -1)
        let ruleNames = ruleNamesBox.get()
        try forEachRow(db, "outputs", (hidden ? [] : ["_rowid_"]) + Self.outputColumns, trusted: trusted) { row, sealed in
            let path: String = row[offset]
            if !hidden { reading.rowids?[row[0]] = (path, sealed) }
            guard sealed else { reading.rows.unsealed.append(path); return }
            var decoded = OutputRecord(row: row, offset: offset)
            if let ruleNames { decoded.rule = ruleNames.current(decoded.rule) }   // an older Derive's spelling of an unnamed rule
            // Columns most rows repeat share one buffer each (the engine text alone is hundreds of bytes).
            let record = shared(decoded)
            if reading.rows.sealed[record.path] == nil { reading.rows.add(record) } else { reading.rowids = nil }
        }
        // A path held by two rows (a table Derive did not make): only ever read whole.
        if !reading.rows.unsealed.isEmpty,
           Set(reading.rows.unsealed).count != reading.rows.unsealed.count || reading.rows.unsealed.contains(where: { reading.rows.sealed[$0] != nil }) {
            reading.rowids = nil
        }
        return reading
    }

    /// The outputs table's rows of `rowids` that are there now: rowid → path and the record when
    /// its seal verifies (nil when it does not).
    func outputRows(_ db: Database, rowids: [Int64]) throws -> [Int64: (path: String, record: OutputRecord?)] {
        var result: [Int64: (path: String, record: OutputRecord?)] = [:]
        let ruleNames = ruleNamesBox.get()
        for id in rowids {
            try forEachRow(db, "outputs", ["_rowid_"] + Self.outputColumns, "WHERE _rowid_ = ?", [id]) { row, sealed in
                var record = sealed ? OutputRecord(row: row, offset: 1) : nil
                if let ruleNames, let rule = record?.rule { record?.rule = ruleNames.current(rule) }
                result[row[0]] = (row[1], record)
            }
        }
        return result
    }

    /// The outputs table as `outputs()` reads it now, through the memo, and whether it was read
    /// whole (tests: the memo patched after writes equals `outputRowsAfresh`).
    func outputRowsForTesting() throws -> (rows: OutputRows, afresh: OutputRows, readWhole: Bool) {
        try queue.read { db in
            let before = outputsMemo.wholeReads
            let rows = try outputRows(db)
            return (rows, try outputRowsAfresh(db).rows, outputsMemo.wholeReads != before)
        }
    }

    /// Why `path` (read from the state) is not a plain absolute path, or nil: it must start with
    /// `/` and have no `.`, `..` or empty component.
    /// Asked of every outputs row's folder when the table is read whole: the components are
    /// judged in one pass over the bytes (issue 15: splitting them into an array of slices was
    /// 6 k instructions a row, 12 M of a 2 000-output edited plan's 565 M);
    /// `absolutePathProblemSlowly` is the definition it must agree with (`StateIntegrityTests`).
    public static func absolutePathProblem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "is not an absolute path" }
        if path != "/", hasDotOrEmptyComponent(afterTheFirstByteOf: path) { return "has a '.', '..' or empty component" }
        return nil
    }

    /// Whether a component of `path` past its first byte (the leading `/`) is empty, `.` or `..`.
    static func hasDotOrEmptyComponent(afterTheFirstByteOf path: String) -> Bool {
        var length = 0, onlyDots = true, first = true
        for byte in path.utf8 {
            if first { first = false; continue }
            if byte == UInt8(ascii: "/") {
                if length == 0 || (onlyDots && length <= 2) { return true }
                length = 0; onlyDots = true
            } else {
                length += 1
                if byte != UInt8(ascii: ".") { onlyDots = false }
            }
        }
        return length == 0 || (onlyDots && length <= 2)
    }

    /// `absolutePathProblem` as it was written first, by splitting into components: the reference.
    public static func absolutePathProblemSlowly(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "is not an absolute path" }
        let components = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        if path != "/", components.contains(where: { $0.isEmpty || $0.elementsEqual([0x2E]) || $0.elementsEqual([0x2E, 0x2E]) }) {
            return "has a '.', '..' or empty component"
        }
        return nil
    }

    /// The stat cache's row for one file, read by key.
    public func file(at path: String) throws -> FileRecord? {
        try queue.read { db in
            var found: FileRecord?
            try forEachRow(db, "files", Self.fileColumns, "WHERE path = ?", [path]) { row, sealed in if sealed { found = FileRecord(row: row) } }
            return found
        }
    }

    static let fileColumns = ["path", "size", "mtime", "inode", "digest", "format", "recorded", "ctime", "width", "height"]
    static let outputColumns = ["path", "rule", "source", "style", "matrix", "engine", "pipeline", "sourceDigest", "dependencies", "encoder",
                                "actionKey", "acl", "outputDigest", "size", "width", "height", "format", "builtAt", "folder", "adopted"]

    /// The output records Derive wrote (sealed), each leading to a place the manifest gives.
    public func allOutputs() throws -> PathDictionary<OutputRecord> {
        try queue.read { db in
            let rows = try outputRows(db)
            // The records themselves are shared with the memo; only a record leading elsewhere is dropped from this copy.
            var result = rows.sealed
            var identities: [String: FileIdentity]?
            for (place, paths) in rows.places where try placeProblem(place, db, identities: &identities) != nil {
                for path in paths { result[path] = nil }
            }
            for (path, _) in rows.malformed { result[path] = nil }
            return result
        }
    }

    public func saveFiles(_ records: [FileRecord]) throws {
        guard !records.isEmpty else { return }
        try write { db in
            for record in records { try record.save(db) }
        }
    }

    /// Records a built output (after its file was renamed into place) with its file digest, in one
    /// transaction that also clears its pending write.
    /// `identity`: the output file's own device and inode as Derive installed it (nil: not known,
    /// e.g. the in-memory disk): what a later deletion requires of the file at that path.
    public func recordOutput(_ record: OutputRecord, file: FileRecord?, identity: FileIdentity? = nil) throws {
        // When the file was made: with its device and inode, what a later deletion requires of it.
        let birth = identity == nil ? 0 : (FileBirth.of(record.file) ?? 0)
        try write { db in
            try record.save(db)
            try file?.save(db)
            try db.execute(sql: "DELETE FROM pendingWrites WHERE path = ?", arguments: [record.file])
            // Device and inode 0, 0 when not known: recorded as not known (sealed), so an output
            // with no row at all is one whose row was removed since (`outputIdentity`).
            let stored = identity?.stored ?? (device: 0, inode: 0)
            try db.execute(sql: "INSERT OR REPLACE INTO outputFiles (path, device, inode, birth) VALUES (?, ?, ?, ?)",
                           arguments: [record.path, stored.device, stored.inode, birth])
        }
    }

    /// The device and inode each output file had when Derive installed it (with when it was
    /// made), by `bucket/key`; nil for an output recorded before they were kept (or adopted where
    /// none could be read), `FileIdentity.unproven` for one whose record is not sealed. An output
    /// with no row is not in the map (`outputIdentity` says what that means).
    public func outputIdentities() throws -> PathDictionary<FileIdentity?> {
        try queue.read { db in
            var result: PathDictionary<FileIdentity?> = [:]
            try forEachRow(db, "outputFiles", ["path", "device", "inode", "birth"]) { row, sealed in
                result[row[0] as String] = .some(Self.identity(sealed: sealed, device: row[1], inode: row[2], birth: row[3]))
            }
            return result
        }
    }

    static func identity(sealed: Bool, device: Int64, inode: Int64, birth: Int64) -> FileIdentity? {
        guard sealed else { return .unproven }
        return device == 0 && inode == 0 ? nil : FileIdentity(stored: device, inode, birth: birth)
    }

    /// The device and inode of one output's file when Derive installed it (with when it was
    /// made), nil when not recorded; `FileIdentity.unproven` when its record is not sealed (no
    /// file is then Derive's by it).
    public func outputIdentity(_ path: String) throws -> FileIdentity? {
        try queue.read { db in
            // No row: from before they were kept, in a state without seals; in a sealed state every
            // output has one (0, 0 when not known, the upgrade's too), so its row was removed since.
            var found: FileIdentity?? = seals == nil ? .some(nil) : .some(.unproven)
            try forEachRow(db, "outputFiles", ["device", "inode", "birth"], "WHERE path = ?", [path]) { row, sealed in
                found = .some(Self.identity(sealed: sealed, device: row[0], inode: row[1], birth: row[2]))
            }
            return found ?? nil
        }
    }

    /// Notes a file a build is about to rename into place, with the digest of its bytes, and (for
    /// an output) the file itself (`identity`, with its birth: the open temporary's, before it is
    /// linked into place) and where it goes (`output`, `bucket/key`, in the bucket's real `folder`).
    /// The bucket folder is recorded as that bucket's (device and inode) in the same transaction,
    /// before anything is moved into it: a build killed before its end (`noteBucketFolders`)
    /// otherwise left Derive's files in a folder no later build followed once the bucket moved
    /// again, their records dropped as "nor a folder Derive recorded" (attack 40a's A1).
    public func addPendingWrite(_ path: String, digest: String, identity: FileIdentity? = nil, output: String = "", folder: String = "") throws {
        let stored = identity?.stored ?? (device: 0, inode: 0)
        let bucket = output.split(separator: "/", maxSplits: 1).first.map(String.init)
        let bucketFolder = folder.isEmpty ? nil : FileIdentity.ofFolder(folder)
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO pendingWrites (path, digest, device, inode, birth, output, folder) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           arguments: [path, digest, stored.device, stored.inode, identity?.birth ?? 0, output, folder])
            guard let bucket, let bucketFolder else { return }
            var recorded: FileIdentity?
            try forEachRow(db, "bucketFolders", ["device", "inode"], "WHERE bucket = ? AND folder = ?", [bucket, folder]) { row, sealed in
                if sealed { recorded = FileIdentity(stored: row[0], row[1]) }
            }
            if recorded != bucketFolder {
                try db.execute(sql: "INSERT OR REPLACE INTO bucketFolders (bucket, folder, device, inode) VALUES (?, ?, ?, ?)",
                               arguments: [bucket, folder, bucketFolder.stored.device, bucketFolder.stored.inode])
            }
        }
    }

    /// Files a build was renaming into place but did not record (left by a killed build), path →
    /// digest of the bytes it wrote. Rows from before the digest was kept have an empty digest.
    public func pendingWrites() throws -> PathDictionary<String> {
        try pendingNotes().mapValues(\.digest)
    }

    /// The pending writes' notes (sealed rows only), path → what was noted.
    public func pendingNotes() throws -> PathDictionary<PendingWrite> {
        try queue.read { db in
            var result: PathDictionary<PendingWrite> = [:]
            // A database opened read-only may predate v14 (no identity, no place: digest alone).
            let full = try db.columns(in: "pendingWrites").contains { $0.name == "folder" }
            let columns = full ? ["path", "digest", "device", "inode", "birth", "output", "folder"] : ["path", "digest"]
            try forEachRow(db, "pendingWrites", columns) { row, sealed in
                guard sealed else { return }
                var note = PendingWrite(digest: row[1])
                if full {
                    let device: Int64 = row[2], inode: Int64 = row[3]
                    if device != 0 || inode != 0 { note.identity = FileIdentity(stored: device, inode, birth: row[4]) }
                    note.output = row[5]; note.folder = row[6]
                }
                result[row[0] as String] = note
            }
            return result
        }
    }

    public func clearPendingWrites(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try write { db in
            for path in paths { try db.execute(sql: "DELETE FROM pendingWrites WHERE path = ?", arguments: [path]) }
        }
    }

    /// Drops every pending write: at the end of a build, whatever was not recorded is stale.
    /// Writes nothing when there is none (a no-op leaves the database as it was, for the witness).
    public func clearAllPendingWrites() throws {
        let any = try queue.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM pendingWrites)") } ?? false
        guard any else { return }
        try write { db in try db.execute(sql: "DELETE FROM pendingWrites") }
    }

    public func removeOutputs(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try write { db in
            _ = try OutputRecord.deleteAll(db, keys: paths)
            for path in paths { try db.execute(sql: "DELETE FROM outputFiles WHERE path = ?", arguments: [path]) }
        }
    }

    /// Clears the adopted mark of `paths`: their files were rendered again and held the same bytes.
    public func markVerified(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try write { db in
            for path in paths { try db.execute(sql: "UPDATE outputs SET adopted = 0 WHERE path = ? AND adopted != 0", arguments: [path]) }
        }
    }

    /// Updates fields of a record that are not in its action key (ACL, rule name, style, matrix).
    public func updateOutput(_ record: OutputRecord) throws {
        try write { db in try record.save(db) }
    }

    /// The recorded ACL of a built output, by bucket name and key: what `derive serve` answers
    /// for a derivative it did not render itself. Nil when no such output was built.
    public func recordedACL(bucket: String, key: String) throws -> String? {
        try queue.read { db in
            var acl: String?
            try forEachRow(db, "outputs", ["acl"], "WHERE path = ?", [bucket + "/" + key]) { row, sealed in if sealed { acl = row[0] } }
            return acl
        }
    }

    public func addCreatedFolders(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try write { db in
            for path in paths {
                // Its identity now, just after Derive made it; replaced when Derive made it again.
                let identity: (device: Int64, inode: Int64) = FileIdentity.ofFolder(path)?.stored ?? (device: 0, inode: 0)
                try db.execute(sql: "INSERT OR REPLACE INTO createdFolders (path, device, inode) VALUES (?, ?, ?)",
                               arguments: [path, identity.device, identity.inode])
            }
        }
    }

    /// The bucket folders outputs were written to.
    public func recordedFolders() throws -> [String] {
        try queue.read { db in
            // Each folder with the buckets written to it (by the bucket name before the path's first '/').
            var pairs: Set<[String]> = []
            for place in try outputRows(db).places.keys { pairs.insert([place.folder.string, place.bucket.string]) }
            var folders: [String] = []
            let identities = try bucketFolderIdentities(db)
            for pair in pairs.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                let folder = pair[0], bucket = pair[1]
                if !folders.contains(folder),
                   places?.problem(outputFolder: folder, bucket: bucket, recorded: identities[folder + "\u{0}" + bucket]) == nil {
                    folders.append(folder)
                }
            }
            return folders
        }
    }

    public func createdFolders() throws -> PathSet {
        try queue.read { db in
            var result = PathSet()
            try forEachRow(db, "createdFolders", ["path"]) { row, sealed in
                let path: String = row[0]
                if sealed, Self.absolutePathProblem(path) == nil { result.insert(path) }
            }
            return result
        }
    }

    /// The folders Derive created, each with its device and inode when created (nil: a record
    /// from before they were kept).
    public func createdFolderIdentities() throws -> PathDictionary<FileIdentity?> {
        try queue.read { db in
            var result: PathDictionary<FileIdentity?> = [:]
            try forEachRow(db, "createdFolders", ["path", "device", "inode"]) { row, sealed in
                let path: String = row[0], device: Int64 = row[1], inode: Int64 = row[2]
                guard sealed, Self.absolutePathProblem(path) == nil else { return }
                result[path] = .some(device == 0 && inode == 0 ? nil : FileIdentity(stored: device, inode))
            }
            return result
        }
    }

    /// The folders recorded as buckets' folders that are still those folders (device and inode):
    /// where a killed build may have left temporaries of a bucket's files (attack 40a's A2).
    public func bucketFoldersStillThere() throws -> [String] {
        try queue.read { db in try recordedBucketFolders(db) }.filter { FileIdentity.ofFolder($0.key) == $0.value }.map(\.key)
    }

    /// The folders recorded as buckets' folders (any bucket), folder → device and inode then.
    func recordedBucketFolders(_ db: Database) throws -> [String: FileIdentity] {
        var result: [String: FileIdentity] = [:]
        try forEachRow(db, "bucketFolders", ["folder", "device", "inode"]) { row, sealed in
            if sealed { result[row[0] as String] = FileIdentity(stored: row[1], row[2]) }
        }
        return result
    }

    public func forgetCreatedFolder(_ path: String) throws {
        try write { db in try db.execute(sql: "DELETE FROM createdFolders WHERE path = ?", arguments: [path]) }
    }

    /// Control files (the index) Derive wrote, path → digest.
    public func controlFiles() throws -> PathDictionary<String> {
        try queue.read { db in
            var result: PathDictionary<String> = [:]
            // A path with `..` (or relative) is never Derive's index: ignored, so nothing is removed there.
            let folders = places == nil ? [:] : try recordedBucketFolders(db)
            try forEachRow(db, "controlFiles", ["path", "digest"]) { row, sealed in
                let path: String = row[0]
                if sealed, Self.absolutePathProblem(path) == nil, places?.problem(controlFile: path, recordedFolders: folders) == nil { result[path] = row[1] }
            }
            return result
        }
    }

    /// Control file records `controlFiles()` leaves out because they lead outside every place
    /// the manifest gives, path → why.
    public func ignoredControlFiles() throws -> [String: String] {
        try queue.read { db in
            var result: [String: String] = [:]
            let folders = places == nil ? [:] : try recordedBucketFolders(db)
            try forEachRow(db, "controlFiles", ["path"]) { row, sealed in
                let path: String = row[0]
                if !sealed {
                    result[path] = Self.unsealed
                } else if Self.absolutePathProblem(path) == nil, let places, let problem = places.problem(controlFile: path, recordedFolders: folders) {
                    result[path] = problem
                }
            }
            return result
        }
    }

    /// The device and inode of each control file (the index) when Derive wrote it, path → identity;
    /// nil for a record from before they were kept.
    public func controlFileIdentities() throws -> PathDictionary<FileIdentity?> {
        try queue.read { db in
            var result: PathDictionary<FileIdentity?> = [:]
            try forEachRow(db, "controlFiles", ["path", "device", "inode"]) { row, sealed in
                let device: Int64 = row[1], inode: Int64 = row[2]
                if sealed { result[row[0] as String] = .some(device == 0 && inode == 0 ? nil : FileIdentity(stored: device, inode)) }
            }
            return result
        }
    }

    /// `identity`: the file's own device and inode as Derive wrote it (nil: not known).
    public func setControlFile(_ path: String, digest: String?, identity: FileIdentity? = nil) throws {
        try write { db in
            if let digest {
                let stored = identity?.stored ?? (device: 0, inode: 0)
                try db.execute(sql: "INSERT OR REPLACE INTO controlFiles (path, digest, device, inode) VALUES (?, ?, ?, ?)",
                               arguments: [path, digest, stored.device, stored.inode])
            } else {
                try db.execute(sql: "DELETE FROM controlFiles WHERE path = ?", arguments: [path])
            }
        }
    }

    public func removeFiles(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try write { db in
            _ = try FileRecord.deleteAll(db, keys: paths)
        }
    }
}

/// A row of the stat cache as read, with its seal when still to be verified (nil: verified, or
/// a store without seals).
public struct CachedFile: Sendable {
    public var record: FileRecord
    public var seal: RowSeal?
}

/// Verifies a stat cache row's seal from its decoded record (`StateStore.fileRows`): the values
/// the row held, in the canonical order of the table's columns.
public struct FileSealCheck: Sendable {
    let seals: StateSeals
    /// The `files` table's columns but the seal, in canonical order.
    let columns: [String]

    public func verifies(_ record: FileRecord, _ seal: RowSeal) -> Bool {
        let values: [DatabaseValue] = columns.map { column in
            switch column {
            case "path": return record.path.databaseValue
            case "size": return record.size.databaseValue
            case "mtime": return record.mtime.databaseValue
            case "inode": return record.inode.databaseValue
            case "digest": return record.digest.databaseValue
            case "format": return record.format.databaseValue
            case "recorded": return record.recorded.databaseValue
            case "ctime": return record.ctime.databaseValue
            case "width": return record.width.databaseValue
            case "height": return record.height.databaseValue
            default: return .null   // (not lazy: `fileRows` verifies such a table's rows as it reads them)
            }
        }
        return seals.verifies(table: "files", columns: columns, values: values, stored: seal)
    }
}

/// The rows this connection inserts, updates or deletes in the outputs table, by rowid, whatever
/// the statement (a write outside `StateStore.write` too, a trigger's), and every rollback (an
/// epoch: the memo is then read whole). Not seen here: rows a REPLACE deletes (SQLite's update
/// hook does not report them; `OutputRowsMemo.patch` finds them by path and by count).
final class TableChanges: TransactionObserver, @unchecked Sendable {
    static let table = "outputs"
    private let lock = NSLock()
    private var rollbacks = 0
    private var rowids: Set<Int64> = []
    var epoch: Int { lock.withLock { rollbacks } }
    /// The rowids changed since the last call.
    func take() -> Set<Int64> { lock.withLock { defer { rowids = [] }; return rowids } }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        switch eventKind {
        case .insert(let table), .delete(let table), .update(let table, _): return table == Self.table
        }
    }
    func databaseDidChange(with event: DatabaseEvent) { lock.withLock { _ = rowids.insert(event.rowID) } }
    func databaseDidCommit(_ db: Database) {}
    func databaseDidRollback(_ db: Database) { lock.withLock { rollbacks += 1 } }
}

/// The outputs table's rows as last read and verified, with the key they were read under and
/// each row's rowid, patched after this connection's own writes.
final class OutputRowsMemo: @unchecked Sendable {
    struct Key: Equatable {
        var epoch: Int
        var dataVersion: Int64
        var schemaVersion: Int64
    }
    /// One reading of the table: the rows as handed out, and rowid → path and whether its seal
    /// verifies, of every row; nil when it is never patched (the rowid cannot be read, or a path
    /// is held by two rows: a table Derive did not make).
    struct Reading {
        var rows = StateStore.OutputRows()
        var rowids: [Int64: (path: String, sealed: Bool)]? = [:]
    }
    private let lock = NSLock()
    private var kept: (key: Key, reading: Reading)?
    private var reads = 0
    /// How many times the table was read whole (tests).
    var wholeReads: Int { lock.withLock { reads } }

    /// The rows kept, patched with the rows of `changed` (`reading` reads them now); nil when the
    /// table must be read whole: nothing kept, another key, or a patch that does not account for
    /// every row.
    func rows(for key: Key, changed: Set<Int64>, reading: ([Int64]) throws -> [Int64: (path: String, record: OutputRecord?)],
              count: () throws -> Int) throws -> StateStore.OutputRows? {
        guard var memo = lock.withLock({ () -> (key: Key, reading: Reading)? in defer { kept = nil }; return kept }),
              memo.key == key else { return nil }
        if changed.isEmpty {
            lock.withLock { kept = memo }
            return memo.reading.rows
        }
        guard try Self.patch(&memo.reading, changed: changed, reading: reading, count: count) else { return nil }
        lock.withLock { kept = memo }
        return memo.reading.rows
    }

    func set(_ reading: Reading, for key: Key) { lock.withLock { kept = (key, reading); reads += 1 } }

    /// Drops the reading kept: the next read reads the table whole.
    func forget() { lock.withLock { kept = nil } }

    /// Whether a reading is kept (`StateStore.verifiedRowsToken` asks only then: never a whole read of its own).
    var hasReading: Bool { lock.withLock { kept != nil } }

    /// Reads the rows of `changed` again into `memo`: each one's old entry goes, each one there
    /// now comes in (verified). False (read the table whole) when the result may differ from a
    /// fresh reading: a path held by two rows (a changed one, and one not named as changed that
    /// is still there: a table not made by Derive), or a row count other than the table's (a row
    /// deleted unreported, as a REPLACE on another unique column would).
    static func patch(_ memo: inout Reading, changed: Set<Int64>, reading: ([Int64]) throws -> [Int64: (path: String, record: OutputRecord?)],
                      count: () throws -> Int) throws -> Bool {
        guard var rowids = memo.rowids else { return false }
        let now = try reading(Array(changed))
        var gone = Array(changed)
        var paths = PathSet()
        var unsealedTouched = false
        for (id, row) in now {
            guard paths.insert(row.path).inserted else { return false }   // two changed rows of one path
            // A path a row not named as changed held: a REPLACE deleted that row, unreported.
            if rowids[id]?.path != row.path, memo.rows.sealed[row.path] != nil || memo.rows.unsealed.contains(row.path) {
                let others = rowids.filter { !changed.contains($0.key) && $0.value.path == row.path }.map(\.key)
                if !(try reading(others)).isEmpty { return false }   // still there: two rows of one path
                gone += others
            }
        }
        for id in gone {
            guard let old = rowids.removeValue(forKey: id) else { continue }
            if old.sealed { memo.rows.removeSealed(old.path) } else { unsealedTouched = true }
        }
        for (id, row) in now {
            rowids[id] = (row.path, row.record != nil)
            if let record = row.record { memo.rows.add(record) } else { unsealedTouched = true }
        }
        if unsealedTouched {
            // In rowid order, as a whole reading lists them.
            memo.rows.unsealed = rowids.filter { !$0.value.sealed }.sorted { $0.key < $1.key }.map(\.value.path)
        }
        guard try count() == rowids.count else { return false }
        memo.rowids = rowids
        return true
    }
}

/// The store's reading of recorded rule names, set once the manifest is known, read from any thread.
final class RuleNamesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var names: RecordedRuleNames?
    func set(_ value: RecordedRuleNames) { lock.withLock { names = value } }
    func get() -> RecordedRuleNames? { lock.withLock { names } }
}

/// The store's places, set once the manifest is known, read from any thread.
final class PlacesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var places: RecordPlaces?
    func set(_ value: RecordPlaces) { lock.withLock { places = value } }
    func get() -> RecordPlaces? { lock.withLock { places } }
}

/// Equal strings read from many rows made to share one buffer: a state of 200 000 outputs holds
/// a handful of distinct engines, pipelines and folders, each read once per row otherwise.
/// Equal by bytes (`PathKey`): a folder spelled NFD is never replaced by its NFC twin.
struct StringInterner {
    private var known: PathSet = []

    mutating func callAsFunction(_ text: String) -> String {
        guard text.utf8.count > 15 else { return text }   // stored inline in the String itself
        return known.insert(text).memberAfterInsert
    }
}

/// The columns most outputs rows repeat, each sharing one buffer (the engine text alone is
/// hundreds of bytes): a value with the previous row's bytes takes that row's string, compared
/// byte for byte (`PathKey.same`, never canonical equivalence), before it is hashed into the
/// interner (issue 15: every row hashed each of them).
/// The record keeps its bytes either way (`OutputRowsMemoTests` compares with a plain decoding).
struct RepeatedColumns {
    private var intern = StringInterner()
    private var previous: OutputRecord?

    private mutating func share(_ text: String, _ before: String?) -> String {
        if let before, PathKey.same(before, text) { return before }
        return intern(text)
    }

    mutating func callAsFunction(_ decoded: OutputRecord) -> OutputRecord {
        var record = decoded
        let before = previous
        record.rule = share(record.rule, before?.rule)
        if let style = record.style { record.style = share(style, before?.style) }
        record.matrix = share(record.matrix, before?.matrix); record.engine = share(record.engine, before?.engine)
        record.pipeline = share(record.pipeline, before?.pipeline); record.sourceDigest = share(record.sourceDigest, before?.sourceDigest)
        record.dependencies = share(record.dependencies, before?.dependencies); record.encoder = share(record.encoder, before?.encoder)
        record.acl = share(record.acl, before?.acl); record.format = share(record.format, before?.format)
        record.folder = share(record.folder, before?.folder)
        previous = record
        return record
    }
}

/// A lock file Derive wrote: the digest of the bytes written and the file's own device and inode.
public struct WrittenLock: Sendable, Equatable {
    public let digest: String
    public let identity: FileIdentity
    public init(digest: String, identity: FileIdentity) { self.digest = digest; self.identity = identity }
}

/// What a build noted of a file it was about to move into place (`StateStore.addPendingWrite`).
public struct PendingWrite: Sendable, Equatable {
    /// The digest of the bytes written ('' in notes from before it was kept).
    public var digest: String
    /// The file installed (device, inode, birth); nil when not noted (the lock's and the index's
    /// notes, a disk without descriptors).
    public var identity: FileIdentity?
    /// The output (`bucket/key`) and its bucket's real folder when it was written; '' when not noted.
    public var output: String = ""
    public var folder: String = ""
    public init(digest: String, identity: FileIdentity? = nil, output: String = "", folder: String = "") {
        self.digest = digest; self.identity = identity; self.output = output; self.folder = folder
    }

    /// Whether the regular file at `path`, whose bytes hash to `digest`, is the file noted: its
    /// bytes, and its device, inode and birth when they were noted.
    public func vouches(for path: String, digest: String?) -> Bool {
        guard !self.digest.isEmpty, digest == self.digest else { return false }
        return identity.map { $0.isFile(at: path) } ?? true
    }
}
