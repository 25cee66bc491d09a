import Confinement
import Foundation
import GRDB
import Manifest
import NIOConcurrencyHelpers

/// Which objects were created by AppendObject, so a later append may continue them and an
/// append to a normal object answers ObjectNotAppendable, as OSS does. Kept in serve's metadata
/// database (`serve-metadata.sqlite`, table `appendable_objects`, one row per key), never in a
/// bucket folder; the rows are mirrored in memory, so a read or a listing never queries SQLite.
///
/// A row names the file version it describes (inode, size, modification time): a PUT, copy or
/// multipart upload over the key replaces the file, and the object is then normal again without
/// any hook.
///
/// **Crash story.** An append records the file it is about to link as the row's *next* version
/// (committed, `fsync`ed: the database runs WAL with `synchronous = FULL`) before it renames the
/// file over the key, and makes it the row's version after. A stop at any moment leaves:
/// - before that commit: the old file and its row (the new bytes were an unnamed file, gone);
/// - between the commit and the rename: the old file, its row and a next version nothing holds;
/// - between the rename and the last update: the new file, named by the row's next version.
/// At start-up every row with a next version is settled against the file at its key: it becomes
/// the version when the key holds it, and is dropped otherwise. So the record and the bytes
/// always agree: the object is appendable at the length of the bytes it holds.
final class AppendableObjects: Sendable {
    struct Record: Hashable, Sendable {
        var inode: UInt64
        var size: Int64
        /// Nanoseconds since 1970; nil for records carried over from `serve-appendable.json`,
        /// which did not keep it.
        var modified: Int64?
        /// Created by an anonymous caller (counted against `Limits.anonymous`).
        var anonymous: Bool

        func describes(_ status: FileStatus) -> Bool {
            inode == status.inode && size == status.size && (modified == nil || modified == status.mtime)
        }
    }

    /// The record file of earlier versions (`serve-appendable.json`), carried over once.
    struct LegacyRecord: Codable, Hashable {
        var inode: UInt64
        var size: Int64
    }

    /// How many appendable objects are remembered (`serve: appendable_max_objects`) and how many
    /// of them anonymous callers may create (`serve: appendable_max_anonymous`).
    struct Limits: Sendable {
        var total: Int = 10_000
        var anonymous: Int = 5_000
    }

    enum Room: Equatable { case available, full, anonymousFull }

    /// Most transient versions kept in memory (all keys together). Appends run one at a time and
    /// a replaced version lives `retiredSeconds`, so far fewer are alive; past the bound the
    /// oldest go first. Losing one only lets a read racing an append call the object Normal for
    /// that moment: the saved record stays the truth for appends and for every later read.
    static let maxTransient = 1_024

    /// A key of the in-memory tables: the bucket's and the key's bytes. Never a Swift `String`,
    /// whose `==` is canonical equivalence (`caf\u{E9}` == `cafe\u{301}`) while the file system
    /// and the database rows tell the two apart (attack 11, finding 1).
    struct Name: Hashable, Sendable {
        var bucket: [UInt8]
        var key: [UInt8]
        init(_ bucket: String, _ key: ObjectKey) { self.bucket = Array(bucket.utf8); self.key = key.bytes }
        var bucketName: String { String(decoding: bucket, as: UTF8.self) }
        var objectKey: ObjectKey? { try? ObjectKey(bytes: key) }
        /// `bucket/key` for the log, bytes outside printable ASCII percent-encoded: two
        /// spellings of one word (NFC, NFD) read differently.
        var shown: String { bucketName + "/" + AppendableObjects.shown(key) }
        var ordering: [UInt8] { bucket + [0] + key }
    }

    /// The saved records in memory, with what a refusal needs in O(1): the anonymous count is
    /// kept on every change, and `order` (every name once, swap-removed) lets a refusal look at a
    /// bounded batch of rows for stale ones (`sweepBatch`), going round the table over refusals.
    struct Table {
        private(set) var records: [Name: Record] = [:]
        private var order: [Name] = []
        private var position: [Name: Int] = [:]
        private(set) var anonymous = 0
        private var cursor = 0

        var count: Int { records.count }
        subscript(name: Name) -> Record? { records[name] }

