import Confinement
import Foundation
import GRDB

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

    public init(path: String, rule: String, source: String, style: String?, matrix: String, engine: String, pipeline: String,
                sourceDigest: String, dependencies: String, encoder: String, actionKey: String, acl: String,
                outputDigest: String, size: Int64, width: Int, height: Int, format: String, builtAt: Int64, folder: String) {
        self.folder = folder
        self.path = path; self.rule = rule; self.source = source; self.style = style; self.matrix = matrix
        self.engine = engine; self.pipeline = pipeline; self.sourceDigest = sourceDigest; self.dependencies = dependencies
        self.encoder = encoder; self.actionKey = actionKey; self.acl = acl; self.outputDigest = outputDigest
        self.size = size; self.width = width; self.height = height; self.format = format; self.builtAt = builtAt
    }

    /// Decodes by column position (no Codable), in the table's column order.
    public init(row: Row) {
        self.init(path: row[0], rule: row[1], source: row[2], style: row[3], matrix: row[4], engine: row[5], pipeline: row[6],
                  sourceDigest: row[7], dependencies: row[8], encoder: row[9], actionKey: row[10], acl: row[11],
                  outputDigest: row[12], size: row[13], width: row[14], height: row[15], format: row[16], builtAt: row[17],
                  folder: row[18])
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
    public var placeProblem: String? {
        if bucket.isEmpty || PathKey.split(path) == nil { return "its path '\(path)' names no bucket and key" }
        do { _ = try ObjectKey(fileName: Array(key.utf8)) } catch { return "its key '\(key)' is not a valid key (\(error))" }
        if !folder.isEmpty, let problem = StateStore.absolutePathProblem(folder) { return "its folder '\(folder)' \(problem)" }
        return nil
    }
}

/// The build state: an SQLite database (GRDB) in the manifest's state folder.
public final class StateStore: Sendable {
    public let queue: DatabaseQueue
    public let folder: String
    /// Where records may lead (set by the session from the manifest): nil, none is checked
    /// beyond `placeProblem` (tests of the store alone).
    private let placesBox = PlacesBox()

