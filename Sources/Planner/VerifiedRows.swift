import Confinement
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB

/// The witness's "rows verified" line (issue 15): checking every `outputs` row's seal was 30 %
/// of a one-source edit's plan at 4 000 outputs (about 105 k instructions a row). A build that
/// knows every row of the database as it left it verifies (each read row's seal checked, or
/// read under an earlier such line, and every row it wrote itself sealed through
/// `StateStore.write`) keeps the database's `token` in its witness. The next run that opens the
/// state while the witness vouches for it (`WitnessCheck.vouchedRows`) reads the rows without
/// checking their seals only when the file's token, taken when the store is opened (before any
/// row is read), is that one, and no other connection has committed since (SQLite's
/// `data_version`, read in the same transaction as the rows). Anything else checks every seal:
/// a commit by the `sqlite3` shell or another program (the header's change counter moves, and so
/// does the stat), a file replaced (device, inode), a store that committed rows unsealed.
public enum VerifiedRows {
    /// The token of the SQLite database at `path` now: its 100-byte header's digest (the change
    /// counter every commit moves, the schema cookie, the page count) with its device, inode,
    /// size, mtime and ctime, read through one descriptor; nil when it is not a regular file, not
    /// a rollback-journal database, or has a journal beside it (a write in progress or interrupted).
    /// Never called inside a transaction: closing a descriptor of the database drops the
    /// process's POSIX locks on it, SQLite's included.
    public static func token(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var before = stat()
        guard fstat(fd, &before) == 0, (before.st_mode & S_IFMT) == S_IFREG else { return nil }
        var header = [UInt8](repeating: 0, count: 100)
        guard pread(fd, &header, 100, 0) == 100, header.prefix(16).elementsEqual(Array("SQLite format 3".utf8) + [0]),
              header[18] == 1, header[19] == 1 else { return nil }
        var after = stat()
        guard fstat(fd, &after) == 0, same(before, after),
              StateFiles.journalSuffixes.allSatisfy({ suffix in var journal = stat(); return lstat(path + suffix, &journal) != 0 && errno == ENOENT })
        else { return nil }
        let fields = [UInt64(before.st_dev), UInt64(before.st_ino), UInt64(bitPattern: Int64(before.st_size)),
                      UInt64(bitPattern: nanoseconds(before.st_mtim)), UInt64(bitPattern: nanoseconds(before.st_ctim))]
        return "rows-" + ContentDigests.hex(SHA256.hash(data: header)) + "-" + fields.map { String($0, radix: 16) }.joined(separator: "-")
    }

    static func nanoseconds(_ time: timespec) -> Int64 { Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec) }

    static func same(_ a: stat, _ b: stat) -> Bool {
        a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size && nanoseconds(a.st_mtim) == nanoseconds(b.st_mtim)
            && nanoseconds(a.st_ctim) == nanoseconds(b.st_ctim)
    }

    /// Whether a witness line's token has the shape `token` gives (a hand-made line is not read).
    static func isToken(_ text: String) -> Bool { text.hasPrefix("rows-") && !text.contains(" ") }
}

/// The `data_version` a store's connection read when the database was the one a witness's
/// "rows verified" line names; nil when it was not (every seal is checked).
final class RowsVouch: @unchecked Sendable {
    private let lock = NSLock()
    private var version: Int64?
    func set(_ value: Int64?) { lock.withLock { version = value } }
    /// Whether the rows read at `dataVersion` are the vouched ones (or this store's own sealed writes since).
    func holds(_ dataVersion: Int64) -> Bool { lock.withLock { version == dataVersion } }
}

extension StateStore {
    /// Takes the witness's "rows verified" line at its word when the file at `path` has that
    /// token now, before and after this connection reads its `data_version` (a commit in between
    /// moves the token): rows read while `data_version` is still that value skip their seals.
    /// On the connection's queue, outside any transaction (`VerifiedRows.token`).
    func trustRows(_ vouched: String?, file path: String) {
        guard let vouched, seals != nil else { return }
        let version = try? queue.inDatabase { db -> Int64? in
            guard VerifiedRows.token(path) == vouched else { return nil }
            let version = try Int64.fetchOne(db, sql: "PRAGMA data_version")
            return VerifiedRows.token(path) == vouched ? version : nil
        }
        if let version = version ?? nil { rowsVouch.set(version) }
    }

    /// The token for the witness's "rows verified" line: the database's token now, when every
    /// `outputs` row in it verifies as far as this store knows: it read the table (each seal
    /// checked, or under the vouch) and no other connection has committed since, or it was
    /// vouched for when opened and no other connection has committed since; and every row this
    /// store committed was sealed. Nil otherwise (the next run checks every seal).
    public func verifiedRowsToken() -> String? {
        guard opensTheFile, let seals, !seals.committedUnsealed else { return nil }
        let path = folder + "/" + Self.fileName
        // On the connection's queue: no transaction of it is open while the token's descriptor is.
        let token = try? queue.inDatabase { db -> String? in
            guard let before = VerifiedRows.token(path) else { return nil }
            var verified = false
            try db.inTransaction(.deferred) {
                let version = try Int64.fetchOne(db, sql: "PRAGMA data_version") ?? -1
                if rowsVouch.holds(version) {
                    verified = true
                } else if outputsMemoHasReading {
                    // The memo as of this transaction (read again whole, every seal checked, after another's commit).
                    verified = try outputRows(db).unsealed.isEmpty
                }
                return .commit
            }
            return verified && VerifiedRows.token(path) == before ? before : nil
        }
        return token ?? nil
    }
}