        mutating func set(_ name: Name, _ record: Record) {
            if let old = records[name] {
                if old.anonymous { anonymous -= 1 }
            } else {
                position[name] = order.count
                order.append(name)
            }
            records[name] = record
            if record.anonymous { anonymous += 1 }
        }

        @discardableResult
        mutating func remove(_ name: Name) -> Record? {
            guard let old = records.removeValue(forKey: name) else { return nil }
            if old.anonymous { anonymous -= 1 }
            if let index = position.removeValue(forKey: name) {
                let last = order.removeLast()
                if index < order.count { order[index] = last; position[last] = index }
            }
            return old
        }

        /// Looks at up to `limit` rows from where the last sweep stopped; returns the names
        /// `isStale` says no longer describe their file, removed.
        mutating func sweep(limit: Int, isStale: (Name, Record) -> Bool) -> [Name] {
            var dropped: [Name] = []
            var examined = 0
            while examined < limit, !order.isEmpty {
                if cursor >= order.count { cursor = 0 }
                let name = order[cursor]
                if let record = records[name], isStale(name, record) {
                    remove(name)
                    dropped.append(name)
                } else {
                    cursor += 1
                }
                examined += 1
            }
            return dropped
        }
    }

    /// Rows a refusal examines for stale ones (a stat each): a refused append costs at most this
    /// many, whatever the table's size. Over refusals the sweep goes round the whole table.
    static let sweepBatch = 64

    let limits: Limits
    private let database: DatabaseQueue
    private let records: NIOLockedValueBox<Table>

    /// Versions of a key that readers may hold besides the saved one, kept in memory only: the
    /// append's new file, announced before its link (as its metadata is), and the file it
    /// replaced, kept a few seconds after (a reader that opened it before the link looks it up
    /// after). Matched by inode, size and modification time.
    struct Transient: Hashable { var inode: UInt64; var size: Int64; var mtime: Int64; var until: Int }
    private let transient = NIOLockedValueBox<[Name: [Transient]]>([:])
    static let retiredSeconds = 10
    let clock: @Sendable () -> Int

    /// What start-up did, for the server's log: records carried over from the JSON file (and
    /// whether it was removed), and the names cut because they were past `limits.total`.
    struct Startup: Sendable {
        var migrated = 0
        var legacyProblem: String?
        var cut: [String] = []
    }
    let startup: Startup

