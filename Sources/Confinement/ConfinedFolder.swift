import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a file below a confined folder could not be reached.
public enum ConfinementError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Nothing at that key.
    case notFound(String)
    /// The key passes through or ends at a symbolic link: never followed, wherever it points.
    case symbolicLink(String)
    /// Something is there but it is not a regular file (a folder, a device, a FIFO).
    case notRegularFile(String)
    /// A segment before the last one is a file, not a folder (`photo.jpg/x`).
    case notAFolder(String)
    case permissionDenied(String)
    /// A commit that may not replace found something at the key.
    case alreadyExists(String)
    /// A FIFO, socket or device stands at the key: never opened, replaced or removed.
    case specialFile(String)
    /// A folder on the way is a mount point (another folder is mounted there): like a link, it
    /// may lead anywhere (another bucket, outside the project), so it is never walked through.
    case mountPoint(String)
    /// The file holds more than the reader's limit: refused from `fstat` before any byte is read
    /// (or, for a file that grew meanwhile, at the first byte past the limit).
    case tooLarge(String, size: Int, limit: Int)
    /// Any other system error, with `strerror`'s words.
    case system(String, String)
    /// The system refused to remove the file (an immutable file, a read-only mount, a sticky or
    /// another user's folder): `errno`. The file is where it was, unchanged.
    case removalRefused(String, code: Int32)

    public var description: String {
        switch self {
        case .notFound(let key): return "'\(key)' does not exist"
        case .symbolicLink(let key): return "'\(key)' is or passes through a symbolic link, which Derive never follows inside a bucket"
        case .notRegularFile(let key): return "'\(key)' is not a regular file"
        case .notAFolder(let key): return "'\(key)' lies under a file, not a folder"
        case .permissionDenied(let key): return "permission denied reading or writing '\(key)'"
        case .alreadyExists(let key): return "'\(key)' already exists"
        case .specialFile(let key): return "'\(key)' is a FIFO, socket or device, which Derive never replaces"
        case .mountPoint(let key): return "'\(key)' is a mount point (another folder is mounted there); Derive does not write, read or delete through mount points inside a bucket: unmount it, or make the mounted folder a bucket of its own"
        case .tooLarge(let key, let size, let limit): return "'\(key)': the file is \(size) bytes; the limit is \(limit)"
        case .system(let key, let reason): return "'\(key)': \(reason)"
        case .removalRefused(let key, let code): return "'\(key)' could not be removed: \(ConfinedFolder.refusalReason(code))"
        }
    }
}

/// What `stat` says about a file: enough to tell whether it changed since it was hashed
/// (git's index keeps ctime too: an edit that restores size and mtime still moves ctime).
public struct FileStatus: Sendable, Hashable {
    public var size: Int64
    /// Modification and status-change times, nanoseconds since 1970.
    public var mtime: Int64
    public var ctime: Int64
    public var inode: UInt64
    public var device: UInt64

    public init(size: Int64, mtime: Int64, ctime: Int64, inode: UInt64, device: UInt64 = 0) {
        self.size = size; self.mtime = mtime; self.ctime = ctime; self.inode = inode; self.device = device
    }

    init(_ info: stat) {
        size = Int64(info.st_size)
        mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        ctime = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        inode = UInt64(info.st_ino)
        device = UInt64(info.st_dev)
    }
}

/// A folder (a bucket) whose files are reached only by walking keys segment by segment with
/// `openat(…, O_NOFOLLOW)` from the folder's own descriptor. No symbolic link below the folder
/// is ever followed and no `..` exists in a valid key, so a mistake in any caller's validation
/// still cannot reach a file outside the folder.
///
/// The folder itself may be reached through symbolic links (it is named by the manifest's author).
public final class ConfinedFolder: Sendable {
    /// The path the folder was opened at.
    public let path: String
    let descriptor: Int32
    /// Folders and files created below it are the user's alone (0700/0600): serve's cache and
    /// uploads in the state folder (attack 23's F3). Otherwise 0755/0644 less the umask (a bucket).
    public let ownerOnly: Bool
    var folderMode: mode_t { ownerOnly ? 0o700 : 0o755 }
    /// The mount the folder is on: a folder below it on another mount is a mount point's.
    let mount: MountIdentity?
    var fileMode: mode_t { ownerOnly ? 0o600 : 0o644 }

