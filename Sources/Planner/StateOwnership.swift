import Foundation
import GRDB

/// Derive opens, overwrites or deletes a file in the state folder only when it is recognisably
/// Derive's: a state database with Derive's tables and no others, a build lock holding a
/// `pid … on …` line (or nothing), a witness of digest lines. A user's `state.sqlite`,
/// `build.lock` or `noop-witness` in a shared folder (`state: .`, `state: data`) is refused.
public enum StateOwnership {
    /// Derive's tables in `state.sqlite` (with GRDB's migration record).
    static let tables: Set<String> = ["files", "outputs", "createdFolders", "pendingWrites", "controlFiles", "owner", "grdb_migrations"]

    /// Throws naming the first file in `folder` that is not Derive's.
    public static func check(folder: String) throws {
        let database = folder + "/" + StateStore.fileName
        if let foreign = foreignTables(database), !foreign.isEmpty {
            throw PlanError(message: "\(database) holds tables Derive did not create (\(foreign.sorted().joined(separator: ", "))); it is not Derive's state and is left alone: set 'state:' to a folder of its own")
        }
        let lock = folder + "/build.lock"
        if let data = FileManager.default.contents(atPath: lock), !isBuildLock(data) {
            throw PlanError(message: "\(lock) exists and is not Derive's build lock; it is left alone: set 'state:' to a folder of its own, or move it")
        }
        let witness = folder + "/noop-witness"
        if let data = FileManager.default.contents(atPath: witness), !isWitness(data) {
            throw PlanError(message: "\(witness) exists and is not Derive's witness; it is left alone: set 'state:' to a folder of its own, or move it")
        }
    }

    /// Tables not Derive's in an existing SQLite database; nil when there is no readable database
    /// (absent, empty, or not SQLite: the store moves that aside rather than deleting it).
    static func foreignTables(_ path: String) -> Set<String>? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_size > 0 else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: path, configuration: configuration),
              let names = try? queue.read({ db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'") })
        else { return nil }
        return Set(names).subtracting(tables)
    }

    /// What BuildLock writes (`pid N on host, since …`), or nothing once released.
    static func isBuildLock(_ data: Data) -> Bool {
        data.isEmpty || data.starts(with: Data("pid ".utf8))
    }

    /// What NoOpWitness.save writes: three digest lines, a time, then quoted outputs.
    static func isWitness(_ data: Data) -> Bool {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 5, Int64(lines[3]) != nil else { return false }
        return lines.prefix(3).allSatisfy { $0 == "-" || (!$0.isEmpty && $0.allSatisfy(\.isHexDigit)) }
    }
}