    /// Opens the table in `store`'s database, carrying over `legacyFile` when there is one.
    init(store: ObjectMetadataStore, legacyFile: String?, limits: Limits = Limits(),
         clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }) throws {
        self.database = store.queue
        self.limits = limits
        self.clock = clock
        var startup = Startup()
        try database.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS appendable_objects (
                    bucket TEXT NOT NULL, key BLOB NOT NULL,
                    inode INTEGER, size INTEGER, modified INTEGER,
                    next_inode INTEGER, next_size INTEGER, next_modified INTEGER,
                    anonymous INTEGER NOT NULL,
                    PRIMARY KEY (bucket, key))
                """)
        }
        if let legacyFile { startup = try Self.migrate(legacyFile, into: database) }
        var loaded: [Name: Record] = [:]
        try database.read { db in
            for row in try Row.fetchAll(db, sql: "SELECT bucket, key, inode, size, modified, anonymous FROM appendable_objects WHERE inode IS NOT NULL") {
                guard let name = Self.name(row) else { continue }
                let inode: Int64 = row["inode"], size: Int64 = row["size"]
                loaded[name] = Record(inode: UInt64(bitPattern: inode), size: size, modified: row["modified"], anonymous: row["anonymous"])
            }
        }
        // More than the bounds (a lowered `appendable_max_objects` or `appendable_max_anonymous`,
        // a long legacy file): rows of signed callers are kept first, anonymous ones only up to
        // their share (attack 12, finding 4: else signed callers found no slot), each in byte
        // order; the others become normal objects, and the log says so.
        var table = Table()
        let anonymousRows = loaded.values.filter(\.anonymous).count
        if loaded.count > limits.total || anonymousRows > limits.anonymous {
            func ordered(_ anonymous: Bool) -> [Name] {
                loaded.filter { $0.value.anonymous == anonymous }.map(\.key).sorted { $0.ordering.lexicographicallyPrecedes($1.ordering) }
            }
            let signed = ordered(false), anonymous = ordered(true)
            let keptSigned = min(signed.count, limits.total)
            let keptAnonymous = min(anonymous.count, limits.anonymous, limits.total - keptSigned)
            let cut = Array(signed[keptSigned...]) + Array(anonymous[keptAnonymous...])
            startup.cut = cut.map(\.shown)
            for name in cut { loaded[name] = nil }
            try Self.delete(cut, from: database)
        }
        for (name, record) in loaded { table.set(name, record) }
        records = NIOLockedValueBox(table)
        self.startup = startup
    }

    /// Reads `serve-appendable.json` into the table (its records count as anonymous: who created
    /// them is unknown), then removes it, so it is carried over once.
    private static func migrate(_ file: String, into database: DatabaseQueue) throws -> Startup {
        var startup = Startup()
        guard FileManager.default.fileExists(atPath: file) || (try? FileManager.default.destinationOfSymbolicLink(atPath: file)) != nil else { return startup }
        guard let data = try? ConfinedFolder.readRegularFile(atPath: file, maxBytes: 64 << 20),
              let decoded = LegacyFile.entries(Array(data)) else {
            startup.legacyProblem = "\(file) is not derive serve's record of appendable objects (a regular JSON file); it was left as it is and not read"
            return startup
        }
        try database.write { db in
            for (name, record) in decoded {
                guard let split = name.firstIndex(of: 0), let key = try? ObjectKey(bytes: Array(name[(split + 1)...])) else { continue }
                try db.execute(sql: """
                    INSERT OR IGNORE INTO appendable_objects (bucket, key, inode, size, anonymous) VALUES (?, ?, ?, ?, 1)
                    """, arguments: [String(decoding: name[..<split], as: UTF8.self), Data(key.bytes), Int64(bitPattern: record.inode), record.size])
                // Only rows added count (a key the table already has keeps its row).
                if db.changesCount > 0 { startup.migrated += 1 }
            }
        }
        // Committed: the file is no longer the truth. Removed by name in the state folder,
        // only as the regular file just read.
        let folder = (file as NSString).deletingLastPathComponent, name = (file as NSString).lastPathComponent
        do {
            let state = try ConfinedFolder(path: folder)
            _ = try state.removeFile(ObjectKey(name))
        } catch {
            startup.legacyProblem = "\(file) was carried over into the database but could not be removed (\(error)); remove it by hand"
        }
        return startup
    }

    /// `serve-appendable.json` read with its names as bytes: a `[String: …]` dictionary merges
    /// names Swift calls equal (`caf\u{E9}`, `cafe\u{301}`), two objects on disk.
    enum LegacyFile {
        /// The file's `{"bucket\u0000key": {"inode": …, "size": …}, …}` entries in order; nil
        /// when it is not that shape.
        static func entries(_ bytes: [UInt8]) -> [([UInt8], LegacyRecord)]? {
            var at = 0
            func skipSpace() { while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 } }
            func take(_ byte: UInt8) -> Bool {
                skipSpace()
                guard at < bytes.count, bytes[at] == byte else { return false }
                at += 1
                return true
            }
            func hex4() -> UInt32? {
                guard at + 4 <= bytes.count, let value = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else { return nil }
                at += 4
                return value
            }
            /// A string's bytes, escapes decoded, the rest kept byte for byte.
            func string() -> [UInt8]? {
                guard take(0x22) else { return nil }
                var out: [UInt8] = []
                while at < bytes.count {
                    let byte = bytes[at]
                    at += 1
                    switch byte {
                    case 0x22: return out
                    case 0x5C:
                        guard at < bytes.count else { return nil }
                        let escape = bytes[at]
                        at += 1
                        switch escape {
                        case 0x22, 0x5C, 0x2F: out.append(escape)
                        case 0x62: out.append(8)
                        case 0x66: out.append(12)
                        case 0x6E: out.append(10)
                        case 0x72: out.append(13)
                        case 0x74: out.append(9)
                        case 0x75:
                            guard var value = hex4() else { return nil }
                            if (0xD800..<0xDC00).contains(value) {
                                guard at + 1 < bytes.count, bytes[at] == 0x5C, bytes[at + 1] == 0x75 else { return nil }
                                at += 2
                                guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                            }
                            guard let scalar = Unicode.Scalar(value) else { return nil }
                            out += Array(String(Character(scalar)).utf8)
                        default: return nil
                        }
                    default: out.append(byte)
                    }
                }
                return nil
            }
            /// A record object's bytes (no strings with braces in it: the names are `inode`, `size`).
            func record() -> LegacyRecord? {
                guard take(0x7B) else { return nil }
                let start = at - 1
                while at < bytes.count, bytes[at] != 0x7D { at += 1 }
                guard at < bytes.count else { return nil }
                at += 1
                return try? JSONDecoder().decode(LegacyRecord.self, from: Data(bytes[start..<at]))
            }
            var entries: [([UInt8], LegacyRecord)] = []
            guard take(0x7B) else { return nil }
            if take(0x7D) { skipSpace(); return at == bytes.count ? entries : nil }
            repeat {
                guard let name = string(), take(0x3A), let value = record() else { return nil }
                entries.append((name, value))
            } while take(0x2C)
            guard take(0x7D) else { return nil }
            skipSpace()
            return at == bytes.count ? entries : nil
        }
    }

    /// Settles the rows an interrupted append left (see the crash story): the next version
    /// becomes the version when the key holds it, and is dropped otherwise. `status` is the file
    /// at a key now (nil: none). Returns one line per settled row, for the log.
    func recover(status: (String, ObjectKey) -> FileStatus?) throws -> [String] {
        var settled: [String] = []
        try database.write { db in
            for row in try Row.fetchAll(db, sql: "SELECT * FROM appendable_objects WHERE next_inode IS NOT NULL") {
                let bucket: String = row["bucket"], keyBytes: Data = row["key"]
                guard let key = try? ObjectKey(bytes: Array(keyBytes)) else { continue }
                let nextInode: Int64 = row["next_inode"], nextSize: Int64 = row["next_size"], nextModified: Int64 = row["next_modified"]
                let next = Record(inode: UInt64(bitPattern: nextInode), size: nextSize, modified: nextModified, anonymous: row["anonymous"])
                let current = status(bucket, key)
                let arguments: StatementArguments = [bucket, keyBytes]
                if let current, next.describes(current) {
                    try db.execute(sql: """
                        UPDATE appendable_objects SET inode = next_inode, size = next_size, modified = next_modified,
                            next_inode = NULL, next_size = NULL, next_modified = NULL WHERE bucket = ? AND key = ?
                        """, arguments: arguments)
                    records.withLockedValue { $0.set(Name(bucket, key), next) }
                    settled.append("'\(Self.shown(key.bytes))' in bucket '\(bucket)': an append stopped after its file was linked; the object is appendable at \(nextSize) bytes")
                } else if (row["inode"] as Int64?) == nil {
                    try db.execute(sql: "DELETE FROM appendable_objects WHERE bucket = ? AND key = ?", arguments: arguments)
                    settled.append("'\(Self.shown(key.bytes))' in bucket '\(bucket)': the first append stopped before its file was linked; there is no object")
                } else {
                    try db.execute(sql: "UPDATE appendable_objects SET next_inode = NULL, next_size = NULL, next_modified = NULL WHERE bucket = ? AND key = ?",
                                   arguments: arguments)
                    settled.append("'\(Self.shown(key.bytes))' in bucket '\(bucket)': an append stopped before its file was linked; the object keeps its earlier bytes")
                }
            }
        }
        return settled
    }

    /// A key for the log: printable ASCII as it is, every other byte (and `%`) as `%XX`.
    static func shown(_ bytes: [UInt8]) -> String {
        var text = ""
        for byte in bytes {
            if (0x20..<0x7F).contains(byte), byte != 0x25 { text.unicodeScalars.append(Unicode.Scalar(byte)) } else { text += String(format: "%%%02X", byte) }
        }
        return text
    }

    private static func name(_ row: Row) -> Name? {
        let bucket: String = row["bucket"], keyBytes: Data = row["key"]
        guard let key = try? ObjectKey(bytes: Array(keyBytes)) else { return nil }
        return Name(bucket, key)
    }

    static func name(_ bucket: Bucket, _ key: ObjectKey) -> Name { Name(bucket.name, key) }

    private static func delete(_ names: [Name], from database: DatabaseQueue) throws {
        guard !names.isEmpty else { return }
        try database.write { db in
            for name in names {
                try db.execute(sql: "DELETE FROM appendable_objects WHERE bucket = ? AND key = ?", arguments: [name.bucketName, Data(name.key)])
            }
        }
    }

    /// Entries in memory now (tests).
    var counts: (records: Int, transient: Int) {
        (records.withLockedValue { $0.count }, transient.withLockedValue { $0.values.reduce(0) { $0 + $1.count } })
    }

    /// Anonymous records in memory now (tests): the kept count.
    var anonymousCount: Int { records.withLockedValue { $0.anonymous } }

    /// The saved record of a key (tests).
    func record(_ bucket: Bucket, _ key: ObjectKey) -> Record? { records.withLockedValue { $0[Self.name(bucket, key)] } }

    /// Drops expired versions of every key, then the oldest beyond `maxTransient` (the table's
    /// lock is held by the caller).
    private static func prune(_ table: inout [Name: [Transient]], now: Int) {
        for (name, entries) in table {
            let live = entries.filter { $0.until >= now }
            table[name] = live.isEmpty ? nil : (live.count == entries.count ? entries : live)
        }
        var count = table.values.reduce(0) { $0 + $1.count }
        guard count > maxTransient else { return }
        // Retired versions first, soonest to expire first; announced ones (until .max) last.
        // Down to three quarters of the bound, so the sort is paid once per many appends.
        let ordered = table.flatMap { name, entries in entries.map { (name, $0) } }.sorted { $0.1.until < $1.1.until }
        for (name, entry) in ordered where count > maxTransient * 3 / 4 {
            table[name]?.removeAll { $0 == entry }
            if table[name]?.isEmpty == true { table[name] = nil }
            count -= 1
        }
    }

    /// Both tables are read under the records lock, as `commit` changes them under it: read one
    /// after the other, a reader of the replaced file could find the record already moved on and
    /// the retired version not yet added (a HEAD racing appends answered Normal, under load).
    func isAppendable(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus) -> Bool {
        let name = Self.name(bucket, key)
        let now = clock()
        return records.withLockedValue { records in
            if let record = records[name], record.describes(status) { return true }
            return transient.withLockedValue { $0[name] ?? [] }.contains {
                $0.inode == status.inode && $0.size == status.size && $0.mtime == status.mtime && $0.until >= now
            }
        }
    }

    /// Whether the object at `key` can be recorded: it is already, or the table has room (and,
    /// for an anonymous caller, the anonymous share has). Both counts are kept, so the answer is
    /// O(1); when there is no room, a bounded batch of rows (`sweepBatch`) is checked for files
    /// that changed (replaced, deleted on disk) and those rows are dropped, never the whole table.
    /// Checked by an append before it writes anything (appends run one at a time, so the room is
    /// still there when it records).
    func room(for bucket: Bucket, _ key: ObjectKey, anonymous: Bool, stillValid: (Name, Record) -> Bool) -> Room {
        let limits = self.limits
        func answer(_ table: Table) -> Room {
            if table.count >= limits.total { return .full }
            if anonymous, table.anonymous >= limits.anonymous { return .anonymousFull }
            return .available
        }
        // A row whose next version is announced is being appended to: never stale (the
        // transient lock is only ever taken inside the records lock, never the other way).
        func announced(_ name: Name) -> Bool { transient.withLockedValue { $0[name]?.contains { $0.until == .max } ?? false } }
        return records.withLockedValue { table -> Room in
            if table[Self.name(bucket, key)] != nil { return .available }
            guard answer(table) != .available else { return .available }
            let dropped = table.sweep(limit: Self.sweepBatch) { name, record in !announced(name) && !stillValid(name, record) }
            // Under the lock, so a new row of the same key cannot be written in between. A
            // failed delete leaves rows describing changed files: they describe nothing.
            try? Self.delete(dropped, from: database)
            return answer(table)
        }
    }

    /// Before an append links `next` at `key` (under the key's lock): the row names it as the
    /// next version, committed to disk. `creating`: the key holds no object (any row is stale
    /// and is replaced). Throws when the database cannot record it: nothing is linked then.
    func prepare(_ bucket: Bucket, _ key: ObjectKey, next: FileStatus, creating: Bool, anonymous: Bool) throws {
        try database.write { db in
            if creating {
                try db.execute(sql: "DELETE FROM appendable_objects WHERE bucket = ? AND key = ?", arguments: [bucket.name, Data(key.bytes)])
            }
            try db.execute(sql: """
                INSERT INTO appendable_objects (bucket, key, next_inode, next_size, next_modified, anonymous) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (bucket, key) DO UPDATE SET next_inode = excluded.next_inode, next_size = excluded.next_size,
                    next_modified = excluded.next_modified
                """, arguments: [bucket.name, Data(key.bytes), Int64(bitPattern: next.inode), next.size, next.mtime, anonymous])
        }
        let entry = Transient(inode: next.inode, size: next.size, mtime: next.mtime, until: Int.max)
        let now = clock()
        transient.withLockedValue { table in
            table[Self.name(bucket, key), default: []].append(entry)
            Self.prune(&table, now: now)
        }
    }

    /// After the link (under the key's lock): the row's version is the linked file; the
    /// replaced one stays valid for readers `retiredSeconds`. A failed update is settled at the
    /// next start (the row still names the linked file as its next version).
    func commit(_ bucket: Bucket, _ key: ObjectKey, linked: FileStatus, replaced: FileStatus?, anonymous: Bool) throws {
        let name = Self.name(bucket, key)
        let now = clock()
        // One step for readers (`isAppendable` reads both under the records lock): the record
        // moves to the linked file and the replaced one becomes a retired version together.
        records.withLockedValue { records in
            records.set(name, Record(inode: linked.inode, size: linked.size, modified: linked.mtime,
                                     anonymous: records[name]?.anonymous ?? anonymous))
            transient.withLockedValue { table in
                var entries = (table[name] ?? []).filter { $0.until >= now && !($0.inode == linked.inode && $0.size == linked.size) }
                if let replaced { entries.append(Transient(inode: replaced.inode, size: replaced.size, mtime: replaced.mtime, until: now + Self.retiredSeconds)) }
                table[name] = entries.isEmpty ? nil : entries
                // Other keys' expired versions too: a key appended once and never again kept its
                // retired version for ever.
                Self.prune(&table, now: now)
            }
        }
        try database.write { db in
            try db.execute(sql: """
                UPDATE appendable_objects SET inode = ?, size = ?, modified = ?, next_inode = NULL, next_size = NULL, next_modified = NULL
                WHERE bucket = ? AND key = ?
                """, arguments: [Int64(bitPattern: linked.inode), linked.size, linked.mtime, bucket.name, Data(key.bytes)])
        }
    }

    /// A prepared file that was not linked.
    func withdraw(_ bucket: Bucket, _ key: ObjectKey, _ status: FileStatus) {
        transient.withLockedValue { table in
            let entries = (table[Self.name(bucket, key)] ?? []).filter { !($0.inode == status.inode && $0.size == status.size && $0.mtime == status.mtime) }
            table[Self.name(bucket, key)] = entries.isEmpty ? nil : entries
        }
        // Left in the row, it would be settled at the next start; cleared now when possible.
        try? database.write { db in
            try db.execute(sql: "DELETE FROM appendable_objects WHERE bucket = ? AND key = ? AND inode IS NULL", arguments: [bucket.name, Data(key.bytes)])
            try db.execute(sql: "UPDATE appendable_objects SET next_inode = NULL, next_size = NULL, next_modified = NULL WHERE bucket = ? AND key = ?",
                           arguments: [bucket.name, Data(key.bytes)])
        }
    }

    /// The object at `key` is being deleted (under the key's lock), in the delete's transaction
    /// `db`: its row goes with the object's records, or stays when the delete is refused.
    func forget(_ bucket: Bucket, _ key: ObjectKey, in db: Database) throws {
        try db.execute(sql: "DELETE FROM appendable_objects WHERE bucket = ? AND key = ?", arguments: [bucket.name, Data(key.bytes)])
    }

    /// Both steps in a transaction of their own.
    func forget(_ bucket: Bucket, _ key: ObjectKey) throws {
        try database.write { db in try forget(bucket, key, in: db) }
        forgotten(bucket, key)
    }

    /// The object at `key` was deleted (after `forget(_:_:in:)` committed): the memory follows.
    func forgotten(_ bucket: Bucket, _ key: ObjectKey) {
        transient.withLockedValue { _ = $0.removeValue(forKey: Self.name(bucket, key)) }
        records.withLockedValue { _ = $0.remove(Self.name(bucket, key)) }
    }
}