    /// Opens `path`, which must be an existing folder; with `ownerOnly`, what is created below
    /// it is 0700/0600.
    public init(path: String, ownerOnly: Bool = false) throws(ConfinementError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error(errno, path) }
        self.path = path
        self.descriptor = fd
        self.ownerOnly = ownerOnly
        self.mount = MountIdentity.of(fd)
    }

    /// Opens the folder at `path`, a real path (no link in it when it was recorded), from `/`
    /// one component at a time with `O_NOFOLLOW`: a component that became a symbolic link since
    /// is refused, never followed.
    public init(realPath path: String) throws(ConfinementError) {
        var current = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard current >= 0 else { throw Self.error(errno, "/") }
        var walked = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            walked += "/" + component
            guard component != ".", component != ".." else { close(current); throw .notFound(path) }
            let next = openat(current, String(component), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            var info = stat()
            let isLink = next < 0 && fstatat(current, String(component), &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
            close(current)
            if isLink { throw .symbolicLink(walked) }
            guard next >= 0 else { throw Self.error(code, walked) }
            current = next
        }
        self.path = path
        self.descriptor = current
        self.ownerOnly = false
        self.mount = MountIdentity.of(current)
    }

    /// Opens the folder `name` directly in `parent` with `O_NOFOLLOW | O_DIRECTORY`: a symbolic
    /// link there is refused (`symbolicLink`), never followed, wherever it points.
    public init(subfolder name: String, of parent: ConfinedFolder) throws(ConfinementError) {
        let display = parent.path + "/" + name
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else { throw .notFound(display) }
        let fd = openat(parent.descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if Self.isLink(parent.descriptor, name) { throw .symbolicLink(display) }
            throw Self.error(code, display)
        }
        let mount = MountIdentity.of(fd)
        guard parent.isOnItsMount(mount) else { close(fd); throw .mountPoint(display) }
        self.path = display
        self.descriptor = fd
        self.ownerOnly = parent.ownerOnly
        self.mount = mount
    }

    deinit { close(descriptor) }

    /// The identity of this folder and of each folder above it up to the root, found from the
    /// descriptor (`..`, never a path): where the folder held is now, whatever links led to it.
    /// At most 256 levels; empty when the folder cannot be looked at.
    public var lineage: [FileStatus] {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return [] }
        var result = [FileStatus(info)]
        var current = dup(descriptor)
        guard current >= 0 else { return result }
        defer { close(current) }
        for _ in 0..<256 {
            let parent = openat(current, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard parent >= 0 else { break }
            close(current)
            current = parent
            guard fstat(current, &info) == 0 else { break }
            let status = FileStatus(info)
            // The root is its own parent.
            if let last = result.last, last.device == status.device, last.inode == status.inode { break }
            result.append(status)
        }
        return result
    }

    /// The folder held open, as `fstat` sees it (device and inode tell whether it is still the
    /// folder at `path`); nil when `fstat` fails.
    public var heldStatus: FileStatus? {
        var info = stat()
        return fstat(descriptor, &info) == 0 ? FileStatus(info) : nil
    }

    // MARK: Reading

    /// Reads the regular file a user named by path (links followed: the user chose the path),
    /// refusing folders, FIFOs and devices without blocking on them, and files over `maxBytes`.
    public static func readRegularFile(atPath path: String, maxBytes: Int = Int.max) throws(ConfinementError) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw error(errno, path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw error(errno, path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .notRegularFile(path) }
        _ = fcntl(fd, F_SETFL, O_RDONLY)
        return try readAll(fd, key: path, maxBytes: maxBytes)
    }

    /// Opens the regular file at `key` for reading; the caller closes the descriptor.
    public func openForReading(_ key: ObjectKey) throws(ConfinementError) -> Int32 {
        let (parent, name) = try walkToParent(key, create: false)
        defer { if parent != descriptor { close(parent) } }
        let fd = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw Self.error(errno, key.string) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { let code = errno; close(fd); throw Self.error(code, key.string) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { close(fd); throw .notRegularFile(key.string) }
        // O_NONBLOCK only kept a FIFO from blocking the open; regular files ignore it but clear it anyway.
        _ = fcntl(fd, F_SETFL, O_RDONLY)
        return fd
    }

    /// Reads the whole file at `key`, refusing files larger than `maxBytes`.
    public func read(_ key: ObjectKey, maxBytes: Int = Int.max) throws -> Data {
        let fd = try openForReading(key)
        defer { close(fd) }
        return try Self.readAll(fd, key: key.string, maxBytes: maxBytes)
    }

    /// `stat` of the regular file at `key`, or nil when there is none (or it is not reachable
    /// without following a link, or is not a regular file).
    public func status(_ key: ObjectKey) -> FileStatus? {
        guard let (parent, name) = try? walkToParent(key, create: false) else { return nil }
        defer { if parent != descriptor { close(parent) } }
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return FileStatus(info)
    }

    /// `status` of many keys, each folder walked once for all the keys below it (the no-op check
    /// stats tens of thousands of files in a few hundred folders): the same confinement, a
    /// third of the system calls.
    public func statuses(_ keys: [ObjectKey]) -> [FileStatus?] {
        // The folder of the run of keys being stated and its descriptor (-1: unreachable). The
        // callers' keys come in runs of one folder (sorted, or grouped by folder), so a folder is
        // walked once per run: no dictionary of folders, no hash of each key's folder (a runtime
        // conformance lookup and a hash per key in the no-op profile, issue 15). Keys that
        // alternate between folders walk once per key, as `status` does.
        var current: (folder: ArraySlice<UInt8>, fd: Int32)?
        defer { if let current, current.fd >= 0, current.fd != descriptor { close(current.fd) } }
        var name: [CChar] = []
        return keys.map { key in
            let bytes = key.bytes[...]
            let slash = bytes.lastIndex(of: UInt8(ascii: "/"))
            let folder = slash.map { bytes[..<$0] } ?? bytes[bytes.startIndex..<bytes.startIndex]
            // The last segment (as `key.segments.last`), NUL-terminated for fstatat: no String.
            name.removeAll(keepingCapacity: true)
            for byte in bytes[(slash.map { bytes.index(after: $0) } ?? bytes.startIndex)...] { name.append(CChar(bitPattern: byte)) }
            name.append(0)
            let parent: Int32
            if let current, current.folder == folder {
                parent = current.fd
            } else {
                if let current, current.fd >= 0, current.fd != descriptor { close(current.fd) }
                parent = (try? walkToParent(key, create: false))?.0 ?? -1
                current = (folder, parent)
            }
            var info = stat()
            guard parent >= 0, fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
            return FileStatus(info)
        }
    }

    /// What is at `key`, without following links: nil when nothing is there.
    public func kind(_ key: ObjectKey) -> EntryKind? {
        guard let (parent, name) = try? walkToParent(key, create: false) else { return nil }
        defer { if parent != descriptor { close(parent) } }
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .folder
        case S_IFLNK: return .symbolicLink
        default: return .other
        }
    }

    public enum EntryKind: Sendable, Hashable { case file, folder, symbolicLink, other }

    // MARK: Writing

    /// Writes `data` at `key` durably and atomically: a temporary file beside the target,
    /// `fsync`, `rename`, then `fsync` of the folder. Missing folders are created (never through
    /// a link); the keys of the folders created are returned, outermost first. With
    /// `replacing: false`, anything at `key` when the file is moved into place is kept
    /// (`alreadyExists`): nothing that appeared since the caller looked is ever replaced.
    ///
    /// With `replacingOnly`, a file at `key` is replaced only when the check approves its bytes
    /// *after* it was moved out of the way (`renameat2(RENAME_EXCHANGE)`): a file put there
    /// between the caller's last look and the move is moved back, never lost (`alreadyExists`).
    /// Nothing at `key`: the file is created there only if the name is still free.
    @discardableResult
    public func writeAtomically(_ data: Data, to key: ObjectKey, durable: Bool = true, replacing: Bool = true,
                                replacingOnly approve: ((Int32) -> Bool)? = nil) throws -> [String] {
        try writeAtomicallyReportingStatus(data, to: key, durable: durable, replacing: replacing, replacingOnly: approve).created
    }

    /// `writeAtomically`, with the written file's status from its own descriptor once in place
    /// (`TemporaryFile.installedStatus`; nil when it moved while being installed).
    /// `beforeCommit`: called with the filled temporary's descriptor just before it is moved into
    /// place (what is noted of the file to be installed); an error from it drops the file.
    public func writeAtomicallyReportingStatus(_ data: Data, to key: ObjectKey, durable: Bool = true, replacing: Bool = true,
                                               replacingOnly approve: ((Int32) -> Bool)? = nil,
                                               beforeCommit: (Int32) throws -> Void = { _ in }) throws -> (created: [String], status: FileStatus?) {
        let file = try createTemporary(for: key)
        do {
            try file.write(data)
            try file.withDescriptor(beforeCommit)
            let created: [String]
            if let approve { created = try file.commit(durable: durable, replacingOnly: approve) } else {
                created = try file.commit(durable: durable, replacing: replacing)
            }
            return (created, file.installedStatus.map(FileStatus.init))
        } catch {
            file.discard()
            throw error
        }
    }

    /// A temporary file beside `key` that can be filled piece by piece (a streamed upload)
    /// and then moved into place with `commit`, or dropped with `discard`.
    ///
    /// Where the file system allows it (Linux `O_TMPFILE`), the file has no name at all while it
    /// is filled: no key reaches a half-written upload, and the kernel frees it when the writer
    /// dies. It gets its temporary name only at `commit`, for the instant between link and rename.
    ///
    /// With `keepingLinks`, a symbolic link at `key` itself is never replaced: refused here and
    /// again at `commit` (a link made while the body was written); nor is a FIFO, socket or
    /// device (a user's, as a link is). Serve's writes use it; the builder's own outputs do not
    /// need it (the planner decides what it may replace).
    public func createTemporary(for key: ObjectKey, keepingLinks: Bool = false) throws(ConfinementError) -> TemporaryFile {
        var created: [String] = []
        let (parent, name) = try walkToParent(key, create: true, created: &created)
        if keepingLinks, let kept = Self.keptEntry(parent, name, key: key.string) {
            if parent != descriptor { close(parent) }
            throw kept
        }
        let temporaryName = ".\(name).\(getpid()).\(UInt32.random(in: 0 ... .max))\(Self.temporaryMarker)"
        #if os(Linux)
        let anonymous = openat(parent, ".", Self.temporaryFileFlag | O_RDWR | O_CLOEXEC, fileMode)
        if anonymous >= 0 {
            return TemporaryFile(folder: parent, ownsFolder: parent != descriptor, fd: anonymous, temporaryName: temporaryName,
                                 finalName: name, key: key.string, createdFolders: created, anonymous: true, keepingLinks: keepingLinks)
        }
        #endif
        let fd = openat(parent, temporaryName, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, fileMode)
        guard fd >= 0 else {
            let code = errno
            if parent != descriptor { close(parent) }
            throw Self.error(code, key.string)
        }
        return TemporaryFile(folder: parent, ownsFolder: parent != descriptor, fd: fd, temporaryName: temporaryName,
                             finalName: name, key: key.string, createdFolders: created, anonymous: false, keepingLinks: keepingLinks)
    }

    /// Whether `name` in the folder `parent` is a symbolic link (not followed).
    static func isLink(_ parent: Int32, _ name: String) -> Bool {
        var info = stat()
        return fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }

    /// Why `name` in `parent` must not be replaced by a write that keeps links: it is a link,
    /// or a FIFO, socket or device. Nil for a regular file, a folder or nothing.
    static func keptEntry(_ parent: Int32, _ name: String, key: String) -> ConfinementError? {
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFLNK: return .symbolicLink(key)
        case S_IFREG, S_IFDIR: return nil
        default: return .specialFile(key)
        }
    }

    #if os(Linux)
    /// `O_TMPFILE` (`__O_TMPFILE | O_DIRECTORY`), which Glibc's module does not export.
    static let temporaryFileFlag: Int32 = 0o20000000 | O_DIRECTORY
    #endif

    /// The marker every temporary file name ends with: a later run removes those a dead process left.
    public static let temporaryMarker = ".derive-tmp"
    /// The longest name of a file Derive installs: it is written first as `.NAME.PID.N.derive-tmp`
    /// (a PID of up to 7 digits, N of up to 10), which must fit the file system's 255 bytes
    /// (attack 58d's M1: a 244-byte output was built once by an older way in, then never rebuilt,
    /// cleaned or deleted: `File name too long`).
    public static let longestInstalledName = 255 - (1 + 1 + 7 + 1 + 10 + temporaryMarker.utf8.count)

    /// Whether `name` (one segment) has the exact shape of Derive's temporary files,
    /// `.<name>.<pid>.<random>.derive-tmp` with decimal pid and random: such a name is never an
    /// object (serve answers as if it did not exist and refuses to write it).
    public static func isTemporaryName<Bytes: Collection>(_ name: Bytes) -> Bool where Bytes.Element == UInt8 {
        let text = String(decoding: name, as: UTF8.self)
        guard text.hasPrefix("."), text.hasSuffix(temporaryMarker) else { return false }
        let parts = text.dropFirst().dropLast(temporaryMarker.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return false }
        let digits = parts.suffix(2)
        return digits.allSatisfy { !$0.isEmpty && $0.count <= 10 && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
            && !parts.dropLast(2).joined(separator: ".").isEmpty
    }

    // MARK: Removing

    /// Removes the regular file at `key` if `shouldRemove` approves its open descriptor (a digest
    /// check, say). Returns false when the check refused. Never removes folders or links.
    ///
    /// `viaFreshName` (the builder's removals of files it wrote): the name the check passed on is
    /// never unlinked. The file first leaves it for a fresh name of its own (`RENAME_NOREPLACE`),
    /// is checked there to be the file approved, and only that name is unlinked; a file moved onto
    /// the key between the check and the move is put back (false), or, when the key is taken
    /// again, kept beside it as `<name>.kept-<pid>-<n>` and named in the error.
    @discardableResult
    public func removeFile(_ key: ObjectKey, if shouldRemove: (Int32) throws -> Bool = { _ in true }, viaFreshName: Bool = false) throws -> Bool {
        let (parent, name) = try walkToParent(key, create: false)
        defer { if parent != descriptor { close(parent) } }
        let fd = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw Self.error(errno, key.string) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw ConfinementError.notRegularFile(key.string) }
        guard try shouldRemove(fd) else { return false }
        if viaFreshName {
            let removal = Self.removeVerified(parent, name, expected: info, holding: fd, base: name, putBack: true) { fresh in
                TestHooks.ontoTemporary(.removing, folder: parent, temporaryName: name, finalName: name)
                TestHooks.ontoTemporary(.unlinking, folder: parent, temporaryName: fresh, finalName: name)
            }
            switch removal {
            case .removed, .gone: return true
            case .putBack: return false
            case .refused(let code): throw ConfinementError.removalRefused(key.string, code: code)
            case .kept(let kept):
                throw ConfinementError.system(key.string, "a file was moved onto it while Derive was removing its own file there; it is not Derive's, so it was kept"
                                              + (kept.map { " as '\($0)'" } ?? "") + " (look at it, then build again)")
            case .removedAnother(let fresh):
                throw ConfinementError.system(key.string, Self.removedAnotherMessage(fresh))
            }
        }
        // The name must still be the file that was checked.
        var now = stat()
        guard fstatat(parent, name, &now, AT_SYMLINK_NOFOLLOW) == 0, now.st_ino == info.st_ino, now.st_dev == info.st_dev else {
            return false
        }
        TestHooks.ontoTemporary(.removing, folder: parent, temporaryName: name, finalName: name)
        guard unlinkat(parent, name, 0) == 0 else {
            let code = errno
            if Self.refusesRemoval(code) { throw ConfinementError.removalRefused(key.string, code: code) }
            throw Self.error(code, key.string)
        }
        return true
    }

    /// Whether `errno` from a rename or unlink is the system refusing the change (the file, its
    /// folder or its mount may not be changed), not something found at the name.
    static func refusesRemoval(_ code: Int32) -> Bool { [EPERM, EACCES, EROFS, EBUSY, ETXTBSY].contains(code) }

    /// `strerror`'s words for a refused removal, and what usually causes it and undoes it.
    public static func refusalReason(_ code: Int32) -> String {
        let words = String(cString: strerror(code))
        switch code {
        case EPERM: return words + " (the file is immutable or append-only: lsattr shows it, chattr -i or chattr -a undoes it; or its folder is a sticky shared folder and the file is not yours)"
        case EACCES: return words + " (its folder may not be written by you: chmod u+w the folder, or run as its owner)"
        case EROFS: return words + " (the file system is mounted read-only: remount it read-write)"
        case EBUSY: return words + " (it is in use as a mount point: unmount it)"
        default: return words
        }
    }

    /// Removes the folder at `key` only if it is empty (never recursive). Returns whether it went.
    @discardableResult
    public func removeEmptyFolder(_ key: ObjectKey) -> Bool {
        guard let (parent, name) = try? walkToParent(key, create: false) else { return false }
        defer { if parent != descriptor { close(parent) } }
        return unlinkat(parent, name, AT_REMOVEDIR) == 0
    }

    /// Removes temporary files (`*.derive-tmp`) left in the folder at `folderKey` (nil: the top)
    /// by processes that are no longer running, and only those of the file names in `names` (a
    /// user's file that merely looks like a temporary is not Derive's), each only when `approve`
    /// accepts its open descriptor (for the name it was written for): the name alone proves
    /// nothing, a user's file may have been moved onto it. The file removed is the one approved
    /// (device and inode checked again just before). Returns the names removed. `listOnly`:
    /// removes nothing, and returns the names it would remove (what `plan` lists of the sweep).
    @discardableResult
    public func removeStaleTemporaries(in folderKey: ObjectKey?, named names: PathSet, listOnly: Bool = false,
                                       if approve: (_ writtenName: String, _ fd: Int32) -> Bool) -> [String] {
        let fd: Int32
        if let folderKey {
            guard let (parent, name) = try? walkToParent(folderKey, create: false) else { return [] }
            fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if parent != descriptor { close(parent) }
            // A mount point there: nothing below it is this bucket's.
            if fd >= 0, !isOnItsMount(MountIdentity.of(fd)) { close(fd); return [] }
        } else {
            fd = openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        guard fd >= 0, let directory = fdopendir(fd) else { return [] }
        defer { closedir(directory) }
        var removed: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            // A name of a temporary's shape that is itself one of `names` (an output a rule writes
            // there: `to: out/.{name}.webp.9.1.derive-tmp`) is that output, never a temporary
            // (attack 56a's F1: swept as one, then called up to date).
            guard name.hasPrefix("."), name.hasSuffix(Self.temporaryMarker), !names.contains(name), let pid = Self.writerPID(name),
                  let written = Self.writtenName(name), names.contains(written),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            let file = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            guard file >= 0 else { continue }
            defer { close(file) }
            var info = stat(), now = stat()
            guard fstat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, approve(written, file),
                  fstatat(fd, name, &now, AT_SYMLINK_NOFOLLOW) == 0, now.st_ino == info.st_ino, now.st_dev == info.st_dev else { continue }
            if listOnly { removed.append(name); continue }
            // Removed by a fresh name it is moved to first, never by the name just checked.
            if case .removed = Self.removeVerified(fd, name, expected: info, holding: file, base: written, putBack: true) { removed.append(name) }
        }
        return removed
    }

    /// The file name a temporary `.<name>.<pid>.<random>.derive-tmp` was for.
    static func writtenName(_ temporaryName: String) -> String? {
        let parts = temporaryName.dropFirst().dropLast(temporaryMarker.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return nil }
        return parts.dropLast(2).joined(separator: ".")
    }

    /// The process id in `.<name>.<pid>.<random>.derive-tmp`.
    static func writerPID(_ temporaryName: String) -> pid_t? {
        let parts = temporaryName.dropLast(temporaryMarker.count).split(separator: ".")
        guard parts.count >= 3, let pid = pid_t(parts[parts.count - 2]), pid > 0 else { return nil }
        return pid
    }

    /// Where a name went when moved to a fresh name of its own (`failed`: the rename's `errno`).
    enum FreshName { case moved(String), gone, failed(Int32) }

    /// Moves `name` in `folder` to a fresh name nothing has (`RENAME_NOREPLACE`), in the shape of
    /// a temporary name for `base`, so a process killed before the removal leaves a file the next
    /// build's sweep checks like any other temporary.
    static func moveToFreshName(_ folder: Int32, _ name: String, base: String) -> FreshName {
        for _ in 0..<16 {
            let fresh = ".\(base).\(getpid()).\(UInt32.random(in: 0 ... .max))\(temporaryMarker)"
            if Renaming.rename(folder, name, folder, fresh, flags: Renaming.noReplace) == 0 { return .moved(fresh) }
            if errno == ENOENT { return .gone }
            if errno != EEXIST { return .failed(errno) }
        }
        return .failed(EEXIST)
    }

    /// A file that is not Derive's, at `name`: moved to a name that is not a temporary one (a later
    /// run would look at that), `<base>.kept-<pid>-<n>` beside it. Returns that name.
    static func keepAside(_ folder: Int32, _ name: String, base: String) -> String? {
        for attempt in 0..<100 {
            let kept = "\(base).kept-\(getpid())-\(attempt)"
            if Renaming.rename(folder, name, folder, kept, flags: Renaming.noReplace) == 0 { return kept }
            if errno != EEXIST { break }
        }
        return nil
    }

    /// What became of a name removed only while it was a given file.
    enum Removal {
        /// It was the expected file, and that file lost the name.
        case removed
        /// Nothing was there.
        case gone
        /// Something else was there: kept under the name given (nil: left where it was).
        case kept(String?)
        /// Something else was there: moved back to the name it had.
        case putBack
        /// The system refused to move or unlink it (`errno`: an immutable file, a read-only
        /// mount…): the file is still at the name.
        case refused(Int32)
        /// The fresh name (given) was unlinked but the expected file still has all its names: a
        /// file moved onto it between the check and the unlink was removed instead (reported,
        /// since it cannot be undone).
        case removedAnother(String)
    }

    /// Removes the name `name` in `folder` only while it holds the file `expected` (device and
    /// inode), and never by a name whose identity was checked before: the name is first moved to a
    /// fresh name of its own (`RENAME_NOREPLACE`: nothing there is replaced), and what is checked
    /// and then unlinked is that fresh name, which existed for no one before. Anything else found
    /// there is moved back to `name` (`putBack`, when that is free) or kept as
    /// `<base>.kept-<pid>-<n>`. `holding`, an open descriptor of the expected file, tells
    /// afterwards whether it was that file that lost the name.
    static func removeVerified(_ folder: Int32, _ name: String, expected: stat, holding: Int32, base: String, putBack: Bool,
                               beforeUnlink: (_ fresh: String) -> Void = { _ in }) -> Removal {
        let fresh: String
        switch moveToFreshName(folder, name, base: base) {
        case .moved(let moved): fresh = moved
        case .gone: return .gone
        case .failed(let code): return .refused(code)
        }
        var now = stat()
        guard fstatat(folder, fresh, &now, AT_SYMLINK_NOFOLLOW) == 0 else { return .gone }
        guard now.st_ino == expected.st_ino, now.st_dev == expected.st_dev else {
            if putBack, Renaming.rename(folder, fresh, folder, name, flags: Renaming.noReplace) == 0 { return .putBack }
            return .kept(keepAside(folder, fresh, base: base) ?? fresh)
        }
        var links = stat()
        let counted = holding >= 0 && fstat(holding, &links) == 0
        beforeUnlink(fresh)
        guard unlinkat(folder, fresh, 0) == 0 else {
            let code = errno
            if code == ENOENT { return .gone }
            // Refused: the file goes back to its name (it is the expected file, checked above).
            return Renaming.rename(folder, fresh, folder, name, flags: Renaming.noReplace) == 0 ? .refused(code) : .kept(fresh)
        }
        var after = stat()
        if counted, fstat(holding, &after) == 0, after.st_nlink >= links.st_nlink { return .removedAnother(fresh) }
        return .removed
    }

    /// The message for `Removal.removedAnother`.
    static func removedAnotherMessage(_ fresh: String) -> String {
        "a file was moved onto '\(fresh)' at the instant Derive removed its own file by that name (after moving it there and checking it), and was removed in its place; Derive's file is where that file came from"
    }

    // MARK: Walking

    /// Opens every folder segment of `key` below the folder with `O_NOFOLLOW` and returns the
    /// descriptor of the last folder (the caller closes it unless it is the root's) and the last
    /// segment's name.
    func walkToParent(_ key: ObjectKey, create: Bool) throws(ConfinementError) -> (Int32, String) {
        var ignored: [String] = []
        return try walkToParent(key, create: create, created: &ignored)
    }

    private func walkToParent(_ key: ObjectKey, create: Bool, created: inout [String]) throws(ConfinementError) -> (Int32, String) {
        let segments = key.segments
        var current = descriptor
        var walked: [UInt8] = []
        for segment in segments.dropLast() {
            let name = String(decoding: segment, as: UTF8.self)
            if !walked.isEmpty { walked.append(UInt8(ascii: "/")) }
            walked.append(contentsOf: segment)
            var next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0, errno == ENOENT, create {
                // Nothing is made past a mount point: checked before the first folder is made.
                if current != descriptor, !isOnItsMount(MountIdentity.of(current)) {
                    close(current)
                    throw .mountPoint(mountPointOnTheWay(segments) ?? String(decoding: walked, as: UTF8.self))
                }
                if mkdirat(current, name, folderMode) == 0 {
                    created.append(String(decoding: walked, as: UTF8.self))
                } else if errno != EEXIST {
                    let code = errno
                    if current != descriptor { close(current) }
                    throw Self.error(code, String(decoding: walked, as: UTF8.self))
                }
                next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            guard next >= 0 else {
                let code = errno
                let reached = String(decoding: walked, as: UTF8.self)
                // ELOOP/ENOTDIR: O_NOFOLLOW met a link, or a file stands where a folder should.
                var info = stat()
                let isLink = fstatat(current, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
                if current != descriptor { close(current) }
                if isLink { throw .symbolicLink(reached) }
                if code == ENOTDIR { throw .notAFolder(key.string) }
                throw Self.error(code, reached)
            }
            if current != descriptor { close(current) }
            current = next
        }
        // One look at the last folder tells whether any folder on the way was a mount point.
        if current != descriptor, !isOnItsMount(MountIdentity.of(current)) {
            close(current)
            throw .mountPoint(mountPointOnTheWay(segments) ?? key.string)
        }
        return (current, String(decoding: segments.last ?? [], as: UTF8.self))
    }

    /// Whether a folder below this one, on `mount`, is on this folder's mount (no mount point
    /// between them). A folder whose mount cannot be told is not.
    func isOnItsMount(_ mount: MountIdentity?) -> Bool {
        guard let own = self.mount, let mount else { return self.mount == nil && mount == nil }
        return own.isSameMount(as: mount)
    }

    /// The key of the first folder among the folder segments of `segments` that is a mount
    /// point, for the message (the error path only: one more walk).
    private func mountPointOnTheWay(_ segments: [ArraySlice<UInt8>]) -> String? {
        var current = descriptor
        defer { if current != descriptor { close(current) } }
        var walked: [UInt8] = []
        for segment in segments.dropLast() {
            if !walked.isEmpty { walked.append(UInt8(ascii: "/")) }
            walked.append(contentsOf: segment)
            let next = openat(current, String(decoding: segment, as: UTF8.self), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { return nil }
            if current != descriptor { close(current) }
            current = next
            if !isOnItsMount(MountIdentity.of(current)) { return String(decoding: walked, as: UTF8.self) }
        }
        return nil
    }

    static func error(_ code: Int32, _ key: String) -> ConfinementError {
        switch code {
        case ENOENT: return .notFound(key)
        case ELOOP: return .symbolicLink(key)
        case ENOTDIR: return .notAFolder(key)
        case EACCES, EPERM: return .permissionDenied(key)
        case EISDIR: return .notRegularFile(key)
        default: return .system(key, String(cString: strerror(code)))
        }
    }

    /// Reads the whole regular file `fd`, never more than `maxBytes` + 1 bytes: the size from
    /// `fstat` is checked before the first read, and a file that grows while read is cut at the
    /// byte past the limit and refused, so memory stays bounded by the limit whatever the file.
    static func readAll(_ fd: Int32, key: String, maxBytes: Int) throws(ConfinementError) -> Data {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw error(errno, key) }
        let size = Int(info.st_size)
        guard size <= maxBytes else { throw .tooLarge(key, size: size, limit: maxBytes) }
        // One byte more than the file announced (so at most the limit + 1) shows a file that grew.
        let wanted = size == .max ? size : size + 1
        var data = Data(count: wanted)
        var filled = 0
        let failure: Int32? = data.withUnsafeMutableBytes { raw -> Int32? in
            while filled < raw.count {
                let count = Glibc.read(fd, raw.baseAddress! + filled, raw.count - filled)
                if count < 0 { if errno == EINTR { continue }; return errno }
                if count == 0 { break }
                filled += count
            }
            return nil
        }
        if let failure { throw error(failure, key) }
        if filled > maxBytes { throw .tooLarge(key, size: filled, limit: maxBytes) }
        // A file that grew within the limit stops at the size announced; one that shrank while
        // being read is returned as it was read.
        data.removeSubrange(min(filled, size)...)
        return data
    }
}

/// A temporary file beside its target, inside a confined folder.
public final class TemporaryFile: @unchecked Sendable {
    private let folder: Int32
    private let ownsFolder: Bool
    private var fd: Int32
    /// Runs `body` with the temporary file's descriptor (it stays open and owned here).
    func withDescriptor(_ body: (Int32) throws -> Void) throws { try body(fd) }
    private let temporaryName: String
    private let finalName: String
    private let key: String
    /// Folders created to hold the file, outermost first (keys relative to the confined folder).
    public let createdFolders: [String]
    private var finished = false
    /// No name yet (`O_TMPFILE`): it is linked as `temporaryName` only at commit.
    private var anonymous: Bool
    /// A symbolic link at the target is refused at commit instead of replaced.
    private let keepingLinks: Bool

    /// Whether the file has no name while it is written (nothing in the folder shows it).
    public var isAnonymous: Bool { anonymous }

    /// The file's `stat` taken at `commit`, just before it was moved into place (its identity:
    /// device, inode, size and modification time do not change with the rename).
    public private(set) var committedStatus: stat?
    /// The file's `stat` from its own descriptor once it is in place (after the move, before the
    /// descriptor is closed): what a record of the file written holds, never a later stat by
    /// path (a file moved over the name, or the file changed, since). Nil when its size or
    /// modification time moved since `committedStatus` (someone wrote to it meanwhile).
    public private(set) var installedStatus: stat?

    init(folder: Int32, ownsFolder: Bool, fd: Int32, temporaryName: String, finalName: String, key: String, createdFolders: [String],
         anonymous: Bool, keepingLinks: Bool = false) {
        self.keepingLinks = keepingLinks
        self.folder = folder; self.ownsFolder = ownsFolder; self.fd = fd
        self.temporaryName = temporaryName; self.finalName = finalName; self.key = key; self.createdFolders = createdFolders
        self.anonymous = anonymous
    }

    deinit {
        if !finished { discard() }
        if ownsFolder { close(folder) }
    }

    /// The file's `stat` now (before `commit`: its identity once linked, when nothing is
    /// written after it); nil once committed or discarded.
    public func currentStatus() -> stat? {
        guard fd >= 0 else { return nil }
        var info = stat()
        return fstat(fd, &info) == 0 ? info : nil
    }

    /// The file's first `maxBytes` bytes as written so far (opened for reading too) and its size;
    /// nil once committed or discarded, or when it cannot be read.
    public func contents(maxBytes: Int) -> (data: Data, size: Int)? {
        guard let status = currentStatus() else { return nil }
        let size = Int(status.st_size)
        var data = Data(count: min(size, maxBytes))
        var filled = 0
        let failed = data.withUnsafeMutableBytes { raw -> Bool in
            while filled < raw.count {
                let count = pread(fd, raw.baseAddress! + filled, raw.count - filled, off_t(filled))
                if count < 0 { if errno == EINTR { continue }; return true }
                if count == 0 { break }
                filled += count
            }
            return false
        }
        guard !failed else { return nil }
        data.removeSubrange(filled...)
        return (data, size)
    }

    /// Whether the folder the file goes into holds an entry `name` (any kind, links not followed).
    public func folderHolds(_ name: String) -> Bool {
        var info = stat()
        return fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// The first `count` bytes of the regular file `name` in the file's folder (links not
    /// followed); nil when there is none.
    public func folderFileHead(_ name: String, count: Int) -> Data? {
        let fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        var buffer = [UInt8](repeating: 0, count: count)
        let read = Glibc.read(fd, &buffer, count)
        return read > 0 ? Data(buffer.prefix(read)) : Data()
    }

    /// The name the file gets in its folder (the key's last segment).
    public var name: String { finalName }

    /// Appends bytes.
    public func write(_ data: Data) throws(ConfinementError) {
        var failure: Int32?
        data.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let count = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if count < 0 { if errno == EINTR { continue }; failure = errno; return }
                written += count
            }
        }
        if let failure { throw ConfinedFolder.error(failure, key) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(ConfinementError) {
        var written = 0
        while written < bytes.count {
            let count = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if count < 0 { if errno == EINTR { continue }; throw ConfinedFolder.error(errno, key) }
            written += count
        }
    }

    /// Moves the file into place (after `fsync` of the file, and of the folder after the rename
    /// when `durable`). Returns the folders created for it. With `replacing: false`, nothing
    /// at the key is replaced: the file is hard-linked there from its own descriptor (which
    /// fails atomically when the name is taken, `alreadyExists`), so it never has a temporary name
    /// anyone could move a file onto.
    ///
    /// With `replacing: true` the file is renamed over the key, then the key is checked to hold
    /// the file written: a file moved onto the temporary name just before the rename took the
    /// key instead; it is left there (it is not Derive's) and the write fails saying so.
    @discardableResult
    public func commit(durable: Bool = true, replacing: Bool = true) throws(ConfinementError) -> [String] {
        precondition(!finished, "a temporary file is committed or discarded once")
        // A link made while the body was written (the window left is between this check and
        // the rename below: a writer racing the server inside the bucket folder).
        if keepingLinks, let kept = ConfinedFolder.keptEntry(folder, finalName, key: key) { discard(); throw kept }
        if durable, fsync(fd) != 0 { let code = errno; discard(); throw ConfinedFolder.error(code, key) }
        var ours = stat()
        guard fstat(fd, &ours) == 0 else { let code = errno; discard(); throw ConfinedFolder.error(code, key) }
        committedStatus = ours
        defer { closeDescriptor() }
        if !replacing { return try linkInPlace(ours: ours, durable: durable) }
        try nameTheUnnamedFile()
        TestHooks.ontoTemporary(.beforeInstall, folder: folder, temporaryName: temporaryName, finalName: finalName)
        // The target must not be a folder or a link: renameat would replace a link, never follow it,
        // but a folder in the way is the caller's error to report.
        guard renameat(folder, temporaryName, folder, finalName) == 0 else {
            let code = errno
            finished = true
            _ = dispose(temporaryName, expected: ours, holding: fd)
            throw code == EISDIR || code == ENOTEMPTY ? .notRegularFile(key) : ConfinedFolder.error(code, key)
        }
        finished = true
        guard holds(finalName, ours) else {
            if durable { fsync(folder) }
            throw .system(key, Self.installedForeign(temporaryName, finalName))
        }
        if durable { fsync(folder) }
        return createdFolders
    }

    /// The message for a file that took the key because it was moved onto the temporary name
    /// just before the rename (it replaced what was there; Derive's new file is where it came from).
    static func installedForeign(_ temporaryName: String, _ finalName: String) -> String {
        "a file was moved onto Derive's temporary name '\(temporaryName)' just before the new file was moved into place (or another build, writing this output too, installed its own there at that moment), so '\(finalName)' now holds that file, which this build did not write; it was left there (look at it, then build again; builds writing one output are run one at a time)"
    }

    /// Whether `name` is the file `expected` (device and inode, not following a link).
    private func holds(_ name: String, _ expected: stat) -> Bool {
        var now = stat()
        return fstatat(folder, name, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == expected.st_ino && now.st_dev == expected.st_dev
    }

    /// Links the open file at `name` from its descriptor (never from a name): 0, or the `errno`.
    /// AT_EMPTY_PATH needs a capability; the /proc link does not.
    private func linkDescriptor(as name: String) -> Int32 {
        if linkat(fd, "", folder, name, 0x1000 /* AT_EMPTY_PATH */) == 0 { return 0 }
        if errno == EEXIST { return EEXIST }
        if linkat(AT_FDCWD, "/proc/self/fd/\(fd)", folder, name, AT_SYMLINK_FOLLOW) == 0 { return 0 }
        return errno
    }

    /// Gives an unnamed (O_TMPFILE) file its temporary name, so it can be exchanged into place as
    /// a named one would be.
    private func nameTheUnnamedFile() throws(ConfinementError) {
        guard anonymous else { return }
        let code = linkDescriptor(as: temporaryName)
        guard code == 0 else { discard(); throw ConfinedFolder.error(code, key) }
        anonymous = false
    }

    private func closeDescriptor() {
        guard fd >= 0 else { return }
        if let before = committedStatus {
            var now = stat()
            if fstat(fd, &now) == 0, now.st_size == before.st_size, now.st_mtim.tv_sec == before.st_mtim.tv_sec,
               now.st_mtim.tv_nsec == before.st_mtim.tv_nsec, now.st_ino == before.st_ino, now.st_dev == before.st_dev {
                installedStatus = now
            }
        }
        close(fd); fd = -1
    }

    /// Moves the file into place over a file the caller owns, checked after the move, with no
    /// window between check and move: the two are exchanged (`RENAME_EXCHANGE`). Then:
    /// - the key must hold the file written: a file moved onto the temporary name before the
    ///   exchange took the key instead; the two are exchanged back and that file is kept as
    ///   `<name>.kept-<pid>-<n>` (never installed, never removed), and the write fails naming it;
    /// - the file displaced leaves the temporary name for a fresh name of its own
    ///   (`RENAME_NOREPLACE`) before anything is checked, so nothing moved onto the temporary name
    ///   from then on can be removed; it is checked there to be the file that was at the key and
    ///   read through a descriptor for `approve`. Approved: removed (`dispose`). Refused (a
    ///   user's file put at the key since the caller's last check, a link, a folder): exchanged
    ///   back to its name and the write fails with `alreadyExists`. Not the file that was at the
    ///   key (moved onto the temporary name after the exchange): kept as `<name>.kept-<pid>-<n>`,
    ///   and the write fails naming it.
    /// Nothing at the key: created only if it is still free (a hard link, as `replacing: false`).
    @discardableResult
    public func commit(durable: Bool = true, replacingOnly approve: (Int32) -> Bool) throws(ConfinementError) -> [String] {
        precondition(!finished, "a temporary file is committed or discarded once")
        if durable, fsync(fd) != 0 { let code = errno; discard(); throw ConfinedFolder.error(code, key) }
        var ours = stat()
        guard fstat(fd, &ours) == 0 else { let code = errno; discard(); throw ConfinedFolder.error(code, key) }
        committedStatus = ours
        defer { closeDescriptor() }
        try nameTheUnnamedFile()
        // What the exchange should displace: the file at the key now. One put there in between is
        // not this file, so it is never approved below.
        var before = stat()
        let hadFile = fstatat(folder, finalName, &before, AT_SYMLINK_NOFOLLOW) == 0
        TestHooks.ontoTemporary(.beforeInstall, folder: folder, temporaryName: temporaryName, finalName: finalName)
        let exchanged = Renaming.exchange(folder, temporaryName, folder, finalName)
        let code = errno
        if exchanged != 0 {
            // Nothing there any more: a create, which keeps anything that appears meanwhile.
            // No RENAME_EXCHANGE here (a file system without it): refused rather than raced.
            finished = true
            if code == ENOENT { return try linkInPlace(ours: ours, durable: durable) }
            _ = dispose(temporaryName, expected: ours, holding: fd)
            throw ConfinedFolder.error(code, key)
        }
        finished = true
        // The key must hold the file written now.
        guard holds(finalName, ours) else {
            // A file moved onto the temporary name before the exchange was moved into place instead:
            // exchanged back (the key gets what the exchange displaced), then kept under a name of
            // its own. Derive's new file is where that file came from; it is not touched there.
            let back = Renaming.exchange(folder, temporaryName, folder, finalName)
            var kept: String?
            let disposal = back == 0 ? dispose(temporaryName, expected: ours, holding: fd) : .gone
            if case .kept(let name) = disposal { kept = name }
            if durable { fsync(folder) }
            guard back == 0 else { throw .system(key, Self.installedForeign(temporaryName, finalName)) }
            if case .removedAnother(let name) = disposal { throw removedAnother(name) }
            throw .system(key, "a file was moved onto Derive's temporary name '\(temporaryName)' just before the new file was moved into place (or another build, writing this output too, installed its own there at that moment); it is not this build's, so it was not installed: it was kept"
                          + (kept.map { " as '\($0)'" } ?? "") + " and '\(finalName)' still holds the old file (look at the kept file, then build again; builds writing one output are run one at a time)")
        }
        TestHooks.ontoTemporary(.installed, folder: folder, temporaryName: temporaryName, finalName: finalName)
        // The displaced file leaves the temporary name before it is looked at.
        let fresh: String
        switch moveToFreshName(temporaryName) {
        case .moved(let name): fresh = name
        case .gone:
            // Moved away by someone else: nothing of the displaced file is Derive's to remove.
            if durable { fsync(folder) }
            return createdFolders
        case .failed(let code):
            if durable { fsync(folder) }
            throw .system(key, "the old file could not be moved away from Derive's temporary name '\(temporaryName)' (\(ConfinedFolder.refusalReason(code))); it was left there (the new file is in place)")
        }
        var displacedStatus = stat()
        let wasThere = hadFile && fstatat(folder, fresh, &displacedStatus, AT_SYMLINK_NOFOLLOW) == 0
            && displacedStatus.st_ino == before.st_ino && displacedStatus.st_dev == before.st_dev
        guard wasThere else {
            // Not the file that was at the key: moved onto the temporary name after the exchange.
            // Not Derive's, so kept under a name of its own, and the write fails naming it.
            let kept = keepAside(fresh)
            if durable { fsync(folder) }
            throw .system(key, "a file was moved onto Derive's temporary name '\(temporaryName)' while the old file was being replaced; it is not Derive's, so it was kept"
                          + (kept.map { " as '\($0)'" } ?? " as '\(fresh)'") + " (the new file is in place; look at the kept file, then build again)")
        }
        // Read through a descriptor, so what is approved is what is removed (checked again there).
        let displaced = openat(folder, fresh, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        defer { if displaced >= 0 { close(displaced) } }
        var info = stat()
        let approved = displaced >= 0 && fstat(displaced, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
            && info.st_ino == before.st_ino && info.st_dev == before.st_dev && info.st_ino != ours.st_ino && approve(displaced)
        if approved {
            switch dispose(fresh, expected: info, holding: displaced) {
            case .removed, .gone, .putBack:
                if durable { fsync(folder) }
                return createdFolders
            case .kept(let name):
                if durable { fsync(folder) }
                throw .system(key, "a file was moved onto '\(fresh)' (where Derive had moved the old file to remove it); it is not Derive's, so it was kept"
                              + (name.map { " as '\($0)'" } ?? "") + " (the new file is in place; look at the kept file, then build again)")
            case .removedAnother(let name):
                if durable { fsync(folder) }
                throw removedAnother(name)
            case .refused(let code):
                if durable { fsync(folder) }
                throw .system(key, "the old file could not be removed from '\(fresh)' (\(ConfinedFolder.refusalReason(code))); it was left there (the new file is in place)")
            }
        }
        // Not the caller's file: it goes back to its name, and the new file (now at the fresh
        // name) is removed when it is still Derive's; anything else found there is kept.
        var back = Renaming.exchange(folder, fresh, folder, finalName)
        if back != 0 && errno == ENOENT { back = Renaming.rename(folder, fresh, folder, finalName, flags: Renaming.noReplace) }
        var kept: String?
        if back == 0 {
            switch dispose(fresh, expected: ours, holding: fd) {
            case .kept(let name): kept = name ?? fresh
            case .removedAnother(let name): if durable { fsync(folder) }; throw removedAnother(name)
            case .removed, .gone, .putBack, .refused: break
            }
        } else {
            kept = keepAside(fresh) ?? fresh
        }
        if durable { fsync(folder) }
        if let kept { throw .system(key, "a file appeared there while it was being replaced; it was kept as '\(kept)'") }
        throw .alreadyExists(key)
    }

    private func moveToFreshName(_ name: String) -> ConfinedFolder.FreshName {
        ConfinedFolder.moveToFreshName(folder, name, base: finalName)
    }

    private func keepAside(_ name: String) -> String? { ConfinedFolder.keepAside(folder, name, base: finalName) }

    private func removedAnother(_ name: String) -> ConfinementError { .system(key, ConfinedFolder.removedAnotherMessage(name)) }

    /// `ConfinedFolder.removeVerified` of a name beside the target: anything else found there is
    /// kept as `<name>.kept-<pid>-<n>` (never put back onto a temporary name).
    private func dispose(_ name: String, expected: stat, holding: Int32) -> ConfinedFolder.Removal {
        ConfinedFolder.removeVerified(folder, name, expected: expected, holding: holding, base: finalName, putBack: false) { fresh in
            TestHooks.ontoTemporary(.removing, folder: folder, temporaryName: temporaryName, finalName: finalName)
            TestHooks.ontoTemporary(.unlinking, folder: folder, temporaryName: fresh, finalName: finalName)
        }
    }

    /// Hard-links the file at the key from its descriptor (fails if the name is taken), then
    /// removes its temporary name, if it has one, when that is still the file (`dispose`): a file
    /// moved onto the temporary name is kept under a name of its own and the write fails naming it.
    private func linkInPlace(ours: stat, durable: Bool) throws(ConfinementError) -> [String] {
        finished = true
        var code = linkDescriptor(as: finalName)
        var linkedByName = false
        if code != 0, code != EEXIST, !anonymous {
            // No way to link a descriptor here (no /proc): the temporary name, checked after.
            code = linkat(folder, temporaryName, folder, finalName, 0) == 0 ? 0 : errno
            linkedByName = code == 0
        }
        TestHooks.ontoTemporary(.installed, folder: folder, temporaryName: temporaryName, finalName: finalName)
        var kept: String??
        let disposal = anonymous ? .gone : dispose(temporaryName, expected: ours, holding: fd)
        if case .kept(let name) = disposal { kept = .some(name) }
        if case .removedAnother(let name) = disposal { throw removedAnother(name) }
        guard code == 0 else { throw code == EEXIST ? .alreadyExists(key) : ConfinedFolder.error(code, key) }
        if durable { fsync(folder) }
        if linkedByName, !holds(finalName, ours) { throw .system(key, Self.installedForeign(temporaryName, finalName)) }
        if let kept {
            throw .system(key, "a file was moved onto Derive's temporary name '\(temporaryName)' while the new file was being linked into place; it is not Derive's, so it was kept"
                          + (kept.map { " as '\($0)'" } ?? " there") + " (look at the kept file, then build again)")
        }
        return createdFolders
    }

    /// Removes the temporary file; nothing is moved into place. A named one goes only while its
    /// name is still this file (`dispose`); anything moved onto the name is kept.
    public func discard() {
        guard !finished else { return }
        finished = true
        var ours = stat()
        if !anonymous, fd >= 0, fstat(fd, &ours) == 0 { _ = dispose(temporaryName, expected: ours, holding: fd) }
        closeDescriptor()
    }
}

/// Hooks for tests into instants no test can reach by timing. Inert unless the process was
/// started with the variable set (never in production).
enum TestHooks {
    /// The instants a test can pick.
    enum Instant: String {
        /// The new file has its temporary name and is about to be moved (or linked) into place.
        case beforeInstall = "before-install"
        /// The new file is in place and the temporary name is about to go (the approved old file
        /// an exchange displaced is there, or the new file's second name after a link).
        case installed
        /// A name is about to be unlinked, its identity already checked.
        case removing
        /// The same instant, but the exchange is with the name about to be unlinked (the fresh
        /// name Derive moved its file to), not the temporary name: the one instant no system call
        /// closes, which Derive reports.
        case unlinking
    }

    /// `DERIVE_TEST_ONTO_TEMPORARY=<name>[@<instant>]=<path>`: once, at that instant (`installed`
    /// when none is given) of the write of the file `<name>`, the file at `<path>` is exchanged
    /// with the temporary name (what a sync tool renaming its file there at that instant does).
    private static let ontoTemporaryTarget: (name: String, instant: Instant, path: String)? = {
        guard let value = ProcessInfo.processInfo.environment["DERIVE_TEST_ONTO_TEMPORARY"],
              let equals = value.firstIndex(of: "=") else { return nil }
        var name = String(value[..<equals])
        var instant = Instant.installed
        if let at = name.lastIndex(of: "@"), let picked = Instant(rawValue: String(name[name.index(after: at)...])) {
            instant = picked
            name = String(name[..<at])
        }
        return (name, instant, String(value[value.index(after: equals)...]))
    }()
    private static let fired = NSLock()
    nonisolated(unsafe) private static var done = false

    static func ontoTemporary(_ instant: Instant = .installed, folder: Int32, temporaryName: String, finalName: String) {
        guard let target = ontoTemporaryTarget, target.name == finalName, target.instant == instant else { return }
        let first = fired.withLock { () -> Bool in defer { done = true }; return !done }
        guard first else { return }
        _ = Renaming.exchange(AT_FDCWD, target.path, folder, temporaryName)
    }
}

/// `renameat2(2)`, which Glibc's module does not export: looked up once by name in the C library.
public enum Renaming {
    public static let noReplace: UInt32 = 1
    static let exchangeFlag: UInt32 = 2
    private typealias Function = @convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32

    /// -1 with `errno` set (`ENOSYS` when the C library has no `renameat2`).
    public static func rename(_ fromFolder: Int32, _ from: String, _ toFolder: Int32, _ to: String, flags: UInt32) -> Int32 {
        guard let symbol = dlsym(nil, "renameat2") else { errno = ENOSYS; return -1 }
        let function = unsafeBitCast(symbol, to: Function.self)
        return function(fromFolder, from, toFolder, to, flags)
    }

    /// Swaps two names atomically (both must exist).
    static func exchange(_ fromFolder: Int32, _ from: String, _ toFolder: Int32, _ to: String) -> Int32 {
        rename(fromFolder, from, toFolder, to, flags: exchangeFlag)
    }
}
