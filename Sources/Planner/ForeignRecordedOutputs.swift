import Confinement
import Foundation
import GRDB
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// Another project's recorded output where this manifest would write: a file in a bucket folder
/// of a project `ForeignProjectFiles` finds (beside this one, above it, or inside the bucket)
/// whose lock, or else whose build state, records it there with these very bytes (attack 41c's
/// C4: a sibling's outputs in a shared `../pub` were "not written by Derive"). Named with its
/// owner; `--overwrite` still takes it, as the README lets it take another manifest's outputs.
/// Asked only of a file nothing of this manifest vouches for; each lock and state is read once.
final class ForeignRecordedOutputs: @unchecked Sendable {
    private let projects: ForeignProjectFiles
    private let lock = NSLock()
    private var locks: [String: PathDictionary<LockFile.Entry>] = [:]
    private var states: [String: [String: (digest: String, folder: String)]] = [:]

    init(_ projects: ForeignProjectFiles) {
        self.projects = projects
    }

    /// The other manifest that records `path` with `digest`; nil when none does.
    func claim(of path: String, digest: String) -> ForeignClaims.Claim? {
        for recorder in projects.recorders(of: path) {
            if lockEntries(recorder.lock)[recorder.output]?.digest == digest {
                return ForeignClaims.Claim(manifest: recorder.manifest, recordedOwner: nil, lock: recorder.lock)
            }
            if let row = stateRows(recorder)[recorder.output], row.digest == digest,
               row.folder.isEmpty || PathKey.same(RealFolder.of(row.folder), recorder.folder) {
                return ForeignClaims.Claim(manifest: recorder.manifest, recordedOwner: nil)
            }
        }
        return nil
    }

    private func lockEntries(_ path: String) -> PathDictionary<LockFile.Entry> {
        if let known = lock.withLock({ locks[path] }) { return known }
        var entries: PathDictionary<LockFile.Entry> = [:]
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= LockFile.maxBytes,
           let data = FileManager.default.contents(atPath: path), let parsed = LockFile.parse(String(decoding: data, as: UTF8.self)) {
            entries = parsed.entries
        }
        lock.withLock { locks[path] = entries }
        return entries
    }

    /// The outputs the project's own state (`state.sqlite` in its state folder, naming it as
    /// owner) records: output → digest and the folder written in. None when it cannot be read.
    private func stateRows(_ recorder: ForeignProjectFiles.Recorder) -> [String: (digest: String, folder: String)] {
        if let known = lock.withLock({ states[recorder.state] }) { return known }
        var rows: [String: (digest: String, folder: String)] = [:]
        let database = recorder.state + "/" + StateFiles.database
        var configuration = Configuration()
        configuration.readonly = true
        if FileManager.default.fileExists(atPath: database), (try? StateFolderTrust.checkDatabaseFiles(database)) != nil,
           let queue = try? DatabaseQueue(path: database, configuration: configuration) {
            rows = (try? queue.read { db -> [String: (digest: String, folder: String)] in
                guard let owner = try String.fetchOne(db, sql: "SELECT manifest FROM owner"),
                      StateOwner.isSame(recorded: owner, owner: recorder.manifest) else { return [:] }
                var found: [String: (digest: String, folder: String)] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT path, outputDigest, folder FROM outputs") {
                    found[row[0]] = (row[1], row[2])
                }
                return found
            }) ?? [:]
            try? queue.close()
        }
        lock.withLock { states[recorder.state] = rows }
        return rows
    }
}
