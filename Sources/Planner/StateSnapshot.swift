import Confinement
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// The build state as `check` sees it: read without writing anything. The database is opened
/// read-only and copied into memory, where migrations may run; a state a build would move aside
/// (corrupt, or another manifest's) is replaced by an empty one in memory, with a note saying
/// what the build would do. The state folder is not created.
extension StateStore {
    /// `vouched`: as for `init(folder:owner:vouched:)`, the integrity check is skipped while the
    /// database has the stat a witness vouches for.
    /// `vouchedRows`: as for `init(folder:owner:vouched:vouchedRows:)`, the copy's outputs rows are
    /// read without their seals checked when the file had that token before and after it was copied.
    public static func readOnlySnapshot(folder: String, owner: String?, vouched: FileStat? = nil,
                                        vouchedRows: String? = nil) throws -> (store: StateStore, note: String?) {
        let path = folder + "/" + fileName
        func empty(_ note: String?) throws -> (store: StateStore, note: String?) {
            let memory = try DatabaseQueue()
            try migrator.migrate(memory)
            if let owner { try memory.write { db in try db.execute(sql: "INSERT INTO owner (manifest) VALUES (?)", arguments: [owner]) } }
            return (StateStore(queue: memory, folder: folder, movedAside: nil, movedAsideReason: nil), note)
        }
        // What the build would refuse (a user's journal, a FIFO) is refused here too, before SQLite opens anything.
        try StateFolderTrust.checkDatabaseFiles(path)
        var info = stat()
        guard lstat(path, &info) == 0 else { return try empty(nil) }
        let memory = try DatabaseQueue()
        var checked = true
        var copiedVouched = false
        var rolledBack = false
        /// Copies the database at `file` into `memory`. `own`: it is the project's database (a
        /// witness may vouch for it); a private copy is checked in full.
        func copy(from file: String, own: Bool) throws {
            let unchanged = own ? (vouched.map { isUnchanged(path, since: $0) } ?? false) : false
            var configuration = Configuration()
            configuration.readonly = own
            // A build holds the state's lock only while it commits: waited for, as the build's own
            // connection waits (attack 27's finding 6: a busy state was called broken).
            configuration.busyMode = .timeout(busyWait)
            let database = try DatabaseQueue(path: file, configuration: configuration)
            checked = !unchanged
            if !unchanged {
                let result = try database.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
                if result != "ok" { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: result) }
            }
            // Tokens on the file's queue, outside its transactions (`VerifiedRows.token`).
            let before = own ? vouchedRows.flatMap { _ in database.inDatabase { _ in VerifiedRows.token(path) } } : nil
            try database.backup(to: memory)
            copiedVouched = before != nil && before == vouchedRows && database.inDatabase { _ in VerifiedRows.token(path) } == before
            try database.close()
        }
        do {
            do {
                try copy(from: path, own: true)
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_READONLY_ROLLBACK {
                // A hot journal: a build was killed while it wrote the state, and SQLite rolls the
                // journal back as the next build opens it, which a read-only connection cannot do
                // (attack 39a's finding 3: plan said the state was gone, the build then built).
                // Read as that build will: the database and its journal copied to a private
                // folder, where SQLite rolls the copy back; the project's files are not touched.
                let folder = try StateJournalCopy(database: path)
                defer { folder.remove() }
                try copy(from: folder.database, own: false)
                rolledBack = true
            }
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            return try empty("the build state \(path) is corrupt; derive build would move it aside and rebuild it from the lock and the outputs")
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            return try empty("the build state \(path) is busy: \(busyHolder(folder)) has been writing it for longer than \(Int(busyWait)) s; "
                + "checked against the lock alone (run this again once it is done)")
        } catch {
            return try empty("the build state \(path) cannot be read without writing (\(error)); derive build would recover it; checked against the lock alone")
        }
        try migrator.migrate(memory)
        var moved: Data?
        if let owner, let row = try memory.read({ db in try Row.fetchOne(db, sql: "SELECT manifest, place FROM owner") }),
           let recorded = row[0] as String?, !StateOwner.isSame(recorded: recorded, owner: owner) {
            let place = row[1] as String? ?? ""
            guard StateSuccession.succeeds(recorded: recorded, recordedPlace: place, owner: owner, stateFolder: folder) else {
                return try empty("the build state \(path) is owned by \(recorded), not this manifest; derive build would move it aside and rebuild it from the lock and the outputs")
            }
            // Taken over as the build will (the copy in memory re-anchored, nothing written).
            moved = try StateSuccession.takeOver(memory, database: path, recorded: recorded, recordedPlace: place, owner: owner,
                                                 stateFolder: folder, writable: false)
        }
        try dropTriggers(memory)   // (the copy in memory: see `dropTriggers`)
        guard owner != nil else {
            return (StateStore(queue: memory, folder: folder, movedAside: nil, movedAsideReason: nil, existed: true, integrityChecked: checked),
                    rolledBack ? rolledBackNote(path) : nil)
        }
        let seals: StateSeals?
        let bound = try moved.map(Binding.sealed) ?? binding(memory, database: path)
        switch bound {
        case .foreign(let why):
            return try empty("the build state \(path) is \(why); derive build would move it aside and rebuild it from the lock and the outputs")
        case .sealed(let secret): seals = StateSeals(secret: secret)
        // Build-17's bearer token, this user's: trusted as build-17 did until the next build re-seals it.
        case .bearer: seals = nil
        // Nothing to trust: a row there (a stat record) verifies only under the user's secret.
        case .empty: seals = StateSeals(secret: StateBinding.secret(forState: path) ?? StateBinding.newSecret())
        }
        let store = StateStore(queue: memory, folder: folder, movedAside: nil, movedAsideReason: nil, existed: true, seals: seals,
                               integrityChecked: checked)
        // The copy holds the vouched rows unless re-anchored here (its rows rewritten in memory).
        if copiedVouched, moved == nil, seals != nil {
            store.rowsVouch.set(try memory.read { db in try Int64.fetchOne(db, sql: "PRAGMA data_version") })
        }
        return (store, rolledBack ? rolledBackNote(path) : nil)
    }

