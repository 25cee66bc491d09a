import Confinement
import Foundation

/// Derive's index where its bucket folder took it (attack 40a's A8): two output buckets' folders
/// swapped on disk (`mv AAA TTT; mv BBB AAA; mv TTT BBB`) take the index Derive wrote in AAA to
/// BBB/index.json, a path no record names. `StateSuccession.renamedBucketFolders` follows no
/// swap (the moves overlap), so the record stays at AAA/index.json, where another file (or
/// nothing) is now. The very file Derive wrote (its recorded device and inode) at the same place
/// below another of the manifest's bucket folders than the recorded one it was written in is
/// Derive's old index: removed as one (digest- and identity-checked).
extension StateStore {
    /// Where the control file recorded at `path` (written as `identity`) is now, when it is no
    /// longer at `path` and one of `folders` (real paths) other than the recorded bucket folder
    /// holding it has that very file at the same place below it. Nil otherwise (and for a record
    /// with no identity: a copy would pass the bytes).
    public func movedWithBucketFolder(_ path: String, identity: FileIdentity?, into folders: [String]) throws -> String? {
        guard let identity, identity != .unproven, !identity.isFile(at: path) else { return nil }
        // The folders by path only: a build records the folder it finds at a bucket's path before
        // it settles the index, so the row of the folder that moved may already be gone. The
        // file's own device and inode (and then its bytes, as it is removed) decide.
        let recorded: [String] = try queue.read { db in
            var rows: [String] = []
            try forEachRow(db, "bucketFolders", ["folder"]) { row, sealed in
                if sealed { rows.append(row[0] as String) }
            }
            return rows
        }
        for old in Set(recorded) where path.utf8.starts(with: (old + "/").utf8) {
            let rest = String(decoding: Array(path.utf8).dropFirst(old.utf8.count), as: UTF8.self)
            for folder in folders where !PathKey.same(folder, old) {
                let candidate = folder + rest
                if identity.isFile(at: candidate) { return candidate }
            }
        }
        return nil
    }

    /// Indexes a killed build noted writing (`Builder.writeIfChanged`: a pending note with no
    /// output) and never recorded, in a folder recorded as a bucket's that no bucket names now
    /// (a chained re-point: outA → userB killed after it installed userB/index.json, then userC),
    /// path → noted digest. Not the lock's, nor one at `excluding` (the index now, recorded ones).
    public func notedIndexesInFormerBucketFolders(current folders: [String], excluding: PathSet) throws -> PathDictionary<String> {
        let notes = try pendingNotes()
        guard !notes.isEmpty else { return [:] }
        let former = try bucketFoldersStillThere().filter { old in !folders.contains { PathKey.same($0, old) || FileIdentity.sameFolder($0, old) } }
        var found: PathDictionary<String> = [:]
        for (path, note) in notes where !note.digest.isEmpty && note.output.isEmpty && note.folder.isEmpty
            && !path.hasSuffix(Planner.displacedNoteSuffix) && path.hasSuffix(".json") && !excluding.contains(path) {
            guard former.contains(where: { path.utf8.starts(with: ($0 + "/").utf8) }), FileKind.isRegularFile(path) else { continue }
            found[path] = note.digest
        }
        return found
    }
}
