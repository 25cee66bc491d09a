import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A manifest that sets no `lock:` (or no `state:`) is led by its default names (`n.lock`,
/// `.derive/n`) to the lock and state a removed manifest of the same stem left in its folder
/// (`n.yml` written after `n.yaml` was removed). Taking them over on that guess alone made the new
/// manifest delete the removed one's outputs as "no longer produced" on its first build, even in
/// folders none of its buckets names (attack 49a's F7). So the lock and state of a manifest of
/// another name are taken over only when asked: `lock:` and `state:` set to them (as the rename
/// advice says). Checked where the manifest loads, so validate, plan, check, build, clean and
/// serve refuse it alike, before anything is written.
extension ControlFiles {
    func validateGuessedSuccession(into diagnostics: inout Diagnostics) {
        guard let root = manifest.files.first else { return }
        let manifestPath = URL(literalFilePath: root).standardizedFileURL.path
        let ownName = (manifestPath as NSString).lastPathComponent
        var left: [(what: String, path: String, gone: String)] = []
        if locations.lock == nil, let owner = Self.lockOwnerLine(manifest.lockFile) {
            let mine = LockOwnerName.of(manifestPath: manifestPath, lockPath: manifest.lockFile)
            if owner != mine, LockOwnerName.succeeds(owner: owner, manifest: mine, lockPath: manifest.lockFile) {
                let folder = URL(literalFilePath: (manifest.lockFile as NSString).deletingLastPathComponent + "/")
                left.append(("lock", manifest.lockFile, URL(literalFilePath: owner, relativeTo: folder).standardizedFileURL.path))
            }
        }
        if locations.state == nil, case .owned(let recorded) = Self.stateDatabase(in: manifest.stateFolder),
           (recorded as NSString).lastPathComponent != ownName, Self.isGone(recorded),
           (recorded as NSString).deletingLastPathComponent == (Self.stateOwnerName(manifestPath) as NSString).deletingLastPathComponent {
            left.append(("build state", manifest.stateFolder, recorded))
        }
        guard let gone = left.first?.gone else { return }
        let goneName = (gone as NSString).lastPathComponent
        let stem = (ownName as NSString).deletingPathExtension
        let named = left.map { "\(display($0.path)) is the \($0.what) of \($0.gone == gone ? goneName : display($0.gone))" }.joined(separator: " and ")
        diagnostics.error(rootLocation,
                          "\(named), which is no longer there; \(ownName) would take \(left.count == 1 ? "it" : "them") over only because its default "
                              + "'lock:'/'state:' names are the same (it sets neither), and a manifest of another name does not take over a removed one's records unasked "
                              + "(two new manifests would both take them, and the first build would delete \(goneName)'s outputs as no longer produced)",
                          hint: "if \(ownName) is \(goneName) renamed, set 'lock: \(display(manifest.lockFile))' and 'state: \(display(manifest.stateFolder))' in it "
                              + "to carry on from its records (or give it its old name back); otherwise give it names of its own "
                              + "(e.g. lock: \(stem)-own.lock and state: .derive/\(stem)-own), or, if \(goneName) is gone for good, move its lock and build state away")
    }

    /// The manifest a Derive lock's first line names, nil when the file is no regular file, no
    /// Derive lock, or names none. Only its first line is read (`LockFirstLine`: a lock may be any size).
    static func lockOwnerLine(_ path: String) -> String? {
        LockFirstLine.lockHeader(path).flatMap(LockFirstLine.manifest)
    }

    /// Whether nothing is at `path` (the recorded manifest removed).
    static func isGone(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) != 0 && (errno == ENOENT || errno == ENOTDIR)
    }

    /// The name a build state records for the manifest at `path` (`StateOwner.name`): its folder's
    /// links resolved, its own name kept.
    static func stateOwnerName(_ path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        guard let resolved = realpath(folder, nil) else { return path }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return (base == "/" ? "" : base) + "/" + (path as NSString).lastPathComponent
    }
}
