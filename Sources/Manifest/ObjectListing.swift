import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Lists the objects of a bucket folder. The disk is behind this seam so validation and
/// planning can be tested without touching it.
public protocol ObjectLister: Sendable {
    /// Keys (paths relative to `folder`, `/`-separated) of the regular files below it, sorted;
    /// entries whose name starts with `.` are skipped, and so is any folder in `skipping`.
    /// Nil when the folder does not exist.
    func keys(inFolder folder: String, skipping: [String]) -> [String]?
    /// Like `keys`, plus the entries that are not regular files (folders, FIFOs, sockets,
    /// devices, links to nothing), each with what it is: a rule whose pattern names one fails
    /// that source's derivatives instead of skipping it silently.
    func entries(inFolder folder: String, skipping: [String]) -> (keys: [String], others: [(key: String, kind: String)])?
}

/// Whether the source listing keeps a file or folder of this name: names starting with `.` are
/// skipped (hidden files, AppleDouble `._x`, a sync tool's state). The one definition: the lock's
/// shape check reads it too, so a lock line never vouches for a name no source can give.
/// On bytes: `.` followed by a combining mark is one `Character`, but the name still starts with `.`.
public func sourceListingKeeps(_ name: some StringProtocol) -> Bool { name.utf8.first != UInt8(ascii: ".") }

extension ObjectLister {
    public func entries(inFolder folder: String, skipping: [String]) -> (keys: [String], others: [(key: String, kind: String)])? {
        keys(inFolder: folder, skipping: skipping).map { ($0, []) }
    }
}

/// Walks folders with `opendir`/`readdir` (FileManager's enumerator costs a `stat` and several
/// allocations per entry, which dominates a no-op build over thousands of sources).
/// Symbolic links to files count as files; links to folders are not followed (no cycles).
public struct DiskObjectLister: ObjectLister {
    /// How many folders the listing keeps open at once for the folders waiting below them
    /// (`defaultOpenFolders`; tests give fewer to take the walk from the bucket's folder).
    let openFolders: Int
    /// Tests: called with a folder's key just before it is opened.
    let beforeOpening: (@Sendable (String) -> Void)?

    public init() { openFolders = Self.defaultOpenFolders; beforeOpening = nil }

    init(openFolders: Int, beforeOpening: (@Sendable (String) -> Void)? = nil) {
        self.openFolders = openFolders
        self.beforeOpening = beforeOpening
    }

    public func keys(inFolder folder: String, skipping: [String]) -> [String]? {
        entries(inFolder: folder, skipping: skipping)?.keys
    }

