import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The project whose bucket or build state folder holds a folder: asked by `derive init` before
/// it writes a manifest there, and by the "no manifest" error before it suggests init. Attack
/// 50c's M7: `derive init` in another project's public `_site` (which that error suggested)
/// wrote a manifest, `.gitignore` and `.gitattributes` into the bucket, and the outer project was
/// refused by every command from then on; in its source bucket, the outer project rendered the new
/// one's outputs as sources. Looked for in the folder and each one above it (as the kernel
/// resolves them, no nearby scan): a manifest that loads there whose bucket's folder, or whose
/// state folder, is or holds the folder; and any `.derive` on the way (a state folder, whoever's).
public enum EnclosingProject {
    public struct Found: Sendable, Equatable {
        /// The other project's manifest, absolute (for a `.derive` with no manifest beside it,
        /// the manifest its state is named after).
        public var manifest: String
        /// What the folder is in: `bucket 'site' (/p/_site)`, `the build state folder /p/.derive/derive`.
        public var what: String
        /// The folder of that manifest, where its commands run.
        public var folder: String { (manifest as NSString).deletingLastPathComponent }

        public init(manifest: String, what: String) { self.manifest = manifest; self.what = what }
    }

    /// Folders looked in at most, from the folder up.
    public static let maxHeight = 64

    /// The project whose bucket or state folder `folder` is or lies in; nil when none is.
    public static func of(folder: String) -> Found? {
        guard let real = realFolder(folder) else { return nil }
        let parts = real.split(separator: "/").map(String.init)
        // A state folder on the way: the project in the folder holding it.
        if let index = parts.firstIndex(of: ProjectMarkers.stateFolderName) {
            let holder = "/" + parts[..<index].joined(separator: "/")
            let base = holder == "/" ? "" : holder
            let stem = index + 1 < parts.count ? parts[index + 1] : nil
            let manifests = NeighbourProjects.manifests(in: holder)
            let manifest = manifests.first { stem == nil || ($0 as NSString).lastPathComponent.hasPrefix(stem! + ".") } ?? manifests.first
                ?? base + "/" + (stem ?? "derive") + ".yaml"
            return Found(manifest: manifest, what: "the build state folder \(base)/\(ProjectMarkers.stateFolderName)" + (stem.map { "/" + $0 } ?? ""))
        }
        var current = real
        for _ in 0..<maxHeight {
            for path in NeighbourProjects.manifests(in: current) {
                guard let manifest = NeighbourProjects.project(path).manifest else { continue }
                let own = (path as NSString).deletingLastPathComponent
                for bucket in manifest.buckets {
                    // A bucket holding its own manifest's folder (refused by validate) claims nothing.
                    guard let bucketFolder = realFolder(bucket.path), !holds(bucketFolder, own) else { continue }
                    if holds(bucketFolder, real) { return Found(manifest: path, what: "bucket '\(bucket.name)' (\(bucketFolder))") }
                }
                if let state = realFolder(manifest.stateFolder), holds(state, real) {
                    return Found(manifest: path, what: "the build state folder \(state)")
                }
            }
            guard current != "/" else { break }
            current = (current as NSString).deletingLastPathComponent
            if current.isEmpty { current = "/" }
        }
        return nil
    }

    /// Whether `outer` is `inner` or one of the folders above it (real paths).
    static func holds(_ outer: String, _ inner: String) -> Bool {
        outer == inner || inner.hasPrefix(outer == "/" ? "/" : outer + "/")
    }

    static func realFolder(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
