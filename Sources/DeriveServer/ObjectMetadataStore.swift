import Confinement
import Foundation
import GRDB
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Which file a metadata record describes: a file replaced or edited behind the server's back
/// (another inode, size or modification time) has no stored metadata any more.
public struct ObjectFileIdentity: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    /// Modification time in nanoseconds since 1970.
    public var modified: Int64

    public init(device: UInt64, inode: UInt64, size: Int64, modified: Int64) {
        self.device = device; self.inode = inode; self.size = size; self.modified = modified
    }

    public init(_ info: stat) {
        self.init(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                  modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    /// The identity of an open file; nil when it cannot be stat'ed.
    public init?(descriptor: Int32) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        self.init(info)
    }
}

/// What OSS keeps about an object besides its bytes: the headers given when it was written and
/// the ETag and time of that write.
public struct ObjectMetadata: Sendable, Equatable {
    /// Stored headers, lowercased names, in the order they are answered: `content-type`,
    /// `cache-control`, `content-disposition`, `content-encoding`, `expires`, then `x-oss-meta-*`.
    public var headers: [String: String]
    /// Quoted upper-case hex, as OSS answers it (the MD5 for a simple upload).
    public var etag: String
    /// Seconds since 1970 (the `Last-Modified` answered).
    public var lastModified: Int
    /// The upper-case hex MD5 of the bytes when the ETag is not that MD5 (a multipart object's
    /// `-N` form, a copy of one): what a record is checked against to follow its file to a new
    /// inode (a copied or restored project, attack 14, F2). Nil: the ETag is the MD5.
    public var contentMD5: String?

    public init(headers: [String: String] = [:], etag: String, lastModified: Int, contentMD5: String? = nil) {
        self.headers = headers; self.etag = etag; self.lastModified = lastModified; self.contentMD5 = contentMD5
    }

    /// The MD5 of the bytes this record describes (upper-case hex), when known.
    public var bytesMD5: String? {
        if let contentMD5 { return contentMD5 }
        let hex = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return hex.count == 32 && hex.allSatisfy(\.isHexDigit) ? hex.uppercased() : nil
    }

    /// The headers OSS stores from a PutObject request (besides `x-oss-meta-*`).
    public static let storedHeaders = ["content-type", "cache-control", "content-disposition", "content-encoding", "expires"]

    /// The stored headers of a write request: `storedHeaders` and every `x-oss-meta-*`.
    public static func headers(from request: [String: String]) -> [String: String] {
        request.filter { storedHeaders.contains($0.key) || $0.key.hasPrefix("x-oss-meta-") }
    }

