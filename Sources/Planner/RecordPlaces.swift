import Confinement
import Foundation

/// Where a build-state record may lead. The state is a file on disk (committed by mistake, in a
/// shared `state:` folder, edited): a record's folder proves nothing about where Derive wrote,
/// and a digest only proves a file is a copy of the bytes (copies of outputs and of the index are
/// the normal case). So a record is used only when its place is one the manifest gives now, or
/// one Derive itself used and that is still the same folder (by device and inode):
///
/// - an output's folder must be its own bucket's folder now (by real path or device+inode), or
///   the folder of a bucket rules write to (a bucket renamed), or a folder the state recorded as
///   that bucket's folder when Derive used it, with the device and inode recorded then (a bucket
///   that moved or was removed; nothing there any more is fine too: nothing is read or deleted);
/// - a control file (an old index) must be where an `index:` could have named it: a `.json`
///   file below the folder of a bucket Derive writes to now (never one rules only read), or
///   below a folder recorded as a bucket's that is still the same folder (or the index's path
///   now); and it is removed only while it is still the file Derive wrote (device and inode).
///
/// Anything else (`docs/` beside the buckets, `notes.txt`, `/home/user/backup`, a new folder the
/// user made at an old bucket path) is ignored and named, never read or deleted. What this
/// costs: a state from before folder identities were recorded (Derive 0.13 and earlier) does not
/// follow a bucket's old folder until a build has recorded it: a bucket moved in the same build
/// as the upgrade leaves its old copies in place, named.
public struct RecordPlaces: Sendable {
    /// The bucket folders by name, each as its real path and as spelt (absolute).
    private let buckets: [String: (real: String, spelt: String)]
    /// The real folders of the buckets rules write to.
    private let outputFolders: Set<String>
    /// The names of the buckets rules write to (and the index's).
    private let outputBuckets: Set<String>
    /// The buckets rules write to (and the index's), by name and real folder now.
    public let currentOutputFolders: [(bucket: String, folder: String)]
    /// The index's file now, as spelt and real: whatever its name, its record is followed.
    private let index: [String]

    /// `outputBuckets`: the names of the buckets rules write to (and the index's). `index`: the
    /// index's path now (absolute), if the manifest has one.
    public init(manifestPath: String, buckets: [(name: String, path: String)], outputBuckets: Set<String>, index: String? = nil) {
        var known: [String: (real: String, spelt: String)] = [:]
        for bucket in buckets {
            let spelt = URL(literalFilePath: bucket.path).standardizedFileURL.path
            known[bucket.name] = (RealFolder.of(spelt), spelt)
        }
        self.buckets = known
        outputFolders = Set(outputBuckets.compactMap { known[$0]?.real })
        self.outputBuckets = outputBuckets
        currentOutputFolders = outputBuckets.sorted().compactMap { name in known[name].map { (bucket: name, folder: $0.real) } }
        if let index {
            let spelt = URL(literalFilePath: index).standardizedFileURL.path
            let folder = (spelt as NSString).deletingLastPathComponent
            self.index = Array(Set([spelt, RealFolder.of(folder) + "/" + (spelt as NSString).lastPathComponent]))
        } else {
            self.index = []
        }
    }

    private static func below(_ path: String, _ folder: String) -> Bool {
        path == folder || path.hasPrefix(folder == "/" ? "/" : folder + "/")
    }

    /// Why an output record of `bucket` written to `folder` may not be followed, or nil.
    /// `recorded`: the device and inode the state recorded for `folder` as that bucket's folder.
    public func problem(outputFolder folder: String, bucket: String, recorded: FileIdentity?) -> String? {
        let own = buckets[bucket]
        if let own, folder == own.real || folder == own.spelt { return nil }
        if outputFolders.contains(folder) { return nil }
        if let own, FileIdentity.sameFolder(folder, own.real) { return nil }
        let which = own == nil ? "bucket '\(bucket)' is no longer in the manifest" : "bucket '\(bucket)' is now \(own!.real)"
        guard let recorded else {
            return "its folder '\(folder)' is neither its bucket's folder (\(which)), nor a folder rules write to, nor a folder Derive recorded using as that bucket's"
        }
        if let now = FileIdentity.ofFolder(folder) {
            if now == recorded { return nil }
            return "its folder '\(folder)' is not the folder Derive wrote to (\(which)): another folder is at that path now (its device and inode differ from those recorded)"
        }
        // Nothing there any more: nothing can be read or deleted; the record is only forgotten.
        // A link there now (`mv out elsewhere; ln -s elsewhere out`): never followed; each file is
        // named as behind a link where it would be deleted (plan, build and clean say so).
        if !FileIdentity.anythingAt(folder) || FileIdentity.isSymbolicLink(folder) { return nil }
        return "its folder '\(folder)' is not the folder Derive wrote to (\(which)): what is at that path now is not a folder"
    }

    /// Why a control file record at `path` (an old index) may not be followed, or nil.
    /// `recordedFolders`: the folders the state recorded as buckets' folders, with their identities.
    public func problem(controlFile path: String, recordedFolders: [String: FileIdentity]) -> String? {
        if index.contains(path) || index.contains(where: { FileIdentity.sameFile($0, path) }) { return nil }
        let folder = (path as NSString).deletingLastPathComponent
        guard path.lowercased().hasSuffix(".json") else {
            return "it is not a .json file, so no 'index:' Derive wrote there could have named it"
        }
        // Only a bucket Derive writes to (the index's, or one rules write to): a bucket rules only
        // read (the sources') never held an index unless an `index:` named it, and then its folder
        // was recorded as that bucket's (below) (attack 17's N7: `src/meta.json` was removed).
        for (name, place) in buckets where outputBuckets.contains(name) && (Self.below(folder, place.real) || Self.below(folder, place.spelt)) {
            return nil
        }
        // (A link now at the recorded folder is never followed: the old index is named as behind it.)
        for (recorded, identity) in recordedFolders
        where Self.below(folder, recorded) && (FileIdentity.ofFolder(recorded) == identity || FileIdentity.isSymbolicLink(recorded)) {
            return nil
        }
        return "it lies in no folder of a bucket Derive writes to (nor in a folder Derive recorded using as one), where Derive never writes an index"
    }

    /// Whether `folder` is `bucket`'s folder now (by real path, as spelt, or by device and inode).
    public func isCurrentFolder(_ folder: String, bucket: String) -> Bool {
        guard let own = buckets[bucket] else { return false }
        return folder == own.real || folder == own.spelt || FileIdentity.sameFolder(folder, own.real)
    }
}
