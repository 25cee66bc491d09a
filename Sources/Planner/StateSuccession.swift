import Confinement
import Foundation
import GRDB
import Manifest
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A state whose recorded manifest is gone, taken over by the manifest now in its place (attack
/// 31's F7 and F8). A state records its owner by absolute path, and the user's secret that seals
/// it is kept by the database's real path (`StateBinding`), so a project moved with its state,
/// or a manifest renamed (`derive.yaml` → `site.yaml`) with `state:` set, found its own state
/// "another manifest's", moved it aside, and could never replace its own outputs again.
///
/// The new manifest succeeds the recorded one when nothing is at the recorded manifest's path
/// any more and it lay in this manifest's folder seen from the state folder (its recorded place
/// leads to this manifest's folder; before places were recorded, the very same folder). A
/// project moved with its state then has its state re-anchored: bound to its new path with the
/// same secret (only while nothing is at the old path, and only when the state carries the mark
/// of the secret this user keeps for the old path), and each sealed record's path below the
/// folder that moved (the one holding both the manifest and the state folder) moved with it.
/// A copy (the original manifest still there) is never taken over: it stays another's.
public enum StateSuccession {
    /// Whether `owner` succeeds `recorded`, recorded at `recordedPlace` from `stateFolder`.
    public static func succeeds(recorded: String, recordedPlace: String, owner: String, stateFolder: String) -> Bool {
        var info = stat()
        guard lstat(recorded, &info) != 0, errno == ENOENT || errno == ENOTDIR else { return false }
        if recordedPlace.isEmpty { return parent(recorded) == parent(owner) }
        return parent(recordedPlace) == parent(StateOwner.place(owner: owner, stateFolder: stateFolder))
    }

    static func parent(_ path: String) -> String { (path as NSString).deletingLastPathComponent }

    /// Where the state moved from: the folder holding the recorded manifest and the state folder
    /// then (`from`), the same folder now (`to`), and the database's old path; nil when it did not
    /// move (a manifest renamed in place) or the place cannot be followed back.
    static func move(recorded: String, recordedPlace: String, owner: String, stateFolder: String) -> (from: String, to: String, database: String)? {
        // The same place but for the manifest's own name (moved, then renamed: attack 50c's M2).
        guard !recordedPlace.isEmpty, parent(recordedPlace) == parent(StateOwner.place(owner: owner, stateFolder: stateFolder)) else { return nil }
        let steps = recordedPlace.split(separator: "/")
        let ups = steps.prefix { $0 == ".." }.count, downs = steps.count - ups
        let real = RealFolder.of(stateFolder).split(separator: "/").map(String.init)
        let before = recorded.split(separator: "/").map(String.init), after = owner.split(separator: "/").map(String.init)
        guard before.count >= downs, after.count >= downs, real.count >= ups else { return nil }
        let from = "/" + before.dropLast(downs).joined(separator: "/"), to = "/" + after.dropLast(downs).joined(separator: "/")
        guard from != to else { return nil }
        let folder = "/" + (before.dropLast(downs) + real.suffix(ups)).joined(separator: "/")
        return (from, to, folder + "/" + StateFiles.database)
    }

    /// Where the state in `stateFolder` may have been sealed before it came here, each with the
    /// folder that moved with it (`from` → `to`, the same when none did), most likely first: the
    /// same state folder in the folder the project moved from (`move`), then the gone manifest's
    /// default state folder (`.derive/STEM` beside it, at its old place), which the advice for a
    /// renamed manifest names once its lock and state were moved by hand (attack 50c's M2: `mv
    /// .derive/derive .derive/site` and `state: .derive/site`, as advised, found the state "not
    /// bound to this user … planted", set it aside and adopted every output again unverified).
    static func formerPlaces(recorded: String, recordedPlace: String, owner: String, stateFolder: String) -> [(from: String, to: String, database: String)] {
        let database = stateFolder + "/" + StateFiles.database
        var found: [(from: String, to: String, database: String)] = []
        let moved = move(recorded: recorded, recordedPlace: recordedPlace, owner: owner, stateFolder: stateFolder)
        if let moved { found.append(moved) }
        let folder = parent(recorded), stem = ((recorded as NSString).lastPathComponent as NSString).deletingPathExtension
        let standard = folder + "/" + ProjectMarkers.stateFolderName + "/" + stem + "/" + StateFiles.database
        // Followed from the folder the project moved from when it moved, else in place (renamed only).
        let sameFolder = parent(owner) == folder
        if let moved, !found.contains(where: { $0.database == standard }) {
            found.append((moved.from, moved.to, standard))
        } else if moved == nil, sameFolder {
            found.append((folder, folder, standard))
        }
        return found.filter { $0.database != database && $0.database != RealFolder.of(stateFolder) + "/" + StateFiles.database }
    }

    /// The first of `formerPlaces` this state was moved from (`movedSecret`), with its secret.
    static func formerPlace(_ queue: DatabaseQueue, recorded: String, recordedPlace: String, owner: String,
                            stateFolder: String) throws -> (move: (from: String, to: String, database: String), secret: Data)? {
        for move in formerPlaces(recorded: recorded, recordedPlace: recordedPlace, owner: owner, stateFolder: stateFolder) {
            if let secret = try movedSecret(queue, move: move) { return (move, secret) }
        }
        return nil
    }

    /// The secret that sealed the state in `queue` at its old path `former`: the one this user
    /// keeps for that path, whose mark the state carries, while nothing is at that path any more
    /// (moved, not copied). Nil otherwise.
    static func movedSecret(_ queue: DatabaseQueue, former: String) -> Data? {
        var info = stat()
        guard lstat(former, &info) != 0, let secret = StateBinding.secret(forState: former),
              let mark = try? queue.read({ db in try db.tableExists("binding") ? try String.fetchOne(db, sql: "SELECT token FROM binding") : nil }),
              mark == StateBinding.mark(secret: secret, forState: former) else { return nil }
        return secret
    }

    /// The columns holding absolute paths, which a move re-anchors.
    static let anchored: [(table: String, column: String)] = [("outputs", "folder"), ("bucketFolders", "folder"), ("createdFolders", "path"),
                                                              ("pendingWrites", "path"), ("pendingWrites", "folder"), ("controlFiles", "path"), ("lockFiles", "path"), ("files", "path")]

    /// `table`'s column names and the rows whose seal verifies with `seals` (rowid first, then
    /// the columns in that order): the only records a move follows.
    static func sealedRows(_ db: Database, _ seals: StateSeals, _ table: String) throws -> (names: [String], rows: [Row]) {
        let names = try seals.columns(db, table)
        let quoted = names.map { "\"\($0)\"" }.joined(separator: ", ")
        let rows = try Row.fetchAll(db, sql: "SELECT rowid, \(quoted), \(StateSeals.column) FROM \(table)").filter { row in
            guard case .blob(let stored) = (row[names.count + 1] as DatabaseValue).storage, let seal = RowSeal(stored) else { return false }
            return seals.verifies(table: table, columns: names, values: (0..<names.count).map { row[$0 + 1] as DatabaseValue }, stored: seal)
        }
        return (names, rows)
    }

    /// `path` after the move from `from` to `to`: moved when it lies at or below `from`; nil otherwise.
    static func moved(_ path: String, from: String, to: String) -> String? {
        guard path == from || Array(path.utf8).starts(with: Array((from + "/").utf8)) else { return nil }
        return to + String(decoding: Array(path.utf8).dropFirst(from.utf8.count), as: UTF8.self)
    }

    /// Moves each sealed record's path below `from` to the same place below `to`, sealed again
    /// with `seals`; a record whose seal does not verify is left as it is (still not trusted).
    /// `keepingExisting`: a record already at the new path is kept and the moved one dropped
    /// (a bucket folder renamed, whose new path a build may have recorded since); else replaced.
    static func reanchor(_ db: Database, seals: StateSeals, from: String, to: String, keepingExisting: Bool = false) throws {
        for (table, column) in anchored where try db.tableExists(table) {
            try reanchor(db, seals: seals, table: table, column: column, keepingExisting: keepingExisting) { Self.moved($0, from: from, to: to) }
        }
    }

    /// The places of the files left in place (`leftFiles`: relative to the lock's folder
    /// `lockFolder`, or absolute) below `from`, moved below `to` with the bucket folder renamed
    /// (`followRenamedBucketFolders`): a `left` line keeps following its file, or the lock would
    /// name the old path for good (and the line be dropped as gone, its ACL with it).
    static func reanchorLeftPlaces(_ db: Database, seals: StateSeals, lockFolder: String, from: String, to: String) throws {
        guard try db.tableExists("leftFiles") else { return }
        let base = RealFolder.of(lockFolder)
        try reanchor(db, seals: seals, table: "leftFiles", column: "place", keepingExisting: true) { place in
            let absolute = place.hasPrefix("/")
            guard let moved = Self.moved(absolute ? place : base + "/" + place, from: from, to: to) else { return nil }
            guard !absolute, moved.hasPrefix(base + "/") else { return moved }
            return String(moved.dropFirst(base.count + 1))
        }
    }

    /// One column of `table` moved by `transform` (nil: not moved), each moved row sealed again.
    static func reanchor(_ db: Database, seals: StateSeals, table: String, column: String, keepingExisting: Bool,
                         transform: (String) -> String?) throws {
        let (names, rows) = try sealedRows(db, seals, table)
        guard let at = names.firstIndex(of: column) else { return }
        let quoted = names.map { "\"\($0)\"" }.joined(separator: ", ")
        let moved: [(Int64, String)] = rows.compactMap { row in
            (row[at + 1] as String?).flatMap(transform).map { (row[0], $0) }
        }
        for (id, path) in moved {
            if keepingExisting {
                try db.execute(sql: "UPDATE OR IGNORE \(table) SET \"\(column)\" = ? WHERE rowid = ?", arguments: [path, id])
                if db.changesCount == 0 {
                    try db.execute(sql: "DELETE FROM \(table) WHERE rowid = ?", arguments: [id])
                    continue
                }
            } else {
                try db.execute(sql: "UPDATE OR REPLACE \(table) SET \"\(column)\" = ? WHERE rowid = ?", arguments: [path, id])
            }
            guard let row = try Row.fetchOne(db, sql: "SELECT \(quoted) FROM \(table) WHERE rowid = ?", arguments: [id]) else { continue }
            let seal = seals.seal(table: table, columns: names) { row[$0] as DatabaseValue }
            try db.execute(sql: "UPDATE \(table) SET \(StateSeals.column) = ? WHERE rowid = ?", arguments: [seal, id])
        }
    }

    /// Takes over the state in `queue` (at `database`, in `stateFolder`) for `owner` from the gone
    /// `recorded`: a moved state is re-anchored (bound to its new path, its records' paths moved)
    /// when it carries the mark of the secret kept for its old path; said once on stderr.
    /// `writable`: false for a copy in memory (plan, check), whose binding is not rewritten.
    /// Returns the secret when it re-anchored the state.
    @discardableResult
    static func takeOver(_ queue: DatabaseQueue, database: String, recorded: String, recordedPlace: String, owner: String,
                         stateFolder: String, writable: Bool) throws -> Data? {
        let note = "derive: note: the build state in \(stateFolder) was kept for \(recorded), which is no longer there; \(owner) takes it over "
            + "(the project was moved or the manifest renamed)\n"
        let places = formerPlaces(recorded: recorded, recordedPlace: recordedPlace, owner: owner, stateFolder: stateFolder)
        guard !places.isEmpty, case .foreign = try StateStore.binding(queue, database: database) else {
            say(note)
            return nil
        }
        // Bound to another path: taken over only when it moved here; else it stays another's
        // (moved aside, as any state another manifest made).
        guard let (move, secret) = try formerPlace(queue, recorded: recorded, recordedPlace: recordedPlace, owner: owner, stateFolder: stateFolder) else { return nil }
        say(note)
        if writable { try StateBinding.hold(secret: secret, forState: database) }
        let seals = StateSeals(secret: secret)
        try queue.write { db in
            if move.from != move.to { try reanchor(db, seals: seals, from: move.from, to: move.to) }
            guard writable else { return }
            try db.execute(sql: "DELETE FROM binding")
            try db.execute(sql: "INSERT INTO binding (token) VALUES (?)", arguments: [StateBinding.mark(secret: secret, forState: database)])
        }
        return secret
    }

    /// The output buckets' folders renamed since Derive recorded them (attack 39c's N4: `mv outA
    /// userB`, then `path: userB`): a bucket's folder now (`now`: bucket and real folder) that is
    /// the very folder (device and inode) a sealed record names as that bucket's folder at another
    /// path, which no longer leads to it. Each is followed as a moved project is (`reanchor`).
    /// When in doubt nothing is followed: moves that overlap (two folders swapped, one's old path
    /// inside another's) are dropped, and the records stay where they were (rebuilt or refused).
    static func renamedBucketFolders(_ db: Database, seals: StateSeals, now: [(bucket: String, folder: String)]) throws
        -> [(bucket: String, from: String, to: String)] {
        guard try db.tableExists("bucketFolders") else { return [] }
        let (names, rows) = try sealedRows(db, seals, "bucketFolders")
        guard let bucketAt = names.firstIndex(of: "bucket"), let folderAt = names.firstIndex(of: "folder"),
              let deviceAt = names.firstIndex(of: "device"), let inodeAt = names.firstIndex(of: "inode") else { return [] }
        var moves: [(bucket: String, from: String, to: String)] = []
        for (bucket, folder) in now {
            guard let identity = FileIdentity.ofFolder(folder) else { continue }
            for row in rows {
                guard row[bucketAt + 1] as String? == bucket, let old = row[folderAt + 1] as String?, old != folder,
                      let device = row[deviceAt + 1] as Int64?, let inode = row[inodeAt + 1] as Int64?,
                      identity.stored == (device, inode) else { continue }
                // Still that folder at its old path too (reached another way): nothing was renamed.
                if let there = FileIdentity.ofFolder(old), there.stored == identity.stored { continue }
                moves.append((bucket, old, folder))
            }
        }
        func overlap(_ a: String, _ b: String) -> Bool { moved(a, from: b, to: b) != nil || moved(b, from: a, to: a) != nil }
        return moves.enumerated().filter { i, move in
            !moves.enumerated().contains { j, other in
                i != j && (overlap(move.from, other.to) || overlap(move.from, other.from) && move.from != other.from || overlap(move.to, other.from))
            }
        }.map(\.element)
    }

    /// The secret of a state that moved from `move.database` (`movedSecret`) and whose folders
    /// moved with it: a copy whose original is gone must not pass for the original moved (round
    /// 6's copy of a copy: W1 deleted, both copies' states naming W1/proj). `cp` gives folders
    /// new inodes, `mv` keeps them, so at least one sealed bucket folder record, read at its
    /// place after the move, must be that very folder (device and inode), and none may lead to
    /// another folder. A move to another file system is not told from a copy: the state stays
    /// another's there, as before.
    static func movedSecret(_ queue: DatabaseQueue, move: (from: String, to: String, database: String)) throws -> Data? {
        guard let secret = movedSecret(queue, former: move.database) else { return nil }
        let seals = StateSeals(secret: secret)
        let moved: Bool = try queue.read { db in
            guard try db.tableExists("bucketFolders") else { return false }
            let (names, rows) = try sealedRows(db, seals, "bucketFolders")
            guard let folderAt = names.firstIndex(of: "folder"), let deviceAt = names.firstIndex(of: "device"),
                  let inodeAt = names.firstIndex(of: "inode") else { return false }
            var matched = false
            for row in rows {
                guard let path = row[folderAt + 1] as String?, let device = row[deviceAt + 1] as Int64?, let inode = row[inodeAt + 1] as Int64? else { continue }
                let now = Self.moved(path, from: move.from, to: move.to) ?? path
                guard let identity = FileIdentity.ofFolder(now) else { continue }   // a folder used once, gone since
                guard identity.stored == (device, inode) else { return false }
                matched = true
            }
            return matched
        }
        return moved ? secret : nil
    }

    /// Writes `note` to stderr once in this process (a build reads the state more than once).
    public static func say(_ note: String) {
        guard said.withLock({ $0.insert(note).inserted }) else { return }
        FileHandle.standardError.write(Data(note.utf8))
    }

    private static let said = Mutex<Set<String>>([])
}