    /// The stored headers as answered: the fixed ones first, then user metadata by name.
    public var orderedHeaders: [(String, String)] {
        Self.storedHeaders.compactMap { name in headers[name].map { (name, $0) } }
            + headers.filter { $0.key.hasPrefix("x-oss-meta-") }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

/// Object metadata for `derive serve`, in a small SQLite database of its own in the state folder
/// (`StateFiles.objectMetadata`), never in a bucket folder. Its own file rather than a table of
/// the build's state database: `derive build` holds that database (its lock, moving it aside
/// when it is corrupt or another manifest's, `clean` removing it), and serve would otherwise
/// write into a file the builder owns while a build runs. Records are keyed by bucket and key
/// and carry the identity of the file they describe; a record whose file changed is ignored.
///
/// The API other operations use: `read`, `write`, `delete`, `copy`.
public final class ObjectMetadataStore: Sendable {
    /// Also holds the appendable objects' table (`AppendableObjects`).
    let queue: DatabaseQueue
    /// What the database answered for a (bucket, key) and the file identity asked about, so a
    /// GET of an unchanged file does not query SQLite (the queue serialises every reader).
    /// Trusted only for the same identity; emptied when it grows past `maxCached` entries.
    /// `generation` counts writes: an answer looked up while a write ran is not cached.
    private let cache = NIOLockedValueBox<(entries: [CacheKey: (identity: ObjectFileIdentity, metadata: ObjectMetadata?)], generation: Int)>(([:], 0))
    private struct CacheKey: Hashable { var bucket: String; var key: [UInt8] }
    private let maxCached = 100_000
    /// The database file as checked (nil: in memory), kept open in `DatabasePins` while the store lives.
    private let pinned: DatabasePins.File?
    /// The database file (nil: in memory), named in errors.
    public let path: String?
    /// Seconds a write waits for another program's write lock on the database.
    public static let busyTimeout: TimeInterval = 5
    /// This store's wait (`busyTimeout` unless a test shortens it).
    public let busyWait: TimeInterval

    deinit { if let pinned { DatabasePins.release(pinned) } }

    /// Opens (creating) the database at `path`; nil path: in memory (tests).
    ///
    /// Write-ahead logging with `synchronous = FULL`: a commit is one append to the WAL and one
    /// `fsync`, and once `write` returns the record survives a crash of the process or of the
    /// machine. Writers record a file before they link it (an upload's metadata, an append's
    /// next version), so the record is on disk before the file it names is at its key.
    ///
    /// Only serve's own database is opened: a symbolic link or a hard link at `path` (or at its
    /// journals), a file that is not an SQLite database, a database another application
    /// stamped, one with tables serve does not know, or a foreign one with a journal SQLite would
    /// replay is refused with a `MetadataDatabaseError` naming it, before anything is written to
    /// it (attacks 11 and 12). A new or empty file is stamped serve's.
    ///
    /// The file is checked through a descriptor of its own (opened with `O_NOFOLLOW`, created
    /// when absent, kept open while the store lives), and SQLite must then be found holding that
    /// same inode: the layout checks run on SQLite's own connection, inside one read transaction,
    /// and the lock SQLite takes for it must be on the checked file (an OFD lock probe through
    /// the descriptor). A file swapped in between the check and SQLite's open is refused.
    ///
    /// `busyTimeout`: how long a write waits for another program holding the database's write
    /// lock before it fails (the write is then refused, `ObjectService.metadataNotRecorded`).
    public init(path: String?, busyTimeout: TimeInterval = ObjectMetadataStore.busyTimeout) throws {
        self.path = path
        busyWait = busyTimeout
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        var stamp = false
        if let path {
            try StateFiles.createPrivateFolder((path as NSString).deletingLastPathComponent)
            let checked = try MetadataDatabaseOwnership.open(path)
            do {
                // Journal mode untouched until the file is known to be serve's (WAL is set below).
                let queue = try DatabaseQueue(path: path, configuration: configuration)
                stamp = try MetadataDatabaseOwnership.verify(queue, checked: checked, path: path)
                self.queue = queue
                pinned = checked.file
            } catch let error as MetadataDatabaseError {
                DatabasePins.release(checked.file)
                throw error
            } catch {
                DatabasePins.release(checked.file)
                throw MetadataDatabaseOwnership.refuse(path, "cannot be read as an SQLite database (\(error))")
            }
        } else {
            pinned = nil
            queue = try DatabaseQueue(configuration: configuration)
            stamp = true
        }
        if stamp {
            // Before WAL on a new file: the stamp is then in the main file, never only in a log.
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA application_id = \(MetadataDatabaseOwnership.applicationID)")
                try db.execute(sql: "PRAGMA user_version = \(MetadataDatabaseOwnership.schemaVersion)")
            }
        }
        if path != nil {
            try queue.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                // NORMAL may lose the last commits at a power cut.
                try db.execute(sql: "PRAGMA synchronous = FULL")
                // An earlier serve's database stamped now: the stamp goes to the main file too.
                if stamp { _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
            }
        }
        // One record per file identity at a key (not per key): an upload records its file's
        // metadata before linking it, so a GET always finds the record of the file it opened
        // even while PUTs race (#11 round 4). Older databases are carried over.
        try queue.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS object_records (
                    bucket TEXT NOT NULL, key BLOB NOT NULL,
                    device INTEGER NOT NULL, inode INTEGER NOT NULL, size INTEGER NOT NULL, modified INTEGER NOT NULL,
                    etag TEXT NOT NULL, last_modified INTEGER NOT NULL, headers TEXT NOT NULL,
                    PRIMARY KEY (bucket, key, device, inode, size, modified))
                """)
            // The bytes' MD5 when the ETag is not it (attack 14, F2); NULL in older rows.
            if try !db.columns(in: "object_records").contains(where: { $0.name == "content_md5" }) {
                try db.execute(sql: "ALTER TABLE object_records ADD COLUMN content_md5 TEXT")
            }
            if try db.tableExists("object_metadata") {
                try db.execute(sql: "INSERT OR IGNORE INTO object_records SELECT bucket, key, device, inode, size, modified, etag, last_modified, headers FROM object_metadata")
                try db.execute(sql: "DROP TABLE object_metadata")
            }
        }
    }

    /// Copies the write-ahead log into the main file and empties the log (at serve's stop), so
    /// the one file the README names holds every record (attack 13, N4).
    ///
    /// Waits at most `checkpointWait` for readers (another program reading the file), so the stop
    /// keeps its 2-second promise (attack 14, F3); returns a warning when the log could not be
    /// folded in: the records are then in the main file *and* its `-wal`, which must stay together.
    @discardableResult
    public func checkpoint(wait: TimeInterval = ObjectMetadataStore.checkpointWait) -> String? {
        guard let path = pinned.map({ _ in self.path ?? "" }) else { return nil }
        do {
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA busy_timeout = \(Int(wait * 1000))")
                defer { try? db.execute(sql: "PRAGMA busy_timeout = \(Int(busyWait * 1000))") }
                try db.checkpoint(.truncate)
            }
            return nil
        } catch {
            return "the metadata log \(path)-wal could not be folded into \(path) at this stop (\(error); another program is probably reading the database): the records are safe in the two files together. Keep \(path) and its -wal (and -shm) together when copying it; the next start folds the log in."
        }
    }

    /// Longest wait for other programs' readers at serve's stop.
    public static let checkpointWait: TimeInterval = 0.5

    /// The record of `key` when it still describes the file whose identity is given.
    public func read(bucket: String, key: ObjectKey, identity: ObjectFileIdentity) -> ObjectMetadata? {
        let cacheKey = CacheKey(bucket: bucket, key: key.bytes)
        let (known, generation) = cache.withLockedValue { ($0.entries[cacheKey], $0.generation) }
        if let known, known.identity == identity { return known.metadata }
        let found = lookUp(bucket: bucket, key: key, identity: identity)
        cache.withLockedValue { cache in
            guard cache.generation == generation else { return }
            if cache.entries.count >= maxCached { cache.entries.removeAll() }
            cache.entries[cacheKey] = (identity, found)
        }
        return found
    }

    private func lookUp(bucket: String, key: ObjectKey, identity: ObjectFileIdentity) -> ObjectMetadata? {
        let row = try? queue.read { db in
            try Row.fetchOne(db, sql: """
                SELECT * FROM object_records WHERE bucket = ? AND key = ? AND device = ? AND inode = ? AND size = ? AND modified = ?
                """, arguments: [bucket, Data(key.bytes), Int64(bitPattern: identity.device), Int64(bitPattern: identity.inode),
                                 identity.size, identity.modified])
        }
        guard let row, let recorded = Self.identity(row), recorded == identity else { return nil }
        let headerText: String = row["headers"]
        let headers = (try? JSONDecoder().decode([String: String].self, from: Data(headerText.utf8))) ?? [:]
        return ObjectMetadata(headers: headers, etag: row["etag"], lastModified: row["last_modified"], contentMD5: row["content_md5"])
    }

    /// Records `metadata` for the file `identity` now at `key` (replacing any record).
    public func write(bucket: String, key: ObjectKey, identity: ObjectFileIdentity, metadata: ObjectMetadata) throws {
        try record(bucket: bucket, key: key, identity: identity, metadata: metadata, keepingOthers: false)
    }

    /// Records `metadata` for the file `identity` about to be linked at `key`, keeping the
    /// records of other files (the one still there answers with its own until replaced);
    /// `keepOnly` removes them once the file is in place.
    public func record(bucket: String, key: ObjectKey, identity: ObjectFileIdentity, metadata: ObjectMetadata, keepingOthers: Bool = true) throws {
        let headers = String(decoding: try JSONEncoder().encode(metadata.headers), as: UTF8.self)
        forget(bucket, key)
        defer { forget(bucket, key) }
        try queue.write { db in
            if !keepingOthers { try Self.deleteOthers(db, bucket, key, identity) }
            try db.execute(sql: """
                INSERT OR REPLACE INTO object_records (bucket, key, device, inode, size, modified, etag, last_modified, headers, content_md5)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [bucket, Data(key.bytes), Int64(bitPattern: identity.device), Int64(bitPattern: identity.inode),
                                 identity.size, identity.modified, metadata.etag, metadata.lastModified, headers, metadata.contentMD5])
        }
    }

    /// Removes the records of `key` for every file but `identity` (stale once it is in place).
    public func keepOnly(bucket: String, key: ObjectKey, identity: ObjectFileIdentity) throws {
        forget(bucket, key)
        defer { forget(bucket, key) }
        try queue.write { db in try Self.deleteOthers(db, bucket, key, identity) }
    }

    private static func deleteOthers(_ db: Database, _ bucket: String, _ key: ObjectKey, _ identity: ObjectFileIdentity) throws {
        try db.execute(sql: """
            DELETE FROM object_records WHERE bucket = ? AND key = ?
                AND NOT (device = ? AND inode = ? AND size = ? AND modified = ?)
            """, arguments: [bucket, Data(key.bytes), Int64(bitPattern: identity.device), Int64(bitPattern: identity.inode),
                             identity.size, identity.modified])
    }

    /// Forgets `key` (its object was deleted or replaced without metadata). `alongWith` runs in
    /// the same transaction, after the records are deleted (so once the database's write lock is
    /// held): a delete removes its file there, and a database another program holds locked
    /// then refuses the delete before anything is removed (attack 14, F1).
    public func delete(bucket: String, key: ObjectKey, alongWith: (Database) throws -> Void = { _ in }) throws {
        forget(bucket, key)
        defer { forget(bucket, key) }
        try queue.write { db in
            try db.execute(sql: "DELETE FROM object_records WHERE bucket = ? AND key = ?", arguments: [bucket, Data(key.bytes)])
            try alongWith(db)
        }
    }

    /// Gives the copy at `to` (the file `identity`) the record of `from`, when that record still
    /// describes `fromIdentity`; returns whether there was one to copy. `lastModified` is the copy's time.
    @discardableResult
    public func copy(from: (bucket: String, key: ObjectKey), fromIdentity: ObjectFileIdentity, to: (bucket: String, key: ObjectKey),
                     identity: ObjectFileIdentity, lastModified: Int) throws -> Bool {
        guard var metadata = read(bucket: from.bucket, key: from.key, identity: fromIdentity) else {
            try delete(bucket: to.bucket, key: to.key)
            return false
        }
        metadata.lastModified = lastModified
        try write(bucket: to.bucket, key: to.key, identity: identity, metadata: metadata)
        return true
    }

    /// A record as stored, with the identity of the file it was written for.
    public struct StoredRecord: Sendable {
        public var bucket: String
        public var key: ObjectKey
        public var identity: ObjectFileIdentity
        public var metadata: ObjectMetadata
    }

    /// Every record, grouped by nothing (start-up's check of moved files).
    public func allRecords() throws -> [StoredRecord] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM object_records").compactMap { row -> StoredRecord? in
                let keyBytes: Data = row["key"]
                guard let key = try? ObjectKey(bytes: Array(keyBytes)), let identity = Self.identity(row) else { return nil }
                let headerText: String = row["headers"]
                let headers = (try? JSONDecoder().decode([String: String].self, from: Data(headerText.utf8))) ?? [:]
                return StoredRecord(bucket: row["bucket"], key: key, identity: identity,
                                    metadata: ObjectMetadata(headers: headers, etag: row["etag"], lastModified: row["last_modified"],
                                                             contentMD5: row["content_md5"]))
            }
        }
    }

    /// Moves records (and the appendable row of the same file) from the identity they were
    /// written for to the file now at their key, in one transaction: `moves` are files whose
    /// key, size and bytes match the record but whose inode changed (a copied project).
    public func rebind(_ moves: [(bucket: String, key: ObjectKey, from: ObjectFileIdentity, to: ObjectFileIdentity)]) throws {
        guard !moves.isEmpty else { return }
        defer { cache.withLockedValue { $0.entries.removeAll(); $0.generation += 1 } }
        try queue.write { db in
            for move in moves {
                let key = Data(move.key.bytes)
                try db.execute(sql: """
                    UPDATE OR REPLACE object_records SET device = ?, inode = ?, modified = ?
                    WHERE bucket = ? AND key = ? AND device = ? AND inode = ? AND size = ? AND modified = ?
                    """, arguments: [Int64(bitPattern: move.to.device), Int64(bitPattern: move.to.inode), move.to.modified,
                                     move.bucket, key, Int64(bitPattern: move.from.device), Int64(bitPattern: move.from.inode),
                                     move.from.size, move.from.modified])
                if try db.tableExists("appendable_objects") {
                    try db.execute(sql: """
                        UPDATE appendable_objects SET inode = ?, modified = ?
                        WHERE bucket = ? AND key = ? AND inode = ? AND size = ? AND (modified IS NULL OR modified = ?) AND next_inode IS NULL
                        """, arguments: [Int64(bitPattern: move.to.inode), move.to.modified, move.bucket, key,
                                         Int64(bitPattern: move.from.inode), move.from.size, move.from.modified])
                }
            }
        }
    }

    private func forget(_ bucket: String, _ key: ObjectKey) {
        cache.withLockedValue { cache in
            cache.generation += 1
            cache.entries.removeValue(forKey: CacheKey(bucket: bucket, key: key.bytes))
        }
    }

    private static func identity(_ row: Row) -> ObjectFileIdentity? {
        guard let device: Int64 = row["device"], let inode: Int64 = row["inode"], let size: Int64 = row["size"],
              let modified: Int64 = row["modified"] else { return nil }
        return ObjectFileIdentity(device: UInt64(bitPattern: device), inode: UInt64(bitPattern: inode), size: size, modified: modified)
    }
}

