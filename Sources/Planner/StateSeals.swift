import Crypto
import Foundation
import GRDB

/// Seals on the build state's records (attack 18's S1). The state is a file in the project:
/// whoever can read or write it (another user, a `.derive/` committed to a repository, a tarball)
/// could otherwise copy whatever proof it holds, or add rows. So the state holds no secret: the
/// user's secret is kept only in their own file, outside every project (`StateBinding`), and
/// each record that can authorise an overwrite, a deletion or an "up to date" answer carries a
/// seal, an HMAC-SHA256 keyed by that secret over all of its fields. A record whose seal does not
/// verify is not Derive's: it authorises nothing, and is named once (the build drops it).
///
/// The fields sealed are every column of the record's table but `seal`, read from the database
/// (not listed here): a column added later joins the seal without anyone remembering to add it.
/// Rows are sealed after they are written, from what was written (each sealed table's inserted
/// and updated rows are noted as the statements run, then sealed in the same transaction), so
/// every write through `StateStore.write` is sealed whatever its statement; a write to a sealed
/// table outside it leaves the row unsealed, so not trusted (a test of that write fails).
public final class StateSeals: TransactionObserver, @unchecked Sendable {
    /// The tables whose records are sealed: what Derive wrote (outputs, their files, the index,
    /// the bucket folders, the folders it created, pending writes) and the digests it read
    /// (`files`: a forged stat record would vouch for bytes nobody hashed).
    public static let tables: [String] = ["outputs", "outputFiles", "controlFiles", "bucketFolders", "createdFolders", "pendingWrites", "files",
                                          "sourceColours", "placeholders", "leftFiles", "sourceDominants", "lockFiles"]
    /// The tables created with their seal column (`v10-left`, `v12-dominant-colours`, `v13-lock-files`): no earlier migration adds it.
    public static let sealedFromTheStart: [String] = ["leftFiles", "sourceDominants", "lockFiles"]
    /// The tables sealed since `v9-seals-caches` (the index's colours and placeholders, attack 19's V3).
    public static let cacheTables: [String] = ["sourceColours", "placeholders"]
    /// The column holding a row's seal (32 bytes).
    public static let column = "seal"

    private let keyed: HMAC<SHA256>
    private let lock = NSLock()
    /// Rows written since the last seal, by table.
    private var written: [String: Set<Int64>] = [:]
    /// Each sealed table's columns but the seal, sorted by name: the canonical order.
    private var columnsByTable: [String: [String]] = [:]

    /// `secret`: the user's secret for this state (32 bytes).
    public init(secret: Data) {
        keyed = HMAC<SHA256>(key: SymmetricKey(data: secret))
    }

    // MARK: Canonical encoding

    /// The columns of `table` sealed, in canonical order (sorted by name, `seal` left out).
    func columns(_ db: Database, _ table: String) throws -> [String] {
        if let known = lock.withLock({ columnsByTable[table] }) { return known }
        let names = try db.columns(in: table).map(\.name).filter { $0 != Self.column }.sorted()
        lock.withLock { columnsByTable[table] = names }
        return names
    }

