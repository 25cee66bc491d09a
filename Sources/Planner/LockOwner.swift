import Confinement
import Foundation

extension LockFile {
    /// The manifest's path relative to the lock's folder, from both paths made absolute (the
    /// name stays the same when a whole project is copied or moved).
    public static func ownerName(manifestPath: String, lockPath: String) -> String {
        let manifest = URL(literalFilePath: manifestPath).standardizedFileURL.pathComponents
        let folder = URL(literalFilePath: lockPath).standardizedFileURL.deletingLastPathComponent().pathComponents
        var common = 0
        while common < min(manifest.count - 1, folder.count), manifest[common] == folder[common] { common += 1 }
        let ups = Array(repeating: "..", count: folder.count - common)
        return (ups + manifest[common...]).joined(separator: "/")
    }
}
