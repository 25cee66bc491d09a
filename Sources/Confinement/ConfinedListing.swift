import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading one folder of a confined folder, for listings: the folder is reached like any key
/// (segment by segment with `O_NOFOLLOW`), and its entries are described with `fstatat(…,
/// AT_SYMLINK_NOFOLLOW)`, so a link inside a bucket is never followed, only skipped.
extension ConfinedFolder {
    public struct ListedEntry: Sendable, Hashable {
        /// The entry's name (one segment), as bytes.
        public var name: [UInt8]
        public var isFolder: Bool
        /// For regular files: size and times.
        public var status: FileStatus?
    }

    /// Every entry directly in the folder itself, links, FIFOs, sockets and devices included,
    /// each with its kind (never followed), for a caller that must name what it leaves;
    /// nil when it cannot be read.
    public func allEntries() -> [(name: [UInt8], kind: EntryKind)]? {
        let fd = openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard let directory = fdopendir(fd) else { close(fd); return nil }
        defer { closedir(directory) }
        let directoryFD = dirfd(directory)
        var found: [(name: [UInt8], kind: EntryKind)] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
            if name == [0x2E] || name == [0x2E, 0x2E] || name.isEmpty { continue }
            var info = stat()
            let status = name.withUnsafeBufferPointer { buffer -> Int32 in
                buffer.withMemoryRebound(to: CChar.self) { chars in
                    var text = Array(chars)
                    text.append(0)
                    return fstatat(directoryFD, text, &info, AT_SYMLINK_NOFOLLOW)
                }
            }
            guard status == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFREG: found.append((name, .file))
            case S_IFDIR: found.append((name, .folder))
            case S_IFLNK: found.append((name, .symbolicLink))
            default: found.append((name, .other))
            }
        }
        return found
    }

    /// The regular files and folders directly in the folder at `folderKey` (empty: the top),
    /// unsorted. Links, devices, FIFOs and sockets are left out; nil when the folder cannot be
    /// reached without following a link (or does not exist).
    public func entries(in folderKey: [UInt8]) -> [ListedEntry]? {
        var entries: [ListedEntry] = []
        let reached = forEachEntry(in: folderKey) { entries.append($0); return true }
        return reached ? entries : nil
    }

    /// Calls `body` with each regular file and folder directly in the folder at `folderKey`, in
    /// the order the file system gives, until it returns false. False when the folder cannot be
    /// reached (see `entries(in:)`).
    @discardableResult
    public func forEachEntry(in folderKey: [UInt8], _ body: (ListedEntry) -> Bool) -> Bool {
        let fd: Int32
        if folderKey.isEmpty {
            fd = openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        } else {
            // The parent of "<folder>/x" is the folder itself, opened without following links.
            guard let key = try? ObjectKey(fileName: folderKey + Array("/x".utf8)),
                  let (folder, _) = try? walkToParent(key, create: false) else { return false }
            fd = folder == descriptor ? openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : folder
        }
        guard fd >= 0 else { return false }
        guard let directory = fdopendir(fd) else { close(fd); return false }
        defer { closedir(directory) }
        let directoryFD = dirfd(directory)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix(while: { $0 != 0 })) }
            if name == [0x2E] || name == [0x2E, 0x2E] || name.isEmpty { continue }
            var info = stat()
            let status = name.withUnsafeBufferPointer { buffer -> Int32 in
                let text = String(decoding: buffer, as: UTF8.self)
                // A name that is not valid UTF-8 cannot be a key: decoding would change it.
                guard Array(text.utf8) == name else { return -1 }
                return fstatat(directoryFD, text, &info, AT_SYMLINK_NOFOLLOW)
            }
            guard status == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFREG: if !body(ListedEntry(name: name, isFolder: false, status: FileStatus(info))) { return true }
            case S_IFDIR: if !body(ListedEntry(name: name, isFolder: true, status: nil)) { return true }
            default: continue
            }
        }
        return true
    }
}