    /// What `plan` and `check` say of a state read through its hot journal rolled back in a copy.
    static func rolledBackNote(_ path: String) -> String {
        "the build state \(path) has the journal of a build that was killed while it wrote the state; "
            + "derive build rolls it back first (as SQLite opens the state), so this was checked against the state as it will be then"
    }

    /// How long `plan` and `check` wait for a build that holds the state's lock (seconds).
    static let busyWait: TimeInterval = 10

    /// Who holds the state: the build `build.lock` names (`pid N on host, since …`, kept after a
    /// build ends) while that process runs here, else "another process".
    static func busyHolder(_ folder: String) -> String {
        guard let data = FileManager.default.contents(atPath: folder + "/" + StateFiles.buildLock),
              let line = String(decoding: data.prefix(200), as: UTF8.self).split(separator: "\n").first, line.hasPrefix("pid "),
              let pid = pid_t(line.dropFirst(4).prefix(while: \.isNumber)), pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return "another process" }
        return "a build (\(line))"
    }

    /// Whether opening the state for `owner` would move it aside: it records another manifest
    /// as its owner, or SQLite calls it corrupt or not a database. Read-only and cheap (the owner
    /// row only): a build then plans against an empty snapshot first and moves nothing when that
    /// plan refuses the build. Damage only a full check finds is left to `init(folder:owner:)`.
    public static func wouldMoveAside(folder: String, owner: String) -> Bool {
        let path = folder + "/" + fileName
        var info = stat()
        guard lstat(path, &info) == 0, info.st_size > 0, (try? StateFolderTrust.checkDatabaseFiles(path)) != nil else { return false }
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let file = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? file.close() }
            if let (recorded, place) = try file.read({ db in try StateOwner.recordedOwner(db) }), !StateOwner.isSame(recorded: recorded, owner: owner) {
                // Taken over (its manifest gone from this one's folder): moved aside only if unbound
                // and not a state moved with its project (`StateSuccession`).
                guard StateSuccession.succeeds(recorded: recorded, recordedPlace: place, owner: owner, stateFolder: folder) else { return true }
                if (try? StateSuccession.formerPlace(file, recorded: recorded, recordedPlace: place, owner: owner, stateFolder: folder)) != nil { return false }
            }
            // A state this user's Derive did not make (attack 17's N4) is moved aside too.
            return try unboundReason(file, database: path) != nil
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            return true
        } catch {
            return false
        }
    }
}

/// A private copy of the state's database and its `-journal` (a hot journal), in a fresh folder
/// only this user may enter, so SQLite rolls the journal back there and never in the project.
struct StateJournalCopy {
    let folder: String
    var database: String { folder + "/" + StateStore.fileName }

    init(database path: String) throws {
        var template = Array((NSTemporaryDirectory() + "/derive-state-journal.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw PlanError(message: "cannot make a private folder in \(NSTemporaryDirectory()) to read the build state \(path) through its journal (\(String(cString: strerror(errno)))); "
                            + "set TMPDIR to a writable folder, or run derive build, which rolls the journal back")
        }
        folder = String(cString: made)
        do {
            try Self.copy(path, to: database)
            try Self.copy(path + "-journal", to: database + "-journal")
        } catch {
            remove()
            throw error
        }
    }

    /// Copies a regular file, never following a link at `source`; the copy is mode 0600.
    private static func copy(_ source: String, to target: String) throws {
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw PlanError(message: "cannot read \(source) (\(String(cString: strerror(errno)))) to check the build state through its journal; run derive build, which rolls the journal back") }
        let data = try FileHandle(fileDescriptor: input, closeOnDealloc: true).readToEnd() ?? Data()
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw PlanError(message: "cannot copy the build state to \(target) (\(String(cString: strerror(errno)))); set TMPDIR to a writable folder") }
        let handle = FileHandle(fileDescriptor: output, closeOnDealloc: true)
        try handle.write(contentsOf: data)
    }

    /// Removes the copies (whatever SQLite left beside them) and the folder.
    func remove() {
        for suffix in ["", "-journal", "-wal", "-shm"] { unlink(database + suffix) }
        rmdir(folder)
    }
}
