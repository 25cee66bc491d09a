import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which manifest a build state belongs to (its `owner` record), one identity for a manifest
/// however it is reached.
///
/// The name is the manifest's absolute path with every folder's links resolved but the manifest's
/// own name kept: a `derive.yaml` that is a link to a file elsewhere (a dotfiles or stow checkout)
/// belongs to the project it lies in, whose buckets, state and lock are all resolved from its
/// folder, so a link swapped for a copy (or back, or an editor replacing the link by a file) is
/// the same project (attack 15/16's static M7b: the state became "another manifest's" and the
/// project's own outputs were refused).
public enum StateOwner {
    public static func name(_ manifestPath: String) -> String {
        let absolute = URL(literalFilePath: manifestPath).standardizedFileURL.path
        let folder = (absolute as NSString).deletingLastPathComponent
        guard let resolved = realpath(folder, nil) else { return absolute }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return (base == "/" ? "" : base) + "/" + (absolute as NSString).lastPathComponent
    }

    /// Whether a state's recorded owner is the manifest named `owner`: its name, or the name
    /// Derive before 0.14 recorded for it (the path with the manifest's own link resolved too), so
    /// a linked manifest's state is its own after the upgrade (its owner record is then rewritten).
    public static func isSame(recorded: String, owner: String) -> Bool {
        if recorded == owner { return true }
        guard let resolved = realpath(owner, nil) else { return false }
        defer { free(resolved) }
        return recorded == String(cString: resolved)
    }
}
