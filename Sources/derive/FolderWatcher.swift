import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// Linux inotify over a bounded set of folders: folders watched recursively (new subfolders are
/// added as they appear) and folders watched alone (a manifest's folder). Reports changed paths.
final class FolderWatcher {
    struct Event {
        var path: String
        var isFolder: Bool
        /// Created or moved in (a new subfolder is watched at once).
        var appeared: Bool
        /// Moved in or out, or the watch queue overflowed: always counts as a change.
        var moved: Bool
        /// Only its attributes changed (chmod, chown, a timestamp set): a change only when what the
        /// build can read changed (`WatchMode.Readability`), not on every chmod or `touch -a`.
        var attributes: Bool = false
    }

    struct LimitError: Error, CustomStringConvertible {
        var description: String
    }

    /// The most folders one watch follows: each costs one inotify watch of the user's
    /// `fs.inotify.max_user_watches` (often 8192 to 65536), shared with editors and other tools.
    static let maxWatches = 8_192

    let descriptor: Int32
    private var folders: [Int32: (path: String, recursive: Bool)] = [:]
    /// Folders never watched nor reported (the state folder).
    private let skipped: [String]
    var skippedFolders: [String] { skipped }
    /// What the watch mode asked this watcher to follow.
    var watched: WatchMode.Watched?
    private static let mask: UInt32 = UInt32(IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
                                             | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

    init(skipping skipped: [String]) throws {
        descriptor = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard descriptor >= 0 else {
            throw LimitError(description: "cannot start watching: inotify_init1 failed (\(String(cString: strerror(errno)))); raise fs.inotify.max_user_instances or stop other watchers")
        }
        self.skipped = skipped
    }

    deinit { close(descriptor) }

    var count: Int { folders.count }

    /// Forgets every watch (the manifest changed what is read); `watch` adds them again.
    func reset() {
        for wd in folders.keys { inotify_rm_watch(descriptor, wd) }
        folders = [:]
    }

    func isSkipped(_ path: String) -> Bool {
        skipped.contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    /// Watches `folder` (and, when `recursive`, every folder below it, symbolic links not followed).
    func watch(_ folder: String, recursive: Bool) throws {
        guard !isSkipped(folder) else { return }
        try add(folder, recursive: recursive)
        guard recursive else { return }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names.sorted() {
            let path = folder + "/" + name
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { try watch(path, recursive: true) }
        }
    }

    /// Watches `folder` alone when the limit leaves room; silently skipped otherwise (or when
    /// it is gone): what only helps notice a change made by hand.
    func watchIfRoom(_ folder: String) {
        guard !isSkipped(folder), folders.count < Self.maxWatches - 1 else { return }
        try? add(folder, recursive: false)
    }

    private func add(_ folder: String, recursive: Bool) throws {
        if folders.count >= Self.maxWatches, !folders.values.contains(where: { $0.path == folder }) {
            throw LimitError(description: "more than \(Self.maxWatches) folders to watch (at \(folder)); watch mode follows at most \(Self.maxWatches): narrow the source buckets, or build without --watch")
        }
        let wd = inotify_add_watch(descriptor, folder, Self.mask)
        guard wd >= 0 else {
            let error = errno
            if error == ENOSPC {
                throw LimitError(description: "the system's inotify watch limit is reached at \(folder) (\(folders.count) watched by this build); raise it with 'sudo sysctl fs.inotify.max_user_watches=524288' (fs.inotify.max_user_watches), or watch fewer folders")
            }
            // Gone since it was listed, or for a moment a loop of links (ELOOP): like a missing
            // folder, the build names it and the watch on the folder above sees it come back.
            // A folder this user may not read (mode 000): the build names it; made readable, the
            // attribute event on the folder above watches it then.
            if error == ENOENT || error == ENOTDIR || error == ELOOP || error == EACCES { return }
            throw LimitError(description: "cannot watch \(folder): \(String(cString: strerror(error)))")
        }
        let recursive = recursive || (folders[wd]?.recursive ?? false)
        folders[wd] = (folder, recursive)
    }

    /// Stops watching the folder `name` (bytes) in `parent` and every folder watched below the path
    /// its watch had: the same inode keeps its watch across a rename, under its old path.
    private func forgetWatch(of parent: String, name: [UInt8]) {
        let bytes = Array(parent.utf8) + [UInt8(ascii: "/")] + name + [0]
        let wd = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { inotify_add_watch(descriptor, $0.baseAddress, Self.mask) }
        }
        guard wd >= 0 else { return }
        guard let old = folders[wd]?.path else { inotify_rm_watch(descriptor, wd); return }
        for (other, entry) in folders where entry.path == old || entry.path.hasPrefix(old + "/") {
            inotify_rm_watch(descriptor, other)
            folders[other] = nil
        }
    }

    /// Reads the events waiting now (none when there are none). New subfolders of recursive
    /// folders are watched before this returns, and reported with every file already in them.
    func read() throws -> [Event] {
        var events: [Event] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            var offset = 0
            while offset + 16 <= count {
                let (wd, mask, length) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int) in
                    (raw.loadUnaligned(fromByteOffset: offset, as: Int32.self), raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                     Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
                }
                let nameBytes = buffer[(offset + 16)..<min(count, offset + 16 + length)].prefix { $0 != 0 }
                offset += 16 + length
                if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    events.append(Event(path: "(many files)", isFolder: true, appeared: false, moved: true))
                    continue
                }
                if mask & UInt32(IN_IGNORED) != 0 { folders[wd] = nil; continue }
                guard let folder = folders[wd] else { continue }
                if mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                    events.append(Event(path: folder.path, isFolder: true, appeared: false, moved: mask & UInt32(IN_MOVE_SELF) != 0))
                    continue
                }
                let isFolder = nameBytes.isEmpty || mask & UInt32(IN_ISDIR) != 0
                let appeared = mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0
                let moved = mask & UInt32(IN_MOVED_FROM | IN_MOVED_TO) != 0
                // A name that is not UTF-8 (a folder renamed by an old unzip or convmv): named by its
                // bytes as the build names it (`Caf\xE9`), never as U+FFFD; the build never walks into
                // such a folder, so it is not watched, and a watch it kept from its old name is
                // dropped (attack 44a's L1: its files were reported under the old path).
                if String(validating: nameBytes, as: UTF8.self) == nil {
                    let path = folder.path + "/" + DiskObjectLister.escaped(Array(nameBytes))
                    if isFolder, appeared { forgetWatch(of: folder.path, name: Array(nameBytes)) }
                    events.append(Event(path: path, isFolder: isFolder, appeared: appeared, moved: true))
                    continue
                }
                // No name: the watched folder's own attributes changed.
                let path = nameBytes.isEmpty ? folder.path : folder.path + "/" + String(decoding: nameBytes, as: UTF8.self)
                if isSkipped(path) { continue }
                let attributes = mask & UInt32(IN_ATTRIB) != 0 && !appeared && !moved
                events.append(Event(path: path, isFolder: isFolder, appeared: appeared, moved: moved, attributes: attributes))
                // A folder made readable that could not be watched before (mode 000 when it came).
                if isFolder, attributes, folder.recursive, !folders.values.contains(where: { $0.path == path }) {
                    try watch(path, recursive: true)
                }
                if isFolder, appeared, folder.recursive {
                    try watch(path, recursive: true)
                    // Files written before the watch existed.
                    if let enumerator = FileManager.default.enumerator(atPath: path) {
                        for case let name as String in enumerator {
                            var info = stat()
                            guard lstat(path + "/" + name, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR else { continue }
                            events.append(Event(path: path + "/" + name, isFolder: false, appeared: true, moved: false))
                        }
                    }
                }
            }
        }
        return events
    }
}
