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
        ReadSnapshot.answer("left lock files", folder) { read(folder, stamped: false).listing }
    }

    /// Whether `folder` holds an entry named `.derive` or a name ending in `.lock` (`Listing.marked`),
    /// told by its names alone: no file in it is opened. Why: the look for projects whose lock or
    /// state a bucket's folder holds (`NeighbourProjects`, attack 52b's 5) asked `keptListing`,
    /// which opens every regular file for a lock's first line, of every bucket on every load: a
    /// no-op opened each source of a sources bucket (s53's full run, NoOpEdgesRound20Tests).
    public static func isMarked(_ folder: String) -> Bool {
        ReadSnapshot.answer("left lock marks", folder) {
            guard let directory = opendir(folder) else { return false }
            defer { closedir(directory) }
            let state = Array(ProjectMarkers.stateFolderName.utf8), suffix = Array(".lock".utf8)
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
                if name.elementsEqual(state) || (name.count > suffix.count && name.suffix(suffix.count).elementsEqual(suffix)) { return true }
            }
            return false
        }
    }

    /// `listing(of:)`, kept across questions while nothing it read changed: the folder's device,
    /// inode and times, and each regular file it opened, by device, inode, size and times (a file
    /// rewritten in place into a lock changes no time of its folder). Serve looks for gone
    /// projects again every second, with a new `ForeignProjectFiles`: every folder looked at (up
    /// to 1 024, attack 49a's F6 search) was listed and each of its files opened anew each time.
    /// Not kept while the folder or a file read was modified under two seconds before the
    /// listing (a change in the same clock tick would leave the times as they were: git's
    /// "racily clean"). At most `maxKeptFolders` kept. `LeftLockFilesKeptTests` compares it with `listing(of:)`.
    public static func keptListing(of folder: String) -> Listing {
        ReadSnapshot.answer("left lock files", folder) { keptListingNow(of: folder) }
    }

    private static func keptListingNow(of folder: String) -> Listing {
        var info = stat()
        guard stat(folder, &info) == 0 else { return Listing() }
        let stamp = folderStamp(info)
        if let known = kept.withLock({ $0[folder] }), known.folder == stamp, unchanged(known.opened, in: folder) { return known.listing }
        let (listing, opened) = read(folder, stamped: true)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let settled = Int64(now.tv_sec) - stamp[2] >= 2 && opened.allSatisfy { $0.stamp.count == 7 && Int64(now.tv_sec) - $0.stamp[2] >= 2 }
        if settled {
            kept.withLock { cache in
                if cache.count >= maxKeptFolders { cache.removeAll() }
                cache[folder] = (stamp, opened, listing)
            }
        }
        return listing
    }

    /// Folders whose listing `keptListing` keeps at most (all forgotten when full).
    public static let maxKeptFolders = 8192
    private static let kept = LockedBox<[String: (folder: [Int64], opened: [(name: String, stamp: [Int64])], listing: Listing)]>([:])

    /// Whether `folder`'s listing is kept (tests).
    static func isKept(_ folder: String) -> Bool { kept.withLock { $0[folder] != nil } }

    private static func folderStamp(_ info: stat) -> [Int64] {
        [Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
         Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec)]
    }

    /// Device, inode, size, modification and change times (seconds, nanoseconds) of a file.
    private static func fileStamp(_ info: stat) -> [Int64] {
        [Int64(info.st_dev), Int64(info.st_ino), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
         Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec), Int64(info.st_size)]
    }

    /// Whether each file of `opened` in `folder` still has its stamp (no link followed).
    private static func unchanged(_ opened: [(name: String, stamp: [Int64])], in folder: String) -> Bool {
        guard !opened.isEmpty else { return true }
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var info = stat()
        return opened.allSatisfy { fstatat(descriptor, $0.name, &info, AT_SYMLINK_NOFOLLOW) == 0 && fileStamp(info) == $0.stamp }
    }

    /// The listing, and (`stamped`) the stamp of each regular file opened, taken before it was read.
    private static func read(_ folder: String, stamped: Bool) -> (listing: Listing, opened: [(name: String, stamp: [Int64])]) {
        var found = Listing()
        var stamps: [(name: String, stamp: [Int64])] = []
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0, let directory = fdopendir(descriptor) else {
            if descriptor >= 0 { close(descriptor) }
            return (found, stamps)
        }
        defer { closedir(directory) }
        let base = folder == "/" ? "" : folder
        let state = Array(ProjectMarkers.stateFolderName.utf8), suffix = Array(".lock".utf8)
        var opened = 0, headersRead = 0
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
                var stamp: [Int64] = [-1]
                if stamped {
                    var info = stat()
                    if fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 { stamp = fileStamp(info) }
                    stamps.append((name, stamp))
                }
                let manifest: String?
                if stamped, let known = keptVerdict(base + "/" + name, stamp: stamp) {
                    manifest = known
                } else {
                    manifest = manifestNamed(byLockNamed: name, in: descriptor, folder: folder)
                    if stamped { keepVerdict(base + "/" + name, stamp: stamp, manifest: manifest); headersRead += 1 }
                }
                if let manifest { found.locks.append((base + "/" + name, manifest)) }
            }
        }
        found.dotFolders.sort()
        found.locks.sort { $0.lock < $1.lock }
        if headersRead > 0 { keptReads.withLock { if $0.count >= maxKeptFolders { $0.removeAll() }; $0[folder, default: 0] += headersRead } }
        return (found, stamps)
    }

    /// Per file a kept listing opened (absolute path): its stamp before it was read and the
    /// manifest its first line names as a Derive lock (nil: no lock). Why: a folder whose times
    /// change every second (`/tmp`, a busy parent folder, one the nearby scan lists) had each of
    /// its files opened again at each of serve's per-second looks, three times a second (attack
    /// 53b's 4: 4 918 opens in 6 s, requests stalled ~1.2 s a second). A file whose identity,
    /// size and times are as when it was read holds what it held; one changed within two seconds
    /// of its read is not kept (a change in the same clock tick leaves the times as they were).
    private static let verdicts = LockedBox<[String: (stamp: [Int64], manifest: String?)]>([:])
    /// Files whose verdict is kept at most (all forgotten when full).
    static let maxKeptVerdicts = 65_536
    /// Per folder, the files a kept listing opened so far (tests: an unchanged file is not opened again).
    private static let keptReads = LockedBox<[String: Int]>([:])
    static func filesRead(in folder: String) -> Int { keptReads.withLock { $0[folder] ?? 0 } }

    /// The kept verdict of the file at `path` (`.some(nil)`: no lock) when it still has
    /// `stamp`; nil when none is kept for it.
    private static func keptVerdict(_ path: String, stamp: [Int64]) -> String?? {
        guard stamp.count == 7, let known = verdicts.withLock({ $0[path] }), known.stamp == stamp else { return nil }
        return .some(known.manifest)
    }

    /// Keeps `manifest` as the verdict of the file at `path` read with `stamp`, when its times are
    /// two seconds old or more (settled).
    private static func keepVerdict(_ path: String, stamp: [Int64], manifest: String?) {
        guard stamp.count == 7 else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard Int64(now.tv_sec) - max(stamp[2], stamp[4]) >= 2 else { return }
        verdicts.withLock { cache in
            if cache.count >= maxKeptVerdicts { cache.removeAll() }
            cache[path] = (stamp, manifest)
        }
    }

    /// The manifest the first line of the file `name` in the open folder names, when it is a
    /// regular file (no link followed) whose first line is the header Derive writes
    /// (`LockFirstLine.derivesLockManifest`, the rule serve hides a lock in a bucket by); nil otherwise.
    static func manifestNamed(byLockNamed name: String, in folder: Int32, folder path: String) -> String? {
        guard let named = LockFirstLine.lockHeader(name, in: folder).flatMap(LockFirstLine.derivesLockManifest) else { return nil }
        return URL(literalFilePath: named, relativeTo: URL(literalFilePath: path + "/")).standardizedFileURL.path
    }
}
