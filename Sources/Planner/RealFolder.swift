import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The folder a record keeps: the bucket folder's real path at write time (links resolved), so
/// a bucket `path:` that is a symbolic link later pointed elsewhere does not move the record's
/// files with it: orphans are deleted in the folder they were written to, never in the new one.
public enum RealFolder {
    /// `folder` with every link resolved; unchanged when it cannot be resolved (not there, or an
    /// in-memory disk's path).
    public static func of(_ folder: String) -> String {
        guard let resolved = realpath(folder, nil) else { return folder }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