    public func entries(inFolder folder: String, skipping: [String]) -> (keys: [String], others: [(key: String, kind: String)])? {
        let root = URL(literalFilePath: folder).standardizedFileURL.path
        var info = stat()
        guard stat(root, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        // A short list (the state folder), compared by bytes as a `PathSet` would, without one.
        let skipped = skipping.map { URL(literalFilePath: $0).standardizedFileURL.path }
        var keys: [String] = []
        var others: [(key: String, kind: String)] = []
        // Each folder is opened by its name from its parent's descriptor (`openat`, links not
        // followed), never by its full path: the kernel walks one name per folder, so the cost is
        // linear in the depth (a full path per folder walked a chain of folders depth² names,
        // and failed past PATH_MAX: attack 20's M2). A parent stays open while folders found in
        // it wait their turn, at most `openFolders` at once; beyond, a folder is opened one name
        // at a time from the bucket's folder, links not followed either (a tree that wide and
        // deep at once is the only case; its full path, as before, followed any link on the way
        // that replaced a folder since it was listed: lows-23). Only the bucket's folder itself
        // is opened by its path, as the manifest names it.
        let open = OpenCount()
        var top: OpenedFolder?
        // The bucket folder's mount: a folder below it on another is a mount point's, never
        // walked into (like `find -xdev`): one `statx` per folder, none per file.
        var topMount: MountIdentity?
        var pending: [(parent: OpenedFolder?, name: String, path: String, key: String)] = [(nil, root, root, "")]
        while let (parent, name, path, prefix) = pending.popLast() {
            beforeOpening?(String(prefix.dropLast()))
            let fd: Int32
            if let parent {
                fd = openat(parent.descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            } else if let top {
                fd = Self.openFolder(below: top.descriptor, key: prefix.dropLast())
            } else {
                fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            }
            if fd >= 0, top != nil {
                let mount = MountIdentity.of(fd)
                guard let topMount, let mount, topMount.isSameMount(as: mount) else {
                    close(fd)
                    others.append((String(prefix.dropLast()), Self.mountPoint))
                    continue
                }
            }
            guard fd >= 0, let directory = fdopendir(fd) else {
                // A folder that cannot be read (no permission), the bucket's own included (its
                // key is ""): its files are not listed, so it is named, never passed over as if
                // it were empty. (A folder swapped for a link since it was listed: ELOOP.)
                let code = errno
                if fd >= 0 { close(fd) }
                others.append((String(prefix.dropLast()), Self.unreadable(code)))
                continue
            }
            // Used in every pass of the loop below (so it lives as long): closed after it, or
            // when the last folder found in it is opened.
            let folder = OpenedFolder(directory, count: open)
            if top == nil { top = folder; topMount = MountIdentity.of(fd) }
            while let entry = readdir(folder.directory) {
                // The name decoded once (validated, else repaired) straight from `d_name`.
                let (valid, name) = withUnsafeBytes(of: entry.pointee.d_name) { raw -> (Bool, String) in
                    let bytes = UnsafeRawBufferPointer(rebasing: raw[..<(raw.firstIndex(of: 0) ?? raw.endIndex)])
                    if let valid = String(validating: bytes, as: UTF8.self) { return (true, valid) }
                    return (false, String(decoding: bytes, as: UTF8.self))
                }
                if !sourceListingKeeps(name) { continue }
                // A name that is not UTF-8 cannot be a key: reported (escaped), never skipped
                // silently. A folder so named (or a link to one) is never walked into: its files'
                // keys could not be written either, and it hides them (`notUTF8Folder`: attack
                // 43c's M-b, where one was passed over as if empty and its outputs deleted).
                if !valid {
                    var bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
                    var type = entry.pointee.d_type
                    if type == UInt8(DT_UNKNOWN) || type == UInt8(DT_LNK) {
                        var childInfo = stat()
                        bytes.append(0)
                        let found = bytes.withUnsafeBufferPointer { name in
                            name.withMemoryRebound(to: CChar.self) { fstatat(folder.descriptor, $0.baseAddress!, &childInfo, 0) }
                        }
                        bytes.removeLast()
                        type = found == 0 && (childInfo.st_mode & S_IFMT) == S_IFDIR ? UInt8(DT_DIR) : UInt8(DT_REG)
                    }
                    others.append((prefix + Self.escaped(bytes), type == UInt8(DT_DIR) ? Self.notUTF8Folder : Self.notUTF8))
                    continue
                }
                var type = entry.pointee.d_type
                if type == UInt8(DT_UNKNOWN) || type == UInt8(DT_LNK) {
                    // Looked at by name in this folder: a link is followed (to a file it counts as one).
                    var childInfo = stat()
                    let followed = fstatat(folder.descriptor, name, &childInfo, type == UInt8(DT_LNK) ? 0 : AT_SYMLINK_NOFOLLOW)
                    guard followed == 0 else {
                        if type == UInt8(DT_LNK) { others.append((prefix + name, Self.linkToNothing)) }
                        continue
                    }
                    let mode = childInfo.st_mode & S_IFMT
                    if mode == S_IFREG { type = UInt8(DT_REG) } else if mode == S_IFDIR, type != UInt8(DT_LNK) { type = UInt8(DT_DIR) } else {
                        others.append((prefix + name, mode == S_IFDIR ? Self.linkToFolder : Self.kind(mode)))
                        continue
                    }
                }
                // A path the system cannot take (past PATH_MAX): named, so a rule that would read
                // it fails instead of seeing nothing there (files below a folder that long were
                // listed as "cannot read" before; now the limit is said as it is).
                if path.utf8.count + 1 + name.utf8.count >= Int(PATH_MAX) {
                    others.append((prefix + name, Self.pathTooLong))
                    continue
                }
                if type == UInt8(DT_DIR) {
                    let child = path + "/" + name
                    if !skipped.contains(where: { PathKey.same($0, child) }) {
                        pending.append((open.count < openFolders ? folder : nil, name, child, prefix + name + "/"))
                    }
                    others.append((prefix + name, Self.folder))
                } else if type == UInt8(DT_REG) {
                    keys.append(prefix + name)
                } else {
                    others.append((prefix + name, Self.kind(type == UInt8(DT_FIFO) ? S_IFIFO : type == UInt8(DT_SOCK) ? S_IFSOCK : S_IFCHR)))
                }
            }
        }
        return (keys.sortedByBytes(), others.sorted { PathKey.ordered($0.key, $1.key) })
    }

    /// What an entry whose path is PATH_MAX bytes or more is, in `others`: a folder that long
    /// hides its files (`hidesFiles`).
    public static let pathTooLong = "a path longer than the system allows (\(longestPath) bytes)"
    /// The longest path the system takes, in bytes (PATH_MAX less its NUL).
    public static let longestPath = Int(PATH_MAX) - 1

    /// How many folders the listing keeps open at once for the folders waiting below them.
    static let defaultOpenFolders = 64

    /// Opens the folder `key` (names joined by `/`) below the folder `top` one name at a time,
    /// never following a link (`O_NOFOLLOW` on every name): -1 with `errno` set when a name on
    /// the way is a link, not a folder, or cannot be opened.
    static func openFolder(below top: Int32, key: Substring) -> Int32 {
        var current = top
        for name in key.split(separator: "/", omittingEmptySubsequences: false) {
            let next = openat(current, String(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            if current != top { close(current) }
            guard next >= 0 else { errno = code; return -1 }
            current = next
        }
        return current == top ? dup(top) : current
    }

    /// How many `OpenedFolder`s are open.
    private final class OpenCount { var count = 0 }

    /// A folder being listed or waited on by folders found in it: closed when the last is opened.
    private final class OpenedFolder {
        let directory: OpaquePointer
        let counter: OpenCount
        var descriptor: Int32 { dirfd(directory) }
        init(_ directory: OpaquePointer, count: OpenCount) { self.directory = directory; counter = count; counter.count += 1 }
        deinit { closedir(directory); counter.count -= 1 }
    }

    /// What a folder is, in `others` (its files are listed too).
    public static let folder = "a folder"
    /// What a symbolic link to a folder is, in `others` (never followed).
    public static let linkToFolder = "a symbolic link to a folder"
    /// What a folder where another folder is mounted is, in `others` (never walked into: it may
    /// be another bucket, or lead outside the project, as a link may).
    public static let mountPoint = "a mount point (another folder is mounted there)"
    /// What a symbolic link to nothing (or a loop of links) is, in `others`.
    public static let linkToNothing = "a symbolic link to nothing"
    public static let unreadablePrefix = "a folder Derive cannot read"

    /// What a folder `opendir` refuses is, in `others`, with the system's reason.
    public static func unreadable(_ code: Int32) -> String { "\(unreadablePrefix) (\(String(cString: strerror(code))))" }

    /// Whether an entry of this kind may stand for files the listing could not see below it:
    /// a link to a folder (or to nothing, or a loop), a mount point, a folder that cannot be read, or a path
    /// longer than the system allows. A rule
    /// whose pattern would descend into it fails it, and the outputs of sources that were below
    /// it are kept (when in doubt, never delete).
    public static func hidesFiles(_ kind: String) -> Bool {
        kind == linkToFolder || kind == linkToNothing || kind == mountPoint || kind.hasPrefix(unreadablePrefix) || kind == pathTooLong
            || kind == notUTF8Folder
    }

    /// What an entry whose name is not valid UTF-8 is, in `others`.
    public static let notUTF8 = "a file name that is not valid UTF-8"
    /// What a folder (or a link to one) whose name is not valid UTF-8 is, in `others`: never
    /// walked into, it hides its files (`hidesFiles`).
    public static let notUTF8Folder = "a folder (or a link to one) whose name is not valid UTF-8"

    /// Whether an entry of this kind is named by its bytes (`\xHH` for each byte outside ASCII),
    /// not by a key: only a pattern may match it that spells those bytes (`Glob.matchesNotUTF8`).
    public static func isNotUTF8(_ kind: String) -> Bool { kind == notUTF8 || kind == notUTF8Folder }

    /// The name with every byte outside ASCII written `\xHH`, for messages.
    public static func escaped(_ bytes: [UInt8]) -> String {
        bytes.map { $0 < 0x80 ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16, uppercase: true) }.joined()
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode {
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFDIR: return "a folder"
        default: return "a device"
        }
    }
}
