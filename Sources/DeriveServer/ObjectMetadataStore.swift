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

    public init(headers: [String: String] = [:], etag: String, lastModified: Int) {
        self.headers = headers; self.etag = etag; self.lastModified = lastModified
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

    /// Opens (creating) the database at `path`; nil path: in memory (tests).
    ///
    /// Write-ahead logging with `synchronous = FULL`: a commit is one append to the WAL and one
    /// `fsync`, and once `write` returns the record survives a crash of the process or of the
    /// machine. Writers record a file before they link it (an upload's metadata, an append's
    /// next version), so the record is on disk before the file it names is at its key.
    ///
    /// Only serve's own database is opened: a symbolic link at `path` (or at its journals), a
    /// file that is not an SQLite database, a database another application stamped, or one with
    /// tables serve does not know is refused with a `MetadataDatabaseError` naming it, before
    /// anything is written to it (attack 11, finding 3). A new or empty file is stamped serve's.
    public init(path: String?) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        var stamp = false
        if let path {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            stamp = try MetadataDatabaseOwnership.check(path)
            configuration.journalMode = .wal
            queue = try DatabaseQueue(path: path, configuration: configuration)
            // Opened by name: what is there now must still be the regular file just checked.
            try MetadataDatabaseOwnership.checkNotLinked(path)
            // GRDB's WAL set-up chooses NORMAL, which may lose the last commits at a power cut.
            try queue.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") }
        } else {
            queue = try DatabaseQueue(configuration: configuration)
            stamp = true
        }
        if stamp {
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA application_id = \(MetadataDatabaseOwnership.applicationID)")
                try db.execute(sql: "PRAGMA user_version = \(MetadataDatabaseOwnership.schemaVersion)")
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
            if try db.tableExists("object_metadata") {
                try db.execute(sql: "INSERT OR IGNORE INTO object_records SELECT bucket, key, device, inode, size, modified, etag, last_modified, headers FROM object_metadata")
                try db.execute(sql: "DROP TABLE object_metadata")
            }
        }
    }

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
        return ObjectMetadata(headers: headers, etag: row["etag"], lastModified: row["last_modified"])
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
                INSERT OR REPLACE INTO object_records (bucket, key, device, inode, size, modified, etag, last_modified, headers)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [bucket, Data(key.bytes), Int64(bitPattern: identity.device), Int64(bitPattern: identity.inode),
                                 identity.size, identity.modified, metadata.etag, metadata.lastModified, headers])
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

    /// Forgets `key` (its object was deleted or replaced without metadata).
    public func delete(bucket: String, key: ObjectKey) throws {
        forget(bucket, key)
        defer { forget(bucket, key) }
        try queue.write { db in
            try db.execute(sql: "DELETE FROM object_records WHERE bucket = ? AND key = ?", arguments: [bucket, Data(key.bytes)])
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

    static func refuse(_ path: String, _ what: String) -> MetadataDatabaseError {
        MetadataDatabaseError(message: "\(path) \(what); derive serve opens, creates or changes only its own object metadata database there. Move that file away (serve then starts a new, empty one) or use another state folder (state: in the manifest).")
    }

    /// Refuses a symbolic link (or anything but a regular file) at `path` or its journals.
    static func checkNotLinked(_ path: String) throws {
        for name in [path] + StateFiles.journalSuffixes.map({ path + $0 }) {
            var info = stat()
            guard lstat(name, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFLNK { throw refuse(name, "is a symbolic link") }
            if (info.st_mode & S_IFMT) != S_IFREG { throw refuse(name, "is not a regular file") }
        }
    }

    /// Checks the file at `path` (nothing there or an empty file: a new database). Returns
    /// whether it must be stamped serve's: new, or made by a version that did not stamp it.
    static func check(_ path: String) throws -> Bool {
        try checkNotLinked(path)
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return true }
            throw refuse(path, "cannot be read (\(String(cString: strerror(errno))))")
        }
        var header = [UInt8](repeating: 0, count: 100)
        let count = pread(fd, &header, header.count, 0)
        close(fd)
        if count == 0 { return true }
        guard count == 100, header.starts(with: Array("SQLite format 3\0".utf8)) else {
            throw refuse(path, "is not an SQLite database")
        }
        // The header's big-endian fields: user_version at 60, application_id at 68.
        func field(_ at: Int) -> Int32 { Int32(bitPattern: header[at..<at + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
        let application = field(68), version = Int(field(60))
        if application != 0 && application != applicationID {
            throw refuse(path, "is another application's SQLite database (application_id \(application))")
        }
        // Read-write but only read: a read-only connection cannot open a WAL database whose
        // `-shm` is gone (serve's own after a clean stop). Nothing is written before the verdict.
        let found: [String: Set<String>]
        do {
            found = try DatabaseQueue(path: path).read { db in
                var found: [String: Set<String>] = [:]
                for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'") {
                    found[table] = Set(try Row.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table]).map { $0["name"] as String })
                }
                return found
            }
        } catch {
            throw refuse(path, "cannot be read as an SQLite database (\(error))")
        }
        let foreign = found.keys.filter { tables[$0] == nil }.sorted()
        if !foreign.isEmpty {
            throw refuse(path, "holds tables that are not derive serve's (\(foreign.joined(separator: ", ")))")
        }
        if application == applicationID, version > schemaVersion {
            throw refuse(path, "was written by a newer derive serve (layout \(version); this one knows \(schemaVersion))")
        }
        for (table, columns) in found.sorted(by: { $0.key < $1.key }) where !tables[table]!.isSubset(of: columns) {
            let missing = tables[table]!.subtracting(columns).sorted().joined(separator: ", ")
            throw refuse(path, "has a table \(table) without derive serve's columns (missing: \(missing))")
        }
        return application == 0
    }
}
