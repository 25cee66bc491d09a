import Confinement
import Foundation

/// Where a path leads through a symbolic link: for saying why a file is kept. Derive reaches
/// files with `O_NOFOLLOW` from the bucket folder and never follows one; this only names it.
public enum SymbolicLinks {
    /// The first symbolic link on `file`'s path below `folder` (`/p/out/link` for
    /// `/p/out/link/a.jpg` below `/p/out`), the file itself included; nil when there is none.
    public static func first(on file: String, below folder: String) -> String? {
        // On bytes: a `/` followed by a combining mark is one `Character`, not a `/`.
        guard let rest = PathKey.below(folder, file) else { return nil }
        var path = folder
        for component in rest.utf8.split(separator: UInt8(ascii: "/")) {
            path += "/" + String(decoding: component, as: UTF8.self)
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            if (info.st_mode & S_IFMT) == S_IFLNK { return path }
        }
        return nil
    }

    /// The first mount point (`/proc/self/mountinfo`) strictly below `folder` on the path of `file`,
    /// or `folder` itself: Derive's walks do not cross one, so what Derive wrote there cannot be
    /// reached while it stays (attack 37b's finding 7). Only says why; the walk still confines.
    /// `belowFirst`: a mount point strictly below `folder` is named before `folder` itself (a
    /// bucket that is itself a mount, with a subfolder mounted over since: that subfolder hides
    /// the file, not the bucket's own mount: attack 41a's B6).
    public static func firstMountPoint(on file: String, from folder: String, belowFirst: Bool = false) -> String? {
        let points = Set(MountIdentity.mountPoints())
        if !belowFirst, points.contains(folder) { return folder }
        return firstMountPoint(on: file, below: folder, points: points) ?? (points.contains(folder) ? folder : nil)
    }

    static func firstMountPoint(on file: String, below folder: String, points: Set<String>) -> String? {
        guard let rest = PathKey.below(folder, file) else { return nil }
        var path = folder
        for component in rest.utf8.split(separator: UInt8(ascii: "/")).dropLast() {
            path += "/" + String(decoding: component, as: UTF8.self)
            if points.contains(path) { return path }
        }
        return nil
    }

    /// As `first(on:below:)`, `folder` itself included: a bucket folder that was replaced by a
    /// link after Derive wrote into it (`mv out elsewhere; ln -s elsewhere out`).
    public static func first(on file: String, from folder: String) -> String? {
        var info = stat()
        if lstat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK { return folder }
        return first(on: file, below: folder)
    }
}
