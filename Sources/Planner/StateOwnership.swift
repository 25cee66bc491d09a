import Confinement
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// Derive opens, overwrites or deletes a file in the state folder only when it is recognisably
/// Derive's: a state database with Derive's tables and no others, a build lock holding a
/// `pid … on …` line (or nothing), a witness of digest lines. A user's `state.sqlite`,
/// `build.lock` or `noop-witness` in a shared folder (`state: .`, `state: data`) is refused.
public enum StateOwnership {
    /// Derive's tables in `state.sqlite` (with GRDB's migration record).
    static let tables: Set<String> = ["files", "outputs", "createdFolders", "pendingWrites", "controlFiles", "owner", "sourceColours", "placeholders", "bucketFolders", "outputFiles", "binding", "leftFiles", "sourceDominants", "lockFiles", "grdb_migrations"]

    /// Throws naming the first file in `folder` that is not Derive's.
    public static func check(folder: String) throws {
        var info = stat()
        if stat(folder, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR {
            throw PlanError(message: "the state folder \(folder) is not a folder (a file of that name exists); set 'state:' in the manifest to a folder of its own (the default is .derive/<manifest name>), or move the file")
        }
        let database = folder + "/" + StateStore.fileName
        // Before SQLite opens anything there: a user's file at a journal's name, or a FIFO.
        try StateFolderTrust.checkDatabaseFiles(database)
        let foreign = foreignTables(database)
        if let foreign, !foreign.isEmpty {
            throw PlanError(message: "\(database) holds tables Derive did not create (\(foreign.sorted().joined(separator: ", "))); it is not Derive's state and is left alone: set 'state:' to a folder of its own")
        }
        // Derive writes only regular files at these names, replacing them by rename and `clean`
        // unlinking them: a FIFO, link, socket, device or folder there is not its own (issue 9, 2).
        for (name, what) in [(StateFiles.buildLock, "build lock"), (StateFiles.witness, "witness"), (StateFiles.witnessInputs, "record of the witness's inputs")] {
            let path = folder + "/" + name
            if let kind = irregularKind(path) {
                throw PlanError(message: "\(path) is \(kind), not a file Derive writes (it keeps its \(what) at that name as a regular file), so it is left alone "
                    + "and Derive writes nothing there: move it out of \(folder) if it is yours, or set 'state:' in the manifest to a folder of its own")
            }
        }
        let lock = folder + "/" + StateFiles.buildLock
        if let data = FileManager.default.contents(atPath: lock), !isBuildLock(data, besideDerivesState: foreign == []) {
            throw PlanError(message: "\(lock) exists and is not Derive's build lock; it is left alone: set 'state:' to a folder of its own, or move it")
        }
        let witness = folder + "/" + StateFiles.witness
        if let data = FileManager.default.contents(atPath: witness), !isWitness(data) {
            throw PlanError(message: "\(witness) exists and is not Derive's witness; it is left alone: set 'state:' to a folder of its own, or move it")
        }
        let inputs = folder + "/" + StateFiles.witnessInputs
        if let data = FileManager.default.contents(atPath: inputs), !data.starts(with: Data(TouchedInputs.header.utf8)) {
            throw PlanError(message: "\(inputs) exists and is not Derive's record of the witness's inputs; it is left alone: set 'state:' to a folder of its own, or move it")
        }
    }

    /// What is at `path` when it is there and not a regular file ("a FIFO", "a symbolic link",
    /// …), not followed; nil for a regular file or nothing.
    static func irregularKind(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return switch info.st_mode & S_IFMT {
        case S_IFREG: nil
        case S_IFIFO: "a FIFO"
        case S_IFLNK: "a symbolic link"
        case S_IFSOCK: "a socket"
        case S_IFCHR, S_IFBLK: "a device"
        case S_IFDIR: "a folder"
        default: "not a regular file"
        }
    }

    /// Tables not Derive's in an existing SQLite database; nil when there is no readable database
    /// (absent, empty, or not SQLite: the store moves that aside rather than deleting it).
    static func foreignTables(_ path: String) -> Set<String>? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_size > 0, (try? StateFolderTrust.checkDatabaseFiles(path)) != nil else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: path, configuration: configuration),
              let names = try? queue.read({ db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'") })
        else { return nil }
        return Set(names).subtracting(tables)
    }

    /// What BuildLock writes (`pid N on host, since …`, kept after release). An empty file is
    /// Derive's only beside Derive's own state database (older versions emptied it on release):
    /// anywhere else it may be anyone's.
    static func isBuildLock(_ data: Data, besideDerivesState: Bool) -> Bool {
        data.starts(with: Data("pid ".utf8)) || (data.isEmpty && besideDerivesState)
    }

    /// What NoOpWitness.save writes: three digest lines, a time, then quoted outputs.
    static func isWitness(_ data: Data) -> Bool {
        // Only the head is looked at: the witness lists every output after it.
        let lines = String(decoding: data.prefix(400), as: UTF8.self).split(separator: "\n", maxSplits: 4, omittingEmptySubsequences: false)
        guard lines.count >= 5, Int64(lines[3]) != nil else { return false }
        return lines.prefix(3).allSatisfy { $0 == "-" || (!$0.isEmpty && $0.allSatisfy(\.isHexDigit)) }
    }
}
