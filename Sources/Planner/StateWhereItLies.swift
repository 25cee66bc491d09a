import Confinement
import Foundation
import GRDB
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// Another project's build state read where it lies now, for the ACLs its build recorded. Why
/// (attack 53b's 1): serve and validate read a neighbour's state only at the folder its manifest
/// names and only for the manifest path the state recorded, so once the project moved (`mv g g2`,
/// `mkdir sub; mv g sub/g`), its `.derive` was renamed or removed, its lock's lines were given its
/// rules' ACL: a rule made public but not rebuilt published an output its build recorded private.
/// - At the folder its manifest names, a state of that manifest, or of one at the same place beside
///   it (the project moved with its state: the owner record keeps the manifest's place).
/// - Not there: the very folder found by its identity (`MovedStateFolder`, `mv g/.derive g/.derive-old`).
/// - Neither, while the state home noted Derive making that folder: lost (removed), so what its
///   lock lists has no recorded ACL and counts private until the project builds again.
public enum StateWhereItLies {
    public struct Found {
        /// The outputs it records (`bucket/key` → the folder written to, the ACL its build gave).
        public var rows: [String: (folder: String, acl: String)] = [:]
        /// Where a state of that manifest was read; nil when none was.
        public var readAt: String?
        /// A state folder Derive made there is gone and was not found moved.
        public var lost = false
    }

    /// The state `state` (the folder `manifest` names) as it lies now.
    public static func read(state: String, manifest: String) -> Found {
        var found = Found()
        let real = ProjectRegistry.realName(state)
        var info = stat()
        if lstat(real + "/" + StateFiles.database, &info) == 0 {
            if let rows = rows(state: real, manifest: manifest) { found.rows = rows; found.readAt = real }
            return found
        }
        if let moved = MovedStateFolder.find(registered: real) {
            if let rows = rows(state: moved, manifest: manifest) { found.rows = rows; found.readAt = moved }
            return found
        }
        found.lost = StateFolderMade.read(name: StateFolderMade.name(forState: real)).contains { PathKey.same($0.path, real) }
        return found
    }

    /// The output rows of the state in `state` when it is `manifest`'s (or moved with it); nil otherwise.
    static func rows(state: String, manifest: String) -> [String: (folder: String, acl: String)]? {
        let database = state + "/" + StateFiles.database
        var configuration = Configuration()
        configuration.readonly = true
        guard (try? StateFolderTrust.checkDatabaseFiles(database)) != nil,
              let queue = try? DatabaseQueue(path: database, configuration: configuration) else { return nil }
        defer { try? queue.close() }
        let read = try? queue.read { db -> [String: (folder: String, acl: String)]? in
            guard let owner = try StateOwner.recordedOwner(db) else { return nil }
            let same = StateOwner.isSame(recorded: owner.manifest, owner: manifest)
                || (!owner.place.isEmpty && owner.place == StateOwner.place(owner: StateOwner.name(manifest), stateFolder: state))
            guard same else { return nil }
            var rows: [String: (folder: String, acl: String)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT path, folder, acl FROM outputs") where rows[row[0] as String] == nil {
                rows[row[0] as String] = (row[1] as String, row[2] as String)
            }
            return rows
        }
        return read ?? nil
    }

    /// The files `entry`'s lock and state record (real path → the ACL its build gave), with its
    /// state read where it lies now; a lock line counts (private) only when its state is lost.
    static func recordedOutputs(of entry: ProjectRegistry.Entry) -> [String: BucketACL] {
        var found: [String: BucketACL] = [:]
        let state = read(state: entry.state, manifest: entry.manifest)
        for (output, row) in state.rows {
            guard let (bucket, key) = PathKey.split(output) else { continue }
            guard let folder = row.folder.isEmpty ? entry.buckets[bucket] : ProjectRegistry.realName(row.folder) else { continue }
            let file = (folder == "/" ? "" : folder) + "/" + key
            let acl = BucketACL(rawValue: row.acl) ?? .private
            found[file] = found[file].map { .morePrivate($0, acl) } ?? acl
        }
        guard state.lost else { return found }
        var info = stat()
        if stat(entry.lock, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= LockFile.maxBytes,
           let data = FileManager.default.contents(atPath: entry.lock) {
            for line in LockFile.salvagedEntries(data) {
                guard let (bucket, key) = PathKey.split(line.path), let folder = entry.buckets[bucket] else { continue }
                found[(folder == "/" ? "" : folder) + "/" + key] = .private
            }
        }
        return found
    }
}

extension RegisteredProjects {
    /// Validate's word on a registered project that stands as registered (its rules checked by
    /// `validate`): the outputs its build recorded more privately than a public bucket of this
    /// manifest answers (a rule made public, not rebuilt; its state read where it lies now, or
    /// lost), which serve answers no more publicly than recorded until that project builds.
    static func warnRecordedMorePrivately(_ entry: ProjectRegistry.Entry, overlapping: [(Bucket, String)], display: (String) -> String,
                                          into diagnostics: inout Diagnostics) {
        let records = StateWhereItLies.recordedOutputs(of: entry)
        guard !records.isEmpty else { return }
        for (bucket, folder) in overlapping {
            guard let (exposure, count, floor, named) = RegisteredProjects.heldMorePrivately(records, in: bucket, folder: folder, display: display) else { continue }
            diagnostics.warning(bucket.pathLocation,
                                "bucket '\(bucket.name)' (\(bucket.declaredPath)) holds \(count) output\(count == 1 ? "" : "s") (\(named)) that \(display(entry.manifest)), another project found by the registry of built projects, built as \(floor.rawValue) (its rules say more public now, not built since, or its build state is gone), and is \(exposure.rawValue): derive serve of this manifest answers them no more publicly than they were built (\(floor.rawValue)) until that project builds again",
                                hint: "build \(display(entry.manifest)) to publish them as its rules say now, or make bucket '\(bucket.name)' \(floor.rawValue) (its acl: and every objects: rule), or give it a folder of its own")
        }
    }
}
