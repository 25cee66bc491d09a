import Confinement
import Foundation
import Manifest

extension LockFile {
    /// The manifest's path relative to the lock's folder, from both paths made absolute (the
    /// name stays the same when a whole project is copied or moved).
    public static func ownerName(manifestPath: String, lockPath: String) -> String {
        LockOwnerName.of(manifestPath: manifestPath, lockPath: lockPath)
    }
}
