import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a registered build state folder lies now that it is no longer at the path the registry
/// of built projects names: the project was renamed or moved (`mv x/y/far x/y/far2`,
/// `mv far elsewhere/`, `mv x x2`), every inode kept. Found by the folder's own identity, as the
/// state home noted it when Derive made it (`StateFolderMade`: device, inode, birth), looked for
/// below the deepest folder of its old path still there. Why: the registry and the tokens named
/// only the old paths, so the original took the moved taker's file as a "restored copy" and
/// `clean` deleted it (attack 52a's F1), and serve answered its private output (F9, 52b's 3).
///
/// Bounded (`maxFolders` folders listed, `maxDepth` levels below that folder, one file system,
/// links never followed): a project moved farther is found again once it builds (its no-op
/// build records it anew). The searches share their walks and listings (`MovedStateIndex`), so
/// serve's rescan every second and a plan asking many files list each folder once.
public enum MovedStateFolder {
    public static let maxFolders = 4096
    public static let maxDepth = 6
    /// How long a walk's answers are kept (a moved project is found again within this time).
    static let keptSeconds = 2.0

    /// Where a registered state folder is, as `answer` says it.
    public enum Answer: Equatable, Sendable {
        /// At its registered path, or its identity was never noted (nothing to search for).
        case inPlace
        case found(String)
        /// Searched for within the bounds and not found there.
        case notFound
        /// Not searched to the end in this window (`MovedStateIndex`'s budget): doubt, never "not there".
        case unsearched
    }

    /// The folder the state folder registered at `state` (a real path) is now, when it is no longer
    /// there and the state home noted its identity; nil when it is there, unknown, not found, or
    /// not searched to the end yet (`answer` tells those apart).
    public static func find(registered state: String) -> String? {
        if case .found(let path) = answer(registered: state) { return path }
        return nil
    }

    /// Where the state folder registered at `state` is, searched through the kept walks of
    /// `MovedStateIndex` (one walk per start folder answers every gone state below it).
    public static func answer(registered state: String) -> Answer {
        var info = stat()
        if lstat(state + "/" + StateFiles.database, &info) == 0 { return .inPlace }
        guard let made = StateFolderMade.read(name: StateFolderMade.name(forState: state)).last(where: { PathKey.same($0.path, state) }) else { return .inPlace }
        guard let start = searchStart(state) else { return .notFound }
        switch MovedStateIndex.shared.find(made, from: start, isFolder: { isFolder($0, made) }) {
        case .found(let path): return .found(path)
        case .notFound: return .notFound
        case .unsearched: return .unsearched
        }
    }

    /// The same answer searched afresh, nothing kept (the search each gone state had before the
    /// index; the tests compare the two).
    static func freshAnswer(registered state: String) -> Answer {
        var info = stat()
        if lstat(state + "/" + StateFiles.database, &info) == 0 { return .inPlace }
        guard let made = StateFolderMade.read(name: StateFolderMade.name(forState: state)).last(where: { PathKey.same($0.path, state) }) else { return .inPlace }
        return search(for: made, from: state).map { .found($0) } ?? .notFound
    }

    /// The deepest existing folder of `old`'s path (never `/`), where a search starts.
    static func searchStart(_ old: String) -> String? {
        var start = (old as NSString).deletingLastPathComponent
        while start != "/", !start.isEmpty, FileIdentity.ofFolder(start) == nil { start = (start as NSString).deletingLastPathComponent }
        return start != "/" && !start.isEmpty ? start : nil
    }

    /// Whether the folder at `path` is the very folder made (device, inode, and birth when noted).
    static func isFolder(_ path: String, _ made: StateFolderMade.Made) -> Bool {
        guard let now = FileIdentity.ofFolder(path), now == made.identity else { return false }
        var info = stat()
        guard lstat(path + "/" + StateFiles.database, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        return made.birth == 0 || FileBirth.of(path) == made.birth
    }

    /// Breadth first below the deepest existing folder of `old`'s path (never from `/`).
    static func search(for made: StateFolderMade.Made, from old: String) -> String? {
        guard let start = searchStart(old) else { return nil }
        var queue: [(path: String, depth: Int)] = [(start, 0)]
        var listed = 0
        while !queue.isEmpty, listed < maxFolders {
            let (folder, depth) = queue.removeFirst()
            guard let listing = opendir(folder) else { continue }
            listed += 1
            defer { closedir(listing) }
            while let item = readdir(listing) {
                let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                guard name != ".", name != ".." else { continue }
                let type = item.pointee.d_type
                // A link is never followed; an unknown type is asked without following one.
                if type == UInt8(DT_LNK) { continue }
                let path = (folder == "/" ? "" : folder) + "/" + name
                var info = stat()
                if type != UInt8(DT_DIR) {
                    guard type == UInt8(DT_UNKNOWN), lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { continue }
                } else if lstat(path, &info) != 0 { continue }
                guard UInt64(info.st_dev) == made.identity.device else { continue }
                if UInt64(info.st_ino) == made.identity.inode, isFolder(path, made) { return path }
                if depth + 1 < maxDepth { queue.append((path, depth + 1)) }
            }
        }
        return nil
    }

    /// `path` (one of the registered project's paths) carried along the move `old` → `new` of its
    /// state folder: the folders the two paths do not share at their ends are the ones moved
    /// (`…/x/y/far/.derive/n` → `…/x/y/far2/.derive/n`: `…/x/y/far` became `…/x/y/far2`). Nil
    /// when `path` does not lie in the moved folder (an absolute lock elsewhere stays put).
    public static func carried(_ path: String, from old: String, to new: String) -> String? {
        var oldParts = old.split(separator: "/", omittingEmptySubsequences: true)
        var newParts = new.split(separator: "/", omittingEmptySubsequences: true)
        while let a = oldParts.last, let b = newParts.last, a == b, oldParts.count > 1, newParts.count > 1 {
            oldParts.removeLast(); newParts.removeLast()
        }
        let oldHead = "/" + oldParts.joined(separator: "/"), newHead = "/" + newParts.joined(separator: "/")
        if PathKey.same(path, oldHead) { return newHead }
        guard path.utf8.starts(with: (oldHead + "/").utf8) else { return nil }
        return newHead + String(decoding: path.utf8.dropFirst(oldHead.utf8.count), as: UTF8.self)
    }

    /// The registry's line `entry` as it lies now that its state folder moved to `state`: its
    /// manifest, lock and buckets carried along when they lay in the folder moved.
    public static func moved(_ entry: ProjectRegistry.Entry, to state: String) -> ProjectRegistry.Entry {
        // What is still where it was did not move (a bucket beside the folder moved).
        func follow(_ path: String) -> String {
            var info = stat()
            guard lstat(path, &info) != 0 else { return path }
            return carried(path, from: entry.state, to: state) ?? path
        }
        var moved = entry
        moved.state = state
        moved.manifest = follow(entry.manifest)
        moved.lock = follow(entry.lock)
        moved.buckets = entry.buckets.mapValues(follow)
        moved.declared = entry.declared.mapValues(follow)
        return moved
    }
}
