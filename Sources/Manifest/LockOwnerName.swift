import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whose a Derive lock is, by its first line (`{"format":"derive.lock/…","manifest":"../n.yaml"}`):
/// the one definition builds (`LockFile.isOurs`) and validate ask.
public enum LockOwnerName {
    /// The manifest's path relative to the lock's folder, from both paths made absolute (the
    /// name stays the same when a whole project is copied or moved).
    public static func of(manifestPath: String, lockPath: String) -> String {
        let manifest = URL(literalFilePath: manifestPath).standardizedFileURL.pathComponents
        let folder = URL(literalFilePath: lockPath).standardizedFileURL.deletingLastPathComponent().pathComponents
        var common = 0
        while common < min(manifest.count - 1, folder.count), manifest[common] == folder[common] { common += 1 }
        let ups = Array(repeating: "..", count: folder.count - common)
        return (ups + manifest[common...]).joined(separator: "/")
    }

    /// The manifest a lock's first line names, nil when it names none (or is not a lock).
    public static func owner(_ data: Data) -> String? {
        let first = data.prefix { $0 != UInt8(ascii: "\n") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(first)) as? [String: Any] else { return nil }
        return object["manifest"] as? String
    }

    /// Whether `manifest` takes over the lock at `lockPath` recorded for `owner` (both named from
    /// the lock's folder): `owner` lay in the same folder and nothing is at its path any more (the
    /// manifest renamed, attack 31's F8: `derive.yaml` → `site.yaml` with `lock:` set was refused
    /// for ever). A lock naming no manifest is anyone's already, so this gives a forged owner
    /// nothing; a manifest still there keeps its lock.
    public static func succeeds(owner: String, manifest: String, lockPath: String) -> Bool {
        guard !owner.isEmpty, (owner as NSString).deletingLastPathComponent == (manifest as NSString).deletingLastPathComponent else { return false }
        let folder = URL(literalFilePath: lockPath).standardizedFileURL.deletingLastPathComponent().path
        var info = stat()
        return lstat(folder + "/" + owner, &info) != 0 && (errno == ENOENT || errno == ENOTDIR)
    }
}

extension ControlFiles {
    /// This manifest's declared lock, when a Derive lock is there whose first line names another
    /// manifest that does not pass it to this one (`LockOwnerName.succeeds`): every build refuses
    /// it (`LockFile.isOurs`), so validate does too (attack 48b's F4: `lock: sub/locks/n.lock`, a
    /// neighbour's moved lock, validated whether or not that neighbour was there).
    func validateDeclaredLockOwner(into diagnostics: inout Diagnostics) {
        guard let location = locations.lock, !diagnostics.errors.contains(where: { $0.file == location.file && $0.line == location.line && $0.column == location.column }),
              let owner = Self.lockOwnerLine(manifest.lockFile) else { return }
        let mine = LockOwnerName.of(manifestPath: manifest.file, lockPath: manifest.lockFile)
        guard owner != mine, !LockOwnerName.succeeds(owner: owner, manifest: mine, lockPath: manifest.lockFile) else { return }
        let folder = URL(literalFilePath: URL(literalFilePath: manifest.lockFile).standardizedFileURL.deletingLastPathComponent().path + "/")
        let named = URL(literalFilePath: owner, relativeTo: folder).standardizedFileURL.path
        var info = stat()
        let there = lstat(named, &info) == 0 ? "" : ", which is no longer there"
        diagnostics.error(location,
                          "the lock file \(display(manifest.lockFile)) is the lock of \(display(named))\(there) (its first line names it), not of this manifest; Derive will not overwrite or delete it, so every build refuses it",
                          hint: "name a file of this manifest's own with 'lock:', e.g. lock: \(Self.ownName((manifest.file as NSString).lastPathComponent)).lock")
    }
}
