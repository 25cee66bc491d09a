import Foundation

/// Where a build-state record may lead. The state is a file on disk (committed by mistake, in a
/// shared `state:` folder, edited): a record's folder proves nothing about where Derive wrote,
/// and a digest only proves a file is a copy of the bytes (copies of outputs and of the index are
/// the normal case). So a record is used only when its place is one the manifest itself gives:
///
/// - an output's folder must be its own bucket's folder now (by real path or device+inode), or
///   the folder of a bucket rules write to (a bucket renamed), or, for a bucket that moved or was
///   removed, a folder inside the manifest's folder tree (where a bucket's old folder is when the
///   bucket lies in the project, as it normally does);
/// - a control file (an old index) must lie below a bucket's folder now or inside the manifest's
///   folder tree (an index is always in a bucket).
///
/// Anything else (`/home/user/backup`, a sibling folder) is ignored and named, never read or
/// deleted. What this costs: a bucket outside the manifest's folder that moves (or is removed)
/// leaves its old copies in place, named, instead of deleting them.
public struct RecordPlaces: Sendable {
    /// The bucket folders by name, each as its real path and as spelt (absolute).
    private let buckets: [String: (real: String, spelt: String)]
    /// The manifest's folder, real path and as spelt.
    private let trees: [String]
    /// The real folders of the buckets rules write to.
    private let outputFolders: Set<String>

    /// `outputBuckets`: the names of the buckets rules write to (and the index's).
    public init(manifestPath: String, buckets: [(name: String, path: String)], outputBuckets: Set<String>) {
        let base = URL(fileURLWithPath: manifestPath).standardizedFileURL.deletingLastPathComponent().path
        trees = Array(Set([base, RealFolder.of(base)]))
        var known: [String: (real: String, spelt: String)] = [:]
        for bucket in buckets {
            let spelt = URL(fileURLWithPath: bucket.path).standardizedFileURL.path
            known[bucket.name] = (RealFolder.of(spelt), spelt)
        }
        self.buckets = known
        outputFolders = Set(outputBuckets.compactMap { known[$0]?.real })
    }

    private func inTree(_ path: String) -> Bool {
        trees.contains { path == $0 || path.hasPrefix($0 == "/" ? "/" : $0 + "/") }
    }

    /// Why an output record of `bucket` written to `folder` may not be followed, or nil.
    public func problem(outputFolder folder: String, bucket: String) -> String? {
        let own = buckets[bucket]
        if let own, folder == own.real || folder == own.spelt { return nil }
        if inTree(folder) || outputFolders.contains(folder) { return nil }
        if let own, FileIdentity.sameFolder(folder, own.real) { return nil }
        let which = buckets[bucket] == nil ? "bucket '\(bucket)' is no longer in the manifest" : "bucket '\(bucket)' is now \(buckets[bucket]!.real)"
        return "its folder '\(folder)' is neither its bucket's folder (\(which)), nor a folder rules write to, nor inside the manifest's folder"
    }

    /// Why a control file record at `path` (an old index) may not be followed, or nil.
    public func problem(controlFile path: String) -> String? {
        let folder = (path as NSString).deletingLastPathComponent
        if inTree(folder) { return nil }
        for (real, spelt) in buckets.values where folder == real || folder.hasPrefix(real + "/") || folder == spelt || folder.hasPrefix(spelt + "/") {
            return nil
        }
        return "it lies outside every bucket and the manifest's folder, where Derive never writes an index"
    }
}
