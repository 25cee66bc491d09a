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
        do {
            let unchanged = vouched.map { isUnchanged(path, since: $0) } ?? false
            var configuration = Configuration()
            configuration.readonly = true
            // A build holds the state's lock only while it commits: waited for, as the build's own
            // connection waits (attack 27's finding 6: a busy state was called broken).
            configuration.busyMode = .timeout(busyWait)
            let file = try DatabaseQueue(path: path, configuration: configuration)
            checked = !unchanged
            if !unchanged {
                let result = try file.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
                if result != "ok" { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: result) }
            }
            // Tokens on the file's queue, outside its transactions (`VerifiedRows.token`).
            let before = vouchedRows.flatMap { _ in file.inDatabase { _ in VerifiedRows.token(path) } }
            try file.backup(to: memory)
            copiedVouched = before != nil && before == vouchedRows && file.inDatabase { _ in VerifiedRows.token(path) } == before
            try file.close()
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            return try empty("the build state \(path) is corrupt; derive build would move it aside and rebuild it from the lock and the outputs")
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            return try empty("the build state \(path) is busy: \(busyHolder(folder)) has been writing it for longer than \(Int(busyWait)) s; "
                + "checked against the lock alone (run this again once it is done)")
        } catch {
            // A hot journal of an interrupted build needs a write to roll back: done on a private
            // copy, so plan and check read the records the build will (attack 39a's F1: against
            // the lock alone they said "left in place" of outputs the build then deleted).
            guard rolledBackCopy(path, into: memory) else {
                return try empty("the build state \(path) cannot be read without writing (\(error)); derive build would recover it; checked against the lock alone")
            }
            checked = true
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
            return (StateStore(queue: memory, folder: folder, movedAside: nil, movedAsideReason: nil, existed: true, integrityChecked: checked), nil)
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
        return (store, nil)
    }

    /// Copies the database at `path` and its hot journal (a write an interrupted build did not
    /// finish) into a private temporary folder, lets SQLite roll the journal back there as the
    /// build's own open does, checks the result and copies it into `memory`. The state folder is
    /// only read. False (nothing copied into `memory`) when there is no such journal, either file
    /// is not this user's regular file, or the copy cannot be read: then the lock alone is used.
    static func rolledBackCopy(_ path: String, into memory: DatabaseQueue) -> Bool {
        let journal = path + "-journal"
        for file in [path, journal] {
            var info = stat()
            guard lstat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0, info.st_uid == geteuid() else { return false }
        }
        var template = Array((NSTemporaryDirectory() + "/derive-state-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { return false }
        let folder = String(cString: made)
        let copy = folder + "/" + fileName
        defer {
            for name in [copy, copy + "-journal"] { unlink(name) }
            rmdir(folder)
        }
        guard copyPrivately(path, to: copy), copyPrivately(journal, to: copy + "-journal") else { return false }
        do {
            let file = try DatabaseQueue(path: copy)
            defer { try? file.close() }
            guard try file.read({ db in try String.fetchOne(db, sql: "PRAGMA quick_check") }) == "ok" else { return false }
            try file.backup(to: memory)
            return true
        } catch {
            return false
        }
    }

    /// Copies the regular file at `source` (never through a link) to a new file `target` (0600).
    private static func copyPrivately(_ source: String, to target: String) -> Bool {
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard input >= 0 else { return false }
        defer { close(input) }
        var info = stat()
        guard fstat(input, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else { return false }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = Glibc.read(input, &buffer, buffer.count)
            if count == 0 { return true }
            if count < 0 { if errno == EINTR { continue }; return false }
            var done = 0
            while done < count {
                let wrote = buffer.withUnsafeBytes { Glibc.write(output, $0.baseAddress! + done, count - done) }
                if wrote < 0 { if errno == EINTR { continue }; return false }
                done += wrote
            }
        }
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
                if let move = StateSuccession.move(recorded: recorded, recordedPlace: place, owner: owner, stateFolder: folder),
                   (try? StateSuccession.movedSecret(file, move: move)) != nil { return false }
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