    /// Confines every record this store hands out to the places the manifest gives: a record
    /// leading elsewhere is left out of `allOutputs()`, `recordedFolders()` and `controlFiles()`
    /// and named by `ignoredOutputs()` and `ignoredControlFiles()`.
    public func confine(to places: RecordPlaces) { placesBox.set(places) }
    public var places: RecordPlaces? { placesBox.get() }

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
        let identities = try queue.read { db in try Self.bucketFolderIdentities(db) }
        return problem(record, known: &known, identities: identities)
    }

    /// The folders recorded as buckets' folders, `folder NUL bucket` → device and inode then.
    static func bucketFolderIdentities(_ db: Database) throws -> [String: FileIdentity] {
        var result: [String: FileIdentity] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT bucket, folder, device, inode FROM bucketFolders") {
            result[(row[1] as String) + "\u{0}" + (row[0] as String)] = FileIdentity(stored: row[2], row[3])
        }
        return result
    }

    /// Records the device and inode of the folders of the buckets rules write to now (those
    /// that exist), each as that bucket's: the only earlier folders a record may later lead to.
    /// Writes nothing when every one is recorded as it is (a no-op build leaves the database as it was).
    public func noteBucketFolders() throws {
        guard let places else { return }
        let now = places.currentOutputFolders.compactMap { entry in FileIdentity.ofFolder(entry.folder).map { (entry.bucket, entry.folder, $0) } }
        guard !now.isEmpty else { return }
        let recorded = try queue.read { db in try Self.bucketFolderIdentities(db) }
        let changed = now.filter { recorded[$0.1 + "\u{0}" + $0.0] != $0.2 }
        guard !changed.isEmpty else { return }
        try queue.write { db in
            for (bucket, folder, identity) in changed {
                try db.execute(sql: "INSERT OR REPLACE INTO bucketFolders (bucket, folder, device, inode) VALUES (?, ?, ?, ?)",
                               arguments: [bucket, folder, identity.stored.device, identity.stored.inode])
            }
        }
    }

    /// Where a corrupt database, or one another manifest owns, was moved before this one was
    /// started afresh.
    public let movedAside: String?
    /// Why it was moved (`corrupt`, or `owned by <manifest>`); nil when it was not.
    public let movedAsideReason: String?
    /// Whether a state of this manifest was there when opened (not created now, nor replacing
    /// one moved aside): then its records alone say what Derive wrote; the lock adds nothing.
    public let existed: Bool

    public static let fileName = StateFiles.database

    /// Opens (or creates) the state in `folder`. A database SQLite calls corrupt or "not a
    /// database" is moved aside (`state.sqlite.corrupt-<time>`, named in `movedAside`) and a new
    /// one started: the lock and the outputs on disk are enough to rebuild it.
    ///
    /// `owner` is the manifest opening it (its absolute real path). A state records its owner
    /// when created; one recording another manifest (a copied project, two manifests sharing a
    /// `state:` folder) is not trusted: its folders are another project's, so it is moved aside
    /// (`state.sqlite.foreign-<time>`) and a new one started. A state without an owner record
    /// (from before it was kept) is taken as this manifest's. Nil: no check (read-only users).
    public init(folder: String, owner: String? = nil) throws {
        self.folder = folder
        let path = folder + "/" + Self.fileName
        try StateFolderTrust.prepare(stateFolder: folder, database: path)   // the user's own, 0700/0600, before SQLite opens it
        var info = stat()
        let wasThere = lstat(path, &info) == 0 && info.st_size > 0
        var opened: DatabaseQueue
        var aside: String?
        var reason: String?
        do {
            opened = try Self.open(path)
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            aside = try Self.moveAside(path, suffix: "corrupt", error: error)
            reason = "corrupt"
            opened = try Self.open(path)
        }
        if let owner {
            let recorded = try opened.read { db in try String.fetchOne(db, sql: "SELECT manifest FROM owner") }
            if let recorded, !StateOwner.isSame(recorded: recorded, owner: owner) {
                try opened.close()
                aside = try Self.moveAside(path, suffix: "foreign", error: nil)
                reason = "owned by \(recorded)"
                opened = try Self.open(path)
            } else if let why = try Self.unboundReason(opened, database: path) {
                // Records this user's Derive did not write (a committed or unpacked `.derive/`, rows
                // edited in): not followed, whatever they say (attack 17's N4).
                try opened.close()
                aside = try Self.moveAside(path, suffix: "foreign", error: nil)
                reason = why
                opened = try Self.open(path)
            }
            let now = try opened.read { db in try String.fetchOne(db, sql: "SELECT manifest FROM owner") }
            if now != owner {
                try opened.write { db in
                    try db.execute(sql: "DELETE FROM owner")
                    try db.execute(sql: "INSERT INTO owner (manifest) VALUES (?)", arguments: [owner])
                }
            }
        }
        if owner != nil { Self.bind(opened, database: path) }
        queue = opened
        movedAside = aside
        movedAsideReason = reason
        existed = wasThere && aside == nil
    }

    /// Why the state at `database` is not this user's (it has records, and the token it holds is
    /// not the one the user keeps for it, or it has none), nil when it is or has nothing to trust.
    static func unboundReason(_ queue: DatabaseQueue, database: String) throws -> String? {
        let (records, token) = try queue.read { db -> (Bool, String?) in
            // (A database opened read-only may predate some tables.)
            let records = try ["outputs", "controlFiles", "bucketFolders", "createdFolders", "pendingWrites", "outputFiles"].contains { table in
                try db.tableExists(table) && (try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(table))") ?? false)
            }
            return (records, try db.tableExists("binding") ? try String.fetchOne(db, sql: "SELECT token FROM binding") : nil)
        }
        guard records else { return nil }
        let held = StateBinding.held(forState: database)
        if let token, token == held { return nil }
        let keeper = StateBinding.file(forState: database) ?? "(no HOME nor XDG_STATE_HOME)"
        return token == nil
            ? "not bound to this user (it holds no token: made by another Derive, or from before 0.14), so its records are not trusted (the user's tokens are in \(keeper))"
            : "not bound to this user (its token is not the one kept in \(keeper): made by another user's Derive, copied or planted in the project), so its records are not trusted"
    }

    /// Gives the state a token if it has none, and keeps it as this user's. A token that cannot be
    /// kept (no writable home) leaves the state unbound: the next build treats it as foreign (safe).
    static func bind(_ queue: DatabaseQueue, database: String) {
        // Read first: a state already bound is not written (a no-op build leaves it as it was).
        let known = try? queue.read { db in try String.fetchOne(db, sql: "SELECT token FROM binding") }
        guard let token = known ?? (try? queue.write({ db -> String in
            if let token = try String.fetchOne(db, sql: "SELECT token FROM binding") { return token }
            let token = StateBinding.newToken()
            try db.execute(sql: "INSERT INTO binding (token) VALUES (?)", arguments: [token])
            return token
        })) else { return }
        guard StateBinding.held(forState: database) != token else { return }
        do {
            try StateBinding.hold(token, forState: database)
        } catch {
            // Not silent: without its token kept, every later build finds this state unbound and
            // starts afresh from the lock (old outputs left in place, no no-op answer).
            let message = "derive: warning: \(error) — so the next build will not trust this build state and will start again from "
                + "derive.lock (old outputs are left in place, and nothing is ever 'up to date' at once); set XDG_STATE_HOME or HOME to a folder you can write\n"
            FileHandle.standardError.write(Data(message.utf8))
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

    private static func open(_ path: String) throws -> DatabaseQueue {
        StateFolderTrust.makePrivate(database: path)   // 0600: no one else reads its token
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try migrator.migrate(queue)
        // A truncated file can pass the header check; every page of the tables is read here.
        let result = try queue.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
        if result != "ok" { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: result) }
        return queue
    }

    /// A store over an already opened database (the read-only copy `check` plans against).
    init(queue: DatabaseQueue, folder: String, movedAside: String?, movedAsideReason: String?, existed: Bool = false) {
        self.queue = queue; self.folder = folder
        self.movedAside = movedAside; self.movedAsideReason = movedAsideReason; self.existed = existed
    }

    /// A throwaway store for tests.
    public init(inMemory: Void = ()) throws {
        folder = ""
        movedAside = nil
        movedAsideReason = nil
        existed = false
        queue = try DatabaseQueue()
        try Self.migrator.migrate(queue)
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
        return migrator
    }

    /// Dominant colours (`#rrggbb`) by source digest.
    public func sourceColours() throws -> [String: String] {
        try queue.read { db in
            Dictionary(try Row.fetchAll(db, sql: "SELECT digest, colour FROM sourceColours").map { ($0[0] as String, $0[1] as String) },
                       uniquingKeysWith: { a, _ in a })
        }
    }

    /// Placeholders (data URI, ThumbHash in base64) by source digest; empty strings: none could be made.
    public func placeholders() throws -> [String: (image: String, thumbhash: String)] {
        try queue.read { db in
            Dictionary(try Row.fetchAll(db, sql: "SELECT digest, image, thumbhash FROM placeholders")
                .map { ($0[0] as String, (image: $0[1] as String, thumbhash: $0[2] as String)) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func savePlaceholder(digest: String, image: String, thumbhash: String) throws {
        try queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO placeholders (digest, image, thumbhash) VALUES (?, ?, ?)",
                           arguments: [digest, image, thumbhash])
        }
    }

    public func saveSourceColour(digest: String, colour: String) throws {
        try queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO sourceColours (digest, colour) VALUES (?, ?)", arguments: [digest, colour])
        }
    }

    public func allFiles() throws -> PathDictionary<FileRecord> {
        try queue.read { db in
            var result: PathDictionary<FileRecord> = [:]
            var intern = StringInterner()
            let rows = try Row.fetchCursor(db, sql: "SELECT path, size, mtime, inode, digest, format, recorded, ctime, width, height FROM files")
            while let row = try rows.next() {
                var record = FileRecord(row: row)
                record.format = intern(record.format)
                if result[record.path] == nil { result[record.path] = record }
            }
            return result
        }
    }

    /// Output records `allOutputs` leaves out because their place is not trusted
    /// (`OutputRecord.placeProblem`, or a folder `places` does not give): path → why. The plan names each; nothing is deleted.
    public func ignoredOutputs() throws -> PathDictionary<String> {
        try queue.read { db in
            var result: PathDictionary<String> = [:]
            var known: [String: String?] = [:]
            let identities = try Self.bucketFolderIdentities(db)
            for row in try Row.fetchAll(db, sql: "SELECT path, folder FROM outputs") {
                let path: String = row[0], folder: String = row[1]
                let probe = OutputRecord(path: path, rule: "", source: "", style: nil, matrix: "", engine: "", pipeline: "", sourceDigest: "",
                                         dependencies: "", encoder: "", actionKey: "", acl: "", outputDigest: "", size: 0, width: 0,
                                         height: 0, format: "", builtAt: 0, folder: folder)
                if let problem = problem(probe, known: &known, identities: identities) { result[path] = problem }
            }
            return result
        }
    }

    /// Why `path` (read from the state) is not a plain absolute path, or nil: it must start with
    /// `/` and have no `.`, `..` or empty component.
    public static func absolutePathProblem(_ path: String) -> String? {
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
            try Row.fetchOne(db, sql: "SELECT path, size, mtime, inode, digest, format, recorded, ctime, width, height FROM files WHERE path = ?",
                             arguments: [path]).map(FileRecord.init(row:))
        }
    }

    public func allOutputs() throws -> PathDictionary<OutputRecord> {
        try queue.read { db in
            var result: PathDictionary<OutputRecord> = [:]
            var intern = StringInterner()
            var known: [String: String?] = [:]
            let identities = try Self.bucketFolderIdentities(db)
            let rows = try Row.fetchCursor(db, sql: """
                SELECT path, rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder,
                       actionKey, acl, outputDigest, size, width, height, format, builtAt, folder FROM outputs
                """)
            while let row = try rows.next() {
                var record = OutputRecord(row: row)
                // Columns most rows repeat share one buffer each (the engine text alone is hundreds of bytes).
                record.rule = intern(record.rule); record.style = record.style.map { intern($0) }
                record.matrix = intern(record.matrix); record.engine = intern(record.engine)
                record.pipeline = intern(record.pipeline); record.sourceDigest = intern(record.sourceDigest)
                record.dependencies = intern(record.dependencies); record.encoder = intern(record.encoder)
                record.acl = intern(record.acl); record.format = intern(record.format); record.folder = intern(record.folder)
                if result[record.path] == nil, problem(record, known: &known, identities: identities) == nil { result[record.path] = record }
            }
            return result
        }
    }

    public func saveFiles(_ records: [FileRecord]) throws {
        guard !records.isEmpty else { return }
        try queue.write { db in
            for record in records { try record.save(db) }
        }
    }

    /// Records a built output (after its file was renamed into place) with its file digest, in one
    /// transaction that also clears its pending write.
    /// `identity`: the output file's own device and inode as Derive installed it (nil: not known,
    /// e.g. the in-memory disk): what a later deletion requires of the file at that path.
    public func recordOutput(_ record: OutputRecord, file: FileRecord?, identity: FileIdentity? = nil) throws {
        try queue.write { db in
            try record.save(db)
            try file?.save(db)
            try db.execute(sql: "DELETE FROM pendingWrites WHERE path = ?", arguments: [record.file])
            if let identity {
                try db.execute(sql: "INSERT OR REPLACE INTO outputFiles (path, device, inode) VALUES (?, ?, ?)",
                               arguments: [record.path, identity.stored.device, identity.stored.inode])
            } else {
                try db.execute(sql: "DELETE FROM outputFiles WHERE path = ?", arguments: [record.path])
            }
        }
    }

    /// The device and inode each output file had when Derive installed it, by `bucket/key`.
    /// An output missing here was recorded before they were kept (or adopted where none could be read).
    public func outputIdentities() throws -> PathDictionary<FileIdentity> {
        try queue.read { db in
            var result: PathDictionary<FileIdentity> = [:]
            for row in try Row.fetchAll(db, sql: "SELECT path, device, inode FROM outputFiles") {
                result[row[0] as String] = FileIdentity(stored: row[1], row[2])
            }
            return result
        }
    }

    /// The device and inode of one output's file when Derive installed it, nil when not recorded.
    public func outputIdentity(_ path: String) throws -> FileIdentity? {
        try queue.read { db in
            try Row.fetchOne(db, sql: "SELECT device, inode FROM outputFiles WHERE path = ?", arguments: [path])
                .map { FileIdentity(stored: $0[0], $0[1]) }
        }
    }

    /// Notes a file a build is about to rename into place, with the digest of its bytes.
    public func addPendingWrite(_ path: String, digest: String) throws {
        try queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO pendingWrites (path, digest) VALUES (?, ?)", arguments: [path, digest])
        }
    }

    /// Files a build was renaming into place but did not record (left by a killed build), path →
    /// digest of the bytes it wrote. Rows from before the digest was kept have an empty digest.
    public func pendingWrites() throws -> PathDictionary<String> {
        try queue.read { db in
            var result: PathDictionary<String> = [:]
            for row in try Row.fetchAll(db, sql: "SELECT path, digest FROM pendingWrites") { result[row[0] as String] = row[1] }
            return result
        }
    }

    public func clearPendingWrites(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try queue.write { db in
            for path in paths { try db.execute(sql: "DELETE FROM pendingWrites WHERE path = ?", arguments: [path]) }
        }
    }

    /// Drops every pending write: at the end of a build, whatever was not recorded is stale.
    /// Writes nothing when there is none (a no-op leaves the database as it was, for the witness).
    public func clearAllPendingWrites() throws {
        let any = try queue.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM pendingWrites)") } ?? false
        guard any else { return }
        try queue.write { db in try db.execute(sql: "DELETE FROM pendingWrites") }
    }

    public func removeOutputs(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try queue.write { db in
            _ = try OutputRecord.deleteAll(db, keys: paths)
            for path in paths { try db.execute(sql: "DELETE FROM outputFiles WHERE path = ?", arguments: [path]) }
        }
    }

    /// Updates fields of a record that are not in its action key (ACL, rule name, style, matrix).
    public func updateOutput(_ record: OutputRecord) throws {
        try queue.write { db in try record.save(db) }
    }

    /// The recorded ACL of a built output, by bucket name and key: what `derive serve` answers
    /// for a derivative it did not render itself. Nil when no such output was built.
    public func recordedACL(bucket: String, key: String) throws -> String? {
        try queue.read { db in
            try String.fetchOne(db, sql: "SELECT acl FROM outputs WHERE path = ?", arguments: [bucket + "/" + key])
        }
    }

    public func addCreatedFolders(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try queue.write { db in
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
            let rows = try Row.fetchAll(db, sql: """
                SELECT DISTINCT folder, substr(path, 1, instr(path, '/') - 1) FROM outputs WHERE folder != ''
                """)
            var folders: [String] = []
            let identities = try Self.bucketFolderIdentities(db)
            for row in rows {
                let folder: String = row[0], bucket: String = row[1]
                if !folders.contains(folder),
                   places?.problem(outputFolder: folder, bucket: bucket, recorded: identities[folder + "\u{0}" + bucket]) == nil {
                    folders.append(folder)
                }
            }
            return folders
        }
    }

    public func createdFolders() throws -> PathSet {
        try queue.read { db in PathSet(try String.fetchAll(db, sql: "SELECT path FROM createdFolders").filter { Self.absolutePathProblem($0) == nil }) }
    }

    /// The folders Derive created, each with its device and inode when created (nil: a record
    /// from before they were kept).
    public func createdFolderIdentities() throws -> PathDictionary<FileIdentity?> {
        try queue.read { db in
            var result: PathDictionary<FileIdentity?> = [:]
            for row in try Row.fetchAll(db, sql: "SELECT path, device, inode FROM createdFolders") {
                let path: String = row[0], device: Int64 = row[1], inode: Int64 = row[2]
                guard Self.absolutePathProblem(path) == nil else { continue }
                result[path] = .some(device == 0 && inode == 0 ? nil : FileIdentity(stored: device, inode))
            }
            return result
        }
    }

    /// The folders recorded as buckets' folders (any bucket), folder → device and inode then.
    static func recordedBucketFolders(_ db: Database) throws -> [String: FileIdentity] {
        var result: [String: FileIdentity] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT folder, device, inode FROM bucketFolders") {
            result[row[0] as String] = FileIdentity(stored: row[1], row[2])
        }
        return result
    }

    public func forgetCreatedFolder(_ path: String) throws {
        try queue.write { db in try db.execute(sql: "DELETE FROM createdFolders WHERE path = ?", arguments: [path]) }
    }

    /// Control files (the index) Derive wrote, path → digest.
    public func controlFiles() throws -> PathDictionary<String> {
        try queue.read { db in
            var result: PathDictionary<String> = [:]
            // A path with `..` (or relative) is never Derive's index: ignored, so nothing is removed there.
            let folders = places == nil ? [:] : try Self.recordedBucketFolders(db)
            for row in try Row.fetchAll(db, sql: "SELECT path, digest FROM controlFiles") {
                let path: String = row[0]
                if Self.absolutePathProblem(path) == nil, places?.problem(controlFile: path, recordedFolders: folders) == nil { result[path] = row[1] }
            }
            return result
        }
    }

    /// Control file records `controlFiles()` leaves out because they lead outside every place
    /// the manifest gives, path → why.
    public func ignoredControlFiles() throws -> [String: String] {
        guard let places else { return [:] }
        return try queue.read { db in
            var result: [String: String] = [:]
            let folders = try Self.recordedBucketFolders(db)
            for path in try String.fetchAll(db, sql: "SELECT path FROM controlFiles") where Self.absolutePathProblem(path) == nil {
                if let problem = places.problem(controlFile: path, recordedFolders: folders) { result[path] = problem }
            }
            return result
        }
    }

    /// The device and inode of each control file (the index) when Derive wrote it, path → identity;
    /// nil for a record from before they were kept.
    public func controlFileIdentities() throws -> PathDictionary<FileIdentity?> {
        try queue.read { db in
            var result: PathDictionary<FileIdentity?> = [:]
            for row in try Row.fetchAll(db, sql: "SELECT path, device, inode FROM controlFiles") {
                let device: Int64 = row[1], inode: Int64 = row[2]
                result[row[0] as String] = .some(device == 0 && inode == 0 ? nil : FileIdentity(stored: device, inode))
            }
            return result
        }
    }

    /// `identity`: the file's own device and inode as Derive wrote it (nil: not known).
    public func setControlFile(_ path: String, digest: String?, identity: FileIdentity? = nil) throws {
        try queue.write { db in
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
        try queue.write { db in
            _ = try FileRecord.deleteAll(db, keys: paths)
        }
    }
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
