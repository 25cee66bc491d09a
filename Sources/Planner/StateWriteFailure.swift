import Foundation
import GRDB

/// A write to the build state that SQLite refused for a reason outside Derive: the disk is full,
/// or the database or its folder cannot be written (an immutable flag, a read-only mount, its
/// permissions). Said with the file, why and how to fix it; SQLite's raw statement names none.
/// A failed write changes nothing (SQLite rolls its transaction back).
public struct StateWriteFailure: Error, CustomStringConvertible, Sendable {
    /// The state database (`.derive/derive/state.sqlite`).
    public let database: String
    /// Why, in words: "the disk holding it is full".
    public let why: String
    /// What to do about it.
    public let fix: String
    /// SQLite's own words (`SQLite error 13: database or disk is full`).
    public let cause: String

    /// The failure `error` is, when it is SQLite refusing to write the state at `database`.
    public init?(_ error: any Error, database: String) {
        guard let error = error as? DatabaseError else { return nil }
        let folder = (database as NSString).deletingLastPathComponent
        let rerun = "; then run derive build again"
        switch error.resultCode {
        // SQLite's unix files take paths of fewer than 512 bytes, its journal's name included:
        // past that it cannot open the database at all (attack 58c's 3 was told to chattr -i).
        case .SQLITE_CANTOPEN where database.utf8.count + Self.journalSuffix >= Self.sqliteMaxPath:
            why = "its path is \(database.utf8.count) bytes long, and SQLite opens no database whose path (with '-journal' after it) reaches \(Self.sqliteMaxPath) bytes"
            fix = "set 'state:' in the manifest to a folder with a shorter path (nearer /)" + rerun
        case .SQLITE_FULL:
            why = "the disk holding it is full"
            fix = "free space on that disk" + rerun
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            why = "it or its folder cannot be written (SQLite could not write the database or make its journal beside it)"
            fix = "make \(folder) and the files in it writable by this user (chattr -i for an immutable flag, chmod u+w, or remount a read-only file system)" + rerun
        case .SQLITE_IOERR:
            why = "the disk holding it reported an I/O error"
            fix = "check that disk (its space, its health, whether it is still mounted)" + rerun
        default:
            return nil
        }
        self.database = database
        cause = "SQLite error \(error.resultCode.rawValue): " + (error.message.map { String($0.prefix(80)) } ?? "\(error.resultCode)")
        // The statement SQLite names is Derive's, not the user's: left out.
    }

    /// SQLite's unix VFS limit on a file's path (`MAX_PATHNAME`), and the longest suffix it adds.
    static let sqliteMaxPath = 512
    static let journalSuffix = "-journal".utf8.count

    public var description: String { "cannot write the build state \(database): \(why) (\(cause)); \(fix)" }

    /// The no-op's warning: nothing needed saving but the stat cache, which the next run checks again.
    public var noOpWarning: String {
        "the build state \(database) could not be written: \(why) (\(cause)); nothing needed building, and the next run checks the sources again. To save it, \(fix)"
    }
}
