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
    public init() {}

    public func keys(inFolder folder: String, skipping: [String]) -> [String]? {
        entries(inFolder: folder, skipping: skipping)?.keys
    }

    public func entries(inFolder folder: String, skipping: [String]) -> (keys: [String], others: [(key: String, kind: String)])? {
        let root = URL(fileURLWithPath: folder).standardizedFileURL.path
        var info = stat()
        guard stat(root, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
        // A short list (the state folder), compared by bytes as a `PathSet` would, without one.
        let skipped = skipping.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        var keys: [String] = []
        var others: [(key: String, kind: String)] = []
        var pending: [(path: String, key: String)] = [(root, "")]
        while let (path, prefix) = pending.popLast() {
            guard let directory = opendir(path) else {
                // A folder that cannot be read (no permission), the bucket's own included (its
                // key is ""): its files are not listed, so it is named, never passed over as if
                // it were empty.
                others.append((String(prefix.dropLast()), Self.unreadable(errno)))
                continue
            }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                // The name decoded once (validated, else repaired) straight from `d_name`.
                let (valid, name) = withUnsafeBytes(of: entry.pointee.d_name) { raw -> (Bool, String) in
                    let bytes = UnsafeRawBufferPointer(rebasing: raw[..<(raw.firstIndex(of: 0) ?? raw.endIndex)])
                    if let valid = String(validating: bytes, as: UTF8.self) { return (true, valid) }
                    return (false, String(decoding: bytes, as: UTF8.self))
                }
                if !sourceListingKeeps(name) { continue }
                // A name that is not UTF-8 cannot be a key: reported (escaped), never skipped silently.
                if !valid {
                    let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
                    others.append((prefix + Self.escaped(bytes), Self.notUTF8))
                    continue
                }
                var type = entry.pointee.d_type
                // Its path, only for what needs one (a stat, a folder to walk): not per file.
                var child: String { path + "/" + name }
                if type == UInt8(DT_UNKNOWN) || type == UInt8(DT_LNK) {
                    var childInfo = stat()
                    let followed = type == UInt8(DT_LNK) ? stat(child, &childInfo) : lstat(child, &childInfo)
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
                if type == UInt8(DT_DIR) {
                    if !skipped.contains(where: { PathKey.same($0, child) }) { pending.append((child, prefix + name + "/")) }
                    others.append((prefix + name, "a folder"))
                } else if type == UInt8(DT_REG) {
                    keys.append(prefix + name)
                } else {
                    others.append((prefix + name, Self.kind(type == UInt8(DT_FIFO) ? S_IFIFO : type == UInt8(DT_SOCK) ? S_IFSOCK : S_IFCHR)))
                }
            }
        }
        return (keys.sortedByBytes(), others.sorted { PathKey.ordered($0.key, $1.key) })
    }

    /// What a symbolic link to a folder is, in `others` (never followed).
    public static let linkToFolder = "a symbolic link to a folder"
    /// What a symbolic link to nothing (or a loop of links) is, in `others`.
    public static let linkToNothing = "a symbolic link to nothing"
    public static let unreadablePrefix = "a folder Derive cannot read"

    /// What a folder `opendir` refuses is, in `others`, with the system's reason.
    public static func unreadable(_ code: Int32) -> String { "\(unreadablePrefix) (\(String(cString: strerror(code))))" }

    /// Whether an entry of this kind may stand for files the listing could not see below it:
    /// a link to a folder (or to nothing, or a loop), or a folder that cannot be read. A rule
    /// whose pattern would descend into it fails it, and the outputs of sources that were below
    /// it are kept (when in doubt, never delete).
    public static func hidesFiles(_ kind: String) -> Bool {
        kind == linkToFolder || kind == linkToNothing || kind.hasPrefix(unreadablePrefix)
    }

    /// What an entry whose name is not valid UTF-8 is, in `others`.
    public static let notUTF8 = "a file name that is not valid UTF-8"

    /// The name with every byte outside ASCII written `\xHH`, for messages.
    static func escaped(_ bytes: [UInt8]) -> String {
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