    /// A seal over fields kept outside the database (the build's `{hash}` renders in the state
    /// folder): HMAC under the same secret, each field length-prefixed, under its own domain, so no
    /// row's seal is ever one of these.
    public func seal(detached fields: [String]) -> Data {
        var mac = keyed
        var bytes: [UInt8] = []
        func text(_ utf8: String.UTF8View) {
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: utf8)
        }
        text("derive-seal-detached/1".utf8)
        for field in fields { text(field.utf8) }
        mac.update(data: bytes)
        return Data(mac.finalize())
    }

    /// The seal of one row: HMAC over the table's name and each column's name and value, each
    /// length-prefixed and typed, in canonical order. `value(i)`: the value of `columns[i]`.
    func seal(table: String, columns: [String], value: (Int) -> DatabaseValue) -> Data {
        var mac = keyed
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        func length(_ count: Int) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: count).littleEndian) { bytes.append(contentsOf: $0) } }
        func text(_ utf8: String.UTF8View) { length(utf8.count); bytes.append(contentsOf: utf8) }
        text("derive-seal/1".utf8)
        text(table.utf8)
        length(columns.count)
        for (index, name) in columns.enumerated() {
            text(name.utf8)
            switch value(index).storage {
            case .null: bytes.append(0)
            case .int64(let number):
                bytes.append(1); withUnsafeBytes(of: number.littleEndian) { bytes.append(contentsOf: $0) }
            case .double(let number):
                bytes.append(2); withUnsafeBytes(of: number.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            case .string(let string):
                bytes.append(3); text(string.utf8)
            case .blob(let data):
                bytes.append(4); length(data.count); bytes.append(contentsOf: data)
            }
        }
        mac.update(data: bytes)
        return Data(mac.finalize())
    }

    // MARK: Reading

    /// A query of a sealed table: the columns a reader wants first (in its order), then the rest,
    /// then the seal; `verifies` checks a row it returns.
    public struct Query: Sendable {
        public let sql: String
        let table: String
        /// For each canonical column, its index in the row.
        let canonical: [Int]
        let names: [String]
        let sealIndex: Int
    }

    /// `leading`: columns the caller decodes by position, in that order. `clause`: `WHERE …`, or empty.
    public func query(_ db: Database, table: String, leading: [String], clause: String = "") throws -> Query {
        let names = try columns(db, table)
        let selected = leading + names.filter { !leading.contains($0) }
        let canonical = names.map { name in selected.firstIndex(of: name)! }
        let sql = "SELECT " + (selected + [Self.column]).map { "\"\($0)\"" }.joined(separator: ", ") + " FROM \(table) " + clause
        return Query(sql: sql, table: table, canonical: canonical, names: names, sealIndex: selected.count)
    }

    /// How many rows `verifies` checked (a read's cost: `StateSealTests`).
    public var rowsVerified: Int { lock.withLock { verified } }
    private var verified = 0
    /// How many rows of `table` were checked.
    public func rowsVerified(in table: String) -> Int { lock.withLock { verifiedByTable[table] ?? 0 } }
    private var verifiedByTable: [String: Int] = [:]

    /// Whether `row` (returned by `query`'s SQL) carries its own seal.
    public func verifies(_ query: Query, _ row: Row) -> Bool {
        lock.withLock { verified += 1; verifiedByTable[query.table, default: 0] += 1 }
        guard case .blob(let stored) = (row[query.sealIndex] as DatabaseValue).storage, stored.count == 32 else { return false }
        let expected = seal(table: query.table, columns: query.names) { row[query.canonical[$0]] as DatabaseValue }
        // Constant time (a local file, but nothing is lost by it).
        var difference: UInt8 = 0
        for (a, b) in zip(stored, expected) { difference |= a ^ b }
        return difference == 0
    }

    /// Whether `stored` is the seal of a `table` row whose canonical columns (`columns`, in the
    /// order `columns(_:_:)` gives) hold `values`: a row verified after it was read and decoded
    /// (`StateStore.fileRows`: the stat cache's rows are verified when a plan first uses one).
    func verifies(table: String, columns: [String], values: [DatabaseValue], stored: RowSeal) -> Bool {
        lock.withLock { verified += 1; verifiedByTable[table, default: 0] += 1 }
        return RowSeal(seal(table: table, columns: columns) { values[$0] }) == stored
    }

    // MARK: Writing

    /// Seals the rows written in this transaction (called by `StateStore.write` before it commits).
    func sealWritten(_ db: Database) throws {
        let rows = lock.withLock { () -> [String: Set<Int64>] in defer { written = [:] }; return written }
        for (table, ids) in rows.sorted(by: { $0.key < $1.key }) {
            let names = try columns(db, table)
            let select = try db.makeStatement(sql: "SELECT " + names.map { "\"\($0)\"" }.joined(separator: ", ") + " FROM \(table) WHERE rowid = ?")
            let update = try db.makeStatement(sql: "UPDATE \(table) SET \(Self.column) = ? WHERE rowid = ?")
            for id in ids {
                guard let row = try Row.fetchOne(select, arguments: [id]) else { continue }
                let seal = seal(table: table, columns: names) { row[$0] as DatabaseValue }
                try update.execute(arguments: [seal, id])
            }
        }
    }

    /// Seals every row of every sealed table (the one-time upgrade of a state bound by a bearer
    /// token: its rows, those from before devices and inodes were kept included, are sealed once).
    func sealAll(_ db: Database) throws {
        for table in Self.tables where try db.tableExists(table) {
            let ids = try Int64.fetchAll(db, sql: "SELECT rowid FROM \(table)")
            lock.withLock { written[table, default: []].formUnion(ids) }
        }
        try sealWritten(db)
    }

    /// Seals every record of the state database at `path` with `secret`, as Derive would have
    /// written them: for tests that stand a row made by hand for one an older Derive wrote
    /// (anything running as the user, who holds the secret, can do as much).
    public static func sealEveryRecord(ofStateAt path: String, secret: Data) throws {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        let seals = StateSeals(secret: secret)
        try queue.write { db in try seals.sealAll(db) }
    }

    // MARK: TransactionObserver

    public func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        switch eventKind {
        case .insert(let table): return Self.tables.contains(table)
        // The seal's own update is not a change to seal.
        case .update(let table, let columns): return Self.tables.contains(table) && columns != [Self.column]
        case .delete: return false
        }
    }

    public func databaseDidChange(with event: DatabaseEvent) {
        let table = event.tableName, id = event.rowID
        lock.withLock { _ = written[table, default: []].insert(id) }
    }

    public func databaseDidCommit(_ db: Database) {
        // Rows written outside `StateStore.write` (a test's raw rows) stay unsealed: not trusted,
        // and the store no longer vouches for every row (`StateStore.verifiedRowsToken`).
        lock.withLock {
            if !written.isEmpty { unsealedCommit = true }
            written = [:]
        }
    }

    /// Whether this connection committed a sealed table's row without sealing it.
    public var committedUnsealed: Bool { lock.withLock { unsealedCommit } }
    private var unsealedCommit = false

    public func databaseDidRollback(_ db: Database) {
        lock.withLock { written = [:] }
    }
}

/// A row's seal as read (32 bytes), kept inline: the stat cache holds one per row until the row
/// is first used (`ContentDigests`), and 60 000 `Data` of 32 bytes would each be a heap block.
public struct RowSeal: Sendable, Hashable {
    let words: (UInt64, UInt64, UInt64, UInt64)

    /// Nil unless `bytes` are 32 (a seal column holding anything else verifies nothing).
    init?(_ bytes: Data) {
        guard bytes.count == 32 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        bytes.withUnsafeBytes { raw in
            words = (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                     raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        }
        self.words = words
    }

    public static func == (a: RowSeal, b: RowSeal) -> Bool {
        // Constant time (a local file, but nothing is lost by it).
        ((a.words.0 ^ b.words.0) | (a.words.1 ^ b.words.1) | (a.words.2 ^ b.words.2) | (a.words.3 ^ b.words.3)) == 0
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0); hasher.combine(words.1); hasher.combine(words.2); hasher.combine(words.3)
    }
}
