import Confinement
import Foundation
import GRDB

/// The state database's identity from SQLite, which the witness keeps for it instead of the
/// digest of its bytes when the database was written within the racy margin of saving (issue
/// 15): every build that writes the state left it racy, so the witness hashed the whole file
/// when saved and again at the next no-op (19 MB at 10 000 outputs, 72 MB at 40 000; the first
/// no-op after a build took 220 ms against 40-50 ms).
///
/// The token is the SHA-256 of the file's 100-byte header, taken with the file's exact stat
/// (size, mtime, ctime to the ns, inode) and no journal beside it (`-journal`, `-wal`, `-shm`).
/// In the rollback-journal mode Derive uses (header bytes 18 and 19 equal to 1), SQLite adds one
/// to the header's file change counter (offset 24) on every commit and writes the page count at
/// offset 28, whoever commits: the `sqlite3` shell, another program, another Derive. So any
/// commit through SQLite after the build's own moves the token, even one made in the same clock
/// tick that keeps the stat; a write through SQLite still in progress leaves a journal; a switch
/// to WAL mode changes bytes 18 and 19. It is kept only for a database this session's store
/// committed last with no other connection's commit since (`StateStore.holdsOnlyOwnCommits`,
/// SQLite's `data_version`), or that a witness being saved again already vouched for this way.
///
/// What it accepts (the B2 class attack 20 found and the lead accepted for sources): bytes
/// written into the file *not* through SQLite (`dd`, an editor) that keep the header, the size
/// and all of the stat. A write moves the ctime, which no user can set back, so that is a write
/// in the same kernel clock tick as Derive's last commit (milliseconds), or one made below the
/// file system (a disk image swapped, bit rot). Such a write is seen by `build --verify` and by
/// the next plan that reads the rows (their seals); a garbled page is SQLite's "malformed" error
/// there, never a wrong answer. Writes with any other stat are found by the stat, as before.
public enum StateIdentity {
    static let prefix = "sqlite-"

    /// Whether a witness's racy entry is a token (a digest is 64 hex digits, never this prefix).
    static func isToken(_ entry: String) -> Bool { entry.hasPrefix(prefix) }

    /// The token of the SQLite database at `path` whose stat is `stat`: nil when it is not a
    /// rollback-journal database, has a journal beside it, or its stat moved while read.
    static func token(_ path: String, stat: FileStat, disk: any Disk) -> String? {
        guard let header = try? disk.head(path, bytes: 100), header.count == 100 else { return nil }
        let bytes = [UInt8](header)
        guard bytes.prefix(16).elementsEqual(Array("SQLite format 3".utf8) + [0]), bytes[18] == 1, bytes[19] == 1,
              disk.stats([path]).first == .some(stat),
              StateFiles.journalSuffixes.allSatisfy({ !disk.exists(path + $0) }) else { return nil }
        return prefix + ContentDigests.digest(header)
    }
}

/// The `PRAGMA data_version` a store read inside its last write transaction: SQLite changes the
/// value a connection reads only for other connections' commits, so the same value later means
/// the file holds no commit but this store's since (`StateStore.holdsOnlyOwnCommits`).
final class CommitVersion: @unchecked Sendable {
    private let lock = NSLock()
    private var version: Int64?
    func set(_ value: Int64?) { lock.withLock { version = value } }
    func get() -> Int64? { lock.withLock { version } }
}

extension StateStore {
    /// Whether the database file holds this store's last write transaction and no other
    /// connection's commit since (the `sqlite3` shell, another program, another Derive): the
    /// witness then keeps its `StateIdentity` instead of hashing it. False when this store wrote
    /// nothing, or when the answer cannot be read.
    public var holdsOnlyOwnCommits: Bool {
        guard let mine = commitVersion.get(),
              let now = try? queue.read({ db in try Int64.fetchOne(db, sql: "PRAGMA data_version") }) else { return false }
        return now == mine
    }

    /// Inside a write transaction: the version that `holdsOnlyOwnCommits` compares with.
    func noteCommitVersion(_ db: Database) throws {
        commitVersion.set(try Int64.fetchOne(db, sql: "PRAGMA data_version"))
    }
}
