import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A path resolved one name at a time, symbolic links followed as the kernel follows them (at
/// most `maxLinks`), each link read once: where it leads, each link met and each folder a name
/// was looked up in. Whether the path still leads to the same place is then told by those
/// folders alone: a link re-pointed (`ln -sfn` then `mv -T`), a folder replaced or moved, a name
/// removed all change the times of the folder holding the name, and the folders on the way to
/// it are looked up in too (attack 18's P1: serve had resolved every link of every bucket's
/// path from its start, twice, before each request).
public struct PathWalk: Sendable, Equatable {
    /// A file as `lstat` saw it.
    public struct Entry: Sendable, Equatable {
        public var path: String
        /// Device, inode, mode, then for a link its size, modification and status-change times.
        public var numbers: [Int64]
    }
    /// A folder looked in: its identity and its times (a name made, removed or re-pointed in it
    /// changes them).
    public struct Folder: Sendable, Equatable {
        public var path: String
        public var numbers: [Int64]
        public init(path: String, numbers: [Int64]) { self.path = path; self.numbers = numbers }
        /// Device, inode and mode: which folder it is.
        public var identity: ArraySlice<Int64> { numbers.prefix(3) }
        /// The later of its modification and status-change times, in nanoseconds.
        public var changed: Int64 { numbers.count >= 7 ? max(numbers[3] * 1_000_000_000 + numbers[4], numbers[5] * 1_000_000_000 + numbers[6]) : .max }
    }

    /// The absolute path walked.
    public var path: String
    /// Each symbolic link met, in order.
    public var links: [Entry] = []
    /// Each folder a name was looked up in, in the order first met, each once.
    public var folders: [Folder] = []
    /// Each name looked up (its full path), as `lstat` saw it (`entryNumbers`; empty: nothing
    /// there), in order.
    public var names: [Entry] = []
    /// Device, inode and mode of what the path leads to; nil when nothing is there, a name on
    /// the way is not a folder, or the links loop (more than `maxLinks`).
    public var target: [Int64]?
    /// The real path of the target (no link on it), when there is one.
    public var end: String?
    /// When the walk started (nanoseconds since 1970, the real-time clock).
    public var started: Int64 = 0
    /// `lstat` and `readlink` calls made.
    public var calls = 0

    /// The kernel's own bound on the links of one path (`ELOOP` past it).
    public static let maxLinks = 40

    public init(path: String, target: [Int64]?) { self.path = path; self.target = target }

    /// What one pass of walks (at one moment) has already looked at: paths that share folders
    /// and links look at each once.
    public struct Looks {
        var entries: [String: (info: stat, target: String?)] = [:]
        /// When the pass started: each walk of it counts as started then.
        let started = PathWalk.now()
        public init() {}
    }

    /// Walks each path, looking at each name they share once.
    public static func of(_ paths: [String], maxLinks: Int = PathWalk.maxLinks) -> [PathWalk] {
        var looks = Looks()
        return paths.map { of($0, maxLinks: maxLinks, looks: &looks) }
    }

    /// Walks `path` (absolute; a relative one is taken from the working folder).
    public static func of(_ path: String, maxLinks: Int = PathWalk.maxLinks) -> PathWalk {
        var looks = Looks()
        return of(path, maxLinks: maxLinks, looks: &looks)
    }

    /// `lstat` of `path` (and `readlink` of a link), once per pass.
    static func look(_ path: String, _ looks: inout Looks, calls: inout Int) -> (info: stat, target: String?)? {
        if let known = looks.entries[path] { return known }
        var info = stat()
        calls += 1
        guard lstat(path, &info) == 0 else { return nil }
        var target: String?
        if (info.st_mode & S_IFMT) == S_IFLNK {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            calls += 1
            let length = readlink(path, &buffer, buffer.count - 1)
            if length > 0 { target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        }
        looks.entries[path] = (info, target)
        return (info, target)
    }

    /// Walks `path` with the looks of this pass.
    public static func of(_ path: String, maxLinks: Int = PathWalk.maxLinks, looks: inout Looks) -> PathWalk {
        var walk = PathWalk(path: path, target: nil)
        walk.started = looks.started
        var pending = Array(path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).reversed())
        var current = ""
        if !path.hasPrefix("/") { current = CurrentFolder.path; if current == "/" { current = "" } }
        var seen: Set<String> = []
        // What `current` was when stepped into (nil: the root or the working folder, not yet looked at).
        var currentNumbers: [Int64]?
        var hops = 0
        while let name = pending.popLast() {
            if name == "." { continue }
            let folder = current.isEmpty ? "/" : current
            if seen.insert(folder).inserted {
                if currentNumbers == nil {
                    guard let looked = look(folder, &looks, calls: &walk.calls) else { return walk }
                    currentNumbers = folderNumbers(looked.info)
                }
                walk.folders.append(Folder(path: folder, numbers: currentNumbers!))
            }
            if name == ".." {
                current = (current as NSString).deletingLastPathComponent
                if current == "/" { current = "" }
                currentNumbers = nil
                continue
            }
            let next = current + "/" + name
            guard let looked = look(next, &looks, calls: &walk.calls) else {
                walk.names.append(Entry(path: next, numbers: []))
                return walk
            }
            let info = looked.info
            walk.names.append(Entry(path: next, numbers: entryNumbers(info)))
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                walk.links.append(Entry(path: next, numbers: linkNumbers(info)))
                hops += 1
                guard hops <= maxLinks, let target = looked.target else { return walk }
                pending += target.split(separator: "/", omittingEmptySubsequences: true).map(String.init).reversed()
                if target.hasPrefix("/") { current = ""; currentNumbers = nil }
            case S_IFDIR:
                current = next
                currentNumbers = folderNumbers(info)
            default:
                // A file: the end, or a name on the way that is not a folder (ENOTDIR).
                guard pending.isEmpty else { return walk }
                current = next
                currentNumbers = Array(folderNumbers(info).prefix(3))
            }
        }
        if currentNumbers == nil {
            guard let looked = look(current.isEmpty ? "/" : current, &looks, calls: &walk.calls) else { return walk }
            currentNumbers = folderNumbers(looked.info)
        }
        walk.target = Array(currentNumbers!.prefix(3))
        walk.end = current.isEmpty ? "/" : current
        return walk
    }

    /// The same place reached the same way: the same links, folders (by identity) and target.
    public func leadsAsBefore(_ other: PathWalk) -> Bool {
        target == other.target && links == other.links && folders.count == other.folders.count
            && zip(folders, other.folders).allSatisfy { $0.path == $1.path && $0.identity == $1.identity }
    }

    /// Device and inode of the target and of each folder above it (all were looked in on the
    /// way); empty without a target.
    public var lineage: [[Int64]] {
        guard let target, let end else { return [] }
        var result = [Array(target.prefix(2))]
        for folder in folders where folder.path == "/" || end.hasPrefix(folder.path + "/") {
            result.append(Array(folder.numbers.prefix(2)))
        }
        return result
    }

    /// Whether every folder looked in last changed at least `margin` seconds before the walk
    /// started: a later change then gives it other times (a change within the same timestamp
    /// tick as the look could keep them, git's "racy" case).
    public func isSettled(margin: Double) -> Bool {
        let limit = started - Int64(margin * 1_000_000_000)
        return folders.allSatisfy { $0.changed < limit }
    }

    /// Device, inode, mode, modification and status-change times (seconds, nanoseconds).
    public static func folderNumbers(_ info: stat) -> [Int64] {
        [Int64(bitPattern: UInt64(info.st_dev)), Int64(bitPattern: UInt64(info.st_ino)), Int64(info.st_mode),
         Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
    }

    /// What tells a name looked up from another: a link's full `linkNumbers` (a link is never
    /// changed in place, only replaced), anything else's device, inode and mode.
    public static func entryNumbers(_ info: stat) -> [Int64] {
        (info.st_mode & S_IFMT) == S_IFLNK ? linkNumbers(info) : Array(folderNumbers(info).prefix(3))
    }

    static func linkNumbers(_ info: stat) -> [Int64] {
        [Int64(bitPattern: UInt64(info.st_dev)), Int64(bitPattern: UInt64(info.st_ino)), Int64(info.st_mode), Int64(info.st_size),
         Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
    }

    /// The real-time clock, in nanoseconds since 1970.
    public static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
