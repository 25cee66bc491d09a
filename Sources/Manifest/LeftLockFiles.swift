import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a folder holds of a project whose manifest is gone, found in one listing: whether it holds
/// Derive's state folder, its Derive locks at any name, and its dot sub-folders worth looking
/// through. Issue #9, attack 49a's F3: a gone project's lock was looked for only at names ending
/// in `.lock`, so `lock: docs/readme.md` or `lock: n-lock.txt` claimed nothing (validate passed a
/// public bucket over its private outputs, serve answered them to anyone, another manifest adopted
/// and cleaned them) while serve itself knew the file for a lock. A Derive lock is known by its
/// first line (`{"format":"derive.lock/…","manifest":"../g.yaml",…}`), never by its name.
///
/// Bounded: entries that are no regular file (by the listing's type, no link followed) are not
/// opened; a regular file is opened without following a link and without blocking, and only its
/// first `lockMarker` bytes are read unless they are a lock's, then its first line, up to
/// `maxFirstLine` bytes. At most `maxFilesRead` files are opened per folder.
public enum LeftLockFiles {
    /// Bytes of a lock's first line read at most (its header: format and manifest).
    public static let maxFirstLine = LockFirstLine.maxBytes
    /// Regular files opened at most per folder (a folder of more has the rest unread).
    public static let maxFilesRead = 20_000
    /// Dot folders never looked through: version control's and Derive's own state folder (whose
    /// `STEM` folders are found by name, `NeighbourProjects.manifestsGone`).
    public static let skippedDotFolders: Set<String> = ObjectKey.unservedNames

    public struct Listing: Sendable {
        /// The folder holds an entry named `.derive`, or a name ending in `.lock`.
        public var marked = false
        /// Derive locks at any name: each path with the manifest its first line names (absolute).
        public var locks: [(lock: String, manifest: String)] = []
        /// Sub-folders whose names start with `.` (`skippedDotFolders` aside), sorted.
        public var dotFolders: [String] = []
    }

    /// `folder` listed once (see the type's comment).
    public static func listing(of folder: String) -> Listing {
        var found = Listing()
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0, let directory = fdopendir(descriptor) else {
            if descriptor >= 0 { close(descriptor) }
            return found
        }
        defer { closedir(directory) }
        let base = folder == "/" ? "" : folder
        let state = Array(ProjectMarkers.stateFolderName.utf8), suffix = Array(".lock".utf8)
        var opened = 0
        while let entry = readdir(directory) {
            let type = entry.pointee.d_type
            let name = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) { String(cString: $0) }
            }
            guard name != ".", name != ".." else { continue }
            let bytes = Array(name.utf8)
            if bytes.elementsEqual(state) || (bytes.count > suffix.count && bytes.suffix(suffix.count).elementsEqual(suffix)) { found.marked = true }
            var kind = type
            if kind == UInt8(DT_UNKNOWN) {
                var info = stat()
                guard fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                kind = (info.st_mode & S_IFMT) == S_IFDIR ? UInt8(DT_DIR) : (info.st_mode & S_IFMT) == S_IFREG ? UInt8(DT_REG) : UInt8(DT_LNK)
            }
            if kind == UInt8(DT_DIR) {
                if name.hasPrefix("."), !skippedDotFolders.contains(name) { found.dotFolders.append(base + "/" + name) }
            } else if kind == UInt8(DT_REG), opened < maxFilesRead {
                opened += 1
                if let manifest = manifestNamed(byLockNamed: name, in: descriptor, folder: folder) {
                    found.locks.append((base + "/" + name, manifest))
                }
            }
        }
        found.dotFolders.sort()
        found.locks.sort { $0.lock < $1.lock }
        return found
    }

    /// The manifest the first line of the file `name` in the open folder names, when it is a
    /// regular file (no link followed) whose first line is the header Derive writes
    /// (`LockFirstLine.derivesLockManifest`, the rule serve hides a lock in a bucket by); nil otherwise.
    static func manifestNamed(byLockNamed name: String, in folder: Int32, folder path: String) -> String? {
        guard let named = LockFirstLine.lockHeader(name, in: folder).flatMap(LockFirstLine.derivesLockManifest) else { return nil }
        return URL(literalFilePath: named, relativeTo: URL(literalFilePath: path + "/")).standardizedFileURL.path
    }
}
