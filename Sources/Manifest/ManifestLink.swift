import Foundation

/// A manifest named through a symbolic link to a file in its own folder (`site.yaml` →
/// `derive.yaml`) is that file: its state, lock and name are the file's, or one project would have
/// two states, each refusing the other's outputs (attack 38a's L4). A link that leads out of the
/// folder (a dotfiles or stow checkout) is the project's manifest itself, as README says, and a
/// chain is followed while it stays in the folder.
public enum ManifestLink {
    /// Links followed at most (the kernel's own limit is 40); a loop is left for reading to report.
    static let maxLinks = 40

    /// `path` with its last component replaced by the file a same-folder link chain leads to.
    public static func projectManifest(_ path: String) -> String {
        var current = path
        for _ in 0..<maxLinks {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: current) else { return current }
            // Only a plain name is in the same folder; anything with a '/' leads elsewhere.
            guard !target.isEmpty, !target.contains("/"), target != ".", target != ".." else { return current }
            current = ((current as NSString).deletingLastPathComponent as NSString).appendingPathComponent(target)
        }
        return path
    }
}
