import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The folders `MovedStateFolder` searches, kept between searches: each folder's subfolders by
/// the folder's stamp (device, inode, size, mtime, ctime), listed again only when that stamp
/// changed, and one breadth-first walk per start folder and device that answers every gone state
/// searched from there (the first folder in walk order with the state folder's identity: what
/// one search each found). Why: serve searched /tmp once per gone registered state and rescan
/// (a 910-line registry made an anonymous listing take 107–203 s instead of 1–2 s, s53).
///
/// Bounded: a walk lists at most `MovedStateFolder.maxFolders` folders, `maxDepth` levels, as a
/// search did; all walks of one process read at most `listBudget` folders and visit at most
/// `visitBudget` a window of `budgetSeconds`. A walk that runs out answers `.unsearched` for
/// what it did not reach (doubt, never "not there"); the folders it listed are kept, so the next
/// window goes on from there.
final class MovedStateIndex: @unchecked Sendable {
    static let shared = MovedStateIndex()

    static let listBudget = 4 * MovedStateFolder.maxFolders
    static let visitBudget = 32 * MovedStateFolder.maxFolders
    static let budgetSeconds = 1.0
    /// Folders whose listing is kept at most (past it the kept listings are dropped, never wrong).
    static let maxListings = 65_536

    /// What a folder is, as `stat` says it; a listing is kept while its folder's stamp is the same.
    struct Stamp: Equatable {
        var device: UInt64, inode: UInt64, size: Int64
        var mtime: Int64, mtimeNanos: Int64, ctime: Int64, ctimeNanos: Int64

        init(_ info: stat) {
            device = UInt64(info.st_dev); inode = UInt64(info.st_ino); size = Int64(info.st_size)
            mtime = Int64(info.st_mtim.tv_sec); mtimeNanos = Int64(info.st_mtim.tv_nsec)
            ctime = Int64(info.st_ctim.tv_sec); ctimeNanos = Int64(info.st_ctim.tv_nsec)
        }
    }

    struct Subfolder { var path: String; var device: UInt64; var inode: UInt64 }

    /// `trusted`: read a second or more after its folder last changed (else kept only to spare
    /// asking its subfolders again).
    private struct Listing { var stamp: Stamp; var subfolders: [Subfolder]; var trusted: Bool }

    /// One walk's answer: the paths of each inode met (walk order), and whether it ran to its bounds.
    struct Walk {
        var at: Double
        var complete: Bool
        var byInode: [UInt64: [String]]
        /// How long it took.
        var seconds = 0.0
    }

    /// A walk is kept at least this many times as long as it took: the searches take at most
    /// about a twentieth of a core whatever the folders hold.
    static let costShare = 20.0

    enum Answer: Equatable { case found(String), notFound, unsearched }

    private let keptSeconds: Double
    private let listBudget: Int
    private let visitBudget: Int
    /// Folders read (listed afresh) since this index was made: the tests see the kept ones reused.
    var folderReads: Int { lock.withLock { reads } }
    private var reads = 0

    /// `keptSeconds`, `listBudget`, `visitBudget`: the tests' smaller ones (every walk walked again, a budget run out).
    init(keptSeconds: Double = MovedStateFolder.keptSeconds, listBudget: Int = MovedStateIndex.listBudget, visitBudget: Int = MovedStateIndex.visitBudget) {
        self.keptSeconds = keptSeconds; self.listBudget = listBudget; self.visitBudget = visitBudget
    }

    private let lock = NSLock()
    private var listings: [String: Listing] = [:]
    private var walks: [String: Walk] = [:]
    private var windowStart = -Double.infinity
    private var listed = 0, visited = 0

    /// Where the folder `made` is now, searched from `start` (the deepest folder of its old path
    /// still there); `isFolder` says whether a candidate is the very folder (identity and birth).
    func find(_ made: StateFolderMade.Made, from start: String, isFolder: (String) -> Bool) -> Answer {
        let walk = self.walk(from: start, device: made.identity.device)
        if let path = (walk.byInode[made.identity.inode] ?? []).first(where: isFolder) { return .found(path) }
        return walk.complete ? .notFound : .unsearched
    }

