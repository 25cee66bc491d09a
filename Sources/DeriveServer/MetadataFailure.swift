import Confinement
import Foundation
import GRDB

extension ObjectService {
    /// The answer of a write whose metadata could not be saved (attack 14, F1). Every writer
    /// records before it links or removes, so nothing was changed: the object at the key keeps
    /// its bytes and headers, the written file is discarded. A database another program holds
    /// locked (a `sqlite3` shell or DB Browser with a transaction open) is 503 with what to do;
    /// any other database failure is 500. The details go to the log too.
    func metadataNotRecorded(_ error: Error, _ what: String, key: ObjectKey, exchange: Exchange) -> OSSErrorBody {
        Self.metadataNotRecorded(error, what, key: key, store: metadata, log: exchange.log)
    }

    static func metadataNotRecorded(_ error: Error, _ what: String, key: ObjectKey, store: ObjectMetadataStore, log: (String) -> Void) -> OSSErrorBody {
        if let known = error as? OSSErrorBody { return known }
        let database = store.path ?? "the in-memory metadata database"
        log("\(what) of '\(key)' not done: recording its metadata in \(database) failed: \(error)")
        if let sqlite = error as? DatabaseError, sqlite.resultCode == .SQLITE_BUSY || sqlite.resultCode == .SQLITE_LOCKED {
            return OSSErrorBody(status: 503, code: "ServiceUnavailable",
                                message: "derive serve could not record this object's metadata: its database \(database) is locked by another program (it waited \(store.busyWait) s). Nothing was changed: the object keeps its bytes and headers. Close the other program that holds that file open in a transaction (a sqlite3 shell, DB Browser) and retry.")
        }
        return OSSErrorBody(status: 500, code: "InternalError",
                            message: "derive serve could not record this object's metadata in its database \(database) (\(Self.describe(error))). Nothing was changed: the object keeps its bytes and headers. The server log has the details under this request id.")
    }

    /// A database error's short form (SQLite's message, no SQL text).
    static func describe(_ error: Error) -> String {
        if let sqlite = error as? DatabaseError { return "SQLite error \(sqlite.resultCode.rawValue): \(sqlite.message ?? "unknown")" }
        return "\(error)"
    }
}
