import Confinement
import Foundation

/// Files a build moved into place but was stopped (killed) before it recorded (attack 37b's
/// finding 1: a `{hash}` restyle killed with `kill -9` left renders nothing recorded, under names
/// no later manifest produces, forever). Before each rename a build notes the file in the state
/// with the digest of the bytes it installs (`StateStore.addPendingWrite`, its own transaction);
/// the record that follows clears the note in the same transaction. A note still there with no
/// record is such a file: the next `plan`, build and `clean` judge it as an old output
/// (`OrphanJudge`), as the record the build would have made of it.
extension Planner {
    /// The suffix of the note a build makes of the file it displaces (`Builder.displacedKey`):
    /// not a file it installed.
    public static let displacedNoteSuffix = "/displaced"

    /// A file a killed build moved into place and never recorded: the record the build would
    /// have made of it (with the noted digest), the file it noted (device, inode, birth; nil:
    /// not noted, the bytes decide) and the note's own path (as the bucket's path spelled it).
    public struct Uncommitted: Sendable {
        public var record: OutputRecord
        public var identity: FileIdentity?
        public var note: String
    }

    /// The pending writes no record, planned output or control file accounts for, each as the
    /// record of an output of the bucket folder it was written in (with the noted digest): the
    /// output and folder noted when it was written (issue 9, round 39: a bucket re-pointed or
    /// removed since does not hide it, nor is it ever judged in a folder it was not written in);
    /// for a note from before they were noted, the bucket whose folder holds it now. Empty (and
    /// nothing read) when there are no notes: a no-op build pays one look at an empty table.
    /// `produced`: the outputs the manifest produces now; a note for one of their files is that
    /// output's own (its build may replace the file: `item(for:pending:)`).
    public func uncommittedOutputs(pending: PathDictionary<PendingWrite>, recorded: PathDictionary<OutputRecord>,
                                   produced: [Derivative], elsewhere: Bool = false) throws -> PathDictionary<Uncommitted> {
        guard !pending.isEmpty else { return [:] }
        let recordedFiles = PathSet(recorded.values.map(\.file))
        let plannedFiles = PathSet(produced.map(\.outputPath)), plannedOutputs = PathSet(produced.map(\.output))
        // The lock's and the index's notes are theirs (`Builder.writeIfChanged` settles them).
        var controls: PathSet = [lockPath]
        if let index = manifest.index, let bucket = manifest.bucket(named: index.bucket) { controls.insert(bucket.path + "/" + index.path) }
        for path in try store.controlFiles().keys { controls.insert(path) }
        var found: PathDictionary<Uncommitted> = [:]
        for (noted, note) in pending.sortedByKey() {
            var path = noted
            if noted.hasSuffix(Self.displacedNoteSuffix) {
                // `clean` (`elsewhere`): a file a killed build judged Derive's and was about to
                // replace, whose record it had already moved to another file (two buckets' folders
                // swapped: attack 40a's A5), is Derive's while it holds those bytes; no record
                // names it any more. One the build also noted installing is judged by that note.
                path = String(noted.dropLast(Self.displacedNoteSuffix.count))
                guard elsewhere, pending[path].map({ $0.digest.isEmpty }) ?? true else { continue }
            }
            guard !note.digest.isEmpty, !recordedFiles.contains(path),
                  !plannedFiles.contains(path), !controls.contains(path) else { continue }
            // A displaced file's note says nothing of where it was written: judged by its bytes.
            let note = path == noted ? note : PendingWrite(digest: note.digest)
            let output: String, folder: String
            if !note.output.isEmpty, !note.folder.isEmpty {
                // Where it was written, whatever the bucket's folder is now (or whether it is still a bucket).
                output = note.output; folder = note.folder
            } else {
                // The bucket whose folder holds it (the deepest, for nested buckets); none: not an
                // output's place now, so nothing says it is one (the note stays, as before).
                guard let bucket = manifest.buckets.filter({ path.utf8.starts(with: ($0.path + "/").utf8) })
                    .max(by: { $0.path.utf8.count < $1.path.utf8.count }) else { continue }
                output = bucket.name + "/" + String(path.dropFirst(bucket.path.count + 1)); folder = RealFolder.of(bucket.path)
            }
            // An output recorded or produced now (in its bucket's folder now) keeps its plan item;
            // a note of its file elsewhere stays, never judged in that folder.
            // `elsewhere` (`clean`, which removes every output): a note of a file in another folder
            // than its output's record is judged too (a re-pointing build killed after installing
            // the new file, before it recorded it over the old copy's record: attack 39c), keyed
            // by the noted file.
            let key: String
            if plannedOutputs.contains(output) {
                // Produced now in another folder than the one it was written in (its bucket
                // re-pointed again after the kill: attack 40a's A1): an old copy there, judged
                // where it was written, keyed by the noted file. In its bucket's folder now, its
                // own build replaces it.
                guard let bucket = manifest.bucket(named: PathKey.bucket(of: output)), !PathKey.same(RealFolder.of(bucket.path), folder),
                      !FileIdentity.sameFolder(folder, RealFolder.of(bucket.path)) else { continue }
                key = path
            } else if let other = recorded[output] {
                guard elsewhere, !PathKey.same(other.file, path), !PathKey.same(other.folder, folder) else { continue }
                key = path
            } else {
                key = output
            }
            // The ACL of its bucket now; private when the bucket is gone (nothing is published by it).
            let acl = manifest.bucket(named: PathKey.bucket(of: output))?.acl.rawValue ?? "private"
            let record = OutputRecord(path: output, rule: "", source: "", style: nil, matrix: "", engine: "", pipeline: "",
                                      sourceDigest: "", dependencies: "", encoder: "", actionKey: "", acl: acl,
                                      outputDigest: note.digest, size: 0, width: 0, height: 0, format: "", builtAt: 0,
                                      folder: folder)
            guard record.placeProblem == nil, !recordedFiles.contains(record.file) else { continue }
            found[key] = Uncommitted(record: record, identity: note.identity, note: noted)
        }
        return found
    }

    /// The record a killed build would have made of `record`'s file had it not been killed after
    /// it moved new bytes there (a restyle): `record` with the noted digest, when the file holds
    /// exactly the bytes the note gives and not the recorded ones. Nil otherwise. Judged by the
    /// note's digest alone (with no device and inode), as `uncommittedOutputs` judges a file no
    /// record names.
    public static func installedByKilledBuild(_ record: OutputRecord, pending: PathDictionary<String>, digests: ContentDigests) -> OutputRecord? {
        guard let noted = pending[record.file], !noted.isEmpty, noted != record.outputDigest, !record.folder.isEmpty,
              FileKind.isRegularFile(record.file), (try? digests.content(of: record.file))?.digest == noted else { return nil }
        var installed = record
        installed.outputDigest = noted
        installed.adopted = false
        return installed
    }

    /// Why the plan names such a file.
    public static func uncommittedReason(_ file: String) -> String {
        "\(file) was moved into place by a build that was killed or stopped before it recorded it"
    }
}