/// A `serve-metadata.sqlite` serve will not open: the message says what is there and what to do.
public struct MetadataDatabaseError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Whether the file at a metadata database's path is serve's own (checked before SQLite opens
/// it, so neither WAL mode nor a table is ever added to another application's database).
enum MetadataDatabaseOwnership {
    /// `PRAGMA application_id` of serve's database ("DrSv"), set at creation.
    static let applicationID: Int32 = 0x4472_5376
    /// `PRAGMA user_version`: the layout below.
    static let schemaVersion = 1
    /// Serve's tables and the columns each must have (`object_metadata`: the layout before #11
    /// round 4, carried over then dropped).
    static let tables: [String: Set<String>] = [
        "object_records": ["bucket", "key", "device", "inode", "size", "modified", "etag", "last_modified", "headers"],
        "object_metadata": ["bucket", "key", "device", "inode", "size", "modified", "etag", "last_modified", "headers"],
        "appendable_objects": ["bucket", "key", "inode", "size", "modified", "next_inode", "next_size", "next_modified", "anonymous"],
    ]

    /// `journal`: the refusal is about a journal, or a log that holds part of the database, so
    /// moving one file away alone would drop records or leave the others (attack 13, N6).
    static func refuse(_ path: String, _ what: String, journal: Bool = false, advice given: String? = nil) -> MetadataDatabaseError {
        let advice = given ?? (journal
            ? "Move the database and its -wal, -shm and -journal files away together (serve then starts a new, empty one) or use another state folder (state: in the manifest)."
            : "Move that file away (serve then starts a new, empty one) or use another state folder (state: in the manifest).")
        return MetadataDatabaseError(message: "\(path) \(what); derive serve opens, creates or changes only its own object metadata database there. \(advice)")
    }

    /// The database file as checked: its descriptor (pinned: release `file` when done), identity,
    /// and the stamp its header holds.
    struct Checked {
        var descriptor: Int32
        var device: UInt64
        var inode: UInt64
        var application: Int32
        var version: Int
        var file: DatabasePins.File { DatabasePins.File(device: device, inode: inode) }
    }

    /// Whether the rollback journal `name` (in `folder`, not followed) starts with a non-zero
    /// byte, as SQLite requires of a journal it rolls back; one that cannot be read counts as hot.
    static func hotJournal(_ folder: Int32, _ name: String) -> Bool {
        let fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        return SQLiteFiles.isHot(journal: fd)
    }

    /// Refuses what is not a regular file with one name at the journal names, `fstatat` in the
    /// state folder held open; returns the sizes of those present.
    static func checkJournals(_ folder: Int32, _ path: String) throws -> [String: Int64] {
        var sizes: [String: Int64] = [:]
        let name = (path as NSString).lastPathComponent
        for suffix in StateFiles.journalSuffixes {
            var info = stat()
            guard fstatat(folder, name + suffix, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            try checkShape(path + suffix, info, journal: true)
            sizes[suffix] = Int64(info.st_size)
        }
        return sizes
    }

    /// A symbolic link, anything but a regular file, or a file with a second name (a hard link
    /// to a user's file, or another project's database through `cp -al`) is not serve's.
    static func checkShape(_ name: String, _ info: stat, journal: Bool = false) throws {
        if (info.st_mode & S_IFMT) == S_IFLNK { throw refuse(name, "is a symbolic link", journal: journal) }
        if (info.st_mode & S_IFMT) != S_IFREG { throw refuse(name, "is not a regular file", journal: journal) }
        if info.st_nlink != 1 {
            throw refuse(name, "has another name too (a hard link, \(info.st_nlink) names: a copy made with cp -al or rsync --link-dest shares it with another project)", journal: journal)
        }
    }

    /// Opens the file at `path` (creating an empty one when there is none) without following a
    /// link, from the state folder's descriptor, and checks its shape, its header, and its
    /// journals; nothing is written to an existing file.
    static func open(_ path: String) throws -> Checked {
        let folderPath = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
        let folder = Glibc.open(folderPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folder >= 0 else { throw refuse(folderPath, "cannot be opened (\(String(cString: strerror(errno))))") }
        defer { close(folder) }
        let journals = try checkJournals(folder, path)
        sweepChecks()
        var fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if fd < 0, errno == ENOENT { fd = openat(folder, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }   // its journals take this mode
        guard fd >= 0 else {
            var info = stat()
            if errno == ELOOP || (fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK) {
                throw refuse(path, "is a symbolic link")
            }
            throw refuse(path, "cannot be read (\(String(cString: strerror(errno))))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)   // no identity: not pinned (nothing of this process can hold a lock on it)
            throw refuse(path, "cannot be read (\(reason))")
        }
        let file = DatabasePins.pin(fd, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        do {
            try checkShape(path, info)
            var header = [UInt8](repeating: 0, count: 100)
            let count = pread(fd, &header, header.count, 0)
            var checked = Checked(descriptor: fd, device: UInt64(info.st_dev), inode: UInt64(info.st_ino), application: 0, version: 0)
            if count > 0 {
                guard count == 100, header.starts(with: Array("SQLite format 3\0".utf8)) else { throw refuse(path, "is not an SQLite database") }
                // The header's big-endian fields: user_version at 60, application_id at 68.
                func field(_ at: Int) -> Int32 { Int32(bitPattern: header[at..<at + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
                checked.application = field(68)
                checked.version = Int(field(60))
                if checked.application != 0 && checked.application != applicationID {
                    throw refuse(path, "is another application's SQLite database (application_id \(checked.application))")
                }
            }
            // SQLite replays a write-ahead log or a hot journal as it opens (a write): only for
            // a file stamped serve's, whose log is serve's own (attack 12, finding 5).
            // SQLite applies a journal only to a database with pages whose journal starts with a
            // non-zero byte (else it is not hot: ignored, or deleted for an empty database). An
            // empty file beside a zeroed journal is a serve stopped while creating it (attack 18,
            // K1): nothing can be rolled into it, so it is opened as a new database.
            if checked.application != applicationID, (journals["-journal"] ?? 0) > 0, info.st_size > 0,
               hotJournal(folder, name + "-journal") {
                throw refuse(path, "is not stamped derive serve's and has a rollback journal (\(path)-journal) SQLite would apply to it on opening", journal: true)
            }
            // An earlier serve's database stopped before a checkpoint (the usual state, attack
            // 13, N1): its log is checked on a private copy, never applied to the file. A
            // stamped one's log too (a foreign stamp or table written into it, attack 14, F4),
            // unless it is past the copy's limit: a stamped file is serve's, and its log is
            // opened as it is then.
            if let log = journals["-wal"], log > 0,
               checked.application != applicationID || log + Int64(info.st_size) <= maxInspectedBytes {
                try inspectLog(folder: folder, name: name, path: path, bytes: log + Int64(info.st_size), database: fd)
            }
            return checked
        } catch {
            DatabasePins.release(file)
            throw error
        }
    }

    /// Most bytes (database and log) copied to check an unstamped database's log.
    static let maxInspectedBytes: Int64 = 256 << 20

    /// Applies the write-ahead log of an unstamped database to a private copy (a folder of this
    /// process's own, removed after) and refuses it when the copy holds another application's
    /// stamp or tables that are not serve's; an earlier serve's database passes and is opened.
    /// `database`: the pinned descriptor of the file, read through (opening and closing another
    /// descriptor of it would drop the SQLite locks of a store this process has open on it).
    static func inspectLog(folder: Int32, name: String, path: String, bytes: Int64, database: Int32) throws {
        let log = path + "-wal"
        guard bytes <= maxInspectedBytes else {
            throw refuse(path, "is not stamped derive serve's and has a write-ahead log (\(log)) too large to check (\(bytes) bytes, limit \(maxInspectedBytes)); if it is an earlier serve's, apply the log with: sqlite3 \(path) 'PRAGMA wal_checkpoint(TRUNCATE)'", journal: true)
        }
        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("\(checkPrefix)\(getpid())-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        } catch {
            let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
            throw refuse(path, "has a write-ahead log (\(log)) that is checked on a private copy in the temporary folder, and \(temporary.deletingLastPathComponent().path) cannot hold one (\(reason))",
                         advice: "Set TMPDIR to a writable folder with room for the database and its log, and start serve again; the database was not changed.")
        }
        defer { try? FileManager.default.removeItem(at: temporary) }
        let copy = temporary.appendingPathComponent("copy.sqlite").path
        let (application, found): (Int32, [String])
        do {
            for suffix in ["", "-wal"] {
                let bytes: Data
                if suffix.isEmpty {
                    var read = Data(), chunk = [UInt8](repeating: 0, count: 1 << 16)
                    while true {
                        let count = pread(database, &chunk, chunk.count, off_t(read.count))
                        if count < 0, errno == EINTR { continue }
                        guard count >= 0 else { throw MetadataDatabaseError(message: String(cString: strerror(errno))) }
                        if count == 0 { break }
                        read.append(contentsOf: chunk[0..<count])
                    }
                    bytes = read
                } else {
                    // SQLite locks the database and -shm, never the log: this descriptor may close.
                    let fd = openat(folder, name + suffix, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
                    guard fd >= 0 else { throw MetadataDatabaseError(message: String(cString: strerror(errno))) }
                    bytes = try FileHandle(fileDescriptor: fd, closeOnDealloc: true).readToEnd() ?? Data()
                }
                guard FileManager.default.createFile(atPath: copy + suffix, contents: bytes) else {
                    throw MetadataDatabaseError(message: "cannot write \(copy + suffix)")
                }
            }
            let queue = try DatabaseQueue(path: copy)
            (application, found) = try queue.read { db in
                (try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0,
                 try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"))
            }
        } catch {
            throw refuse(path, "has a write-ahead log (\(log)) that cannot be checked (\(error))", journal: true)
        }
        if application != 0 && application != applicationID {
            throw refuse(path, "is another application's SQLite database (application_id \(application), in its write-ahead log \(log))", journal: true)
        }
        let foreign = found.filter { tables[$0] == nil }.sorted()
        if !foreign.isEmpty {
            throw refuse(path, "holds tables that are not derive serve's (\(foreign.joined(separator: ", "))), in its write-ahead log (\(log))", journal: true)
        }
    }

    /// The private copies' folders in the temporary folder: `<prefix><pid>-<UUID>`.
    static let checkPrefix = "derive-serve-check-"

    /// Removes the private copies a stopped process left (a `kill -9` during the check, attack
    /// 14, F6): folders of this user whose process is gone, and folders of versions that did
    /// not name their process once an hour old. Each start sweeps them.
    static func sweepChecks() {
        let temporary = FileManager.default.temporaryDirectory
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: temporary.path) else { return }
        for name in names where name.hasPrefix(checkPrefix) {
            let url = temporary.appendingPathComponent(name)
            var info = stat()
            guard lstat(url.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid() else { continue }
            let rest = name.dropFirst(checkPrefix.count)
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            let stale: Bool
            if let pid = Int32(digits), rest.dropFirst(digits.count).first == "-" {
                stale = pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
            } else {
                stale = time(nil) - info.st_mtim.tv_sec > 3600
            }
            if stale { try? FileManager.default.removeItem(at: url) }
        }
    }

    /// On serve's connection, in one read transaction: SQLite holds a lock on the file checked
    /// (not on one swapped in since), and the file's tables and columns are serve's. Returns
    /// whether it must be stamped serve's: new, or made by a version that did not stamp it.
    static func verify(_ queue: DatabaseQueue, checked: Checked, path: String) throws -> Bool {
        let (found, held, application) = try queue.inDatabase { db -> ([String: Set<String>], Bool, Int32) in
            try db.execute(sql: "BEGIN DEFERRED")
            defer { try? db.execute(sql: "COMMIT") }
            var found: [String: Set<String>] = [:]
            for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'") {
                found[table] = Set(try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table]).map { $0["name"] as String })
            }
            // The stamp as the log leaves it (the header checked before may predate the log).
            let application = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
            return (found, sqliteHoldsLock(on: checked.descriptor), application)
        }
        var named = stat()
        guard held, lstat(path, &named) == 0, UInt64(named.st_dev) == checked.device, UInt64(named.st_ino) == checked.inode else {
            throw refuse(path, "was replaced while derive serve opened it (SQLite does not hold the file that was checked)")
        }
        if application != 0 && application != applicationID {
            throw refuse(path, "is another application's SQLite database (application_id \(application))")
        }
        let foreign = found.keys.filter { tables[$0] == nil }.sorted()
        if !foreign.isEmpty {
            throw refuse(path, "holds tables that are not derive serve's (\(foreign.joined(separator: ", ")))")
        }
        if checked.application == applicationID, checked.version > schemaVersion {
            throw refuse(path, "was written by a newer derive serve (layout \(checked.version); this one knows \(schemaVersion))")
        }
        for (table, columns) in found.sorted(by: { $0.key < $1.key }) where !tables[table]!.isSubset(of: columns) {
            let missing = tables[table]!.subtracting(columns).sorted().joined(separator: ", ")
            throw refuse(path, "has a table \(table) without derive serve's columns (missing: \(missing))")
        }
        return application != applicationID
    }

    /// Whether some lock SQLite takes for a reader (its SHARED range: 510 bytes from
    /// 0x40000002) is held on the file open at `fd`. An open-file-description lock probe
    /// (`F_OFD_GETLK`) sees this process's own record locks, which a plain `F_GETLK` would not.
    static func sqliteHoldsLock(on fd: Int32) -> Bool {
        SQLiteFiles.lockHeld(on: fd, start: SQLiteFiles.sharedRange.start, length: SQLiteFiles.sharedRange.length)
    }
}

/// Descriptors this process opened on metadata database files, by file, closed only when the
/// last store using a file is gone. Closing any descriptor of a file drops every POSIX record
/// lock the process holds on it, SQLite's included: a store's descriptor closed while another
/// store's connection is open on the same file (two services on one state folder in tests, a
/// refused start beside a running one) would silently unlock that connection.
enum DatabasePins {
    struct File: Hashable, Sendable { var device: UInt64; var inode: UInt64 }
    private static let table = NIOLockedValueBox<[File: (users: Int, descriptors: [Int32])]>([:])

    /// Keeps `fd` open for one more user of its file; returns the file.
    static func pin(_ fd: Int32, device: UInt64, inode: UInt64) -> File {
        let file = File(device: device, inode: inode)
        table.withLockedValue { table in
            var entry = table[file] ?? (0, [])
            entry.users += 1
            entry.descriptors.append(fd)
            table[file] = entry
        }
        return file
    }

    /// One user of `file` is done; its descriptors are closed when it was the last.
    static func release(_ file: File) {
        let closing: [Int32] = table.withLockedValue { table in
            guard var entry = table[file] else { return [] }
            entry.users -= 1
            if entry.users > 0 { table[file] = entry; return [] }
            table[file] = nil
            return entry.descriptors
        }
        for fd in closing { close(fd) }
    }
}