    /// The walk from `start` on `device`, kept `MovedStateFolder.keptSeconds` (a moved project is
    /// found again within that time), else walked again over the kept listings.
    func walk(from start: String, device: UInt64) -> Walk {
        let key = start + "\u{0}" + String(device)
        let now = ProcessInfo.processInfo.systemUptime
        return lock.withLock {
            if let kept = walks[key], now - kept.at < max(keptSeconds, Self.costShare * kept.seconds) { return kept }
            var fresh = walkLocked(from: start, device: device, now: now)
            // Dated when it ended: a walk longer than `keptSeconds` (a busy /tmp, a loaded
            // machine) was stale at once, and every caller walked again (s54's first measure).
            let end = ProcessInfo.processInfo.systemUptime
            fresh.at = end
            fresh.seconds = end - now
            if walks.count >= 4096 { walks.removeAll() }
            walks[key] = fresh
            return fresh
        }
    }

    /// Breadth first, as `MovedStateFolder.search` walks: links never followed, one file system.
    private func walkLocked(from start: String, device: UInt64, now: Double) -> Walk {
        if now - windowStart >= Self.budgetSeconds { windowStart = now; listed = 0; visited = 0 }
        var queue: [(path: String, depth: Int)] = [(start, 0)]
        var head = 0, count = 0
        var byInode: [UInt64: [String]] = [:]
        while head < queue.count, count < MovedStateFolder.maxFolders {
            let (folder, depth) = queue[head]
            head += 1
            guard visited < visitBudget else { return Walk(at: now, complete: false, byInode: byInode) }
            visited += 1
            var info = stat()
            guard stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            let stamp = Stamp(info)
            let subfolders: [Subfolder]
            if let kept = listings[folder], kept.trusted, kept.stamp == stamp {
                subfolders = kept.subfolders
            } else {
                guard listed < listBudget else { return Walk(at: now, complete: false, byInode: byInode) }
                listed += 1
                reads += 1
                guard let read = Self.list(folder, before: listings[folder]?.subfolders ?? []) else { listings[folder] = nil; continue }
                subfolders = read
                // A listing read in the very second its folder changed may miss a change made in
                // the same clock tick (the stamp would not show it): kept only once older.
                let wall = Int64(Date().timeIntervalSince1970)
                if listings.count >= Self.maxListings { listings.removeAll() }
                listings[folder] = Listing(stamp: stamp, subfolders: read, trusted: wall > stamp.mtime + 1 && wall > stamp.ctime + 1)
            }
            count += 1
            for sub in subfolders where sub.device == device {
                byInode[sub.inode, default: []].append(sub.path)
                if depth + 1 < MovedStateFolder.maxDepth { queue.append((sub.path, depth + 1)) }
            }
        }
        return Walk(at: now, complete: true, byInode: byInode)
    }

    /// The subfolders of `folder` (links never followed; an unknown type asked without following
    /// one), in the order the folder lists them; nil when it cannot be listed.
    /// `before`: its subfolders as last listed; one of the same name whose inode the listing still
    /// gives is not asked again (its device is the same: a folder mounted over since lists another
    /// inode than `lstat` gives, so it is asked).
    static func list(_ folder: String, before: [Subfolder] = []) -> [Subfolder]? {
        guard let listing = opendir(folder) else { return nil }
        defer { closedir(listing) }
        var known: [String: Subfolder] = [:]
        for sub in before { known[sub.path] = sub }
        var found: [Subfolder] = []
        while let item = readdir(listing) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            guard name != ".", name != ".." else { continue }
            let type = item.pointee.d_type
            if type == UInt8(DT_LNK) { continue }
            let path = (folder == "/" ? "" : folder) + "/" + name
            if type == UInt8(DT_DIR), let sub = known[path], sub.inode == UInt64(item.pointee.d_ino) {
                found.append(sub)
                continue
            }
            var info = stat()
            if type != UInt8(DT_DIR) {
                guard type == UInt8(DT_UNKNOWN), lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            } else if lstat(path, &info) != 0 { continue }
            found.append(Subfolder(path: path, device: UInt64(info.st_dev), inode: UInt64(info.st_ino)))
        }
        return found
    }
}
