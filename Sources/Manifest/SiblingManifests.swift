import Confinement
import Foundation

/// Two manifests in one folder never share a lock or a state folder. The defaults are named
/// after the manifest's stem, so `derive.yaml` and `derive.yml` side by side would share
/// `derive.lock` and `.derive/derive/`; and `lock:` may not name a neighbour's default lock
/// (`site.yaml` with `lock: derive.lock` beside `derive.yaml`).
extension ControlFiles {

    /// A name for the suggested lock and state that is not the shared default: the file name
    /// with its extension (`derive.yaml.lock`), or, for a manifest without one (whose name is
    /// its stem, so `derive.lock` would be the very default shared), `derive-own.lock`.
    static func ownName(_ name: String) -> String {
        (name as NSString).pathExtension.isEmpty ? name + "-own" : name
    }

    func validateSiblings(into diagnostics: inout Diagnostics) {
        guard let root = manifest.files.first else { return }
        let rootURL = URL(literalFilePath: root)
        let folder = rootURL.deletingLastPathComponent().path
        let name = rootURL.lastPathComponent
        let stem = rootURL.deletingPathExtension().lastPathComponent
        let rootPath = FileSystemPath(manifest: root)
        func otherManifest(_ stem: String, in folder: String, sharing: Bool = false) -> String? {
            for candidate in Self.manifestCandidates(stem: stem, in: folder) where Self.couldBeManifest(candidate) {
                if !FileSystemPath(manifest: candidate).sameFile(as: rootPath), !sharing || sharesControlFiles(withSibling: candidate) { return candidate }
            }
            return nil
        }
        // A sibling that names its own lock and state (both) shares nothing with this manifest.
        if locations.lock == nil || locations.state == nil, let sibling = otherManifest(stem, in: folder, sharing: true) {
            // Named as this manifest uses them, and only what is shared.
            let theirs = Self.controlFiles(ofSibling: sibling)
            var shared: [String] = []
            if FileSystemPath(manifest: theirs.lock).sameFile(as: FileSystemPath(manifest: manifest.lockFile)) {
                shared.append("the lock \(display(manifest.lockFile))")
            }
            if FileSystemPath(manifest: theirs.state).sameFile(as: FileSystemPath(manifest: manifest.stateFolder)) {
                shared.append("the state folder \(display(manifest.stateFolder))")
            }
            diagnostics.error(rootLocation,
                              "\(display(root)) and \(display(sibling)) are in one folder and would share \(shared.joined(separator: " and "))",
                              hint: "set both 'lock:' and 'state:' in \(name) to names of its own (e.g. lock: \(Self.ownName(name)).lock and state: .derive/\(Self.ownName(name))), or rename one of the manifests")
        }
        if let location = locations.lock {
            let lockURL = URL(literalFilePath: manifest.lockFile)
            if lockURL.pathExtension == "lock", let owner = otherManifest(lockURL.deletingPathExtension().lastPathComponent, in: lockURL.deletingLastPathComponent().path) {
                diagnostics.error(location, "the lock file \(display(manifest.lockFile)) is the lock of \(display(owner)); two manifests may not share a lock",
                                  hint: "name a file of this manifest's own, e.g. lock: \(stem).lock")
            }
        }
    }
}
